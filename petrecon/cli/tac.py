"""Sub-command ``tac``: time-activity curves of ROIs in a dynamic reconstruction (table, CSV, PNG)."""

from __future__ import annotations

import argparse

from petrecon.io.atomic import check_outputs


def _cmd_tac(args: argparse.Namespace) -> None:
    check_outputs([args.csv, args.plot], overwrite=args.overwrite)
    from petrecon.quant.report import volume_roi_mask
    from petrecon.quant.tac import format_tac_csv, plot_tacs, read_dynamic_frames, time_activity_curves, write_tac_csv

    frames = read_dynamic_frames(args.input)
    first = frames.volumes[0]
    rois = {spec: volume_roi_mask(first, spec) for spec in args.roi}
    points = time_activity_curves(frames.volumes, frames.starts_s, frames.durations_s, rois,
                                  half_life_s=frames.half_life_s)
    print(format_tac_csv(points), end="")
    if args.csv:
        write_tac_csv(points, args.csv, overwrite=args.overwrite)
        print(f"written {args.csv}")
    if args.plot:
        plot_tacs(points, args.plot, units=str(first.metadata.get("units", "Bq/ml")), overwrite=args.overwrite)
        print(f"written {args.plot}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``tac``."""
    tac = commands.add_parser(
        "tac", help="time-activity curves (mean, SD per frame) of ROIs in a dynamic reconstruction",
        epilog="examples:\n  petrecon tac dyn.h5 --roi sphere:0,0,0,10 --roi box:-40,-40,-10,40,40,10 --csv tac.csv "
               "--plot tac.png\n  petrecon tac dyn_dicom/ --roi sphere:20,0,0,8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    tac.add_argument("input", help="dynamic container (petrecon recon --frames --out) or dynamic PET DICOM folder")
    tac.add_argument("--roi", action="append", required=True,
                     help="sphere:x,y,z,r or box:x0,y0,z0,x1,y1,z1 in mm, DICOM patient coordinates (repeatable)")
    tac.add_argument("--csv", help="write the table here (CSV)")
    tac.add_argument("--plot", help="write the curves here (PNG)")
    tac.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    tac.set_defaults(run=_cmd_tac)
