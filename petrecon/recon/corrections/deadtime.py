"""Dead time: live fractions from measured singles rates, and their effect on coincidence bins.

Counter models (Knoll, *Radiation Detection and Measurement*, 4th ed., ch. 4):
a detector with dead time ``tau`` that sees ``n`` events/s records

- non-paralysable: ``m = n / (1 + n tau)``, so ``n = m / (1 - m tau)``;
- paralysable: ``m = n exp(-n tau)``, so ``n = -W0(-m tau) / tau`` (principal
  branch of Lambert's W; defined up to the rate maximum ``m tau = 1/e``).

The live fraction of a detector unit (a block or a Siemens "bucket") is
``m / n``; a coincidence between crystals ``k`` and ``l`` survives with
``L_k L_l``, so a sinogram bin's dead-time factor is the mean of ``L_k L_l``
over its crystal pairs. The scanner's ``tau`` per unit is a calibration
constant of the scanner (not in petrecon's registry: it must be given).
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel

MODELS = ("non-paralysable", "paralysable")


def live_fraction(measured_per_s, dead_time_s: float, model: str = "non-paralysable") -> np.ndarray:
    """Fraction of the true events a counter records, from its *measured* rate.

    Examples
    --------
    >>> float(live_fraction(5e5, 1e-6))  # non-paralysable: 1 - m tau
    0.5
    >>> round(float(live_fraction(1e5, 1e-6, "paralysable")), 6)
    0.894194
    """
    if model not in MODELS:
        raise ParameterError(f"dead-time model must be one of {MODELS}, got {model!r}")
    if not dead_time_s >= 0:
        raise ParameterError(f"dead_time_s must be >= 0, got {dead_time_s}")
    measured = np.asarray(measured_per_s, dtype=np.float64)
    load = measured * dead_time_s
    if measured.size and measured.min() < 0:
        raise ParameterError("measured rates must be >= 0")
    if model == "non-paralysable":
        if load.size and load.max() >= 1:
            raise ParameterError(f"a non-paralysable counter cannot record {measured.max():.4g} /s with "
                                 f"tau = {dead_time_s} s (m tau >= 1)")
        return 1.0 - load
    if load.size and load.max() > np.exp(-1):
        raise ParameterError(f"a paralysable counter records at most 1/(e tau) = {np.exp(-1) / dead_time_s:.4g} /s; "
                             f"got {measured.max():.4g} /s")
    true_load = -lambertw(-load, 0).real
    return np.divide(load, true_load, out=np.ones_like(load), where=true_load > 0)


def pair_live_fraction(layout: SinogramLayout, crystal_live_fraction: np.ndarray) -> np.ndarray:
    """Dead-time factor of every bin: the mean of ``L_k L_l`` over its crystal pairs (multiplies the projection).

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF layout.
    crystal_live_fraction : numpy.ndarray
        ``(n_rings, n_crystals_per_ring)`` live fraction of each crystal's unit.
    """
    model = CrystalPairModel(layout)
    ones = np.ones(model.crystal_shape, np.float32)
    pairs = model.expand(ones, ones)
    live = model.expand(crystal_live_fraction, crystal_live_fraction)
    return np.divide(live, pairs, out=np.ones_like(live), where=pairs > 0)
