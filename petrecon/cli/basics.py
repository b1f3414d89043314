"""Sub-commands ``scanners``, ``info`` and ``demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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



def register(commands: argparse._SubParsersAction) -> None:
    """Add ``scanners``, ``info`` and ``demo``."""
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
