"""Statistics of a VOI: SUVmax, SUVmean, SUVpeak, SD, volume (MTV), TLG, tumour-to-background.

Definitions (reference/quantification.md, section "ROI statistics"):

- max: hottest voxel in the VOI; mean and SD (sample SD, ddof = 1) over the
  VOI's voxels; volume = voxel count x voxel volume (ml); TLG = mean x volume.
- peak: the highest mean of a sphere of 1 cm^3 (diameter 12.41 mm; pass
  12.0 for the PERCIST 1.2 cm sphere) whose **centre** is a voxel centre of
  the VOI; the sphere itself may reach beyond the VOI. Partial voxels **are
  weighted** by the fraction of the voxel inside the sphere (5 x 5 x 5
  sub-samples per voxel), so a uniform region larger than the sphere gives
  peak = its value exactly, and the result hardly depends on the voxel size.
  Outside the image the edge voxels are repeated.
- T/B: lesion max (or mean) over the mean of a reference VOI named by the user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from petrecon.checks import check_voi_values
from petrecon.errors import ParameterError
from petrecon.volume import Volume

#: Diameter (mm) of the 1 cm^3 sphere of SUVpeak: 2 (3 / (4 pi))^(1/3) cm.
PEAK_DIAMETER_MM = 20.0 * (3.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
_SUBSAMPLES = 5


@dataclass(frozen=True)
class VoiStatistics:
    """Statistics of one VOI, in the image's units (SUV for an SUV image)."""

    max: float
    mean: float
    sd: float
    peak: float
    volume_ml: float
    tlg: float
    n_voxels: int
    max_position_mm: tuple[float, float, float]
    peak_position_mm: tuple[float, float, float]

    def to_dict(self) -> dict:
        """Plain dict for JSON output."""
        return asdict(self)


def peak_kernel(voxel_size_mm: tuple[float, float, float], diameter_mm: float = PEAK_DIAMETER_MM) -> np.ndarray:
    """Weights of the peak sphere on the voxel grid: fraction of each voxel inside, normalised to sum 1.

    Examples
    --------
    >>> kernel = peak_kernel((2.0, 2.0, 2.0))
    >>> kernel.shape, round(float(kernel.sum()), 12)
    ((7, 7, 7), 1.0)
    """
    radius_mm = diameter_mm / 2.0
    half = [int(np.ceil(radius_mm / v - 0.5)) for v in voxel_size_mm]
    sub = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES - 0.5
    axes = [(np.arange(-h, h + 1)[:, None] + sub[None, :]).ravel() * v for h, v in zip(half, voxel_size_mm)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    inside = (x**2 + y**2 + z**2 <= radius_mm**2).astype(float)
    shape = [2 * h + 1 for h in half]
    weights = inside.reshape(shape[0], _SUBSAMPLES, shape[1], _SUBSAMPLES, shape[2], _SUBSAMPLES).mean(axis=(1, 3, 5))
    return weights / weights.sum()


def peak_map(volume: Volume, mask: np.ndarray, diameter_mm: float = PEAK_DIAMETER_MM) -> np.ndarray:
    """Mean of the peak sphere centred on every voxel of ``mask`` (NaN elsewhere)."""
    kernel = peak_kernel(volume.grid.voxel_size_mm, diameter_mm)
    half = np.array(kernel.shape) // 2
    where = np.argwhere(mask)
    low = np.maximum(where.min(axis=0) - half, 0)
    high = np.minimum(where.max(axis=0) + half + 1, mask.shape)
    box = tuple(slice(a, b) for a, b in zip(low, high))
    local = ndimage.correlate(np.asarray(volume.data[box], float), kernel, mode="nearest")
    result = np.full(mask.shape, np.nan)
    result[box] = np.where(mask[box], local, np.nan)
    return result


def _position_mm(volume: Volume, index: tuple[int, ...]) -> tuple[float, float, float]:
    return tuple(float(volume.grid.voxel_centres_mm(axis)[index[axis]]) for axis in range(3))


def voi_statistics(volume: Volume, mask: np.ndarray, peak_diameter_mm: float = PEAK_DIAMETER_MM, *,
                   name: str = "") -> VoiStatistics:
    """Max, mean, SD, peak, volume and TLG of the VOI ``mask`` (``name`` for messages).

    Raises
    ------
    ParameterError
        An empty mask, one of another shape, or NaN or infinite voxels in the VOI.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> from petrecon.quant.roi import sphere_mask
    >>> grid = ImageGrid.centred((31, 31, 31), (2.0, 2.0, 2.0))
    >>> voi = sphere_mask(grid, (0, 0, 0), 20.0)
    >>> stats = voi_statistics(Volume(np.where(voi, 4.0, 1.0), grid), voi)
    >>> stats.max, stats.mean, round(stats.peak, 9)
    (4.0, 4.0, 4.0)
    """
    mask = np.asarray(mask, bool)
    if mask.shape != volume.data.shape:
        raise ParameterError(f"VOI mask shape {mask.shape} differs from the image shape {volume.data.shape}")
    if not mask.any():
        raise ParameterError("the VOI holds no voxel")
    values = np.asarray(volume.data, float)[mask]
    check_voi_values(values, name)
    masked = np.where(mask, volume.data, -np.inf)
    hottest = np.unravel_index(int(np.argmax(masked)), mask.shape)
    peaks = peak_map(volume, mask, peak_diameter_mm)
    peak_index = np.unravel_index(int(np.nanargmax(peaks)), mask.shape)
    volume_ml = float(mask.sum()) * volume.grid.voxel_volume_ml
    mean = float(values.mean())
    return VoiStatistics(
        max=float(values.max()), mean=mean, sd=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        peak=float(peaks[peak_index]), volume_ml=volume_ml, tlg=mean * volume_ml, n_voxels=int(mask.sum()),
        max_position_mm=_position_mm(volume, hottest), peak_position_mm=_position_mm(volume, peak_index))


def tumour_to_background(lesion: VoiStatistics, reference: VoiStatistics, statistic: str = "max") -> float:
    """T/B: the lesion's ``max``, ``mean`` or ``peak`` over the reference VOI's mean.

    Examples
    --------
    >>> a = VoiStatistics(8.0, 5.0, 1.0, 7.0, 2.0, 10.0, 10, (0, 0, 0), (0, 0, 0))
    >>> b = VoiStatistics(2.5, 2.0, 0.2, 2.1, 30.0, 60.0, 300, (0, 0, 0), (0, 0, 0))
    >>> tumour_to_background(a, b)
    4.0
    """
    if statistic not in ("max", "mean", "peak"):
        raise ParameterError(f"T/B statistic must be max, mean or peak, got {statistic!r}")
    if not reference.mean > 0:
        raise ParameterError(f"reference VOI mean is {reference.mean}; T/B needs a positive background")
    return getattr(lesion, statistic) / reference.mean
