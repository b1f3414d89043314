"""Sinogram bins as sums over crystal pairs: the model under randoms and normalisation estimates.

A bin of a (spanned, mashed) sinogram collects the coincidences of several
crystal pairs: every ring pair ``(r1, r2)`` the sinogram combines, times every
uncompressed view ``m`` of the mashed view, each joining crystal ``c1`` of
ring ``r1`` to crystal ``c2`` of ring ``r2`` (:meth:`SinogramLayout.view_crystals`).
Models of the form ``y_b = sum over pairs (k, l) of b of a_k * c_l``, with one
value per crystal, are what randoms from singles (``2 tau S_k S_l``) and
crystal efficiencies (``eps_k eps_l``) are; :class:`CrystalPairModel` evaluates
them (:meth:`~CrystalPairModel.expand`) and sums a sinogram back onto the
crystals (:meth:`~CrystalPairModel.fan_sums`), the two steps of every fan-sum
estimator (Defrise et al., Phys Med Biol 36:939, 1991; Casey and Hoffman,
J Comput Assist Tomogr 10:845, 1986).

Crystal values are arrays ``(n_rings, n_crystals_per_ring)``.
"""

from __future__ import annotations

import numba
import numpy as np

from petrecon.errors import GeometryError
from petrecon.geometry import SinogramLayout


class CrystalPairModel:
    """Crystal-pair bookkeeping of one non-TOF sinogram layout (all its views, or the ``views`` selected).

    Sinograms of the model have :attr:`shape` ``(n_sinograms, n_views selected, n_radial_bins)``.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> model = CrystalPairModel(default_layout("test"))
    >>> ones = np.ones(model.crystal_shape, np.float32)
    >>> y = model.expand(ones, ones)
    >>> y.shape == default_layout("test").shape, float(y.max())
    (True, 2.0)
    """

    def __init__(self, layout: SinogramLayout, views: np.ndarray | None = None) -> None:
        if layout.use_tof:
            raise GeometryError("crystal-pair models are defined for non-TOF layouts; sum the TOF bins first")
        self.layout = layout
        self.crystal_shape = (layout.scanner.n_rings, layout.scanner.n_crystals_per_ring)
        groups = layout.ring_pairs()
        groups = [pairs[None, :] for pairs in groups] if layout.span == 1 else groups
        self._pair_start = np.concatenate(([0], np.cumsum([len(pairs) for pairs in groups]))).astype(np.int64)
        all_pairs = np.concatenate(groups, axis=0).astype(np.int64)
        self._ring1, self._ring2 = all_pairs[:, 0].copy(), all_pairs[:, 1].copy()
        c1, c2 = layout.view_crystals(views)
        self._crystal1, self._crystal2 = c1.astype(np.int64), c2.astype(np.int64)
        self.shape = (layout.n_sinograms, c1.shape[0], layout.n_radial_bins)

    def expand(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Sinogram ``y_b = sum over pairs (k, l) of b of first[k] * second[l]`` (float32, :attr:`shape`).

        ``k`` is the crystal at the ``xstart`` end (ring1), ``l`` at ``xend`` (ring2).
        """
        first, second = (self._crystal_array(v) for v in (first, second))
        out = np.empty(self.shape, np.float32)
        _expand(first, second, self._pair_start, self._ring1, self._ring2, self._crystal1, self._crystal2, out)
        return out

    def fan_sums(self, sinogram: np.ndarray, partner: np.ndarray) -> np.ndarray:
        """Per crystal: ``sum over bins b and pairs (k, l) of b containing it of y_b * partner[other end]``.

        Both ends count, so this is the gradient of ``sum_b y_b * expand(s, s)_b``
        with respect to ``s`` when ``partner = s``; with ``partner = 1`` it is the
        plain fan sum of the sinogram.
        """
        sinogram = np.ascontiguousarray(sinogram, dtype=np.float32)
        if sinogram.shape != self.shape:
            raise GeometryError(f"sinogram has shape {sinogram.shape}, the model needs {self.shape}")
        partner = self._crystal_array(partner)
        private = np.zeros((numba.get_num_threads(),) + self.crystal_shape, np.float64)
        _fan_sums(sinogram, partner, self._pair_start, self._ring1, self._ring2, self._crystal1, self._crystal2,
                  private)
        return private.sum(axis=0)

    def _crystal_array(self, values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.float32)
        if values.shape != self.crystal_shape:
            raise GeometryError(f"crystal values have shape {values.shape}, expected {self.crystal_shape} "
                                "(rings, crystals per ring)")
        return values


def fit_pair_model(model: CrystalPairModel, data: np.ndarray, weights: np.ndarray, n_iterations: int,
                   initial: np.ndarray | None = None) -> np.ndarray:
    """Maximum-likelihood crystal values ``s`` of the Poisson model ``data_b ~ weights_b * expand(s, s)_b``.

    The multiplicative fixed point ``s_k <- s_k * sqrt(fan_sums(data / expand(s, s), s)_k /
    fan_sums(weights, s)_k)`` keeps ``s >= 0``, leaves crystals without counts at 0,
    and at convergence makes the model's total equal the data's (the likelihood's
    stationarity condition). The square root damps the quadratic dependence on ``s``.

    Parameters
    ----------
    model : CrystalPairModel
        The layout's crystal-pair bookkeeping.
    data : numpy.ndarray
        Counts per bin (>= 0), the layout's shape.
    weights : numpy.ndarray
        Known per-bin factor of the model (1 for randoms; source x geometry for normalisation).
    n_iterations : int
        Fixed-point iterations.
    initial : numpy.ndarray, optional
        Starting crystal values (default: uniform, matching the total).

    Returns
    -------
    numpy.ndarray
        float32 crystal values ``(n_rings, n_crystals_per_ring)``.
    """
    data = np.asarray(data, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    if initial is None:
        ones = np.ones(model.crystal_shape, np.float32)
        modelled = float(np.vdot(weights, model.expand(ones, ones)))
        initial = ones * np.sqrt(float(data.sum()) / modelled) if modelled > 0 else ones
    values = np.asarray(initial, dtype=np.float32)
    for _ in range(n_iterations):
        pair_products = model.expand(values, values)
        ratio = np.divide(data, pair_products, out=np.zeros_like(data), where=pair_products > 0)
        numerator = model.fan_sums(ratio, values)
        denominator = model.fan_sums(weights, values)
        update = np.sqrt(np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0))
        values = (values * update).astype(np.float32)
    return values


@numba.njit(parallel=True, cache=True)
def _expand(first, second, pair_start, ring1, ring2, crystal1, crystal2, out):  # pragma: no cover - numba
    n_sinograms, n_views, n_bins = out.shape
    n_mash = crystal1.shape[1]
    for s in numba.prange(n_sinograms):
        for v in range(n_views):
            for b in range(n_bins):
                total = 0.0
                for p in range(pair_start[s], pair_start[s + 1]):
                    for m in range(n_mash):
                        total += first[ring1[p], crystal1[v, m, b]] * second[ring2[p], crystal2[v, m, b]]
                out[s, v, b] = total


@numba.njit(parallel=True, cache=True)
def _fan_sums(sinogram, partner, pair_start, ring1, ring2, crystal1, crystal2, private):  # pragma: no cover
    n_sinograms, n_views, n_bins = sinogram.shape
    n_mash = crystal1.shape[1]
    n_threads = private.shape[0]
    chunk = (n_sinograms + n_threads - 1) // n_threads
    for t in numba.prange(n_threads):
        for s in range(t * chunk, min(n_sinograms, (t + 1) * chunk)):
            for p in range(pair_start[s], pair_start[s + 1]):
                r1, r2 = ring1[p], ring2[p]
                for v in range(n_views):
                    for m in range(n_mash):
                        for b in range(n_bins):
                            y = sinogram[s, v, b]
                            if y != 0.0:
                                k, l = crystal1[v, m, b], crystal2[v, m, b]
                                private[t, r1, k] += y * partner[r2, l]
                                private[t, r2, l] += y * partner[r1, k]
