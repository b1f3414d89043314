"""Sub-commands for raw data: ``histogram`` and ``export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from petrecon.io.atomic import check_outputs


def _cmd_histogram(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    import time

    from petrecon.geometry import default_layout
    from petrecon.io.listmode import histogram_listmode_to_container, parse_frame

    start_s, end_s = parse_frame(args.frame) if args.frame else (0.0, None)
    layout = default_layout(args.scanner, span=args.span, tof=False)
    started = time.perf_counter()
    result = histogram_listmode_to_container(Path(args.listmode), layout, Path(args.out), start_s=start_s,
                                             end_s=end_s, progress=args.progress, overwrite=args.overwrite)
    elapsed_s = time.perf_counter() - started
    for line in result.summary_lines():
        print(line)
    print(f"written          {args.out} ({elapsed_s:.1f} s in all: input hashing and HDF5 compression included)")


def _cmd_export(args: argparse.Namespace) -> None:
    from petrecon.io.siemens import open_export

    lines = open_export(Path(args.folder)).summary_lines()
    print("\n".join(lines) if lines else f"no Siemens raw-data objects in {args.folder}")


def register(commands: argparse._SubParsersAction) -> None:
    histogram = commands.add_parser(
        "histogram", help="histogram PETLINK list-mode into prompts/delays sinograms (HDF5)",
        epilog="examples:\n  petrecon histogram scan.l --scanner mmr --out sino.h5\n"
               "  petrecon histogram export_folder/ --scanner mmr --span 1 --frame 60:360 --out frame1.h5 --quiet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    histogram.add_argument("listmode", help="list-mode: .l / .bf file, Siemens DICOM wrapper (.dcm) or export folder")
    histogram.add_argument("--scanner", required=True, help="registry name, e.g. mmr")
    histogram.add_argument("--span", type=int, default=None, help="axial compression, e.g. 1 or 11 (default: the scanner's)")
    histogram.add_argument("--frame", default=None, help="time frame START_S:END_S in seconds (END_S may be empty)")
    histogram.add_argument("--out", required=True, help="output HDF5 container (datasets prompts, delays)")
    histogram.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                           help="progress bar (--no-progress or --quiet to hide)")
    histogram.add_argument("--quiet", dest="progress", action="store_false", help="same as --no-progress")
    histogram.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    histogram.set_defaults(run=_cmd_histogram)

    export = commands.add_parser("export", help="list the raw-data objects of a Siemens export folder",
                                 epilog="example:\n  petrecon export /data/mmr_export/", formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("folder", help="folder the scanner exported (.dcm wrappers + .bf payloads)")
    export.set_defaults(run=_cmd_export)
