"""Sub-command ``cohort``: statistics, tables and figures of a cohort study's quantification table."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from petrecon.io.atomic import check_outputs

EPILOG = """\
examples:
  petrecon cohort results/quantification.csv --kind organ
  petrecon cohort results/quantification.csv --pair scanner --truth truth.csv --out stats/
  petrecon cohort results/quantification.csv --voi liver,bone-marrow --pair scanner:b64,mmr --confidence 0.9
  petrecon cohort results/quantification.csv --protocol earl1 --test wilcoxon,bland-altman --pair scanner --json
  petrecon cohort results/quantification.csv --group treated --correlate uptake_min:suv_max --out stats/
  petrecon cohort tests/data/pentixafor_lesions.csv --out tables/
  petrecon cohort tests/data/pentixafor_lesions.csv --pair tracer --group site

A lesion table without analysis options gives the per patient, entity and site summaries of the study.

TABLE: the quantification table of petrecon batch (study, patient, scanner, protocol, voi, kind, ...,
status, then the [study.info] columns), or a lesion table (patient, entity, lesion, site, tracer,
suv_max, tb_ratio, detected). Rows whose status is not ok are excluded and counted. Every test row
carries n; a test the sample size does not allow says 'not computed: n = 2', and where no result
could reach p < 0.05 at that n the row says so.

outputs in --out: summary.csv, tests.csv, truth.csv, truth_differences.csv, excluded.csv,
pairs.png, groups.png, correlations.png, truth.png, index.html (tables and figures)."""


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def _is_lesion_table(path: str) -> bool:
    """True when the header is the lesion table's, and for a file that cannot be read (the lesion reader then
    names the problem)."""
    from petrecon.quant.cohort import COLUMNS

    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return True
    return set(COLUMNS) <= {name.strip() for name in header}


def _cmd_cohort(args: argparse.Namespace) -> None:
    analysis = (args.truth or args.pair or args.group or args.correlate or args.kind or args.voi or args.protocol
                or args.test or args.metric != "suv_max" or args.by)
    if not analysis and _is_lesion_table(args.table):
        _lesion_summaries(args)
        return
    from petrecon.quant.cohort_analysis import TESTS, CohortOptions, analyse_table
    from petrecon.quant.cohort_report import format_report, output_paths, write_outputs
    from petrecon.quant.cohort_table import read_table, read_truth

    table = read_table(args.table)
    options = CohortOptions(metric=args.metric, protocols=_names(args.protocol), kinds=_names(args.kind),
                            vois=_names(args.voi), by=args.by or table.default_by, pair=args.pair, group=args.group,
                            correlate=tuple(args.correlate or ()), tests=_names(args.test) or TESTS,
                            confidence=args.confidence)
    result = analyse_table(table, options, read_truth(args.truth) if args.truth else None)
    if args.out:
        if Path(args.out).is_dir():  # a folder still to be created holds nothing to replace
            check_outputs(list(output_paths(result, args.out).values()), overwrite=args.overwrite)
        write_outputs(result, options, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result))
        if args.out:
            print(f"\nwritten: {Path(args.out) / 'index.html'}")


def _lesion_summaries(args: argparse.Namespace) -> None:
    """A lesion table without analysis options: the per patient / entity / site summaries of the study."""
    from petrecon.quant.cohort import analyse_cohort, format_table, read_lesions, write_tables

    report = analyse_cohort(read_lesions(args.table))
    if args.out:
        write_tables(report, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    for title, rows in (("per patient", report.patients), ("per entity", report.entities),
                        ("per site", report.sites), ("tests", [t.__dict__ for t in report.tests])):
        print(f"== {title}\n{format_table(rows)}\n")
    if report.comparison:
        print(f"== tracer comparison per lesion\n{format_table([report.comparison])}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``cohort``."""
    cohort = commands.add_parser(
        "cohort", help="statistics, tables and figures of a cohort's quantification table (or a lesion table)",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cohort.add_argument("table", help="CSV: OUT/quantification.csv of petrecon batch, or a lesion table")
    cohort.add_argument("--truth", help="truth.csv of the cohort simulator: measured/true per tissue class")
    cohort.add_argument("--metric", default="suv_max",
                        help="the column analysed (default suv_max; suv_mean, suv_peak, tb_max, ...)")
    cohort.add_argument("--protocol", help="only these protocols, comma-separated (e.g. clinical,earl1)")
    cohort.add_argument("--kind", help="only these VOI kinds, comma-separated (organ, lesion, roi)")
    cohort.add_argument("--voi", help="only these VOIs, comma-separated (e.g. liver,spleen,bone-marrow)")
    cohort.add_argument("--by", choices=["voi", "kind"],
                        help="strata: each VOI (default), or each VOI kind over its VOIs (default for a lesion table)")
    cohort.add_argument("--pair", metavar="COLUMN[:REF,OTHER]",
                        help="paired comparison of the column's two values per patient (e.g. scanner; the first "
                             "in sort order, or REF, is the reference)")
    cohort.add_argument("--group", metavar="COLUMN[:A,B]", help="Mann-Whitney U between the column's two values")
    cohort.add_argument("--correlate", action="append", metavar="X:Y", help="Spearman of column Y against X "
                                                                             "(repeatable)")
    cohort.add_argument("--test", help="tests to run, comma-separated (default all: mann-whitney, spearman, wilcoxon, "
                                       "bland-altman; the mean %% difference of --pair always)")
    cohort.add_argument("--confidence", type=float, default=0.95, help="level of the confidence intervals "
                                                                       "(default 0.95)")
    cohort.add_argument("--out", help="folder for the CSV tables, PNG figures and index.html")
    cohort.add_argument("--json", action="store_true", help="print JSON")
    cohort.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    cohort.set_defaults(run=_cmd_cohort)
