"""Bin efficiencies from a Siemens component-based normalisation (:mod:`petrecon.io.siemens_norm`).

The arithmetic is NiftyPET's (``niftypet/nipet/src/norm.cu``, kernel
``dev_norm``; components read as in ``mmrnorm.get_components``). For the
crystal pair joining crystal ``c_a`` of ring ``r_a`` to crystal ``c_b`` of ring
``r_b`` in uncompressed view ``u`` and radial bin ``w``
(:meth:`~petrecon.geometry.SinogramLayout.view_crystals`,
:meth:`~petrecon.geometry.SinogramLayout.ring_pairs`)::

    e = g[w] * I[w, u mod K] * q[r_a, c_a] * q[r_b, c_b]
    q[r, c] = eps[r, c] * D(r, c)
    D(r, c) = exp(s P[r] / (1 + s N[r])) / (1 + s N[r]),  s = singles[bucket(r, c)] / 2

with ``g`` the first plane of the geometric effects (``norm.cu`` reads
``geo[wi]`` only; STIR reads the plane of the ring sum instead), ``I`` the
crystal interference, ``K`` crystals per block, ``eps`` the crystal
efficiencies, ``P``/``N`` the paralysing / non-paralysing ring dead-time
parameters and ``singles`` the list-mode bucket singles (without them
``D = 1``). Gap bins (a gap crystal at either end) are 0, as NiftyPET's
``pgaps`` leaves them. The mMR buckets are 2 blocks (18 crystals) by 8 rings,
numbered ``c // 18 + 28 * (r // 8)`` (``norm.cu``: ``Cbt = 18``, ``Bt = 28``,
``Cba = 8``, 224 buckets); dead time from singles is supported for the mMR
only.

Axial effects: a sinogram of the file's own span (mMR: span 11) gets the mean
of ``e`` over its ring pairs divided by its axial effect, ``A[s]``; a span-1
sinogram ``i`` gets ``e * F1[i] / A[native(i)]`` where ``F1`` are span-1
axial factors, which the ``.n`` file does not hold (NiftyPET ships its own,
``auxdata/AxialFactorForSpan1.npy``, from a 24 h germanium scan): pass them
as ``span1_axial_factors`` to expand any span other than the file's own (the
span-1 values are then averaged over each sinogram's ring pairs). STIR
multiplies by the axial effect where NiftyPET divides; petrecon follows
NiftyPET, whose factors it reproduces bin for bin (tests).

Two quantities come out of the same sum:

- :func:`mean_pair_efficiencies`: the mean over a bin's crystal pairs (ring
  pairs and mashed views), exactly NiftyPET's normalisation sinogram for
  span 1 and span 11;
- :func:`bin_efficiencies`: that mean times the number of crystal pairs, the
  detection efficiency petrecon's system model multiplies the projection of
  the bin's one representative LOR with (the convention of
  :class:`~petrecon.recon.corrections.crystal_pairs.CrystalPairModel` and the
  fitted :class:`~petrecon.recon.corrections.normalisation.Normalisation`).
  Identical for span 1 without mashing.

Not supported: the mCT's and Biograph 64's files are read and validated but
their expansion uses the mMR's arithmetic, which no public source confirms
for them (dead time from singles is refused); TOF layouts (sum the TOF bins).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.io.siemens_norm import ComponentNormalisation
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel
from petrecon.recon.corrections.deadtime import BucketLayout

#: Siemens singles buckets per scanner (NiftyPET ``norm.cu``: 18 crystals x 8 rings on the mMR).
BUCKETS = {"mmr": BucketLayout(blocks_transaxial=2, rings=8)}


def crystal_factors(norm: ComponentNormalisation, bucket_singles_per_s: dict | None = None) -> np.ndarray:
    """``q = eps * D`` of every crystal (module docstring), 0 on gap crystals; float64 ``(n_rings, n_crystals)``.

    Parameters
    ----------
    norm : ComponentNormalisation
    bucket_singles_per_s : dict of int to float, optional
        Singles per bucket (a list-mode study's ``bucket_singles_per_s``);
        buckets not listed count 0. None: no dead time.

    Raises
    ------
    ParameterError
        Singles for a scanner whose buckets petrecon does not know, or a bucket out of range.
    """
    scanner = norm.scanner
    factors = norm["crystal_efficiencies"].astype(np.float64)
    factors[:, scanner.is_gap_crystal()] = 0.0
    if bucket_singles_per_s:
        if scanner.name not in BUCKETS:
            raise ParameterError(f"{norm.path}: dead time from bucket singles is known for "
                                 f"{', '.join(BUCKETS)} only, not {scanner.name}")
        buckets = BUCKETS[scanner.name]
        singles = np.zeros(buckets.n_buckets(scanner))
        for bucket, rate in bucket_singles_per_s.items():
            if not 0 <= int(bucket) < singles.size:
                raise ParameterError(f"bucket {bucket} out of range [0, {singles.size - 1}] of {scanner.name}")
            singles[int(bucket)] = float(rate)
        half = 0.5 * singles[buckets.bucket_of_crystal(scanner)]
        paralysable = norm["paralysable_dead_time"].astype(np.float64)[:, None]
        non_paralysable = 1.0 + half * norm["non_paralysable_dead_time"].astype(np.float64)[:, None]
        factors *= np.exp(half * paralysable / non_paralysable) / non_paralysable
    return factors


def bin_efficiencies(norm: ComponentNormalisation, layout: SinogramLayout, *, views: np.ndarray | None = None,
                     span1_axial_factors: np.ndarray | None = None,
                     bucket_singles_per_s: dict | None = None) -> np.ndarray:
    """Detection efficiency of every bin of ``layout``: the sum over its crystal pairs (module docstring).

    Parameters
    ----------
    norm : ComponentNormalisation
        The scanner's file.
    layout : SinogramLayout
        Non-TOF layout of the same scanner and radial bins, any span, mashing
        and maximum ring difference up to the file's.
    views : array_like of int, optional
        Stored views to expand (default all): the result has ``len(views)`` views.
    span1_axial_factors : numpy.ndarray, optional
        One factor per span-1 sinogram (Siemens order, the file's maximum
        ring difference); required unless ``layout.span`` is the file's span.
    bucket_singles_per_s : dict, optional
        Bucket singles for the dead-time factors (:func:`crystal_factors`).

    Returns
    -------
    numpy.ndarray
        float32 ``(n_sinograms, n_views selected, n_radial_bins)``.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> from petrecon.io.siemens_norm import ComponentNormalisation, expected_shapes
    >>> layout = default_layout("test")
    >>> shapes = expected_shapes(layout.scanner, 64, 3, 7)
    >>> ones = {name: np.ones(shape, np.float32) for name, shape in shapes.items()}
    >>> norm = ComponentNormalisation("n.hdr", layout.scanner, 3, 7, ones, None, None)
    >>> eff = bin_efficiencies(norm, layout, views=[0])
    >>> eff.shape, float(eff.max())  # segment 0 sinograms combine up to 2 ring pairs
    ((47, 1, 64), 2.0)
    """
    pair_sum, weights = _weighted_pair_sums(norm, layout, views, span1_axial_factors, bucket_singles_per_s)
    return (pair_sum * weights[:, None, None]).astype(np.float32)


def mean_pair_efficiencies(norm: ComponentNormalisation, layout: SinogramLayout, *,
                           views: np.ndarray | None = None, span1_axial_factors: np.ndarray | None = None,
                           bucket_singles_per_s: dict | None = None) -> np.ndarray:
    """Mean efficiency per crystal pair of every bin: NiftyPET's normalisation sinogram (module docstring).

    Parameters and result as :func:`bin_efficiencies`, divided by each bin's number of crystal pairs.
    """
    pair_sum, weights = _weighted_pair_sums(norm, layout, views, span1_axial_factors, bucket_singles_per_s)
    pairs = _pairs_per_sinogram(layout) * layout.view_mashing
    return (pair_sum * (weights / pairs)[:, None, None]).astype(np.float32)


def _weighted_pair_sums(norm: ComponentNormalisation, layout: SinogramLayout, views, span1_axial_factors,
                        bucket_singles_per_s) -> tuple[np.ndarray, np.ndarray]:
    """``sum over pairs of g I q q`` per bin and the per-sinogram axial weight it is multiplied with."""
    _check_layout(norm, layout)
    views = np.arange(layout.n_views) if views is None else np.atleast_1d(np.asarray(views, dtype=np.int64))
    if views.size and (views.min() < 0 or views.max() >= layout.n_views):
        raise GeometryError(f"views out of range [0, {layout.n_views - 1}]")
    mashing = layout.view_mashing
    unmashed = np.ravel(views[:, None] * mashing + np.arange(mashing)[None, :])
    q = crystal_factors(norm, bucket_singles_per_s).astype(np.float32)
    model = CrystalPairModel(dataclasses.replace(layout, view_mashing=1), views=unmashed)
    pair_sum = model.expand(q, q)
    interference = norm["crystal_interference"][:, unmashed % layout.scanner.crystals_per_block].T
    pair_sum *= (interference * norm["geometric_effects"][0][None, :])[None]
    pair_sum = pair_sum.reshape(layout.n_sinograms, views.size, mashing, layout.n_radial_bins).sum(axis=2)
    return pair_sum, _axial_weights(norm, layout, span1_axial_factors)


def _check_layout(norm: ComponentNormalisation, layout: SinogramLayout) -> None:
    native = norm.native_layout()
    if layout.use_tof:
        raise GeometryError("component normalisation is expanded for non-TOF layouts; sum the TOF bins")
    if layout.scanner.name.removesuffix("-tof") != norm.scanner.name:
        raise GeometryError(f"{norm.path}: a {norm.scanner.name} normalisation cannot serve a "
                            f"{layout.scanner.name} layout")
    if layout.n_radial_bins != native.n_radial_bins:
        raise GeometryError(f"{norm.path}: the normalisation has {native.n_radial_bins} radial bins, the layout "
                            f"{layout.n_radial_bins}")
    if layout.max_ring_difference > native.max_ring_difference:
        raise GeometryError(f"{norm.path}: the normalisation covers ring differences up to "
                            f"{native.max_ring_difference}, the layout {layout.max_ring_difference}")


def _axial_weights(norm: ComponentNormalisation, layout: SinogramLayout,
                   span1_axial_factors: np.ndarray | None) -> np.ndarray:
    """Per layout sinogram: ``1 / A[native]`` (native span), else the mean of ``F1 / A[native]`` over its pairs."""
    native = norm.native_layout()
    to_native = native.ring_pair_to_sinogram()
    axial = norm["axial_effects"].astype(np.float64)
    groups = layout.ring_pairs()
    groups = [pairs[None, :] for pairs in groups] if layout.span == 1 else groups
    native_of = [to_native[pairs[:, 0], pairs[:, 1]] for pairs in groups]
    if span1_axial_factors is None:
        if layout.span != native.span:
            raise ParameterError(f"{norm.path}: span {layout.span} needs span-1 axial factors (the file holds "
                                 f"axial effects for its own span {native.span} only); give them, or expand "
                                 f"span {native.span}")
        own = axial[[index[0] for index in native_of]]
        return np.divide(1.0, own, out=np.zeros_like(own), where=own != 0)
    span1 = native.listmode_layout().ring_pair_to_sinogram()
    factors = np.asarray(span1_axial_factors, dtype=np.float64).ravel()
    if factors.size != native.listmode_layout().n_sinograms:
        raise ParameterError(f"span-1 axial factors: {factors.size} values, the {norm.scanner.name} with maximum "
                             f"ring difference {native.max_ring_difference} has "
                             f"{native.listmode_layout().n_sinograms} span-1 sinograms")
    safe_axial = np.where(axial != 0, axial, np.inf)
    return np.array([np.mean(factors[span1[pairs[:, 0], pairs[:, 1]]] / safe_axial[index])
                     for pairs, index in zip(groups, native_of)])


def _pairs_per_sinogram(layout: SinogramLayout) -> np.ndarray:
    if layout.span == 1:
        return np.ones(layout.n_sinograms)
    return np.array([len(pairs) for pairs in layout.ring_pairs()], dtype=np.float64)
