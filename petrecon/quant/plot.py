"""Recovery curves of a NEMA analysis with the EARL1 and EARL2 bands shaded (PNG, matplotlib Agg)."""

from __future__ import annotations

import os
from pathlib import Path

from petrecon.io.atomic import atomic_output
from petrecon.quant.earl import EARL_BANDS, EARL_SPHERE_DIAMETERS_MM
from petrecon.quant.nema import NemaResult

_BAND_COLOURS = {"earl1": "tab:blue", "earl2": "tab:orange"}
_PANELS = (("rc_max", "RC max"), ("rc_mean_a50", "RC mean (A50)"), ("rc_peak", "RC peak"))


def plot_recovery(result: NemaResult, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a PNG with one panel per RC metric: measured curve and the EARL bands where defined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diameters = [s.diameter_mm for s in result.spheres]
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(14, 4.2), sharey=True)
    for ax, (metric, title) in zip(axes, _PANELS):
        for standard, bands in EARL_BANDS.items():
            if metric not in bands:
                continue
            low = [bands[metric][d][0] for d in EARL_SPHERE_DIAMETERS_MM]
            high = [bands[metric][d][1] for d in EARL_SPHERE_DIAMETERS_MM]
            ax.fill_between(EARL_SPHERE_DIAMETERS_MM, low, high, alpha=0.25, color=_BAND_COLOURS[standard],
                            label=standard.upper())
        ax.plot(diameters, [getattr(s, metric) for s in result.spheres], "ko-", label="measured")
        ax.set(title=title, xlabel="sphere diameter (mm)", xticks=EARL_SPHERE_DIAMETERS_MM)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    axes[0].set_ylabel("recovery coefficient")
    fig.suptitle(f"NEMA NU 2 recovery, sphere:background {result.activity_ratio:.1f}:1, "
                 f"lung residual {result.lung_residual_percent:.1f} %")
    return save_png(fig, path, overwrite=overwrite)


def save_png(fig, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a matplotlib figure as a 100 dpi PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
    return path
