"""Physical single-scatter truth of the simulator: a direct numerical single-scatter integral.

For a detector pair ``A``, ``B`` the expected single-scatter coincidences are
(Watson, Newport and Casey, in *Three-Dimensional Image Reconstruction in
Radiology and Nuclear Medicine*, 1996; Watson, IEEE TNS 47:1587, 2000;
Ollinger, Phys Med Biol 41:153, 1996)::

    S_AB = int dV_S  mu(S) (1/sigma_511) d sigma_KN/d Omega (theta)
                     cos_A cos_B / (4 pi R_SA^2 R_SB^2)
                     [ I_SA exp(-M_SA - r M_SB) eta_A(511) eta_B(E')
                     + I_SB exp(-M_SB - r M_SA) eta_B(511) eta_A(E') ]

- ``theta``: the Compton angle at ``S`` between the photon arriving from
  ``A``'s side and leaving towards ``B``; ``E' = 511 / (2 - cos theta)`` keV;
- ``I_SX``, ``M_SX``: line integrals of the activity and of mu (511 keV) from
  ``S`` to detector ``X``, computed *exactly* by the simulator's ray tracer
  (:mod:`petrecon.simulate.raytrace`: closed-form chords through the
  phantom's solids, no voxels); ``r = sigma_KN(E') / sigma_KN(511)`` scales mu
  to the scattered energy (Compton scattering dominates in water and PMMA);
- ``eta_X(E) = w(E) (1 - exp(-mu_LSO d / cos_X))``: the energy-window
  acceptance ``w`` with the scanner's Gaussian energy resolution
  (:data:`ENERGY_RESOLUTION`) times the crystal's stopping probability at
  the incidence angle ``cos_X`` (``d`` = :data:`~petrecon.recon.corrections.compton.CRYSTAL_DEPTH_MM` of LSO,
  ``mu_LSO`` = :data:`~petrecon.recon.corrections.compton.LSO_MU_PER_MM`, taken at 511 keV for every energy: the
  stopping of the scattered photons, whose energy is lower, is
  under-estimated by at most ~18 % at normal incidence);
- ``cos_X / R_SX^2``: the solid angle of the crystal face seen from ``S``.

Scatter points are the cells of a regular grid of :attr:`ScatterTruthSettings.point_spacing_mm`
over the whole phantom (outside the field of view too); each carries the
cell *average* of mu and activity (2^3 sub-samples per cell) at its centre.

The trues of the same pair follow the same geometry (Watson 2000):
``T_AB = cos_A cos_B / (4 pi R_AB^2) eta_A(511) eta_B(511) a p`` per unit of
crystal area. The simulator writes a bin's trues ``K n a p`` with ``n`` its
normalisation (:mod:`petrecon.simulate.acquisition`), so its scatter is
``K n S_AB / T_AB x a p``: ``K n`` times the pair sum divided by the LOR's own
trues kernel ``eta_A eta_B cos_A cos_B / R^2``. The ratio of scatter to trues
is the physical one, with no fitted scale. ``S`` is evaluated at the bin's mean
LOR, interpolated multilinearly in (z1, angle1, z2, angle2) from a detector
grid (every ``crystal_step``-th crystal, ``n_axial_detectors`` axial
positions). Only single scatter is modelled;
``multiple_scatter_factor`` scales the result for callers who want to add a
documented share of multiple scatter (1: none).

This model is independent of the reconstruction's scatter estimate
(:mod:`petrecon.recon.corrections.scatter`): exact chords instead of sampled
voxel line integrals, cell-averaged scatter points on a finer grid, the
crystal stopping probability by incidence, the simulator's own
interpolation. It shares only the Klein-Nishina formulas
(:mod:`petrecon.recon.corrections.compton`), which are physics, not estimate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.recon.corrections.compton import (
    ELECTRON_REST_ENERGY_KEV, compton_angle_tables, crystal_stopping_probability, window_efficiency,
)
from petrecon.simulate.phantom import PackedPhantom
from petrecon.simulate.raytrace import line_integrals, voxel_means

ENERGY_RESOLUTION = {"mmr": 0.145, "mct": 0.115, "mct-tof": 0.115}
"""FWHM energy resolution at 511 keV: mMR 14.5 % (Delso et al., J Nucl Med 52:1914, 2011), mCT 11.5 %
(Jakoby et al., Phys Med Biol 56:2375, 2011); other scanners :data:`DEFAULT_ENERGY_RESOLUTION`."""
DEFAULT_ENERGY_RESOLUTION = 0.15
"""A typical LSO block detector (unverified per scanner: pass the measured figure when known)."""
ANGLE_TABLE_SIZE = 4096
MAX_TRANSAXIAL_DETECTORS = 64
"""Default detector sampling: >= 5.6 degrees apart on every ring (with 28 on the 112-crystal test ring, linear
interpolation over-estimates the steep fall-off at the sinogram edge: +13 % in the tails; 56: +2.4 %)."""
CHUNK_LORS = 2_000_000
"""LORs per chunk of views in the interpolation (bounds the endpoint memory)."""


@dataclass(frozen=True)
class ScatterTruthSettings:
    """Sampling of the single-scatter truth.

    Attributes
    ----------
    point_spacing_mm : float
        Spacing of the scatter-point grid (cell-averaged mu and activity).
    crystal_step : int or None
        Every ``crystal_step``-th crystal of a ring is a detector of the integral (1: every crystal);
        None: the smallest step leaving at most :data:`MAX_TRANSAXIAL_DETECTORS` per ring.
    n_axial_detectors : int
        Axial detector positions from the first to the last ring (at most one per ring).
    energy_resolution : float or None
        FWHM at 511 keV as a fraction (None: :data:`ENERGY_RESOLUTION` of the scanner).
    multiple_scatter_factor : float
        Multiplies the single scatter (1: single scatter only).
    axial_margin_mm : float or None
        Scatter points farther than this beyond the first or last ring are left out; None: the ring
        radius. From there both detectors lie within 45 degrees of the same direction, so a scattered
        photon reaches the second one only by turning more than 90 degrees (below 256 keV, outside every
        Biograph window): on a 306 mm cylinder in the 32 mm test scanner the sum is unchanged in float32
        and the integral 3.8 times faster.
    """

    point_spacing_mm: float = 12.0
    crystal_step: int | None = None
    n_axial_detectors: int = 8
    energy_resolution: float | None = None
    multiple_scatter_factor: float = 1.0
    axial_margin_mm: float | None = None


def scatter_truth_sinogram(layout: SinogramLayout, packed: PackedPhantom, activity: np.ndarray,
                           mu_per_mm: np.ndarray, normalisation: np.ndarray, scale: float,
                           settings: ScatterTruthSettings = ScatterTruthSettings()) -> np.ndarray:
    """Expected single-scatter counts per bin (module docstring), float32 ``layout.shape``.

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF layout.
    packed : PackedPhantom
        The phantom's solids.
    activity, mu_per_mm : numpy.ndarray
        Per region: activity (any unit, the trues' ``p`` unit) and mu at 511 keV (mm^-1).
    normalisation : numpy.ndarray
        The simulator's normalisation of each bin (the trues' efficiency).
    scale : float
        ``K``: the trues' counts per unit of normalisation x line integral.
    settings : ScatterTruthSettings
        Sampling.

    Examples
    --------
    A 60 mm water cylinder in the test scanner: scatter is positive where LORs cross it.

    >>> from petrecon.geometry import default_layout
    >>> from petrecon.simulate.phantom import phantom_from_dict
    >>> layout = default_layout("test")
    >>> phantom = phantom_from_dict({"regions": [{"activity": 1.0, "material": "water", "shapes": [
    ...     {"type": "cylinder", "centre_mm": [0, 0, 0], "radius_mm": 30.0, "length_mm": 30.0}]}]})
    >>> s = scatter_truth_sinogram(layout, phantom.packed(), np.ones(1), np.array([0.0096]),
    ...                            np.ones(layout.shape), 1.0, ScatterTruthSettings(point_spacing_mm=10.0))
    >>> bool(s[0, 0, 32] > 0)
    True
    """
    settings = _resolved(layout, settings)
    scanner = layout.scanner
    resolution = settings.energy_resolution or ENERGY_RESOLUTION.get(scanner.name, DEFAULT_ENERGY_RESOLUTION)
    points, weights = _scatter_points(packed, activity, mu_per_mm, settings.point_spacing_mm)
    margin = scanner.radius_mm if settings.axial_margin_mm is None else settings.axial_margin_mm
    keep = np.abs(points[:, 2] - scanner.ring_z_mm().mean()) <= np.ptp(scanner.ring_z_mm()) / 2 + margin
    points, weights = np.ascontiguousarray(points[keep]), weights[keep]
    detectors, normals, axial_index = _detectors(layout, settings)
    if len(points) == 0:
        return np.zeros(layout.shape, np.float32)
    legs = _legs(points, detectors, normals, packed, activity, mu_per_mm)
    cos_table, tables = compton_angle_tables(scanner.energy_window_kev, resolution, ANGLE_TABLE_SIZE)
    n_transaxial = scanner.n_crystals_per_ring // settings.crystal_step
    pair_a, pair_b = _pairs(layout, settings.crystal_step, n_transaxial, len(axial_index))
    values = np.zeros(len(pair_a), np.float64)
    _pair_integrals(weights, *legs, cos_table[0], cos_table[1] - cos_table[0], tables, pair_a, pair_b, values)
    grid = np.zeros((len(detectors), len(detectors)), np.float64)
    grid[pair_a, pair_b] = values
    grid[pair_b, pair_a] = values
    grid = grid.reshape(len(axial_index), n_transaxial, len(axial_index), n_transaxial)
    window_511 = float(window_efficiency(ELECTRON_REST_ENERGY_KEV, scanner.energy_window_kev, resolution))
    per_bin = _interpolate_to_bins(grid, layout, axial_index, settings.crystal_step, window_511)
    return (per_bin * normalisation * (scale * settings.multiple_scatter_factor)).astype(np.float32)


def _resolved(layout: SinogramLayout, settings: ScatterTruthSettings) -> ScatterTruthSettings:
    """The settings with the default crystal step filled in, after checking them."""
    scanner = layout.scanner
    if settings.crystal_step is None:
        n = scanner.n_crystals_per_ring
        step = next(k for k in range(1, n + 1) if n % k == 0 and n // k <= MAX_TRANSAXIAL_DETECTORS)
        settings = dataclasses.replace(settings, crystal_step=step)
    if layout.use_tof:
        raise ParameterError("the single-scatter truth is computed for non-TOF layouts only")
    if settings.crystal_step < 1 or scanner.n_crystals_per_ring % settings.crystal_step:
        raise ParameterError(f"crystal_step {settings.crystal_step} must divide {scanner.n_crystals_per_ring}")
    if settings.n_axial_detectors < 2:
        raise ParameterError(f"n_axial_detectors must be >= 2, got {settings.n_axial_detectors}")
    if not settings.point_spacing_mm > 0 or not settings.multiple_scatter_factor >= 0:
        raise ParameterError("point_spacing_mm must be > 0 and multiple_scatter_factor >= 0")
    return settings


def _scatter_points(packed: PackedPhantom, activity: np.ndarray, mu_per_mm: np.ndarray,
                    spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres with mu > 0 and their weight ``mu dV`` (mm^2)."""
    low, high = packed.bounding_box_mm()
    shape = np.maximum(1, np.ceil((high - low) / spacing_mm)).astype(int)
    origin = (low + high) / 2 - (shape - 1) / 2 * spacing_mm
    values = np.zeros((len(mu_per_mm) + 1, 2))
    values[:-1, 0], values[:-1, 1] = activity, mu_per_mm
    means = voxel_means(packed, values, shape, origin, (spacing_mm,) * 3, 2)
    cells = np.argwhere(means[..., 1] > 0)
    points = origin + cells * spacing_mm
    mu = means[..., 1][tuple(cells.T)]
    return np.ascontiguousarray(points, np.float64), (mu * spacing_mm**3).astype(np.float64)


def _detectors(layout: SinogramLayout, settings: ScatterTruthSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector centres and inward normals ``(n_axial * n_transaxial, 3)``, and their fractional ring indices."""
    scanner = layout.scanner
    n_axial = min(settings.n_axial_detectors, scanner.n_rings)
    rings = np.linspace(0.0, scanner.n_rings - 1.0, n_axial)
    z = scanner.ring_z_mm()[0] + rings * scanner.ring_spacing_mm
    xy = scanner.crystal_xy_mm()[:: settings.crystal_step]
    positions = np.concatenate([np.broadcast_to(xy, (n_axial,) + xy.shape),
                                np.broadcast_to(z[:, None, None], (n_axial, len(xy), 1))], axis=-1).reshape(-1, 3)
    inward = np.concatenate([-xy / scanner.radius_mm, np.zeros((len(xy), 1))], axis=1)
    normals = np.broadcast_to(inward, (n_axial,) + inward.shape).reshape(-1, 3)
    return np.ascontiguousarray(positions), np.ascontiguousarray(normals), rings


def _legs(points, detectors, normals, packed, activity, mu_per_mm):
    """Per (detector, point), float32 ``(n_detectors, n_points)``: solid-angle factor cos/R^2, stopping
    probability, mu and activity integrals, and the unit direction's three components."""
    integrals = line_integrals(points[None, :, :], detectors[:, None, :], packed,
                               np.stack([mu_per_mm, activity], axis=1))
    offset = detectors[:, None, :] - points[None, :, :]
    distance = np.linalg.norm(offset, axis=-1)
    direction = offset / distance[..., None]
    cos_incidence = np.abs(np.einsum("dpk,dk->dp", direction, normals))
    stopping = crystal_stopping_probability(cos_incidence)
    solid = cos_incidence / distance**2
    arrays = (solid, stopping, integrals[..., 0], integrals[..., 1], direction[..., 0], direction[..., 1],
              direction[..., 2])
    return tuple(np.ascontiguousarray(a, np.float32) for a in arrays)


def _pairs(layout: SinogramLayout, crystal_step: int, n_transaxial: int, n_axial: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector pairs ``a < b`` whose transaxial separation falls within the layout's radial bins (plus a margin)."""
    n_crystals = layout.scanner.n_crystals_per_ring
    crystals = np.arange(n_transaxial) * crystal_step
    separation = (crystals[None, :] - crystals[:, None]) % n_crystals
    in_fov = np.abs(n_crystals // 2 - separation) <= layout.n_radial_bins // 2 + 2 * crystal_step
    detector = np.arange(n_axial * n_transaxial)
    a, b = np.meshgrid(detector, detector, indexing="ij")
    keep = (a < b) & in_fov[a % n_transaxial, b % n_transaxial]
    return a[keep].astype(np.int64), b[keep].astype(np.int64)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_integrals(weights, solid, stopping, mu_integral, activity_integral, ux, uy, uz, cos_first, cos_step,
                    tables, pair_a, pair_b, out):  # pragma: no cover - numba
    """out[p] = sum over scatter points of the module docstring's integrand (without 4 pi) for pair p."""
    n_table = tables.shape[1]
    for p in numba.prange(pair_a.shape[0]):
        a, b = pair_a[p], pair_b[p]
        total = 0.0
        for s in range(weights.shape[0]):
            cos_theta = -(ux[a, s] * ux[b, s] + uy[a, s] * uy[b, s] + uz[a, s] * uz[b, s])
            position = (cos_theta - cos_first) / cos_step
            index = min(max(int(position), 0), n_table - 2)
            frac = min(max(position - index, 0.0), 1.0)
            angular = tables[0, index] * (1.0 - frac) + tables[0, index + 1] * frac
            ratio = tables[1, index] * (1.0 - frac) + tables[1, index + 1] * frac
            m_a, m_b = mu_integral[a, s], mu_integral[b, s]
            # the scattered photon's stopping is taken at 511 keV (module docstring)
            paths = (activity_integral[a, s] * math.exp(-m_a - ratio * m_b)
                     + activity_integral[b, s] * math.exp(-m_b - ratio * m_a))
            total += weights[s] * angular * solid[a, s] * solid[b, s] * stopping[a, s] * stopping[b, s] * paths
        out[p] = total


def _interpolate_to_bins(grid: np.ndarray, layout: SinogramLayout, axial_index: np.ndarray, crystal_step: int,
                         window_511: float) -> np.ndarray:
    """Each bin's scatter per unit of its trues' efficiency: the pair sum at its mean LOR (multilinear in
    z1, angle1, z2, angle2) divided by the LOR's own trues kernel ``eta_A eta_B cos_A cos_B / R^2``."""
    scanner = layout.scanner
    out = np.empty(layout.shape, np.float64)
    views_per_chunk = max(1, CHUNK_LORS // (layout.n_sinograms * layout.n_radial_bins))

    crystal0_rad = float(scanner.crystal_angles_rad()[0])

    def angle_index(points):
        angle = np.mod(np.arctan2(points[..., 1], points[..., 0]) - crystal0_rad, 2 * np.pi)
        return angle / (2 * np.pi) * scanner.n_crystals_per_ring / crystal_step

    def axial_position(points):
        ring = (points[..., 2] - scanner.ring_z_mm()[0]) / scanner.ring_spacing_mm
        return np.interp(ring, axial_index, np.arange(len(axial_index)))

    def detection(end, direction):
        inward = -end[..., :2] / np.linalg.norm(end[..., :2], axis=-1, keepdims=True)
        cos_incidence = np.abs(np.sum(direction[..., :2] * inward, axis=-1))
        return cos_incidence * window_511 * crystal_stopping_probability(cos_incidence)

    for first in range(0, layout.n_views, views_per_chunk):
        views = np.arange(first, min(first + views_per_chunk, layout.n_views))
        xstart, xend = (x.astype(np.float64) for x in layout.lor_endpoints_mm(views=views))
        chunk = np.empty(xstart.shape[:-1], np.float64)
        _multilinear(grid, axial_position(xstart), angle_index(xstart), axial_position(xend), angle_index(xend),
                     grid.shape[1], chunk)
        length2 = np.sum((xend - xstart) ** 2, axis=-1)
        direction = (xend - xstart) / np.sqrt(length2)[..., None]
        kernel = detection(xstart, direction) * detection(xend, direction) / length2
        out[:, views[0]:views[-1] + 1] = chunk / kernel
    return out


@numba.njit(parallel=True, cache=True)
def _multilinear(grid, z1, t1, z2, t2, n_transaxial, out):  # pragma: no cover - numba
    n_axial = grid.shape[0]
    for s in numba.prange(out.shape[0]):
        for v in range(out.shape[1]):
            for r in range(out.shape[2]):
                i1 = min(int(z1[s, v, r]), n_axial - 2) if n_axial > 1 else 0
                i2 = min(int(z2[s, v, r]), n_axial - 2) if n_axial > 1 else 0
                w1, w2 = z1[s, v, r] - i1, z2[s, v, r] - i2
                j1, j2 = int(math.floor(t1[s, v, r])), int(math.floor(t2[s, v, r]))
                u1, u2 = t1[s, v, r] - j1, t2[s, v, r] - j2
                total = 0.0
                for da in range(2):
                    wa = w1 if da else 1.0 - w1
                    for db in range(2):
                        wb = w2 if db else 1.0 - w2
                        for dt in range(2):
                            wt = u1 if dt else 1.0 - u1
                            for du in range(2):
                                wu = u2 if du else 1.0 - u2
                                total += (wa * wb * wt * wu * grid[i1 + da, (j1 + dt) % n_transaxial, i2 + db,
                                                                   (j2 + du) % n_transaxial])
                out[s, v, r] = total
