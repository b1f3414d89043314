"""Figures of a cohort analysis (PNG, matplotlib Agg), one panel per stratum (protocol, scanner, VOI).

- paired comparison: scatter of the two methods with the identity line (top
  row) and the Bland-Altman plot (difference against mean, bias and 95 %
  limits of agreement) below it;
- group comparison: box plot per group with every subject drawn over it;
- correlation: scatter of Y against X with n and Spearman rho in the title;
- truth: measured/true per tissue class and scanner, the line at 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from scipy import stats

from petrecon.quant.plot import save_png
from petrecon.report.figures import pyplot


def _grid(n_panels: int, rows_per_panel: int = 1):
    columns = min(n_panels, 4)
    panel_rows = math.ceil(n_panels / columns)
    fig, axes = pyplot().subplots(panel_rows * rows_per_panel, columns, squeeze=False,
                                   figsize=(4 * columns, 3.6 * panel_rows * rows_per_panel))
    for ax in axes.ravel()[n_panels * rows_per_panel:]:
        ax.set_visible(False)
    return fig, axes, columns


def plot_pairs(pairs: dict, metric: str, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Scatter with the identity line and Bland-Altman plot of each stratum's pairs."""
    fig, axes, columns = _grid(len(pairs), 2)
    for k, (title, (reference, other, (ref_name, other_name))) in enumerate(pairs.items()):
        row, column = 2 * (k // columns), k % columns
        top, bottom = axes[row, column], axes[row + 1, column]
        low, high = min(reference.min(), other.min()), max(reference.max(), other.max())
        top.plot([low, high], [low, high], color="0.6", lw=1, label="identity")
        top.plot(reference, other, "o", color="tab:blue")
        top.set(title=f"{title} (n = {len(reference)})", xlabel=f"{metric} {ref_name}", ylabel=f"{metric} {other_name}")
        top.grid(alpha=0.3)
        mean, difference = (reference + other) / 2.0, other - reference
        bottom.plot(mean, difference, "o", color="tab:blue")
        bias = float(difference.mean())
        bottom.axhline(bias, color="k", lw=1, label=f"bias {bias:.3g}")
        if len(difference) > 1:
            spread = float(stats.norm.ppf(0.975)) * float(difference.std(ddof=1))
            for limit, label in ((bias - spread, "95 % limits of agreement"), (bias + spread, None)):
                bottom.axhline(limit, color="tab:red", ls="--", lw=1, label=label)
        bottom.set(xlabel=f"mean of {ref_name} and {other_name}", ylabel=f"{other_name} - {ref_name}")
        bottom.grid(alpha=0.3)
        bottom.legend(fontsize=7, loc="best")
    fig.suptitle(f"{metric}: paired comparison")
    return save_png(fig, path, overwrite=overwrite)


def plot_groups(groups: dict, metric: str, column: str, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Box plot per group with the subjects drawn over it (jittered), one panel per stratum."""
    fig, axes, columns = _grid(len(groups))
    jitter = np.random.default_rng(0)
    for k, (title, samples) in enumerate(groups.items()):
        ax = axes[k // columns, k % columns]
        names = list(samples)
        filled = [np.asarray(samples[name], float) for name in names]
        ax.boxplot([s if len(s) else [np.nan] for s in filled], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), [f"{name}\n(n = {len(s)})" for name, s in zip(names, filled)])
        for position, values in enumerate(filled, start=1):
            ax.plot(position + jitter.uniform(-0.12, 0.12, len(values)), values, "o", color="tab:blue", alpha=0.8)
        ax.set(title=title, xlabel=column, ylabel=metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} by {column}")
    return save_png(fig, path, overwrite=overwrite)


def plot_correlations(correlations: dict, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Scatter of Y against X per stratum, with n and Spearman rho."""
    fig, axes, columns = _grid(len(correlations))
    for k, (title, (x, y, (x_name, y_name))) in enumerate(correlations.items()):
        ax = axes[k // columns, k % columns]
        ax.plot(x, y, "o", color="tab:blue")
        rho = stats.spearmanr(x, y).statistic if len(x) > 2 and np.ptp(x) and np.ptp(y) else float("nan")
        ax.set(title=f"{title}\nn = {len(x)}, rho = {rho:.2f}", xlabel=x_name, ylabel=y_name)
        ax.grid(alpha=0.3)
    return save_png(fig, path, overwrite=overwrite)


def plot_truth(rows: list[dict], metric: str, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Measured/true per tissue class, one bar (mean, interval) per scanner and protocol."""
    plt = pyplot()
    tissues = list(dict.fromkeys(r["tissue"] for r in rows))
    series = list(dict.fromkeys(" ".join(str(r.get(k, "")) for k in ("scanner", "protocol")).strip() for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tissues) * max(1, len(series))), 4.5))
    width = 0.8 / max(1, len(series))
    labelled = set()
    for s, name in enumerate(series):
        for t, tissue in enumerate(tissues):
            match = [r for r in rows if r["tissue"] == tissue and " ".join(
                str(r.get(k, "")) for k in ("scanner", "protocol")).strip() == name and r.get("true_n")]
            if not match:
                continue
            row = match[0]
            error = (row["ratio_ci_high"] - row["measured_over_true"]) if np.isfinite(row["ratio_ci_high"]) else 0.0
            ax.bar(t + (s - (len(series) - 1) / 2) * width, row["measured_over_true"], width, yerr=error, capsize=3,
                   color=f"C{s}", label=None if name in labelled else name)
            labelled.add(name)
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xticks(range(len(tissues)), tissues)
    ax.set(ylabel=f"{metric} measured / true", title=f"{metric} against the phantom truth (mean, confidence interval)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return save_png(fig, path, overwrite=overwrite)
