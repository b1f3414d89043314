"""Cohort statistics from a lesion table: the summaries a clinical PET study reports.

The lesion table (CSV, one row per lesion and tracer) has the columns

=========  =============================================================
patient    patient identifier
entity     tumour entity (NSCLC, melanoma, ...)
lesion     lesion identifier, unique within the patient
site       ``primary`` or ``metastasis``
tracer     tracer name (e.g. ``Ga68-pentixafor``, ``FDG``)
suv_max    SUVmax of the lesion's VOI; empty when not quantified (lesion
           < 10 mm, or beyond the 5 hottest metastases)
tb_ratio   tumour-to-background ratio; empty when not quantified
detected   visual detection, 1 or 0
=========  =============================================================

Summaries follow reference/clinical-protocol.md: per patient and tracer the
mean SUVmax, mean T/B and detected/total (the study's per-patient table); per
entity and per site mean (range) and counts; Mann-Whitney U between subgroups
and Spearman rank correlation (exact permutation p for n <= 9,
:func:`petrecon.quant.cohort_tests.spearman`) with p-values; the per-lesion
comparison of two tracers (paired means, Spearman, Wilcoxon signed-rank).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from petrecon.errors import FormatError, ParameterError
from petrecon.io.atomic import atomic_output
from petrecon.quant.cohort_tests import spearman

COLUMNS = ("patient", "entity", "lesion", "site", "tracer", "suv_max", "tb_ratio", "detected")
SITES = ("primary", "metastasis")


@dataclass(frozen=True)
class Lesion:
    """One row of the lesion table."""

    patient: str
    entity: str
    lesion: str
    site: str
    tracer: str
    suv_max: float | None
    tb_ratio: float | None
    detected: bool


def _number(path: Path, row: int, column: str, text: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"row {row}, column {column}", f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise FormatError(path, f"row {row}, column {column}", f"{text!r} must be a non-negative number")
    return value


def read_lesions(path: str | os.PathLike) -> list[Lesion]:
    """Read and validate a lesion table (columns in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    try:
        return _read_lesion_rows(path)
    except UnicodeDecodeError as error:
        raise FormatError(path, "encoding", f"byte {error.start} is not UTF-8 text; save the table as UTF-8 "
                                            "CSV") from None
    except csv.Error as error:
        raise FormatError(path, "CSV", str(error)) from None


def _read_lesion_rows(path: Path) -> list[Lesion]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, restval="")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FormatError(path, "header", f"lacks the column(s) {', '.join(missing)}; needs {', '.join(COLUMNS)}")
        lesions, seen = [], set()
        for row_number, row in enumerate(reader, start=2):
            site = row["site"].strip().lower()
            if site not in SITES:
                raise FormatError(path, f"row {row_number}, column site", f"is {row['site']!r}; expected {SITES}")
            detected = row["detected"].strip()
            if detected not in ("0", "1"):
                raise FormatError(path, f"row {row_number}, column detected", f"is {detected!r}; expected 0 or 1")
            key = (row["patient"].strip(), row["lesion"].strip(), row["tracer"].strip())
            if key in seen:
                raise FormatError(path, f"row {row_number}", f"lesion {key[1]} of patient {key[0]} with {key[2]} "
                                  "appears twice")
            seen.add(key)
            lesions.append(Lesion(key[0], row["entity"].strip(), key[1], site, key[2],
                                  _number(path, row_number, "suv_max", row["suv_max"]),
                                  _number(path, row_number, "tb_ratio", row["tb_ratio"]), detected == "1"))
    if not lesions:
        raise FormatError(path, "rows", "the table holds no lesion")
    return lesions


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _summary(lesions: list[Lesion]) -> dict:
    """Counts, mean and range of SUVmax and T/B, detected/total, over ``lesions`` of one tracer."""
    suv = [x.suv_max for x in lesions if x.suv_max is not None]
    tb = [x.tb_ratio for x in lesions if x.tb_ratio is not None]
    return {"lesions_quantified": len(suv), "suv_max_mean": _mean(suv),
            "suv_max_min": min(suv, default=float("nan")), "suv_max_max": max(suv, default=float("nan")),
            "tb_mean": _mean(tb), "tb_min": min(tb, default=float("nan")), "tb_max": max(tb, default=float("nan")),
            "detected": sum(x.detected for x in lesions), "total": len(lesions)}


def _grouped(lesions: list[Lesion], key) -> dict:
    groups: dict = {}
    for lesion in lesions:
        groups.setdefault(key(lesion), []).append(lesion)
    return groups


def tracers(lesions: list[Lesion]) -> list[str]:
    """Tracer names in order of first appearance."""
    return list(dict.fromkeys(x.tracer for x in lesions))


def summarise(lesions: list[Lesion], by: str) -> list[dict]:
    """One row per group (``patient``, ``entity`` or ``site``) and tracer, with :func:`_summary`'s fields.

    Patient rows carry the patient's entity too, like the study's per-patient table.
    """
    if by not in ("patient", "entity", "site"):
        raise ParameterError(f"summaries are by patient, entity or site, not {by!r}")
    rows = []
    for group, members in _grouped(lesions, lambda x: getattr(x, by)).items():
        for tracer, of_tracer in _grouped(members, lambda x: x.tracer).items():
            row = {by: group, "tracer": tracer}
            if by == "patient":
                row["entity"] = members[0].entity
            rows.append({**row, **_summary(of_tracer)})
    return rows


@dataclass(frozen=True)
class StatisticalTest:
    """One statistical test: what was compared, the statistic, its p-value and the sample sizes."""

    test: str
    description: str
    statistic: float
    p_value: float
    n: str


def mann_whitney(lesions: list[Lesion], tracer: str, *, by: str = "site", groups: tuple[str, str] = SITES,
                 metric: str = "suv_max") -> StatisticalTest:
    """Two-sided Mann-Whitney U of ``metric`` between two subgroups of one tracer's lesions."""
    samples = [[getattr(x, metric) for x in lesions if x.tracer == tracer and getattr(x, by) == g
                and getattr(x, metric) is not None] for g in groups]
    if min(len(s) for s in samples) < 1:
        raise ParameterError(f"Mann-Whitney U needs {metric} of {tracer} in both {groups[0]} and {groups[1]}")
    result = stats.mannwhitneyu(samples[0], samples[1], alternative="two-sided")
    return StatisticalTest("Mann-Whitney U", f"{tracer} {metric}: {groups[0]} vs {groups[1]}", float(result.statistic),
                      float(result.pvalue), f"{len(samples[0])} vs {len(samples[1])}")


def paired_values(lesions: list[Lesion], tracer_a: str, tracer_b: str, metric: str = "suv_max") -> np.ndarray:
    """(n, 2) values of ``metric`` for the lesions quantified with both tracers."""
    by_lesion = _grouped([x for x in lesions if getattr(x, metric) is not None], lambda x: (x.patient, x.lesion))
    pairs = []
    for members in by_lesion.values():
        values = {x.tracer: getattr(x, metric) for x in members}
        if tracer_a in values and tracer_b in values:
            pairs.append((values[tracer_a], values[tracer_b]))
    return np.array(pairs, float).reshape(-1, 2)


def compare_tracers(lesions: list[Lesion], tracer_a: str, tracer_b: str, metric: str = "suv_max") -> dict:
    """Per-lesion comparison: paired means, Spearman rank correlation and Wilcoxon signed-rank test."""
    pairs = paired_values(lesions, tracer_a, tracer_b, metric)
    if len(pairs) < 3:
        raise ParameterError(f"comparing {tracer_a} and {tracer_b} needs >= 3 lesions quantified with both, "
                             f"found {len(pairs)}")
    rho = spearman(pairs[:, 0], pairs[:, 1], f"{tracer_a} vs {tracer_b}")
    wilcoxon = stats.wilcoxon(pairs[:, 0], pairs[:, 1])
    return {"metric": metric, "tracer_a": tracer_a, "tracer_b": tracer_b, "lesions": len(pairs),
            f"mean_{metric}_a": float(pairs[:, 0].mean()), f"mean_{metric}_b": float(pairs[:, 1].mean()),
            "spearman_rho": rho.statistic, "spearman_p": rho.p_value,
            "wilcoxon_statistic": float(wilcoxon.statistic), "wilcoxon_p": float(wilcoxon.pvalue)}


def spearman_with_lesion_count(lesions: list[Lesion], tracer: str) -> StatisticalTest:
    """Spearman correlation of the patients' mean SUVmax with their number of lesions."""
    rows = [r for r in summarise(lesions, "patient") if r["tracer"] == tracer and r["lesions_quantified"]]
    if len(rows) < 3:
        raise ParameterError(f"the lesion-count correlation needs >= 3 patients with {tracer}")
    result = spearman([r["total"] for r in rows], [r["suv_max_mean"] for r in rows], "")
    return StatisticalTest("Spearman", f"{tracer} patient mean SUVmax vs lesion count", result.statistic,
                           result.p_value, str(len(rows)))


@dataclass
class CohortReport:
    """All tables of a cohort analysis."""

    patients: list[dict]
    entities: list[dict]
    sites: list[dict]
    comparison: dict | None
    tests: list[StatisticalTest] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain dict for JSON; NaN (no quantified lesion) becomes None."""
        def clean(rows: list[dict]) -> list[dict]:
            return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]

        return {"patients": clean(self.patients), "entities": clean(self.entities), "sites": clean(self.sites),
                "comparison": self.comparison, "tests": clean([t.__dict__ for t in self.tests])}


def analyse_cohort(lesions: list[Lesion]) -> CohortReport:
    """Summaries by patient, entity and site; tests that the data allow (two tracers: their comparison)."""
    names = tracers(lesions)
    report = CohortReport(summarise(lesions, "patient"), summarise(lesions, "entity"), summarise(lesions, "site"),
                          None)
    for tracer in names:
        try:
            report.tests.append(mann_whitney(lesions, tracer))
        except ParameterError:
            pass  # one site only: no subgroup test
        try:
            report.tests.append(spearman_with_lesion_count(lesions, tracer))
        except ParameterError:
            pass  # too few patients
    if len(names) == 2:
        report.comparison = compare_tracers(lesions, *names)
        rho = report.comparison
        report.tests.append(StatisticalTest("Spearman", f"SUVmax {names[0]} vs {names[1]} per lesion",
                                       rho["spearman_rho"], rho["spearman_p"], str(rho["lesions"])))
        report.tests.append(StatisticalTest("Wilcoxon signed-rank", f"SUVmax {names[0]} vs {names[1]} per lesion",
                                       rho["wilcoxon_statistic"], rho["wilcoxon_p"], str(rho["lesions"])))
    return report


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def columns_of(rows: list[dict]) -> list[str]:
    """The keys of dict rows in order of first appearance (rows may lack some)."""
    return list(dict.fromkeys(key for row in rows for key in row))


def format_table(rows: list[dict]) -> str:
    """Fixed-width text table of dict rows (missing cells and None shown as ``-``)."""
    if not rows:
        return "(empty)"
    keys = columns_of(rows)
    cells = [keys] + [[_format(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells)


def _cell(value):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def write_csv(path: str | os.PathLike, rows: list[dict], *, overwrite: bool = False) -> Path:
    """Write dict rows as CSV atomically (columns: :func:`columns_of`; None and NaN as empty cells)."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temporary, temporary.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns_of(rows), restval="")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return path


def write_tables(report: CohortReport, folder: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write patients.csv, entities.csv, sites.csv, tests.csv (and comparison.csv) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"patients": report.patients, "entities": report.entities, "sites": report.sites,
              "tests": [t.__dict__ for t in report.tests]}
    if report.comparison:
        tables["comparison"] = [report.comparison]
    return [write_csv(folder / f"{name}.csv", rows, overwrite=overwrite) for name, rows in tables.items() if rows]
