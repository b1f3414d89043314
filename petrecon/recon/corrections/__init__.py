"""Data corrections: randoms, normalisation, dead time, decay and calibration."""

from petrecon.recon.corrections.crystal_pairs import CrystalPairModel, fit_pair_model
from petrecon.recon.corrections.deadtime import live_fraction, pair_live_fraction
from petrecon.recon.corrections.decay import decay_correction_factor
from petrecon.recon.corrections.normalisation import Normalisation, estimate_normalisation
from petrecon.recon.corrections.randoms import randoms_from_delays, randoms_from_singles

__all__ = ["CrystalPairModel", "Normalisation", "decay_correction_factor", "live_fraction", "pair_live_fraction", "estimate_normalisation", "fit_pair_model", "randoms_from_delays",
           "randoms_from_singles"]
