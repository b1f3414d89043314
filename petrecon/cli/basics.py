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
    from petrecon.demo import clinical_protocol, run_demo

    protocol = clinical_protocol(args.iterations, args.subsets, args.fwhm_mm)
    result = run_demo(Path(args.out), full=args.full, protocol=protocol,
                      activity_mbq=args.activity_mbq, duration_s=args.duration_s, seed=args.seed,
                      estimate_corrections=args.estimate_corrections, overwrite=args.overwrite,
                      progress=not args.quiet)
    print("\n".join(result.summary_lines()))


_DEMO_EPILOG = """examples:
  petrecon demo                                   # ./petrecon-demo: DICOM series, demo.h5, report.html
  petrecon demo --out run2 --fwhm-mm 6.5 --seed 1  # another post-filter and noise realisation
  petrecon demo --full --overwrite                 # full mMR sampling (the default with a GPU)
  petrecon demo --estimate-corrections --out est   # randoms and scatter estimated as for a real scan
then:
  petrecon nema petrecon-demo/dicom --json
  petrecon nema petrecon-demo/demo.h5
  petrecon suv petrecon-demo/dicom --roi sphere:28.6,-49.537,0,18.5 --json

Without a GPU the demo simulates an axially short mMR (28 rings around the sphere
plane, 200 radial bins, views mashed by 2, 160 x 160 x 55 voxels of the mMR's size):
see the README, section Demo."""


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

    demo = commands.add_parser(
        "demo", help="simulate the NEMA IEC phantom (68Ga) on the mMR, reconstruct (clinical AW-OSEM), "
                     "analyse (NEMA NU 2, EARL), write DICOM, HDF5 and an HTML report",
        epilog=_DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", default="petrecon-demo", help="output folder (default: ./petrecon-demo)")
    demo.add_argument("--full", action=argparse.BooleanOptionalAction, default=None,
                      help="full mMR sampling (344 x 252 x 837 sinogram, 344 x 344 x 127 image; over 10 min on two "
                           "CPU cores); default: full with the GPU backend, reduced without")
    demo.add_argument("--iterations", type=int, default=4, help="OSEM iterations (default 4)")
    demo.add_argument("--subsets", type=int, default=8, help="OSEM subsets (default 8)")
    demo.add_argument("--fwhm-mm", type=float, default=5.0, help="Gaussian post-filter FWHM in mm (default 5)")
    demo.add_argument("--activity-mbq", type=float, default=None,
                      help="total activity in the phantom at the scan start, MBq (default: background "
                           "5.3 kBq/ml, spheres 10:1, 51.9 MBq)")
    demo.add_argument("--duration-s", type=float, default=600.0, help="frame duration in s (default 600)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the simulation's random draws (default 0)")
    demo.add_argument("--estimate-corrections", action="store_true",
                      help="estimate randoms (delays) and scatter (single scatter + tail fit) from the data, as "
                           "for a real scan, instead of using the simulator's (about 3 x the reconstruction time)")
    demo.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_cmd_demo)
