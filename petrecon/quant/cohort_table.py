"""The cohort's tables as read for statistics: ``petrecon batch``'s quantification table and the simulator's truth.

The quantification table (``OUT/quantification.csv``) has one row per VOI per
study per protocol, with the columns :data:`QUANTIFICATION_COLUMNS` and then
the study's ``[study.info]`` columns (``group``, ``treated``, ``uptake_min``,
...). Rows whose ``status`` is not ``ok`` (``outside``, ``too-small``,
``failed``) have empty statistics: they are set apart in
:attr:`CohortTable.excluded` and counted in every output, never dropped
silently.

Any CSV with a ``patient`` column and a ``voi`` (or, for the lesion table of
:mod:`petrecon.quant.cohort`, a ``lesion``) column is read the same way; a
table without ``status`` has only ``ok`` rows. Cells are kept as text and
turned into numbers where a statistic needs them (:meth:`CohortTable.number`),
so a bad cell is reported with its file, row and column.

The truth table (``truth.csv`` of the cohort simulator) has the columns
:data:`TRUTH_COLUMNS`: the true SUV of each uniform region as the phantom
defines it, and its tissue class (soft tissue, lung, bone, ...).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from petrecon.errors import FormatError

QUANTIFICATION_COLUMNS = ("study", "patient", "scanner", "protocol", "voi", "kind", "units", "suv_max", "suv_mean",
                          "suv_peak", "suv_sd", "volume_ml", "tlg", "n_voxels", "reference", "tb_max", "tb_peak",
                          "status")
TRUTH_COLUMNS = ("patient", "voi", "kind", "true_suv", "diameter_mm", "tissue")
#: Key of the row number (1 = header) kept with each row for messages.
LINE = "_line"


@dataclass(frozen=True)
class CohortTable:
    """The rows of a cohort table (cells as text), with the excluded ones set apart."""

    path: Path
    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    excluded: list[dict[str, str]] = field(default_factory=list)
    lesion_table: bool = False

    @property
    def default_by(self) -> str:
        """``voi`` for a quantification table; ``kind`` for a lesion table (its lesion ids name no region)."""
        return "kind" if self.lesion_table else "voi"

    def require(self, column: str, purpose: str) -> None:
        """FormatError naming the file when ``column`` is not one of its columns."""
        if column not in self.columns:
            raise FormatError(self.path, "header", f"has no column {column!r} for {purpose}; columns: "
                                                   f"{', '.join(self.columns)}")

    def number(self, row: dict[str, str], column: str) -> float | None:
        """The cell as a finite number, None when empty; FormatError naming the row and column otherwise."""
        text = row.get(column, "").strip()
        if text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise FormatError(self.path, f"row {row[LINE]}, column {column}", f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise FormatError(self.path, f"row {row[LINE]}, column {column}", f"{text!r} is not a finite number")
        return value

    def values(self, column: str) -> list[str]:
        """The distinct values of ``column`` in order of first appearance."""
        return list(dict.fromkeys(row.get(column, "") for row in self.rows))

    def select(self, column: str, wanted: list[str] | None) -> CohortTable:
        """The rows (and excluded rows) whose ``column`` is one of ``wanted`` (all when None)."""
        if not wanted:
            return self
        self.require(column, f"--{column}")
        keep = set(wanted)
        return replace(self, rows=[r for r in self.rows if r[column] in keep],
                       excluded=[r for r in self.excluded if r.get(column) in keep])


def _open_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, restval="")
            rows = []
            for line, row in enumerate(reader, start=2):
                if None in row:
                    raise FormatError(path, f"row {line}", f"has more cells than the header's "
                                                           f"{len(reader.fieldnames)} columns")
                rows.append({k: (v or "").strip() for k, v in row.items()} | {LINE: str(line)})
            return [c.strip() for c in reader.fieldnames or []], rows
    except UnicodeDecodeError as error:
        raise FormatError(path, "encoding", f"byte {error.start} is not UTF-8 text; save the table as UTF-8 "
                                            "CSV") from None
    except csv.Error as error:
        raise FormatError(path, "CSV", str(error)) from None


def read_table(path: str | os.PathLike) -> CohortTable:
    """Read a quantification table (or any table with ``patient`` and ``voi`` or ``lesion`` columns).

    Rows with a ``status`` other than ``ok`` go to :attr:`CohortTable.excluded`. A lesion table's ``lesion``
    column serves as ``voi`` and its rows are of kind ``lesion``.

    Raises
    ------
    FormatError
        Missing file or column, non-UTF-8 text, rows longer than the header, no row.
    """
    path = Path(path)
    columns, rows = _open_rows(path)
    lesion_table = "voi" not in columns and "lesion" in columns
    if lesion_table:
        rows = [row | {"voi": row["lesion"], "kind": row.get("kind") or "lesion"} for row in rows]
        columns += [c for c in ("voi", "kind") if c not in columns]
    missing = [c for c in ("patient", "voi") if c not in columns]
    if missing:
        raise FormatError(path, "header", f"lacks the column(s) {', '.join(missing)}; a quantification table has "
                                          f"{', '.join(QUANTIFICATION_COLUMNS)}")
    if not rows:
        raise FormatError(path, "rows", "the table holds no row")
    ok = [row for row in rows if row.get("status", "ok") == "ok"]
    excluded = [row for row in rows if row.get("status", "ok") != "ok"]
    return CohortTable(path, tuple(columns), ok, excluded, lesion_table)


def info_columns(table: CohortTable) -> list[str]:
    """The columns after ``status``: the studies' ``[study.info]`` keys."""
    columns = list(table.columns)
    return columns[columns.index("status") + 1:] if "status" in columns else []


@dataclass(frozen=True)
class Truth:
    """The phantom's truth of one VOI of one patient."""

    true_suv: float
    tissue: str
    kind: str


def read_truth(path: str | os.PathLike) -> dict[tuple[str, str], Truth]:
    """The truth table, keyed by (patient, voi).

    Raises
    ------
    FormatError
        Missing file or column, a true SUV that is not a positive number, a VOI listed twice.
    """
    path = Path(path)
    columns, rows = _open_rows(path)
    missing = [c for c in ("patient", "voi", "true_suv", "tissue") if c not in columns]
    if missing:
        raise FormatError(path, "header", f"lacks the column(s) {', '.join(missing)}; needs {', '.join(TRUTH_COLUMNS)}")
    table = CohortTable(path, tuple(columns), rows)
    truth = {}
    for row in rows:
        value = table.number(row, "true_suv")
        if value is None or value <= 0:
            raise FormatError(path, f"row {row[LINE]}, column true_suv",
                              f"is {row['true_suv']!r}; needs a positive SUV")
        key = (row["patient"], row["voi"])
        if key in truth:
            raise FormatError(path, f"row {row[LINE]}", f"VOI {key[1]} of patient {key[0]} appears twice")
        truth[key] = Truth(value, row["tissue"] or "unknown", row.get("kind", ""))
    return truth


def excluded_counts(table: CohortTable) -> list[dict]:
    """One row per status, scanner, protocol and VOI of the excluded rows, with their count."""
    counts: dict[tuple, int] = {}
    for row in table.excluded:
        key = (row.get("status", ""), row.get("scanner", ""), row.get("protocol", ""), row["voi"])
        counts[key] = counts.get(key, 0) + 1
    return [{"status": s, "scanner": sc, "protocol": p, "voi": v, "n": n} for (s, sc, p, v), n in counts.items()]
