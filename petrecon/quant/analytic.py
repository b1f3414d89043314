"""Analytic recovery of a uniform sphere blurred by an isotropic Gaussian.

reference/quantification.md: at the centre, RC = erf(Z) - 2 Z exp(-Z^2) / sqrt(pi),
Z = R / (sqrt(2) sigma), sigma = FWHM / 2.3548 (exactly FWHM / sqrt(8 ln 2));
with a background B the value is S RC + B (1 - RC). Off the centre, at
distance r, the blurred unit sphere is

    f(r) = [erf((R - r) / (sqrt 2 sigma)) + erf((R + r) / (sqrt 2 sigma))] / 2
           - sigma / (r sqrt(2 pi)) [exp(-(R - r)^2 / 2 sigma^2) - exp(-(R + r)^2 / 2 sigma^2)],

whose limit r -> 0 is the RC above (used to state test tolerances from voxel size).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from petrecon.operators import FWHM_PER_SIGMA

_CENTRE_MM = 1e-3


def blurred_sphere_rc(diameter_mm: float, fwhm_mm: float) -> float:
    """Recovery at the centre of a sphere of ``diameter_mm`` blurred with a Gaussian of ``fwhm_mm``.

    Examples
    --------
    >>> [round(blurred_sphere_rc(d, 8.0), 3) for d in (10, 13, 17, 22, 28, 37)]
    [0.461, 0.699, 0.9, 0.985, 0.999, 1.0]
    """
    z = (diameter_mm / 2.0) / (math.sqrt(2.0) * fwhm_mm / FWHM_PER_SIGMA)
    return math.erf(z) - 2.0 * z * math.exp(-z * z) / math.sqrt(math.pi)


def blurred_sphere_profile(radius_from_centre_mm, diameter_mm: float, fwhm_mm: float):
    """Value of a unit sphere blurred by a Gaussian at ``radius_from_centre_mm`` (a number or an array) from its
    centre; a float for a number, an array for an array.

    Examples
    --------
    >>> round(blurred_sphere_profile(0.0, 10.0, 6.0), 3), round(blurred_sphere_profile(5.0, 1000.0, 6.0), 3)
    (0.722, 1.0)
    >>> blurred_sphere_profile(np.array([0.0, 5.0]), 10.0, 6.0).round(3).tolist()
    [0.722, 0.297]
    """
    r = np.abs(np.asarray(radius_from_centre_mm, np.float64))
    sigma = fwhm_mm / FWHM_PER_SIGMA
    big_r = diameter_mm / 2.0
    s2 = math.sqrt(2.0) * sigma
    safe = np.maximum(r, _CENTRE_MM)  # below it the centre value is exact to ~1e-12
    edges = 0.5 * (special.erf((big_r - safe) / s2) + special.erf((big_r + safe) / s2))
    tails = sigma / (safe * math.sqrt(2.0 * math.pi)) * (
        np.exp(-((big_r - safe) ** 2) / (2 * sigma**2)) - np.exp(-((big_r + safe) ** 2) / (2 * sigma**2)))
    value = np.where(r < _CENTRE_MM, blurred_sphere_rc(diameter_mm, fwhm_mm), edges - tails)
    return float(value) if value.ndim == 0 else value
