"""Data corrections: randoms, normalisation, dead time, decay and calibration."""

from petrecon.recon.corrections.calibration import central_cylinder_mean, cross_calibration_factor
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel, fit_pair_model
from petrecon.recon.corrections.deadtime import (
    BucketLayout, crystal_live_fraction, deadtime_factors, live_fraction, pair_live_fraction,
)
from petrecon.isotopes import decay_correction_factor
from petrecon.recon.corrections.normalisation import Normalisation, estimate_normalisation
from petrecon.recon.corrections.randoms import randoms_from_delays, randoms_from_singles
from petrecon.recon.corrections.scatter import ScatterEstimate, ScatterSettings, fit_scatter_tails, single_scatter

__all__ = [
    "BucketLayout", "CrystalPairModel", "Normalisation", "ScatterEstimate", "ScatterSettings", "central_cylinder_mean",
    "cross_calibration_factor", "crystal_live_fraction", "deadtime_factors", "decay_correction_factor",
    "estimate_normalisation", "fit_pair_model", "fit_scatter_tails", "live_fraction", "pair_live_fraction",
    "randoms_from_delays", "randoms_from_singles", "single_scatter",
]
