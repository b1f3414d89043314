"""PNG figures of volumes for reports: a maximum-intensity projection and transverse slices (matplotlib Agg).

Axes are the Volume's scanner axes in mm (x to the patient's left, y
posterior, z into the gantry for a head-first supine patient: the DICOM LPS
frame, :mod:`petrecon.io.dicom`), drawn as a radiologist reads them: the
patient's right on the left of the image, anterior (-y) at the top, head
(+z) at the top of a coronal view.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from petrecon.io.atomic import atomic_output
from petrecon.volume import Volume


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _extent(volume: Volume, first: int, second: int) -> list[float]:
    """imshow extent (voxel edges, mm) of a plane spanned by axes ``first`` (horizontal) and ``second``."""
    grid = volume.grid
    low = [grid.voxel_centres_mm(a)[0] - grid.voxel_size_mm[a] / 2 for a in (first, second)]
    high = [grid.voxel_centres_mm(a)[-1] + grid.voxel_size_mm[a] / 2 for a in (first, second)]
    return [low[0], high[0], low[1], high[1]]


def save_figure(fig, path: str | os.PathLike, overwrite: bool) -> Path:
    """Write ``fig`` as a 100 dpi PNG atomically, then close it."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    pyplot().close(fig)
    return path


def mip_png(volume: Volume, path: str | os.PathLike, *, title: str = "maximum-intensity projection",
            units: str | None = None, overwrite: bool = False) -> Path:
    """Coronal (along y) and transverse (along z) maximum-intensity projections of ``volume`` side by side.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from petrecon.volume import ImageGrid
    >>> volume = Volume(np.random.default_rng(0).random((20, 18, 8), dtype=np.float32), ImageGrid.centred((20, 18, 8), (2.0, 2.0, 2.0)))
    >>> mip_png(volume, pathlib.Path(tempfile.mkdtemp()) / "mip.png").read_bytes()[:4]
    b'\\x89PNG'
    """
    plt = pyplot()
    data = np.asarray(volume.data, np.float32)
    units = units or volume.metadata.get("units", "")
    top = float(np.percentile(data, 99.9)) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1]})
    coronal = data.max(axis=1)            # (x, z)
    transverse = data.max(axis=2)         # (x, y)
    shown = axes[0].imshow(coronal.T, origin="lower", extent=_extent(volume, 0, 2), cmap="gray_r", vmin=0, vmax=top,
                           aspect="equal")
    axes[0].set(title="coronal MIP (along y)", xlabel="x (mm)", ylabel="z (mm)")
    axes[1].imshow(transverse.T, origin="upper", extent=_extent(volume, 0, 1)[:2] + _extent(volume, 0, 1)[2:][::-1],
                   cmap="gray_r", vmin=0, vmax=top, aspect="equal")
    axes[1].set(title="transverse MIP (along z)", xlabel="x (mm)", ylabel="y (mm)")
    fig.colorbar(shown, ax=axes, fraction=0.025, label=units)
    fig.suptitle(title)
    return save_figure(fig, path, overwrite)


def transverse_slices_png(volumes: dict[str, Volume], z_mm: float, path: str | os.PathLike, *,
                          title: str | None = None, overwrite: bool = False) -> Path:
    """The transverse slice nearest ``z_mm`` of each volume (same grid, same grey scale), side by side.

    Parameters
    ----------
    volumes : dict of str to Volume
        Panel title -> volume; the first one sets the grey scale (its 99.9th percentile).
    z_mm : float
        Axial position of the slice (scanner z, mm).
    """
    plt = pyplot()
    first = next(iter(volumes.values()))
    k = int(np.argmin(np.abs(first.grid.voxel_centres_mm(2) - z_mm)))
    top = float(np.percentile(np.asarray(first.data), 99.9)) or 1.0
    fig, axes = plt.subplots(1, len(volumes), figsize=(6 * len(volumes), 5), squeeze=False)
    for ax, (name, volume) in zip(axes[0], volumes.items()):
        extent = _extent(volume, 0, 1)
        shown = ax.imshow(np.asarray(volume.data)[:, :, k].T, origin="upper",
                          extent=extent[:2] + extent[2:][::-1], cmap="gray_r", vmin=0, vmax=top)
        ax.set(title=name, xlabel="x (mm)", ylabel="y (mm)")
    fig.colorbar(shown, ax=axes[0].tolist(), fraction=0.025, label=first.metadata.get("units", ""))
    fig.suptitle(title or f"transverse slice z = {round(float(first.grid.voxel_centres_mm(2)[k]), 1) + 0.0:.1f} mm")
    return save_figure(fig, path, overwrite)
