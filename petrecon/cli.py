"""The ``petrecon`` command: thin wrappers, one library call per sub-command.

Errors that petrecon raises on purpose print as one line with exit code 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from petrecon import __version__
from petrecon.errors import PetreconError


def _cmd_scanners(args: argparse.Namespace) -> None:
    from petrecon.geometry import SCANNERS

    for key, scanner in SCANNERS.items():
        print(f"{key:12s} {scanner.description}")


def _cmd_info(args: argparse.Namespace) -> None:
    from petrecon.geometry import default_layout

    layout = default_layout(args.scanner, span=args.span, tof=args.tof)
    summary = layout.to_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key:28s} {value}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from petrecon.demo import run_demo
    from petrecon.recon import OsemProtocol

    protocol = OsemProtocol(args.iterations, args.subsets, args.fwhm_mm)
    report = run_demo(Path(args.out), protocol=protocol, total_counts=args.counts, seed=args.seed,
                      overwrite=args.overwrite)
    for line in report.summary_lines():
        print(line)


def _cmd_phantoms(args: argparse.Namespace) -> None:
    from petrecon.simulate.phantom import load_phantom, shipped_phantoms

    for name in shipped_phantoms():
        phantom = load_phantom(name)
        parameters = ", ".join(f"{key}={value}" for key, value in phantom.parameters.items())
        print(f"{name:18s} {phantom.description}")
        if parameters and args.verbose:
            print(f"{'':18s} parameters: {parameters}")


def _phantom_parameters(args: argparse.Namespace) -> dict:
    from petrecon.errors import ParameterError

    parameters = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--set expects NAME=VALUE, got {item!r}")
        parameters[key] = {"true": True, "false": False}.get(value.lower(), None)
        if parameters[key] is None:
            try:
                parameters[key] = float(value)
            except ValueError:
                raise ParameterError(f"--set {key}: {value!r} is neither a number nor true/false") from None
    if args.ratio is not None:
        parameters["ratio"] = args.ratio
    return parameters


def _cmd_simulate(args: argparse.Namespace) -> None:
    from petrecon.simulate.acquisition import simulate_to_file

    study, paths = simulate_to_file(
        args.out, args.phantom, overwrite=args.overwrite, scanner=args.scanner, span=args.span,
        isotope=args.isotope, parameters=_phantom_parameters(args) or None,
        injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
        duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
        listmode=args.listmode, progress=not args.quiet)
    attributes = study.container.attributes
    print(f"phantom {attributes['phantom']} on {attributes['scanner']} ({study.container.layout.shape}), "
          f"{attributes['isotope']}, {attributes['injected_activity_bq'] / 1e6:.1f} MBq, "
          f"frame {attributes['frame_start_s']:.0f} + {attributes['duration_s']:.0f} s, seed {attributes['seed']}")
    for key, value in attributes["counts"].items():
        print(f"{key:8s} {value:14.4g} counts")
    for path in paths:
        print(f"wrote    {path}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``petrecon`` command."""
    parser = argparse.ArgumentParser(prog="petrecon", description="Quantitative PET reconstruction for Siemens Biograph data.")
    parser.add_argument("--version", action="version", version=f"petrecon {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True)

    scanners = commands.add_parser("scanners", help="list the scanner registry")
    scanners.set_defaults(run=_cmd_scanners)

    info = commands.add_parser("info", help="geometry and sinogram shape of one scanner")
    info.add_argument("scanner", help="registry name, e.g. mmr, mct, mct-tof, b64, b64-truev, test")
    info.add_argument("--span", type=int, default=None, help="axial compression (default: the scanner's)")
    info.add_argument("--tof", action=argparse.BooleanOptionalAction, default=None, help="TOF sinogram (TOF scanners only)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_cmd_info)

    demo = commands.add_parser("demo", help="simulate a phantom, reconstruct it by AW-OSEM, report recovery")
    demo.add_argument("--out", default="petrecon-demo", help="output folder (default: ./petrecon-demo)")
    demo.add_argument("--iterations", type=int, default=4, help="OSEM iterations (default 4)")
    demo.add_argument("--subsets", type=int, default=8, help="OSEM subsets (default 8)")
    demo.add_argument("--fwhm-mm", type=float, default=5.0, help="Gaussian post-filter FWHM in mm (default 5)")
    demo.add_argument("--counts", type=float, default=2e7, help="expected true counts (default 2e7)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the Poisson noise (default 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    demo.set_defaults(run=_cmd_demo)

    phantoms = commands.add_parser("phantoms", help="list the shipped phantoms")
    phantoms.add_argument("--verbose", "-v", action="store_true", help="also list each phantom's parameters")
    phantoms.set_defaults(run=_cmd_phantoms)

    simulate = commands.add_parser("simulate", help="simulate a phantom analytically into a study container")
    simulate.add_argument("phantom", help="shipped phantom name (petrecon phantoms) or a TOML file")
    simulate.add_argument("--scanner", default="mmr", help="registry scanner (default mmr)")
    simulate.add_argument("--span", type=int, default=None, help="axial compression (default: the scanner's)")
    simulate.add_argument("--isotope", default=None, help="F18, Ga68, ... (default: the phantom's)")
    simulate.add_argument("--activity-mbq", type=float, default=None, help="injected activity (default: the phantom's)")
    simulate.add_argument("--duration-s", type=float, default=None, help="frame duration (default: the phantom's)")
    simulate.add_argument("--frame-start-s", type=float, default=None, help="frame start after injection (default: the phantom's)")
    simulate.add_argument("--ratio", type=float, default=None, help="sphere:background ratio (NEMA: 4 or 10)")
    simulate.add_argument("--set", action="append", metavar="NAME=VALUE", help="set a phantom parameter (repeatable)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    simulate.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True, help="Poisson noise (default on)")
    simulate.add_argument("--listmode", action="store_true", help="also write PETLINK list-mode (OUT with suffix .l)")
    simulate.add_argument("--out", default="study.h5", help="output container (default study.h5)")
    simulate.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.set_defaults(run=_cmd_simulate)
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
