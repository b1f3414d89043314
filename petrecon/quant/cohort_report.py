"""Outputs of a cohort analysis: text tables for the terminal, and a folder of CSV tables, PNG figures and
``index.html`` (self-contained: tables and embedded figures, :mod:`petrecon.report.html`)."""

from __future__ import annotations

import os
from pathlib import Path

from petrecon.quant.cohort import format_table, write_csv
from petrecon.quant.cohort_analysis import CohortOptions, CohortStatistics
from petrecon.quant.cohort_plots import plot_correlations, plot_groups, plot_pairs, plot_truth
from petrecon.report import html

TITLES = {"excluded": "Rows excluded (status not ok)", "summary": "Per scanner, protocol and VOI",
          "tests": "Statistical tests", "truth": "Measured / true per tissue class",
          "truth_differences": "Second scanner vs first against the truth, per tissue class"}


def output_paths(result: CohortStatistics, folder: str | os.PathLike) -> dict[str, Path]:
    """Name -> path of every file :func:`write_outputs` writes for ``result``."""
    folder = Path(folder)
    paths = {name: folder / f"{name}.csv" for name in result.tables()}
    figures = {"pairs": result.pairs, "groups": result.groups, "correlations": result.correlations,
               "truth_figure": result.truth}
    paths |= {name: folder / f"{name.removesuffix('_figure')}.png" for name, data in figures.items() if data}
    return paths | {"index": folder / "index.html"}


def write_outputs(result: CohortStatistics, options: CohortOptions, folder: str | os.PathLike, *,
                  overwrite: bool = False) -> list[Path]:
    """Write the CSV tables, the figures and ``index.html`` into ``folder`` (created); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = output_paths(result, folder)
    for name, rows in result.tables().items():
        write_csv(paths[name], rows, overwrite=overwrite)
    captions = {}
    if result.pairs:
        plot_pairs(result.pairs, result.metric, paths["pairs"], overwrite=overwrite)
        captions["pairs"] = f"{result.metric}: each scanner against the other, and Bland-Altman"
    if result.groups:
        column = options.group.partition(":")[0]
        plot_groups(result.groups, result.metric, column, paths["groups"], overwrite=overwrite)
        captions["groups"] = f"{result.metric} by {column}"
    if result.correlations:
        plot_correlations(result.correlations, paths["correlations"], overwrite=overwrite)
        captions["correlations"] = "Spearman correlations"
    if result.truth:
        plot_truth(result.truth, result.metric, paths["truth_figure"], overwrite=overwrite)
        captions["truth_figure"] = f"{result.metric} measured / true"
    html.write_html(paths["index"], _page(result, {paths[k]: c for k, c in captions.items()}), overwrite=overwrite)
    return list(paths.values())


def _page(result: CohortStatistics, figures: dict[Path, str]) -> str:
    sections = [html.section("Table", html.key_value_table({"quantification table": result.table,
                                                            "metric": result.metric, "rows used": result.rows_used}),
                             *(html.paragraph(note) for note in result.notes))]
    for name, rows in result.tables().items():
        columns = list(dict.fromkeys(key for row in rows for key in row))
        cells = [[_html_cell(row.get(key)) for key in columns] for row in rows]
        sections.append(html.section(TITLES[name], html.table(columns, cells)))
    if figures:
        sections.append(html.section("Figures", *(html.png_figure(path, caption, caption=caption)
                                                  for path, caption in figures.items())))
    return html.document(f"Cohort statistics: {Path(result.table).name}", *sections)


def _html_cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_report(result: CohortStatistics) -> str:
    """The notes and every table as fixed-width text."""
    lines = [f"table {result.table}: {result.rows_used} row(s) used, metric {result.metric}"]
    lines += [f"note: {note}" for note in result.notes]
    for name, rows in result.tables().items():
        lines += ["", f"== {TITLES[name]}", format_table(rows)]
    return "\n".join(lines)
