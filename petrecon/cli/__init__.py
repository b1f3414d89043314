"""The ``petrecon`` command: thin wrappers, one library call per sub-command.

Conventions shared by every sub-command (given before or after its name):

* ``--quiet``: no progress bars, only results, warnings and errors (the
  ``petrecon`` logger at WARNING: a correction switched off is never
  hidden); sub-commands with their own ``--quiet`` keep it.
* ``-v`` / ``--verbose`` (INFO, ``-vv`` DEBUG) or ``--log-level LEVEL``: the
  level of the ``petrecon`` logger, printed to stderr as ``petrecon: LEVEL: ...``.
* ``--debug``: tracebacks instead of one-line errors.

Exit codes: 0 success; 1 the work ran but some of it failed (``batch``);
2 bad input: an argument, a missing, unreadable or corrupt file, or any
error petrecon raises on purpose, printed as one line ``petrecon: error: ...``
naming the file; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from petrecon import __version__
from petrecon.cli import attenuation, basics, batch, bench, cohort, harmonize, io, norm, quant, recon, simulate, tac
from petrecon.checks import check_arguments
from petrecon.errors import PetreconError
from petrecon.io.atomic import all_or_nothing
from petrecon.logs import configure_logging, log_library_warning, recorded_warnings

EPILOG = """\
examples:
  petrecon simulate nema-iec --scanner mmr --out study.h5
  petrecon --log-level info recon study.h5 --out recon.h5
  petrecon batch cohort.toml --out results/ --quiet
  petrecon bench --quick

global options go before or after the sub-command: --quiet (no progress bars), -v / --log-level
(the petrecon logger), --debug (tracebacks).
exit codes: 0 success, 1 some studies of a batch failed, 2 bad input (one line 'petrecon: error: ...'),
130 interrupted."""
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def _add_global_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default) -> None:
    """The options every sub-command shares; on sub-parsers ``default`` is SUPPRESS, so that a sub-parser's
    default never overwrites a value given before the sub-command, and an option a sub-command already has
    (its own ``--quiet``, ``phantoms -v``) stays its own."""
    options = [
        (("--quiet",), {"dest": "global_quiet", "action": "store_true", "help": "no progress bars, only results, warnings and errors"}),
        (("-v", "--verbose"), {"dest": "verbosity", "action": "count", "help": "log progress (INFO); -vv: DEBUG"}),
        (("--log-level",), {"choices": list(LOG_LEVELS), "help": "level of the petrecon logger (default warning)"}),
        (("--debug",), {"action": "store_true", "help": "show tracebacks instead of one-line errors"}),
    ]
    for flags, settings in options:
        try:
            parser.add_argument(*flags, default=default, **settings)
        except argparse.ArgumentError:
            pass  # the sub-command defines this flag itself


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``petrecon`` command."""
    parser = argparse.ArgumentParser(prog="petrecon", description="Quantitative PET reconstruction for Siemens Biograph data.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"petrecon {__version__}")
    _add_global_options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (basics, io, attenuation, norm, recon, batch, harmonize, quant, cohort, simulate, tac, bench):
        group.register(commands)
    for sub in commands.choices.values():
        _add_global_options(sub.add_argument_group("global options"), argparse.SUPPRESS)
    return parser


def _apply_global_options(args: argparse.Namespace) -> None:
    """Make ``--quiet`` reach the sub-command's own switch, and set the log level."""
    quiet = bool(args.global_quiet) or getattr(args, "quiet", False) is True
    if quiet:
        args.quiet = True
        if hasattr(args, "progress"):
            args.progress = False
    verbosity = args.verbosity or 0
    level = logging.WARNING if quiet or not verbosity else (logging.DEBUG if verbosity > 1 else logging.INFO)
    configure_logging(LOG_LEVELS[args.log_level] if args.log_level else level)
    args.debug = bool(args.debug)


def _error_line(error: BaseException) -> str:
    """One line naming the file where there is one."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``petrecon`` console script; returns the exit code (module docstring).

    Every numeric option is checked against :data:`petrecon.checks.LIMITS` before any work; library
    warnings (pydicom, numpy) print as one ``petrecon: warning:`` line and are recorded in the outputs'
    provenance; the outputs of one invocation are written all or none (:func:`~petrecon.io.atomic.all_or_nothing`).
    """
    args = build_parser().parse_args(argv)
    _apply_global_options(args)
    recorded_warnings(clear=True)
    try:
        with warnings.catch_warnings(), all_or_nothing():
            warnings.simplefilter("default")
            warnings.showwarning = log_library_warning
            check_arguments(args)
            code = args.run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("petrecon: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if args.debug:
            raise
        print("petrecon: error: out of memory: the input or the requested sizes do not fit in this machine",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except (PetreconError, OSError) as error:  # OSError: missing, unreadable or corrupt files (h5py), full disks
        if args.debug:
            raise
        print(f"petrecon: error: {_error_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return int(code or 0)
