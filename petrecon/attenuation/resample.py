"""Moving volumes between grids: Gaussian smoothing to a resolution, and resampling by the affines."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from petrecon.errors import ParameterError
from petrecon.operators import FWHM_PER_SIGMA
from petrecon.volume import ImageGrid, Volume



def smooth_to_fwhm(volume: Volume, fwhm_mm: float) -> Volume:
    """Blur ``volume`` so that its resolution becomes about ``fwhm_mm``.

    The volume's own resolution is taken as its voxel size along each axis;
    the Gaussian added has ``sqrt(fwhm_mm^2 - voxel_mm^2)`` FWHM along each
    axis (none along axes whose voxels are already coarser). Edges are
    extended (``mode="nearest"``), so a uniform volume stays uniform.

    Examples
    --------
    >>> grid = ImageGrid.centred((9, 9, 9), (1.0, 1.0, 5.0))
    >>> out = smooth_to_fwhm(Volume(np.ones(grid.shape, np.float32), grid), 4.0)
    >>> float(out.data.min()), float(out.data.max())
    (1.0, 1.0)
    """
    if not fwhm_mm >= 0:
        raise ParameterError(f"fwhm_mm must be >= 0, got {fwhm_mm}")
    added_fwhm = np.sqrt(np.clip(fwhm_mm**2 - np.square(volume.grid.voxel_size_mm), 0.0, None))
    sigma_voxels = added_fwhm / FWHM_PER_SIGMA / np.asarray(volume.grid.voxel_size_mm)
    data = ndimage.gaussian_filter(np.asarray(volume.data, dtype=np.float32), sigma_voxels, mode="nearest")
    return Volume(data, volume.grid, dict(volume.metadata, smoothed_to_fwhm_mm=float(fwhm_mm)))


def resample_to_grid(volume: Volume, grid: ImageGrid, *, order: int = 1, fill_value: float = 0.0) -> Volume:
    """Values of ``volume`` at the voxel centres of ``grid`` (both axis-aligned, in mm).

    Parameters
    ----------
    volume : Volume
        Source volume.
    grid : ImageGrid
        Target grid.
    order : int
        Spline order (0 nearest, 1 trilinear).
    fill_value : float
        Value outside the source volume (0 for a mu-map: air).

    Examples
    --------
    >>> source = ImageGrid((4, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> target = ImageGrid((3, 1, 1), (1.0, 1.0, 1.0), (0.5, 0.0, 0.0))
    >>> resample_to_grid(Volume(np.arange(4.0).reshape(4, 1, 1), source), target).data.ravel().tolist()
    [0.5, 1.5, 2.5]
    """
    scale = np.asarray(grid.voxel_size_mm) / np.asarray(volume.grid.voxel_size_mm)
    offset = (np.asarray(grid.origin_mm) - np.asarray(volume.grid.origin_mm)) / np.asarray(volume.grid.voxel_size_mm)
    data = ndimage.affine_transform(np.asarray(volume.data, dtype=np.float32), scale, offset, output_shape=grid.shape,
                                    order=order, mode="constant", cval=fill_value)
    return Volume(data, grid, dict(volume.metadata))
