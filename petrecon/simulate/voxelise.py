"""Voxelise a phantom onto any grid, with partial-volume supersampling.

Each voxel's value is the mean of the region values at ``s x s x s``
regularly spaced points inside it (``s = supersampling``), so a voxel
half-filled by a sphere gets half its value: partial volume, not nearest
voxel. Images: activity (Bq/ml), mu at 511 keV (cm^-1, from the phantom's
materials), CT (HU; -1000 outside the phantom), and Dixon water and fat
signals (proton-density fractions).
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError
from petrecon.simulate.phantom import Phantom
from petrecon.simulate.raytrace import voxel_means
from petrecon.volume import ImageGrid, Volume

IMAGE_NAMES = ("activity_bq_per_ml", "mu_per_cm", "ct_hu", "dixon_water", "dixon_fat")
_REGION_VALUES = ("activity", "mu_per_cm", "ct_hu", "dixon_water", "dixon_fat")
_OUTSIDE = (0.0, 0.0, -1000.0, 0.0, 0.0)
TOTAL_ACTIVITY_VOXEL_MM = 2.0
TOTAL_ACTIVITY_SUPERSAMPLING = 2
"""Grid used to integrate a phantom's total activity: 2 mm voxels, 2^3 sub-samples (1 mm spacing).

Accuracy (against 6^3 sub-samples): NEMA IEC body 0.014 %, 20 cm cylinder
0.04 %; thin objects worse (a 20 mm diameter rod: +0.6 %)."""


def region_table(phantom: Phantom, activity_bq_per_ml: np.ndarray | None = None) -> np.ndarray:
    """``(n_regions + 1, 5)`` values in :data:`IMAGE_NAMES` order; the last row is "outside".

    ``activity_bq_per_ml`` replaces the phantom-unit activities (default: as in the phantom).
    """
    table = np.stack([phantom.region_values(what) for what in _REGION_VALUES], axis=1)
    if activity_bq_per_ml is not None:
        table[:, 0] = activity_bq_per_ml
    return np.vstack([table, _OUTSIDE])


def voxelise(phantom: Phantom, grid: ImageGrid, *, activity_bq_per_ml: np.ndarray | None = None,
             supersampling: int = 3, progress: bool = False) -> dict[str, Volume]:
    """Activity, mu, CT and Dixon images of ``phantom`` on ``grid``.

    Parameters
    ----------
    phantom : Phantom
    grid : ImageGrid
    activity_bq_per_ml : numpy.ndarray, optional
        Per-region concentrations (default: the phantom's activity values as given).
    supersampling : int
        Sub-samples per voxel and axis (>= 1).
    progress : bool
        Show a progress bar (one step per slab of x).

    Returns
    -------
    dict of str to Volume
        Keyed by :data:`IMAGE_NAMES`.

    Examples
    --------
    >>> from petrecon.simulate.phantom import load_phantom
    >>> images = voxelise(load_phantom("uniform-cylinder"), ImageGrid.centred((8, 8, 4), (40.0, 40.0, 40.0)))
    >>> round(float(images["mu_per_cm"].data[4, 4, 2]), 6)
    0.096
    """
    if int(supersampling) < 1:
        raise ParameterError(f"supersampling must be >= 1, got {supersampling}")
    table = region_table(phantom, activity_bq_per_ml)
    packed = phantom.packed()
    out = np.empty(grid.shape + (table.shape[1],), np.float32)
    slab = max(1, grid.shape[0] // 16)
    starts = range(0, grid.shape[0], slab)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="voxelise", unit="slab")
    for first in starts:
        n = min(slab, grid.shape[0] - first)
        origin = (grid.origin_mm[0] + first * grid.voxel_size_mm[0],) + grid.origin_mm[1:]
        out[first:first + n] = voxel_means(packed, table, (n,) + grid.shape[1:], origin, grid.voxel_size_mm,
                                           supersampling)
    units = ("Bq/ml", "cm^-1 at 511 keV", "HU", "proton-density fraction", "proton-density fraction")
    return {name: Volume(np.ascontiguousarray(out[..., c]), grid, {"units": unit, "phantom": phantom.name})
            for c, (name, unit) in enumerate(zip(IMAGE_NAMES, units))}


def phantom_grid(phantom: Phantom, voxel_mm: float) -> ImageGrid:
    """A grid of ``voxel_mm`` cubes covering the phantom's bounding box."""
    low, high = phantom.bounding_box_mm()
    shape = tuple(int(n) for n in np.ceil((high - low) / voxel_mm) + 1)
    origin = tuple(float(v) for v in (low + high) / 2.0 - (np.array(shape) - 1) / 2.0 * voxel_mm)
    return ImageGrid(shape, (voxel_mm,) * 3, origin)


def total_activity_bq(phantom: Phantom, activity_bq_per_ml: np.ndarray | None = None) -> float:
    """Total activity of the phantom (Bq for Bq/ml values), integrated with sub-samples 1 mm apart.

    Examples
    --------
    >>> from petrecon.simulate.phantom import phantom_from_dict
    >>> ball = phantom_from_dict({"regions": [{"activity": 1000.0,
    ...     "shapes": [{"type": "sphere", "centre_mm": [0, 0, 0], "radius_mm": 50}]}]})
    >>> round(total_activity_bq(ball) / (1000.0 * 4 / 3 * np.pi * 125), 2)  # 1000 Bq/ml x 523.6 ml
    1.0
    """
    grid = phantom_grid(phantom, TOTAL_ACTIVITY_VOXEL_MM)
    table = region_table(phantom, activity_bq_per_ml)[:, :1]
    means = voxel_means(phantom.packed(), table, grid.shape, grid.origin_mm, grid.voxel_size_mm,
                        TOTAL_ACTIVITY_SUPERSAMPLING)
    return float(means.sum(dtype=np.float64) * grid.voxel_volume_ml)


def axial_activity_profile(phantom: Phantom, activity_bq_per_ml: np.ndarray, z_step_mm: float = 4.0):
    """Activity per axial slab: ``(z_mm, activity_bq)`` over the phantom's whole length (for singles)."""
    grid = phantom_grid(phantom, z_step_mm)
    table = region_table(phantom, activity_bq_per_ml)[:, :1]
    means = voxel_means(phantom.packed(), table, grid.shape, grid.origin_mm, grid.voxel_size_mm, 2)
    return grid.voxel_centres_mm(2), means[..., 0].sum(axis=(0, 1), dtype=np.float64) * grid.voxel_volume_ml


def blurred_activity(phantom: Phantom, grid: ImageGrid, fwhm_mm: float, *, noise_fraction: float = 0.0,
                     noise_fwhm_mm: float = 4.0, noise_reference_bq_per_ml: float | None = None, seed: int = 0,
                     supersampling: int = 2) -> Volume:
    """A fast stand-in for a reconstruction: the partial-volume activity image blurred by a Gaussian, optionally
    with correlated Gaussian noise (white noise smoothed by ``noise_fwhm_mm``, scaled to an SD per voxel of
    ``noise_fraction`` x ``noise_reference_bq_per_ml``, default the median of the non-zero activity).

    For analysis tests (NEMA, ROIs) that need a known image quickly; it is not a model of a scanner.

    Examples
    --------
    >>> from petrecon.simulate.phantom import load_phantom
    >>> grid = ImageGrid.centred((8, 8, 4), (40.0, 40.0, 40.0))
    >>> image = blurred_activity(load_phantom("uniform-cylinder"), grid, 6.0)
    >>> image.metadata["units"]
    'Bq/ml'
    """
    from scipy import ndimage

    from petrecon.operators import FWHM_PER_SIGMA

    activity = voxelise(phantom, grid, supersampling=supersampling)["activity_bq_per_ml"].data.astype(np.float64)
    data = ndimage.gaussian_filter(activity, [fwhm_mm / FWHM_PER_SIGMA / v for v in grid.voxel_size_mm],
                                   mode="constant")
    if noise_fraction:
        white = np.random.default_rng(seed).normal(size=data.shape)
        correlated = ndimage.gaussian_filter(white, [noise_fwhm_mm / FWHM_PER_SIGMA / v for v in grid.voxel_size_mm])
        reference = noise_reference_bq_per_ml or float(np.median(activity[activity > 0]))
        data += correlated / correlated.std() * noise_fraction * reference
    return Volume(data, grid, {"units": "Bq/ml", "phantom": phantom.name})
