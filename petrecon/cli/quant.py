"""Quantification sub-commands: ``suv``, ``nema``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from petrecon.errors import FormatError, ParameterError
from petrecon.io.atomic import check_outputs


def _pet_volume(path: str, name: str | None):
    """The PET volume of a DICOM series folder, or the named volume of an HDF5 container (default: its only
    volume, or the one its ``primary_volume`` attribute names)."""
    from petrecon.io import read_container
    from petrecon.io.dicom import read_pet_series

    if Path(path).is_dir():
        return read_pet_series(path)
    container = read_container(path)
    names = list(container.volumes)
    name = name or (names[0] if len(names) == 1 else container.attributes.get("primary_volume"))
    if name not in container.volumes:
        raise FormatError(path, f"/volumes/{name or ''}",
                          f"name one volume with --volume; the container holds {', '.join(names) or 'none'}")
    return container.volumes[name]


def _cmd_suv(args: argparse.Namespace) -> int:
    import sys

    from petrecon.quant.lesions import VoiSet, measure_vois, parse_lesion, parse_organ
    from petrecon.quant.report import parse_roi
    from petrecon.quant.suv_dicom import suv_volume

    if not (args.roi or args.labels or args.organ or args.lesion):
        raise ParameterError("give at least one --roi, --organ, --lesion or --labels")
    for spec in args.roi or []:
        parse_roi(spec)
    vois = VoiSet(organs=dict(parse_organ(o) for o in args.organ or []),
                  lesions=dict(parse_lesion(text) for text in args.lesion or []), rois=tuple(args.roi or []),
                  reference=args.reference, isocontour=args.isocontour, min_volume_ml=args.min_volume_ml)
    volume = _pet_volume(args.input, args.volume)
    if not str(volume.metadata.get("units", "")).upper().startswith("SUV"):
        volume = suv_volume(volume, args.normalisation)
    records = measure_vois(volume, vois) + _label_records(volume, args.labels or [])
    for r in records:
        if r["status"] == "outside":
            print(f"warning: {r['kind']} {r['voi']} is not wholly inside the image: not measured", file=sys.stderr)
    measured = any(r["suv_max"] is not None for r in records)
    if args.json:  # the VOI's name under "roi", as petrecon suv has always printed it
        print(json.dumps([{"roi": r["voi"], **{k: v for k, v in r.items() if k != "voi"}} for r in records], indent=2))
    else:
        print(f"units {volume.metadata.get('units')}")
        for r in records:
            print(_suv_line(r))
    return 0 if measured else 2


def _suv_line(record: dict) -> str:
    """One VOI as a line of text: its statistics, T/B and status."""
    head = f"{record['kind']} {record['voi']}:"
    if record["suv_max"] is None:
        return f"{head} {record['status']}"
    line = (f"{head} max {record['suv_max']:.3f}  mean {record['suv_mean']:.3f}  peak {record['suv_peak']:.3f}  "
            f"SD {record['suv_sd']:.3f}  volume {record['volume_ml']:.2f} ml  TLG {record['tlg']:.2f}")
    if record["tb_max"] is not None:
        line += f"  T/B max {record['tb_max']:.2f} peak {record['tb_peak']:.2f} ({record['reference']})"
    return line if record["status"] == "ok" else f"{line}  [{record['status']}]"


def _label_records(volume, paths: list[str]) -> list[dict]:
    """``--labels``: one record (kind ``roi``) per segment of each NIfTI label image or DICOM-SEG file."""
    from petrecon.quant.labels import label_records
    from petrecon.quant.lesions import RECORD_KEYS

    return [{**dict.fromkeys(RECORD_KEYS), **{k: v for k, v in record.items() if k != "roi"}, "voi": record["roi"],
             "kind": "roi", "status": "ok"} for path in paths for record in label_records(volume, path)]


def _cmd_nema(args: argparse.Namespace) -> None:
    import sys

    check_outputs([args.plot, args.roi_plot], overwrite=args.overwrite)
    from petrecon.quant.nema import analyse_nema
    from petrecon.quant.plot import plot_recovery, plot_rois

    volume = _pet_volume(args.input, args.volume)
    if args.ratio is None and args.sphere_activity is None:  # given truth replaces the stored one as a whole
        truth = volume.metadata.get("nema_truth") or volume.metadata.get("provenance", {}).get("nema_truth", {})
        ratio, activity = truth.get("activity_ratio"), truth.get("sphere_activity")
    else:
        ratio, activity = args.ratio, args.sphere_activity
    result = analyse_nema(volume, activity_ratio=ratio, sphere_activity=activity)
    for message in result.warnings:
        print(f"warning: {message}", file=sys.stderr)
    if args.plot:
        plot_recovery(result, args.plot, overwrite=args.overwrite)
    if args.roi_plot:
        plot_rois(volume, result, args.roi_plot, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    source = (f"estimated by the phantom fit, {result.fitted_fwhm_mm:.1f} mm FWHM" if result.ratio_estimated
              else "given")
    print(f"phantom tilt {result.tilt_deg:.1f} deg, centre ({', '.join(f'{c:.1f}' for c in result.phantom_centre_mm)})"
          f" mm, fit misfit {result.fit_residual_percent:.1f} %")
    print(f"background mean {result.background_mean:.6g}, lung residual {result.lung_residual_percent:.1f} %, "
          f"true sphere {result.sphere_activity:.6g} ({result.activity_ratio:.2f}:1, {source})")
    print("d_mm   max        mean_a50   peak       RCmax  RCa50  RCpeak  Q_H%   N%")
    for s in result.spheres:
        print(f"{s.diameter_mm:<6g} {s.max:<10.4g} {s.mean_a50:<10.4g} {s.peak:<10.4g} {s.rc_max:<6.3f} "
              f"{s.rc_mean_a50:<6.3f} {s.rc_peak:<7.3f} {s.contrast_percent:<6.1f} {s.background_variability_percent:.2f}")
    for standard, verdict in result.earl.items():
        print(f"{standard.upper()}: {'passes' if verdict['passes'] else 'fails'}")


def register(commands: argparse._SubParsersAction) -> None:
    suv = commands.add_parser(
        "suv", help="SUV statistics of ROIs in a PET volume (SUV from its DICOM header)",
        epilog="examples:\n  petrecon suv pet_series/ --roi sphere:0,0,0,10\n"
               "  petrecon suv pet_series/ --roi sphere:57.2,0,0,18.5 --roi box:-20,-20,-10,20,20,10 "
               "--normalisation lbm-james --json\n"
               "  petrecon suv pet_series/ --organ liver:-60,10,-120 --organ spleen:90,60,-140 "
               "--lesion nodule:sphere:-80,20,-60,15 --isocontour a50 --min-volume-ml 0.5 --reference liver\n\n"
               "A VOI not wholly inside the image is reported with status 'outside' (a warning on stderr) and the\n"
               "others are measured; exit code 2 when none could be.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    suv.add_argument("input", help="PET DICOM series folder, or petrecon HDF5 container holding the PET volume")
    suv.add_argument("--volume", help="volume name in the container (default: its only or its primary_volume)")
    suv.add_argument("--roi", action="append",
                     help="sphere:x,y,z,r or box:x0,y0,z0,x1,y1,z1 in mm, DICOM patient coordinates (repeatable)")
    suv.add_argument("--labels", action="append", metavar="FILE",
                     help="label masks: NIfTI label image (.nii, .nii.gz) or DICOM-SEG; one record per segment "
                          "(repeatable)")
    suv.add_argument("--organ", action="append", metavar="ORGAN:x,y,z",
                     help="organ reference VOI (liver, spleen, bone-marrow: spheres of 30, 20, 15 mm) centred at "
                          "x,y,z mm, DICOM patient coordinates (repeatable)")
    suv.add_argument("--lesion", action="append", metavar="NAME:sphere:x,y,z,r",
                     help="lesion: isocontour of the hottest voxel in this search sphere (repeatable)")
    suv.add_argument("--isocontour", default="41%", choices=["41%", "50%", "a50"],
                     help="lesion segmentation: fraction of the max, or a50 (background = the reference VOI mean); "
                          "default 41%%")
    suv.add_argument("--min-volume-ml", type=float, default=0.0,
                     help="lesions smaller than this are reported with status too-small (default 0)")
    suv.add_argument("--reference", metavar="VOI",
                     help="VOI of the T/B ratios (tb_max = SUVmax / its SUVmean, tb_peak likewise): an --organ "
                          "name or an --roi as given")
    suv.add_argument("--normalisation", default="bw",
                     choices=["bw", "lbm-james", "lbm-janmahasatian", "bsa", "ibw"], help="SUV normalisation")
    suv.add_argument("--json", action="store_true", help="print JSON (one record per ROI)")
    suv.set_defaults(run=_cmd_suv)

    nema = commands.add_parser(
        "nema", help="NEMA NU 2 image quality and EARL recovery of an IEC phantom volume",
        epilog="examples:\n  petrecon nema recon.h5 --plot recovery.png --roi-plot rois.png\n"
               "  petrecon nema iec_series/\n"
               "  petrecon nema iec_series/ --ratio 10 --sphere-activity 53000 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    nema.add_argument("input", help="PET DICOM series folder (any scanner), or petrecon HDF5 container")
    nema.add_argument("--volume", help="volume name in the container (default: its only or its primary_volume)")
    nema.add_argument("--ratio", type=float,
                      help="true sphere:background ratio (default: the volume's nema_truth, e.g. petrecon demo's; "
                           "without any, the sphere concentration is fitted and the RCs are marked estimated)")
    nema.add_argument("--sphere-activity", type=float,
                      help="true sphere concentration in image units (given truth replaces the stored one)")
    nema.add_argument("--json", action="store_true", help="print JSON (one record per sphere)")
    nema.add_argument("--plot", help="write recovery curves with the EARL bands to this PNG")
    nema.add_argument("--roi-plot", help="write the ROI placement on the sphere plane and a profile through each "
                                         "sphere with the fitted model to this PNG")
    nema.add_argument("--overwrite", action="store_true", help="replace an existing plot")
    nema.set_defaults(run=_cmd_nema)
