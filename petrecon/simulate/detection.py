"""Detection model: crystal efficiencies, geometric factors, singles and randoms.

A bin of a spanned/mashed sinogram combines several detector-pair LORs
(span-1 ring pairs x mashed views; :meth:`SinogramLayout.span1_sinogram_map`).
Its detection efficiency is the **sum** over those LORs of
``g(t) eps(r1, c1) eps(r2, c2)``, where ``eps`` are the crystal efficiencies
(0 for gap crystals and virtual rings) and ``g(t) = cos(pi t / N)`` the
radial geometric factor of a non arc-corrected bin (the tube of response
narrows as the cosine of the incidence angle; one component of
component-based normalisation, Badawi & Marsden, Phys Med Biol 44:571, 1999).
The bin is projected along its representative LOR (the layout's mean LOR),
so ``normalisation x (line integral along the mean LOR)`` is the expected
sum over the combined LORs.

Randoms from singles: ``R = 2 tau s1 s2`` per detector pair with ``2 tau``
the coincidence window (Hoffman et al., J Comput Assist Tomogr 5:391, 1981),
summed over the combined LORs like the efficiencies. Singles per crystal:
the activity's axial profile times the fraction of solid angle each ring
subtends from the axis, times two photons per positron, times
:data:`SINGLES_DETECTION_PROBABILITY` (body escape x energy window x
stopping power; a documented model constant, not a measurement), spread
evenly over a ring's crystals and times each crystal's efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from petrecon.geometry import ScannerGeometry, SinogramLayout

EFFICIENCY_SPREAD = 0.05
"""Relative standard deviation of the simulated crystal efficiencies (block-detector scale)."""
SINGLES_DETECTION_PROBABILITY = 0.35
"""Probability that a photon aimed at a crystal is detected in the energy window (model constant)."""


@dataclass(frozen=True)
class Span1Map:
    """How the detector-pair LORs of the list-mode (span-1, unmashed) layout fill a layout's bins.

    Attributes
    ----------
    ring_pairs : int64 (n_span1, 2)
    members_first, members : int64
        Span-1 sinograms of target sinogram ``g``: ``members[members_first[g]:members_first[g + 1]]``.
    c1, c2 : int64 (n_views_uncompressed, n_bins)
        Crystals of each uncompressed view and radial bin.
    view_mashing : int
    """

    ring_pairs: np.ndarray
    members_first: np.ndarray
    members: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    view_mashing: int


def span1_map(layout: SinogramLayout) -> Span1Map:
    """The span-1 bookkeeping of ``layout`` (see :class:`Span1Map`)."""
    listmode = layout.listmode_layout()
    target = layout.span1_sinogram_map()
    members = np.argsort(target, kind="stable")
    members = members[target[members] >= 0]
    first = np.searchsorted(target[members], np.arange(layout.n_sinograms + 1))
    c1, c2 = listmode.view_crystals()
    return Span1Map(listmode.ring_pairs().astype(np.int64), first.astype(np.int64), members.astype(np.int64),
                    c1[:, 0, :].astype(np.int64), c2[:, 0, :].astype(np.int64), layout.view_mashing)


def crystal_efficiencies(scanner: ScannerGeometry, rng: np.random.Generator,
                         spread: float = EFFICIENCY_SPREAD) -> np.ndarray:
    """Random crystal efficiencies ``(n_rings, n_crystals)``: mean 1, 0 in gaps and virtual rings.

    Examples
    --------
    >>> from petrecon.geometry import get_scanner
    >>> eff = crystal_efficiencies(get_scanner("test"), np.random.default_rng(0))
    >>> eff.shape, float(eff[:, 7].max())
    ((8, 112), 0.0)
    """
    eff = np.clip(rng.normal(1.0, spread, (scanner.n_rings, scanner.n_crystals_per_ring)), 0.5, 1.5)
    eff[:, scanner.is_gap_crystal()] = 0.0
    eff[scanner.is_virtual_ring(), :] = 0.0
    return eff


def radial_geometric_factors(layout: SinogramLayout) -> np.ndarray:
    """``cos(pi t / N)`` per radial bin (``t`` the signed bin offset, ``N`` crystals per ring)."""
    t = np.arange(layout.n_radial_bins) - layout.n_radial_bins // 2
    return np.cos(np.pi * t / layout.scanner.n_crystals_per_ring)


@njit(parallel=True, cache=True)
def _pair_sums(weights, ring_pairs, members_first, members, c1, c2, mashing, n_views):
    n_sino = members_first.shape[0] - 1
    n_bins = c1.shape[1]
    out = np.zeros((n_sino, n_views, n_bins), np.float64)
    for v in prange(n_views):
        for g in range(n_sino):
            for m in range(members_first[g], members_first[g + 1]):
                r1 = ring_pairs[members[m], 0]
                r2 = ring_pairs[members[m], 1]
                for u in range(v * mashing, (v + 1) * mashing):
                    for b in range(n_bins):
                        out[g, v, b] += weights[r1, c1[u, b]] * weights[r2, c2[u, b]]
    return out


def pair_sum_sinogram(layout: SinogramLayout, crystal_weights: np.ndarray, mapping: Span1Map | None = None) -> np.ndarray:
    """Per bin: sum over its detector pairs of ``w(r1, c1) w(r2, c2)``; float64 ``layout.shape``.

    Examples
    --------
    With unit weights every bin counts its combined LORs (span 3: 1 or 2 ring pairs):

    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> counts = pair_sum_sinogram(layout, np.ones((8, 112)))
    >>> sorted(set(counts[:, 0, 0].astype(int).tolist()))
    [1, 2]
    """
    mapping = span1_map(layout) if mapping is None else mapping
    return _pair_sums(np.ascontiguousarray(crystal_weights, np.float64), mapping.ring_pairs, mapping.members_first,
                      mapping.members, mapping.c1, mapping.c2, mapping.view_mashing, layout.n_views)


def normalisation_sinogram(layout: SinogramLayout, efficiencies: np.ndarray, mapping: Span1Map | None = None) -> np.ndarray:
    """Detection efficiency of each bin (module docstring), float32 ``layout.shape``; 0 where every LOR has a gap."""
    sums = pair_sum_sinogram(layout, efficiencies, mapping)
    return (sums * radial_geometric_factors(layout)).astype(np.float32)


def ring_solid_angle_fractions(scanner: ScannerGeometry, z_mm: np.ndarray) -> np.ndarray:
    """Fraction of 4 pi subtended by each ring (axial width = ring spacing) from points on the axis.

    Returns float64 ``(len(z_mm), n_rings)``.
    """
    half = scanner.ring_spacing_mm / 2.0
    dz = scanner.ring_z_mm()[None, :] - np.asarray(z_mm, np.float64)[:, None]
    radius = scanner.radius_mm
    return 0.5 * ((dz + half) / np.hypot(radius, dz + half) - (dz - half) / np.hypot(radius, dz - half))


def crystal_singles_cps(scanner: ScannerGeometry, efficiencies: np.ndarray, z_mm: np.ndarray,
                        slab_activity_bq: np.ndarray, positron_fraction: float) -> np.ndarray:
    """Singles rate of each crystal ``(n_rings, n_crystals)`` from an axial activity profile (module docstring)."""
    photons_per_s = 2.0 * positron_fraction * np.asarray(slab_activity_bq, np.float64)
    per_ring = photons_per_s @ ring_solid_angle_fractions(scanner, z_mm) * SINGLES_DETECTION_PROBABILITY
    return efficiencies * (per_ring / scanner.n_crystals_per_ring)[:, None]


@njit(parallel=True, cache=True)
def _choose_lors(event_bins, uniforms, weights, ring_pairs, members_first, members, c1, c2, mashing,
                 n_views, n_views_u):
    n_bins = c1.shape[1]
    out = np.empty(event_bins.shape[0], np.int64)
    for e in prange(event_bins.shape[0]):
        flat = event_bins[e]
        g = flat // (n_views * n_bins)
        v = (flat // n_bins) % n_views
        b = flat % n_bins
        total = 0.0
        for m in range(members_first[g], members_first[g + 1]):
            r1 = ring_pairs[members[m], 0]
            r2 = ring_pairs[members[m], 1]
            for u in range(v * mashing, (v + 1) * mashing):
                total += weights[r1, c1[u, b]] * weights[r2, c2[u, b]]
        target = uniforms[e] * total
        chosen = -1
        running = 0.0
        for m in range(members_first[g], members_first[g + 1]):
            r1 = ring_pairs[members[m], 0]
            r2 = ring_pairs[members[m], 1]
            for u in range(v * mashing, (v + 1) * mashing):
                w = weights[r1, c1[u, b]] * weights[r2, c2[u, b]]
                if w > 0.0:
                    running += w
                    chosen = (members[m] * n_views_u + u) * n_bins + b
                    if running >= target:
                        break
            if running >= target and chosen >= 0:
                break
        out[e] = chosen
    return out


def choose_span1_addresses(layout: SinogramLayout, event_bins: np.ndarray, uniforms: np.ndarray,
                           crystal_weights: np.ndarray, mapping: Span1Map | None = None) -> np.ndarray:
    """Span-1 list-mode address of each event, drawn among its bin's LORs with probability ``w1 w2``.

    Parameters
    ----------
    event_bins : numpy.ndarray
        Flat index of each event's bin in ``layout.shape``.
    uniforms : numpy.ndarray
        One uniform [0, 1) number per event (from the caller's seeded generator).
    crystal_weights : numpy.ndarray
        ``(n_rings, n_crystals)``: efficiencies (trues, scatter) or singles (randoms).

    Returns
    -------
    numpy.ndarray
        int64 addresses ``s1 * n_views_u * n_bins + u * n_bins + b`` into :meth:`listmode_layout`.
    """
    mapping = span1_map(layout) if mapping is None else mapping
    return _choose_lors(np.ascontiguousarray(event_bins, np.int64), np.ascontiguousarray(uniforms, np.float64),
                        np.ascontiguousarray(crystal_weights, np.float64), mapping.ring_pairs,
                        mapping.members_first, mapping.members, mapping.c1, mapping.c2, mapping.view_mashing,
                        layout.n_views, layout.n_views * layout.view_mashing)
