"""The statistics of a cohort study from its quantification table: what ``petrecon cohort`` computes.

Every analysis runs per *stratum*: the rows sharing protocol, scanner and VOI
(or VOI kind, ``by="kind"``), leaving out the column being compared, so that
a PET/CT value is only ever compared with a PET/MR value of the same
protocol, patient and VOI.

- **summary**: per scanner x protocol x VOI: n, mean, SD, median, range of
  the metric; with the truth, the measured/true ratio (mean, t interval).
- **pair** (``--pair scanner``): per protocol x VOI, over patients, the
  paired comparison of the column's two values (the first in sort order, or
  the first named, ``scanner:b64,mmr``, is the reference): mean % difference,
  Wilcoxon signed-rank, Bland-Altman; Spearman between them.
- **group** (``--group treated``): per scanner x protocol x VOI, Mann-Whitney
  U between the column's two values with the Hodges-Lehmann shift.
- **correlate** (``--correlate uptake_min:suv_max``): per stratum, Spearman.
- **truth** (``--truth truth.csv``): per scanner x protocol x tissue class,
  measured/true; per protocol x tissue, the paired % difference of the
  second scanner (mmr) against the first (b64): the PET/MR Dixon mu-map has
  no bone class, so bone and marrow are expected lower on the mmr
  (reference/quantification.md, clinical-protocol.md).

Tests are those of :mod:`petrecon.quant.cohort_tests`; each row carries n.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import FormatError, ParameterError
from petrecon.quant.cohort_table import CohortTable, Truth, excluded_counts
from petrecon.quant.cohort_tests import (
    TestResult,
    check_confidence,
    mann_whitney,
    paired_comparison,
    spearman,
    t_half_width,
)

TESTS = ("mann-whitney", "spearman", "wilcoxon", "bland-altman")
STRATA = ("protocol", "scanner", "tracer")


@dataclass(frozen=True)
class CohortOptions:
    """What to analyse (the options of ``petrecon cohort``)."""

    metric: str = "suv_max"
    protocols: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    vois: tuple[str, ...] = ()
    by: str = "voi"
    pair: str | None = None
    group: str | None = None
    correlate: tuple[str, ...] = ()
    tests: tuple[str, ...] = TESTS
    confidence: float = 0.95


@dataclass
class CohortStatistics:
    """Tables (lists of dict rows) and the data behind the figures."""

    table: str
    metric: str
    rows_used: int
    excluded: list[dict]
    summary: list[dict]
    tests: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)
    truth_differences: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pairs: dict = field(default_factory=dict)          # title -> (reference values, other values, (ref, other))
    groups: dict = field(default_factory=dict)         # title -> {group: values}
    correlations: dict = field(default_factory=dict)   # title -> (x values, y values, (x, y))

    def tables(self) -> dict[str, list[dict]]:
        """The tables by output name (``summary.csv``, ...); empty ones left out."""
        named = {"excluded": self.excluded, "summary": self.summary, "tests": self.tests, "truth": self.truth,
                 "truth_differences": self.truth_differences}
        return {name: rows for name, rows in named.items() if rows}

    def to_dict(self) -> dict:
        """Plain dict for JSON (NaN becomes None)."""
        def clean(value):
            return None if isinstance(value, float) and not np.isfinite(value) else value

        return {"table": self.table, "metric": self.metric, "rows_used": self.rows_used, "notes": self.notes,
                **{name: [{k: clean(v) for k, v in row.items()} for row in rows]
                   for name, rows in self.tables().items()}}


def _two_values(table: CohortTable, spec: str, option: str) -> tuple[str, str, str]:
    """``COLUMN`` or ``COLUMN:A,B`` -> (column, A, B); A is the reference (default: sort order)."""
    column, _, names = spec.partition(":")
    table.require(column, option)
    present = sorted(v for v in table.values(column) if v != "")
    chosen = [n.strip() for n in names.split(",")] if names else present
    if len(chosen) != 2:
        raise FormatError(table.path, f"column {column}", f"holds {len(present)} value(s) ({', '.join(present)}); "
                                                          f"{option} compares two: name them, {option} {column}:A,B")
    for name in chosen:
        if name not in present:
            raise FormatError(table.path, f"column {column}", f"has no value {name!r} for {option}; it holds "
                                                              f"{', '.join(present)}")
    return column, chosen[0], chosen[1]


def _strata(table: CohortTable, by: str, leave_out: str = "") -> list[str]:
    return [c for c in (*STRATA, by) if c in table.columns and c != leave_out]


def _stratify(table: CohortTable, keys: list[str]) -> dict[tuple, list[dict]]:
    strata: dict[tuple, list[dict]] = {}
    for row in table.rows:
        strata.setdefault(tuple(row[k] for k in keys), []).append(row)
    return strata


def _label(keys: list[str], stratum: tuple) -> dict:
    labels = dict(zip(keys, stratum))
    return {k: labels[k] for k in (*STRATA, "voi", "kind") if k in keys}


def _title(stratum: tuple) -> str:
    return " ".join(v for v in stratum if v) or "all"


def _summary(table: CohortTable, options: CohortOptions, truth: dict[tuple[str, str], Truth] | None) -> list[dict]:
    keys = _strata(table, options.by)
    rows = []
    for stratum, members in _stratify(table, keys).items():
        values = np.array([v for v in (table.number(r, options.metric) for r in members) if v is not None])
        row = {**_label(keys, stratum), "n": len(values), "missing": len(members) - len(values)}
        if len(values):
            row |= {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}
        if truth is not None:
            row |= _ratio_columns(_ratios(table, members, options.metric, truth), options.confidence)
        rows.append(row)
    return rows


def _ratios(table: CohortTable, rows: list[dict], metric: str, truth: dict) -> list[float]:
    ratios = []
    for row in rows:
        value, known = table.number(row, metric), truth.get((row["patient"], row["voi"]))
        if value is not None and known is not None:
            ratios.append(value / known.true_suv)
    return ratios


def _ratio_columns(ratios: list[float], confidence: float) -> dict:
    values = np.array(ratios)
    if len(values) == 0:
        return {"true_n": 0}
    half = t_half_width(values, confidence) if len(values) > 1 else float("nan")
    mean = float(values.mean())
    return {"true_n": len(values), "measured_over_true": mean, "ratio_ci_low": mean - half,
            "ratio_ci_high": mean + half}


def _keyed(table: CohortTable, rows: list[dict], column: str, by: str, metric: str) -> dict[tuple, dict]:
    """subject (patient, and VOI when stratified by kind) -> {value of ``column``: metric}; duplicates refused."""
    subjects: dict[tuple, dict] = {}
    seen: dict[tuple, str] = {}
    for row in rows:
        subject = (row["patient"],) if by == "voi" else (row["patient"], row["voi"])
        key = (*subject, row[column])
        if key in seen:
            raise FormatError(table.path, f"row {row['_line']}", f"patient {row['patient']} VOI {row['voi']} "
                              f"{column} {row[column]} appears twice in one stratum (first in row {seen[key]})")
        seen[key] = row["_line"]
        value = table.number(row, metric)
        if value is not None:
            subjects.setdefault(subject, {})[row[column]] = value
    return subjects


def _pair_tests(table: CohortTable, options: CohortOptions, result: CohortStatistics) -> None:
    column, reference, other = _two_values(table, options.pair, "--pair")
    keys = _strata(table, options.by, column)
    wanted = tuple(t for t in ("wilcoxon", "bland-altman") if t in options.tests) + ("difference",)
    for stratum, members in _stratify(table, keys).items():
        subjects = _keyed(table, members, column, options.by, options.metric)
        pairs = np.array([(v[reference], v[other]) for v in subjects.values() if reference in v and other in v])
        pairs = pairs.reshape(-1, 2)
        comparison = f"{options.metric} {other} vs {reference}"
        unpaired = len(subjects) - len(pairs)
        rows = paired_comparison(pairs[:, 0], pairs[:, 1], comparison, confidence=options.confidence, tests=wanted)
        if "spearman" in options.tests:
            rows.append(spearman(pairs[:, 0], pairs[:, 1], comparison, confidence=options.confidence))
        _add_tests(result, keys, stratum, rows, f"{unpaired} unpaired" if unpaired else "")
        if len(pairs):
            result.pairs[_title(stratum)] = (pairs[:, 0], pairs[:, 1], (reference, other))


def _group_tests(table: CohortTable, options: CohortOptions, result: CohortStatistics) -> None:
    column, first, second = _two_values(table, options.group, "--group")
    keys = _strata(table, options.by, column)
    for stratum, members in _stratify(table, keys).items():
        samples = {name: [v for r in members if r[column] == name
                          for v in [table.number(r, options.metric)] if v is not None] for name in (first, second)}
        if "mann-whitney" in options.tests:
            test = mann_whitney(samples[first], samples[second], f"{options.metric} {column}: {second} vs {first}",
                                confidence=options.confidence)
            _add_tests(result, keys, stratum, [test])
        result.groups[_title(stratum)] = samples


def _correlations(table: CohortTable, options: CohortOptions, result: CohortStatistics) -> None:
    for spec in options.correlate:
        x_column, separator, y_column = spec.partition(":")
        if not separator or not x_column or not y_column:
            raise ParameterError(f"--correlate takes X:Y (two column names), got {spec!r}")
        table.require(x_column, "--correlate")
        table.require(y_column, "--correlate")
        keys = _strata(table, options.by)
        for stratum, members in _stratify(table, keys).items():
            xy = [(table.number(r, x_column), table.number(r, y_column)) for r in members]
            xy = np.array([p for p in xy if None not in p], float).reshape(-1, 2)
            test = spearman(xy[:, 0], xy[:, 1], f"{y_column} vs {x_column}", confidence=options.confidence)
            missing = len(members) - len(xy)
            _add_tests(result, keys, stratum, [test], f"{missing} without both values" if missing else "")
            if len(xy):
                result.correlations[f"{_title(stratum)}: {y_column} vs {x_column}"] = (xy[:, 0], xy[:, 1],
                                                                                      (x_column, y_column))


def _add_tests(result: CohortStatistics, keys: list[str], stratum: tuple, tests: list[TestResult],
               note: str = "") -> None:
    for test in tests:
        row = {**_label(keys, stratum), **test.to_dict()}
        if note:
            row["note"] = "; ".join(filter(None, (row["note"], note)))
        result.tests.append(row)


def _truth_tables(table: CohortTable, options: CohortOptions, truth: dict, result: CohortStatistics) -> None:
    known = [r for r in table.rows if (r["patient"], r["voi"]) in truth]
    if len(known) < len(table.rows):
        result.notes.append(f"{len(table.rows) - len(known)} row(s) have no entry in the truth table")
    tissue = {id(r): truth[r["patient"], r["voi"]].tissue for r in known}
    keys = [k for k in STRATA if k in table.columns]
    strata: dict[tuple, list[dict]] = {}
    for row in known:
        strata.setdefault((*(row[k] for k in keys), tissue[id(row)]), []).append(row)
    for stratum, members in strata.items():
        result.truth.append({**dict(zip(keys, stratum)), "tissue": stratum[-1],
                             **_ratio_columns(_ratios(table, members, options.metric, truth), options.confidence)})
    spec = options.pair or ("scanner" if "scanner" in table.columns and len(table.values("scanner")) == 2 else None)
    if spec is None:
        result.notes.append("one scanner only: no PET/MR vs PET/CT difference against the truth")
        return
    column, reference, other = _two_values(table, spec, "--pair")
    keys = [k for k in STRATA if k in table.columns and k != column]
    strata = {}
    for row in known:
        strata.setdefault((*(row[k] for k in keys), tissue[id(row)]), []).append(row)
    for stratum, members in strata.items():
        subjects = _keyed(table, members, column, "kind", options.metric)
        pairs = [(v[reference], v[other], truth[s].true_suv) for s, v in subjects.items()
                 if reference in v and other in v]
        pairs = np.array(pairs, float).reshape(-1, 3)
        (difference,) = paired_comparison(pairs[:, 0], pairs[:, 1], "", confidence=options.confidence,
                                          tests=("difference",))
        result.truth_differences.append({
            **dict(zip(keys, stratum)), "tissue": stratum[-1], "n": len(pairs),
            f"{reference}_over_true": float(np.mean(pairs[:, 0] / pairs[:, 2])) if len(pairs) else float("nan"),
            f"{other}_over_true": float(np.mean(pairs[:, 1] / pairs[:, 2])) if len(pairs) else float("nan"),
            f"percent_{other}_vs_{reference}": difference.value, "ci_low": difference.ci_low,
            "ci_high": difference.ci_high, "note": difference.note})


def analyse_table(table: CohortTable, options: CohortOptions = CohortOptions(),
                  truth: dict[tuple[str, str], Truth] | None = None) -> CohortStatistics:
    """All statistics the options ask for, over the table's ``ok`` rows after selection.

    Raises
    ------
    FormatError
        A column the options name is missing, a cell is not a number, a subject appears twice in a stratum.
    ParameterError
        Unknown test name or ``--by``, confidence outside (0, 1).

    Examples
    --------
    >>> from pathlib import Path
    >>> rows = [{"patient": p, "voi": "liver", "scanner": s, "suv_max": str(v), "_line": "2"}
    ...         for p, s, v in [("P1", "b64", 3.0), ("P1", "mmr", 3.3), ("P2", "b64", 2.0), ("P2", "mmr", 2.2)]]
    >>> table = CohortTable(Path("q.csv"), ("patient", "voi", "scanner", "suv_max"), rows)
    >>> stats = analyse_table(table, CohortOptions(pair="scanner"))
    >>> [(row["test"], row["note"]) for row in stats.tests][:1]
    [('mean % difference', 'not computed: n = 2 (needs 3)')]
    """
    unknown = [t for t in options.tests if t not in TESTS]
    if unknown:
        raise ParameterError(f"unknown test(s) {', '.join(unknown)}; choose from {', '.join(TESTS)}")
    if options.by not in ("voi", "kind"):
        raise ParameterError(f"--by is voi or kind, not {options.by!r}")
    check_confidence(options.confidence)
    table.require(options.metric, "--metric")
    selected = table.select("protocol", list(options.protocols)).select("kind", list(options.kinds))
    selected = selected.select("voi", list(options.vois))
    if options.by == "kind":
        selected.require("kind", "--by kind")
    result = CohortStatistics(str(table.path), options.metric, len(selected.rows), excluded_counts(selected),
                              _summary(selected, options, truth))
    if selected.excluded:
        statuses = Counter(r.get("status", "") for r in selected.excluded)
        result.notes.append(f"{len(selected.excluded)} row(s) excluded (status not ok): "
                            + ", ".join(f"{n} {status}" for status, n in statuses.items()))
    if options.pair:
        _pair_tests(selected, options, result)
    if options.group:
        _group_tests(selected, options, result)
    _correlations(selected, options, result)
    if truth is not None:
        _truth_tables(selected, options, truth, result)
    return result
