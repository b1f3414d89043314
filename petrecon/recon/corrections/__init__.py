"""Data corrections: randoms, normalisation, dead time, decay and calibration."""

from petrecon.recon.corrections.crystal_pairs import CrystalPairModel
from petrecon.recon.corrections.randoms import randoms_from_delays, randoms_from_singles

__all__ = ["CrystalPairModel", "randoms_from_delays", "randoms_from_singles"]
