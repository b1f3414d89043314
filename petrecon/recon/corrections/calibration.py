"""Cross-calibration on a uniform cylinder: the factor that makes reconstructions Bq/ml.

The reconstruction's image unit is set by its system model (counts per
second per unit of line integral when the multiplicative term carries the
frame duration and live time). A uniform cylinder of known concentration
(dose calibrator: activity / fill volume, decayed to the scan start),
reconstructed with the same protocol and corrections, gives the factor

    calibration = true_bq_per_ml / mean(reconstruction in the central region)

which then multiplies every reconstruction of that scanner and protocol
(the vendor's "ECF"; NEMA NU 2 does not define it, the EARL accreditation
programme requires it). The central region is the inner ``fraction`` of the
cylinder's radius and length, away from the partial-volume edges.
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError
from petrecon.volume import Volume


def central_cylinder_mean(volume: Volume, radius_mm: float, length_mm: float,
                          centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0), fraction: float = 0.8) -> float:
    """Mean of ``volume`` over the inner ``fraction`` of a z-aligned cylinder.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((40, 40, 20), (5.0, 5.0, 5.0))
    >>> round(central_cylinder_mean(Volume(np.full(grid.shape, 3.0), grid), 80.0, 60.0), 6)
    3.0
    """
    if not 0 < fraction <= 1 or radius_mm <= 0 or length_mm <= 0:
        raise ParameterError("radius_mm and length_mm must be > 0 and fraction in (0, 1]")
    x, y, z = (volume.grid.voxel_centres_mm(axis) - centre for axis, centre in enumerate(centre_mm))
    inside = ((np.hypot(x[:, None, None], y[None, :, None]) <= fraction * radius_mm)
              & (np.abs(z[None, None, :]) <= fraction * length_mm / 2))
    if not inside.any():
        raise ParameterError("the central region of the cylinder holds no voxel of the volume")
    return float(np.asarray(volume.data)[inside].mean())


def cross_calibration_factor(volume: Volume, true_bq_per_ml: float, radius_mm: float, length_mm: float,
                             centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0), fraction: float = 0.8) -> float:
    """Bq/ml per image unit, from a reconstructed uniform cylinder of known concentration.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((40, 40, 20), (5.0, 5.0, 5.0))
    >>> cross_calibration_factor(Volume(np.full(grid.shape, 4.0), grid), 5000.0, 80.0, 60.0)
    1250.0
    """
    if not true_bq_per_ml > 0:
        raise ParameterError(f"true_bq_per_ml must be > 0, got {true_bq_per_ml}")
    mean = central_cylinder_mean(volume, radius_mm, length_mm, centre_mm, fraction)
    if not mean > 0:
        raise ParameterError(f"the reconstructed cylinder's central mean is {mean}; nothing to calibrate against")
    return true_bq_per_ml / mean
