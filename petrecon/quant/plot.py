"""Figures of a NEMA analysis (PNG, matplotlib Agg): recovery curves with the EARL1 and EARL2 bands shaded,
and the ROI placement with a profile through each sphere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from petrecon.io.atomic import atomic_output
from petrecon.quant.earl import EARL_BANDS, EARL_SPHERE_DIAMETERS_MM
from petrecon.quant.iec_fit import sphere_model
from petrecon.quant.nema import LUNG_ROI_DIAMETER_MM, VOI_MARGIN_MM, NemaResult
from petrecon.volume import Volume

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


def plot_rois(volume: Volume, result: NemaResult, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a PNG of where a NEMA analysis placed its ROIs, and a profile through each sphere.

    Left: the image resliced (trilinear) on the fitted sphere plane, in the phantom's frame (x towards the
    37 mm sphere, mm from the lung insert's axis), with each sphere's 3-D search VOI (dashed, its section
    in the plane), the NU 2 hot ROI (solid), the 12 background ROIs of 37 mm and the 30 mm lung ROI.
    Right: the image along a line through each sphere's fitted centre (radial in the sphere plane) with
    the fitted blurred-sphere model (:func:`petrecon.quant.iec_fit.sphere_model`) where the analysis
    fitted one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    centre = np.array(result.phantom_centre_mm)
    biggest = max(result.spheres, key=lambda s: s.diameter_mm)
    axis = np.array(result.phantom_axis)
    towards = np.array(biggest.centre_mm) - centre
    u = towards - (towards @ axis) * axis
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    step_mm = min(volume.grid.voxel_size_mm)
    half_mm = 160.0
    grid_mm = np.arange(-half_mm, half_mm + step_mm / 2, step_mm)
    plane = _sample(volume, centre + grid_mm[None, :, None] * u + grid_mm[:, None, None] * w)

    fig = plt.figure(figsize=(16, 7))
    layout = fig.add_gridspec(2, 5)
    ax = fig.add_subplot(layout[:, :2])
    ax.imshow(plane, origin="lower", extent=[-half_mm, half_mm, -half_mm, half_mm], cmap="gray")
    in_plane = lambda p: ((np.asarray(p) - centre) @ u, (np.asarray(p) - centre) @ w)  # noqa: E731
    for sphere in result.spheres:
        xy = in_plane(sphere.centre_mm)
        ax.add_patch(Circle(xy, sphere.diameter_mm / 2.0, fill=False, color="tab:red", lw=1.2))
        ax.add_patch(Circle(xy, sphere.diameter_mm / 2.0 + VOI_MARGIN_MM, fill=False, color="tab:orange", ls="--",
                            lw=0.8))
        ax.annotate(f"{sphere.diameter_mm:g}", xy, xytext=(0, sphere.diameter_mm / 2.0 + 8), textcoords="offset points",
                    color="tab:orange", ha="center", fontsize=8)
    for c in result.background_roi_centres_mm:
        ax.add_patch(Circle(in_plane(c), max(s.diameter_mm for s in result.spheres) / 2.0, fill=False,
                            color="gold", lw=0.8))
    ax.add_patch(Circle((0.0, 0.0), LUNG_ROI_DIAMETER_MM / 2.0, fill=False, color="tab:cyan", lw=1.0))
    ax.set(xlabel="mm (towards the 37 mm sphere)", ylabel="mm")
    where = ", ".join(f"{c:.1f}" for c in centre)
    ax.set_title(f"sphere plane: tilt {result.tilt_deg or 0.0:.1f} deg, centre ({where}) mm"
                 "\nred: NU 2 hot ROIs, orange dashed: sphere VOIs,\nyellow: background ROIs, cyan: lung ROI",
                 fontsize=9)

    for k, sphere in enumerate(result.spheres):
        ax = fig.add_subplot(layout[k // 3, 2 + k % 3])
        radial = np.array(sphere.centre_mm) - centre
        radial = radial - (radial @ axis) * axis
        radial /= np.linalg.norm(radial)
        distance_mm = np.arange(-(sphere.diameter_mm / 2.0 + 15.0), sphere.diameter_mm / 2.0 + 15.0, step_mm / 2)
        ax.plot(distance_mm, _sample(volume, np.array(sphere.centre_mm) + distance_mm[:, None] * radial), "k.",
                ms=3, label="image")
        if result.fitted_fwhm_mm is not None:
            ax.plot(distance_mm, sphere_model(np.abs(distance_mm), sphere.diameter_mm, result.fitted_sphere_activity,
                                              result.fitted_background, result.fitted_fwhm_mm), "tab:red", lw=1,
                    label=f"model, {result.fitted_fwhm_mm:.1f} mm FWHM")
        ax.axhline(result.sphere_activity, color="tab:blue", lw=0.6, ls=":", label="true sphere"
                   + (" (estimated)" if result.ratio_estimated else ""))
        ax.set(title=f"{sphere.diameter_mm:g} mm", xlabel="mm from the fitted centre")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="lower center")
    ratio = f"{result.activity_ratio:.2f}:1" + (" (estimated)" if result.ratio_estimated else "")
    fig.suptitle(f"NEMA ROI placement, sphere:background {ratio}")
    return save_png(fig, path, overwrite=overwrite)


def _sample(volume: Volume, points_mm: np.ndarray) -> np.ndarray:
    """Trilinear values of ``volume`` at points ``(..., 3)`` mm (0 outside)."""
    index = (points_mm - np.array(volume.grid.origin_mm)) / np.array(volume.grid.voxel_size_mm)
    return ndimage.map_coordinates(np.asarray(volume.data, np.float64), np.moveaxis(index, -1, 0), order=1, cval=0.0)
