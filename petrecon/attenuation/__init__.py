"""Attenuation at 511 keV: CT (HU -> mu, bilinear per kVp), Dixon MR (4 classes), attenuation factors.

mu-maps are in cm^-1 (ARCHITECTURE contract 2); the conversion to mm^-1
happens once, in :func:`attenuation_factors`.
"""

from petrecon.attenuation.ct import (
    BILINEAR_BY_KVP, BilinearCoefficients, ct_mu_map_on_grid, ct_to_mu, find_truncated_slices, hu_to_mu_per_cm,
)
from petrecon.attenuation.dixon import DIXON_MU_PER_CM, DixonClass, dixon_mu_map, segment_dixon
from petrecon.attenuation.factors import attenuation_factors
from petrecon.attenuation.resample import resample_to_grid, smooth_to_fwhm

__all__ = [
    "BILINEAR_BY_KVP", "BilinearCoefficients", "DIXON_MU_PER_CM", "DixonClass", "attenuation_factors",
    "ct_mu_map_on_grid", "ct_to_mu", "find_truncated_slices",
    "dixon_mu_map", "hu_to_mu_per_cm", "resample_to_grid", "segment_dixon", "smooth_to_fwhm",
]
