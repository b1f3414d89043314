"""Sub-command ``batch``: reconstruct a cohort on Dask distributed."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
examples:
  petrecon batch cohort.toml --out results/
  petrecon batch cohort.toml --out results/ --workers 4 --retries 1
  petrecon batch cohort.toml --out results/ --scheduler tcp://10.0.0.5:8786 --quiet

cohort.toml (relative paths resolve against its folder):
  protocol = "clinical"                  # shipped name or protocol TOML (default of the studies)
  isocontour = "41%"                     # lesion segmentation: 41%, 50% or a50 (optional)
  min_lesion_volume_ml = 0.5             # smaller lesions: status too-small (optional)
  [[study]]
  id = "P001"
  patient = "P01"                        # optional (default: the id)
  raw = "raw/P001.h5"                    # study container (also whole-body), Interfile, list-mode, ...
  ct = "ct/P001"                         # or dixon = [WATERDIR, FATDIR], mumap = FILE.h5, or none
  protocol = "mmr.toml"                  # optional: this study's protocol
  harmonisation = "earl1-mmr.toml"       # optional: the filtered image is quantified too
  tracer = "Ga68-pentixafor"             # optional: DICOM Radiopharmaceutical
  weight_kg = 72.0
  sex = "M"
  injected_dose_mbq = 250.0
  injection_time = 2026-01-05T09:12:00
  rois = ["sphere:0,0,0,10"]             # optional
  reference = "liver"                    # optional: the VOI of tb_max, tb_peak
  [study.vois]                           # optional: patient LPS mm
  liver = [-60.0, 10.0, -120.0]          # also spleen, bone-marrow
  lesions = ["nodule:sphere:-80,20,-60,15"]
  [study.info]                           # optional: columns of the table
  group = "A"

outputs: OUT/<id>/recon.h5, OUT/<id>/dicom/ (+ dicom-<harmonisation>/), OUT/<id>/report.html,
         OUT/quantification.csv (one row per VOI, status ok/outside/too-small/below-background/failed), OUT/summary.json,
         OUT/index.html
exit code: 0 all studies done, 1 some failed (listed), 2 bad input (nothing run)"""


def _cmd_batch(args: argparse.Namespace) -> int:
    from petrecon.batch import read_cohort, run_batch

    cohort = read_cohort(args.cohort)

    def announce(scheduler: str, dashboard: str | None) -> None:
        if not args.quiet:
            print(f"cluster          {scheduler}, dashboard {dashboard or 'not available (pip install bokeh)'}")

    report = run_batch(cohort, args.out, scheduler=args.scheduler, n_workers=args.workers, retries=args.retries,
                       overwrite=args.overwrite, progress=not args.quiet, on_start=announce)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.summary_lines()))
    if args.debug:
        for failure in report.failed:
            print(failure["details"])
    return 0 if report.ok else 1


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``batch``."""
    batch = commands.add_parser("batch", help="reconstruct a cohort (TOML) on Dask: DICOM, HDF5, an SUV table and reports",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("cohort", help="cohort TOML: protocols, one [[study]] table per study")
    batch.add_argument("--out", required=True, help="output folder (created)")
    batch.add_argument("--workers", type=int, default=None,
                       help="LocalCluster workers (default: one per GPU, else one per 4 CPU cores)")
    batch.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this Dask scheduler instead of a LocalCluster")
    batch.add_argument("--retries", type=int, default=0, help="Dask retries of a failed study (default 0)")
    batch.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    batch.add_argument("--json", action="store_true", help="print the summary as JSON")
    batch.add_argument("--quiet", action="store_true", help="no progress bar, no cluster line")
    batch.set_defaults(run=_cmd_batch)
