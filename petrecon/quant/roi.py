"""Volumes of interest as boolean masks on a Volume's grid (mm geometry from the grid).

A voxel belongs to a geometric VOI when its centre lies inside the shape (no
partial-voxel weights: the VOI volume is the voxel count times the voxel
volume). Isocontour VOIs follow reference/quantification.md: a fixed
fraction of the VOI maximum (EANM: 41 %) or the background-adapted A50
threshold ``B + 0.5 (max - B)``; the VOI is the 26-connected component of
voxels at or above the threshold that holds the maximum.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from petrecon.errors import GeometryError, ParameterError
from petrecon.volume import ImageGrid, Volume

#: EANM fixed isocontour fraction of the maximum.
EANM_FRACTION = 0.41


def _axes_mm(grid: ImageGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = (grid.voxel_centres_mm(axis) for axis in range(3))
    return x[:, None, None], y[None, :, None], z[None, None, :]


def sphere_mask(grid: ImageGrid, centre_mm: Sequence[float], radius_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of ``centre_mm``.

    Examples
    --------
    >>> grid = ImageGrid.centred((11, 11, 11), (1.0, 1.0, 1.0))
    >>> int(sphere_mask(grid, (0, 0, 0), 1.0).sum())
    7
    """
    if not radius_mm > 0:
        raise ParameterError(f"sphere radius must be positive, got {radius_mm} mm")
    x, y, z = _axes_mm(grid)
    cx, cy, cz = (float(c) for c in centre_mm)
    return (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius_mm**2


def box_mask(grid: ImageGrid, corner_low_mm: Sequence[float], corner_high_mm: Sequence[float]) -> np.ndarray:
    """Voxels whose centre lies in the axis-aligned box between two corners (mm).

    Examples
    --------
    >>> grid = ImageGrid.centred((10, 10, 10), (1.0, 1.0, 1.0))
    >>> int(box_mask(grid, (-1, -1, -1), (1, 1, 1)).sum())
    8
    """
    low, high = np.asarray(corner_low_mm, float), np.asarray(corner_high_mm, float)
    if low.shape != (3,) or high.shape != (3,) or np.any(high <= low):
        raise ParameterError(f"box corners must be 3 numbers with low < high, got {low} and {high}")
    x, y, z = _axes_mm(grid)
    return ((x >= low[0]) & (x <= high[0])) & ((y >= low[1]) & (y <= high[1])) & ((z >= low[2]) & (z <= high[2]))


def label_mask(labels: Volume, label: int, grid: ImageGrid | None = None) -> np.ndarray:
    """Voxels of a label volume (NIfTI, DICOM-SEG or any label image read into a Volume) equal to ``label``.

    ``grid``, when given, must be the label volume's grid (the label image is
    not resampled).
    """
    if grid is not None and labels.grid != grid:
        raise GeometryError(f"label volume grid {labels.grid} differs from the image grid {grid}")
    mask = np.asarray(labels.data) == label
    if not mask.any():
        raise ParameterError(f"label {label} does not occur in the label volume")
    return mask


def _component_with(mask: np.ndarray, index: tuple[int, int, int]) -> np.ndarray:
    components, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    return components == components[index]


def _search_max(volume: Volume, search_mask: np.ndarray) -> float:
    if search_mask.shape != volume.data.shape or not search_mask.any():
        raise ParameterError("the search VOI holds no voxel of the image")
    return float(np.max(volume.data[search_mask]))


def threshold_voi(volume: Volume, search_mask: np.ndarray, threshold: float) -> np.ndarray:
    """The connected component of ``search_mask`` voxels >= ``threshold`` holding the search maximum."""
    _search_max(volume, search_mask)
    values = np.where(search_mask, volume.data, -np.inf)
    hottest = np.unravel_index(int(np.argmax(values)), values.shape)
    if values[hottest] < threshold:
        raise ParameterError(f"threshold {threshold:g} is above the VOI maximum {values[hottest]:g}")
    return _component_with(values >= threshold, hottest)


def isocontour_voi(volume: Volume, search_mask: np.ndarray, fraction: float = EANM_FRACTION) -> np.ndarray:
    """Fixed-percentage isocontour: voxels >= ``fraction`` x max, connected to the max.

    Examples
    --------
    >>> grid = ImageGrid.centred((9, 9, 9), (2.0, 2.0, 2.0))
    >>> data = np.where(sphere_mask(grid, (0, 0, 0), 4.0), 10.0, 1.0)
    >>> int(isocontour_voi(Volume(data, grid), np.ones(grid.shape, bool)).sum())
    33
    """
    if not 0 < fraction < 1:
        raise ParameterError(f"isocontour fraction must lie in (0, 1), got {fraction}")
    return threshold_voi(volume, search_mask, fraction * _search_max(volume, search_mask))


def a50_voi(volume: Volume, search_mask: np.ndarray, background: float) -> np.ndarray:
    """Background-adapted 50 % isocontour (A50): threshold ``B + 0.5 (max - B)``."""
    peak = _search_max(volume, search_mask)
    return threshold_voi(volume, search_mask, background + 0.5 * (peak - background))


def grow_lesion(volume: Volume, seed_mm: Sequence[float], *, fraction: float = EANM_FRACTION,
                background: float | None = None, search_radius_mm: float = 10.0,
                max_radius_mm: float = 50.0) -> np.ndarray:
    """Lesion VOI grown from a seed point: connected component around the local maximum.

    The hottest voxel within ``search_radius_mm`` of the seed sets the
    threshold (``fraction`` x max, or A50 when ``background`` is given); the
    VOI is the connected component holding that voxel, confined to
    ``max_radius_mm`` around the seed so that it cannot leak into organs.
    """
    search = sphere_mask(volume.grid, seed_mm, search_radius_mm)
    confine = sphere_mask(volume.grid, seed_mm, max_radius_mm)
    if not search.any():
        raise GeometryError(f"seed {tuple(seed_mm)} mm lies outside the image")
    peak = float(np.max(volume.data[search]))
    threshold = fraction * peak if background is None else background + 0.5 * (peak - background)
    values = np.where(search, volume.data, -np.inf)
    hottest = np.unravel_index(int(np.argmax(values)), values.shape)
    return _component_with(confine & (volume.data >= threshold), hottest)
