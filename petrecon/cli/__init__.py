"""The ``petrecon`` command: thin wrappers, one library call per sub-command.

Errors that petrecon raises on purpose print as one line with exit code 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys

from petrecon import __version__
from petrecon.cli import attenuation, basics, harmonize, io, norm, quant, recon, simulate
from petrecon.errors import PetreconError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``petrecon`` command."""
    parser = argparse.ArgumentParser(prog="petrecon", description="Quantitative PET reconstruction for Siemens Biograph data.")
    parser.add_argument("--version", action="version", version=f"petrecon {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True)

    for group in (basics, io, attenuation, recon, harmonize, quant, simulate, norm):
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``petrecon`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except PetreconError as error:
        if args.debug:
            raise
        print(f"petrecon: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
