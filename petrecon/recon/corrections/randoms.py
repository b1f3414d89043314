"""Randoms: from crystal singles rates, and from delayed coincidences with fan-sum variance reduction.

Two estimates of the expected randoms sinogram (counts in the frame):

- from singles (no delays recorded): ``R_kl = 2 tau S_k S_l T`` for the
  crystal pair ``(k, l)`` over a frame of ``T`` seconds, where ``2 tau`` is
  the full coincidence window (Hoffman et al., J Comput Assist Tomogr 5:391,
  1981);
- from delays: the delayed-window sinogram is an unbiased but noisy sample of
  the randoms. Its variance is reduced by fitting the crystal-pair model
  ``R_kl = s_k s_l`` to it by maximum likelihood (Poisson), the fan-sum method
  (Casey and Hoffman 1986; Panin et al., IEEE NSS 2007). The estimate keeps the
  total number of delays and carries the noise of the ~10^4-10^5 counts of a
  crystal's fan instead of those of a single bin.
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel, fit_pair_model


def randoms_from_singles(layout: SinogramLayout, singles_per_s: np.ndarray, duration_s: float,
                         coincidence_window_ns: float | None = None) -> np.ndarray:
    """Expected randoms per bin, ``window * S_k * S_l * duration`` summed over each bin's crystal pairs.

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF sinogram layout.
    singles_per_s : numpy.ndarray
        Singles rate of every crystal, shape ``(n_rings, n_crystals_per_ring)``, counts/s.
    duration_s : float
        Frame duration (rates assumed constant; use the frame-averaged rate).
    coincidence_window_ns : float, optional
        Full coincidence window ``2 tau`` (default: the scanner's, reference/scanners.md).

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> singles = np.full((8, 112), 1e4)
    >>> r = randoms_from_singles(layout, singles, 10.0, coincidence_window_ns=5.0)
    >>> round(float(r[0, 0, 32]), 6)  # 5e-9 s * 1e4 /s * 1e4 /s * 10 s, one crystal pair
    5.0
    """
    window_ns = layout.scanner.coincidence_window_ns if coincidence_window_ns is None else coincidence_window_ns
    if not (window_ns > 0 and duration_s > 0):
        raise ParameterError(f"coincidence window ({window_ns} ns) and duration ({duration_s} s) must be > 0")
    singles = np.asarray(singles_per_s, dtype=np.float64)
    if singles.size and singles.min() < 0:
        raise ParameterError("singles rates must be >= 0")
    scale = np.sqrt(window_ns * 1e-9 * duration_s)
    rates = (singles * scale).astype(np.float32)
    return CrystalPairModel(layout).expand(rates, rates)


def randoms_from_delays(layout: SinogramLayout, delays: np.ndarray, n_iterations: int = 30) -> np.ndarray:
    """Variance-reduced randoms: the maximum-likelihood ``s_k s_l`` fit to the delayed coincidences.

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF sinogram layout of ``delays``.
    delays : numpy.ndarray
        Delayed-window counts, the layout's shape.
    n_iterations : int
        Iterations of :func:`~petrecon.recon.corrections.crystal_pairs.fit_pair_model`; 30 bring
        the total within 0.1 % of the delays' on the test scanner (tests/test_corrections_randoms.py).

    Returns
    -------
    numpy.ndarray
        float32 expected randoms per bin; its sum equals the delays' sum at convergence.
    """
    delays = np.asarray(delays, dtype=np.float32)
    if delays.shape != layout.shape:
        raise GeometryError(f"delays have shape {delays.shape}, the layout needs {layout.shape}")
    if delays.size and delays.min() < 0:
        raise ParameterError("delayed coincidences must be >= 0")
    model = CrystalPairModel(layout)
    if float(delays.sum()) == 0:
        return np.zeros(layout.shape, np.float32)
    singles = fit_pair_model(model, delays, np.ones_like(delays), n_iterations)
    return model.expand(singles, singles)
