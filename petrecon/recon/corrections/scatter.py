"""Single-scatter simulation (SSS) and tail fitting: the scatter term of the additive sinogram.

Model (Watson, IEEE TNS 47:1587, 2000; Tsoumpas et al., IEEE NSS 2004): for
detectors ``A``, ``B`` and scatter points ``S`` (voxels of a coarse grid with
``mu > mu_threshold``),

    S_AB = sum_S  mu(S) dV  (1/sigma_c) d sigma_c/d Omega (theta)
                  cos_A cos_B / (R_SA^2 R_SB^2)
                  eps(511) eps(E') [ I_SA exp(-M_SA - r M_SB) + I_SB exp(-M_SB - r M_SA) ]

where ``theta`` is the scattering angle at ``S`` between the photon arriving
from one detector's side and leaving towards the other, ``E' = 511 / (2 - cos
theta)`` keV, ``I`` and ``M`` are line integrals of activity and of mu at
511 keV from ``S`` to a detector, ``r = sigma_KN(E') / sigma_KN(511)`` scales
mu to the scattered energy (Compton dominates in tissue at these energies),
``eps`` is the energy-window acceptance (:mod:`.compton`), ``cos`` the
incidence on the detector face and each leg is weighted by the crystal's
stopping probability at its incidence (:func:`.compton.crystal_stopping_probability`),
divided by that of the bin's own LOR (the normalisation holds the trues'
detection at that incidence). Without the stopping terms the tail-fitted
estimate was 7.6 % low in the body of the NEMA IEC phantom on an mMR (bowl-shaped
across the radial bins, with a whole-object mu and activity). Detector area and 4 pi factors are omitted:
the estimate is in arbitrary units until :func:`fit_scatter_tails` scales it
to the data outside the body.

Computed on a coarse image grid (``scatter_voxel_mm``) and a subset of
detectors (every ``crystal_step``-th crystal, ``n_axial_detectors`` rings
spread over the axial extent), then interpolated multilinearly in (ring1,
crystal1, ring2, crystal2) onto every bin: scatter is smooth, so this costs
little accuracy (Watson 2000). Only single scatter is modelled; multiple
scatter (~20 % of scatter in a torso) is absorbed by the tail fit, whose
scale absorbs any uniform shortfall. Non-TOF layouts only.

The two kernels (line integrals from scatter points to detectors, the sum
over scatter points per detector pair) are independent per detector or pair:
the formulation maps one-to-one onto GPU threads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numba
import numpy as np

from petrecon.attenuation.resample import resample_to_grid, smooth_to_fwhm
from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.recon.corrections.compton import (
    CRYSTAL_DEPTH_MM, LSO_MU_PER_MM, compton_angle_tables, crystal_stopping_probability,
)
from petrecon.volume import ImageGrid, Volume

MM_PER_CM = 10.0
ANGLE_TABLE_SIZE = 2048
MIN_TRANSAXIAL_DETECTORS = 56
"""Default transaxial sampling of the scatter detectors: at most 6.4 degrees apart."""


@dataclass(frozen=True)
class ScatterSettings:
    """Sampling and physics parameters of the single-scatter simulation.

    Attributes
    ----------
    scatter_voxel_mm : float
        Voxel size of the coarse grid of scatter points and line integrals.
    crystal_step : int or None
        Every ``crystal_step``-th crystal of a ring is a scatter detector
        (must divide the crystals per ring). None: the largest step that
        keeps at least :data:`MIN_TRANSAXIAL_DETECTORS` per ring (mMR: 9, mCT:
        12, Biograph 64: 8, the 112-crystal test ring: 2). A fixed step of 8
        leaves 14 detectors (26 degrees apart) on a small ring, where the
        interpolation misses the peak of the scatter: -39 % in the body
        after the tail fit, against -12 % with 28 and -1.8 % with 56
        detectors (tests/test_corrections_scatter.py, against the
        simulator's single-scatter integral; measured before the stopping
        terms, with which 56 detectors give +6.3 %).
    n_axial_detectors : int
        Detector rings, spread evenly from the first to the last ring.
    mu_threshold_per_cm : float
        Voxels with less mu are not scatter points (air, lung below 0.01 cm^-1).
    energy_resolution : float
        FWHM energy resolution at 511 keV (fraction). 0.15 is a typical LSO
        block detector; not in the scanner registry (unverified per scanner).
    """

    scatter_voxel_mm: float = 12.0
    crystal_step: int | None = None
    n_axial_detectors: int = 9
    mu_threshold_per_cm: float = 0.01
    energy_resolution: float = 0.15


@dataclass(frozen=True)
class ScatterEstimate:
    """Scatter in counts (the data domain, efficiencies included) and the fitted scale per sinogram."""

    sinogram: np.ndarray
    scale: np.ndarray


def single_scatter(activity: Volume, mu: Volume, layout: SinogramLayout,
                   settings: ScatterSettings = ScatterSettings()) -> np.ndarray:
    """Unscaled single-scatter sinogram (float32, the layout's shape, arbitrary units).

    Parameters
    ----------
    activity : Volume
        Current activity estimate (Bq/ml or any proportional unit), e.g. on the reconstruction grid.
    mu : Volume
        mu-map at 511 keV in cm^-1, on any grid: best one that covers the object beyond the axial
        field of view (a CT). Scatter points fill the mu-map's extent up to one ring radius beyond the
        end rings (farther ones need > 90 degree scattering); where the activity's grid ends axially its
        edge planes are replicated over the matter of the mu-map (the usual extrapolation of the
        activity outside the field of view). On the NEMA IEC phantom in a 65 mm short mMR, limiting the
        estimate to the reconstruction grid made it 7 % low in the body.
    layout : SinogramLayout
        Non-TOF layout.
    settings : ScatterSettings
        Sampling and physics parameters.
    """
    if layout.use_tof:
        raise GeometryError("single scatter simulation supports non-TOF layouts only")
    scanner = layout.scanner
    if settings.crystal_step is None:
        n = scanner.n_crystals_per_ring
        step = max(k for k in range(1, n + 1) if n % k == 0 and n // k >= min(n, MIN_TRANSAXIAL_DETECTORS))
        settings = dataclasses.replace(settings, crystal_step=step)
    if settings.crystal_step < 1 or scanner.n_crystals_per_ring % settings.crystal_step:
        raise ParameterError(f"crystal_step {settings.crystal_step} must divide {scanner.n_crystals_per_ring}")
    if settings.n_axial_detectors < 2 or settings.scatter_voxel_mm <= 0:
        raise ParameterError("n_axial_detectors must be >= 2 and scatter_voxel_mm > 0")
    reach_mm = np.ptp(scanner.ring_z_mm()) / 2 + scanner.radius_mm
    grid = _coarse_grid(mu.grid, settings.scatter_voxel_mm, (-reach_mm, reach_mm))
    mu_coarse = resample_to_grid(smooth_to_fwhm(mu, settings.scatter_voxel_mm), grid).data / MM_PER_CM
    extended = _extend_axially(activity, grid)
    activity_coarse = resample_to_grid(smooth_to_fwhm(extended, settings.scatter_voxel_mm), grid).data
    activity_coarse[mu_coarse <= 0] = 0.0
    detectors, normals, axial_rings = _detectors(layout, settings)
    points = np.argwhere(mu_coarse > settings.mu_threshold_per_cm / MM_PER_CM)
    if points.size == 0:
        return np.zeros(layout.shape, np.float32)
    point_mm = (np.asarray(grid.origin_mm) + points * np.asarray(grid.voxel_size_mm)).astype(np.float32)
    point_weight = (mu_coarse[tuple(points.T)] * np.prod(grid.voxel_size_mm)).astype(np.float32)
    volumes, origin = _crop_to_support(np.stack([mu_coarse, activity_coarse]), grid)
    integrals = np.empty((2, len(point_mm), len(detectors)), np.float32)
    _line_integrals(volumes, origin, np.asarray(grid.voxel_size_mm, np.float32), point_mm, detectors, integrals)
    cos_table, tables = compton_angle_tables(scanner.energy_window_kev, settings.energy_resolution, ANGLE_TABLE_SIZE)
    n_transaxial = scanner.n_crystals_per_ring // settings.crystal_step
    pairs = np.zeros((len(detectors), len(detectors)), np.float32)
    _pair_sums(point_mm, point_weight, detectors, normals, integrals[0], integrals[1], cos_table[0],
               cos_table[1] - cos_table[0], tables, _pairs_in_fov(layout, settings.crystal_step, n_transaxial),
               LSO_MU_PER_MM * CRYSTAL_DEPTH_MM, pairs)
    coarse = pairs.reshape(settings.n_axial_detectors, n_transaxial, settings.n_axial_detectors, n_transaxial)
    scatter = _interpolate_to_layout(coarse, layout, axial_rings, settings.crystal_step)
    return scatter / _lor_stopping(layout)[None, None, :]


def _lor_stopping(layout: SinogramLayout) -> np.ndarray:
    """Both crystals' stopping probability for the bin's own LOR, per radial bin (in-plane incidence
    ``pi t / N`` of a non arc-corrected bin; the normalisation carries the trues' detection, the
    scatter sum each leg's at its own incidence, so the bin's is divided out)."""
    offset = np.arange(layout.n_radial_bins) - layout.n_radial_bins // 2
    incidence = np.cos(np.pi * offset / layout.scanner.n_crystals_per_ring)
    return (crystal_stopping_probability(incidence) ** 2).astype(np.float32)


def fit_scatter_tails(scatter: np.ndarray, prompts: np.ndarray, randoms: np.ndarray, normalisation: np.ndarray,
                      attenuation_factors: np.ndarray, *, tail_attenuation: float = 0.95,
                      axial_window: int = 5) -> ScatterEstimate:
    """Scale an unscaled scatter sinogram to the data in the tails (LORs that miss the body).

    In the tails (``attenuation_factors > tail_attenuation``) the prompts hold
    only randoms and scatter: ``E[prompts - randoms] = s * normalisation * scatter``.
    The maximum-likelihood scale of a Poisson model with one unknown factor is
    the ratio of sums; it is taken per sinogram over a window of
    ``axial_window`` neighbouring axial positions of the same segment (sums of
    numerators and denominators), which keeps per-plane differences and
    averages out the noise of a single sinogram's tails.

    Returns
    -------
    ScatterEstimate
        ``sinogram = s * normalisation * scatter`` in counts, and ``scale`` per sinogram.
    """
    shapes = {a.shape for a in (scatter, prompts, randoms, normalisation, attenuation_factors)}
    if len(shapes) != 1:
        raise GeometryError(f"scatter, prompts, randoms, normalisation and attenuation factors differ in shape: {shapes}")
    if not 0 < tail_attenuation < 1 or axial_window < 1:
        raise ParameterError("tail_attenuation must be in (0, 1) and axial_window >= 1")
    modelled = np.asarray(normalisation, np.float64) * scatter
    tails = (np.asarray(attenuation_factors) > tail_attenuation) & (modelled > 0)
    excess = np.where(tails, np.asarray(prompts, np.float64) - randoms, 0.0).sum(axis=(-2, -1))
    expected = np.where(tails, modelled, 0.0).sum(axis=(-2, -1))
    if expected.sum() <= 0:
        raise ParameterError("no tail bins: no LOR misses the body with attenuation factor above "
                             f"{tail_attenuation}, or the scatter estimate is zero there")
    kernel = np.ones(axial_window)
    scale = np.convolve(excess, kernel, "same") / np.maximum(np.convolve(expected, kernel, "same"), 1e-30)
    global_scale = excess.sum() / expected.sum()
    scale = np.where(np.convolve(expected, kernel, "same") > 0, scale, global_scale)
    scale = np.clip(scale, 0.0, None).astype(np.float32)
    return ScatterEstimate((modelled * scale[:, None, None]).astype(np.float32), scale)


def _coarse_grid(grid: ImageGrid, voxel_mm: float, z_limits_mm: tuple[float, float]) -> ImageGrid:
    """A grid of about ``voxel_mm`` over ``grid``'s extent, cut axially to ``z_limits_mm``."""
    spacing = np.asarray(grid.voxel_size_mm)
    low = np.asarray(grid.origin_mm) - spacing / 2
    high = low + np.asarray(grid.shape) * spacing
    low[2], high[2] = max(low[2], z_limits_mm[0]), min(high[2], z_limits_mm[1])
    if high[2] <= low[2]:
        raise GeometryError(f"the mu-map (z {low[2]:.0f} to {high[2]:.0f} mm) misses the scanner's field of view")
    extent = high - low
    shape = np.maximum(1, np.ceil(extent / voxel_mm)).astype(int)
    size = extent / shape
    origin = low + size / 2
    return ImageGrid(tuple(shape), tuple(size), tuple(origin))


def _extend_axially(activity: Volume, grid: ImageGrid) -> Volume:
    """``activity`` with its first and last planes replicated to cover ``grid``'s axial extent."""
    dz = activity.grid.voxel_size_mm[2]
    first = activity.grid.origin_mm[2]
    last = first + (activity.grid.shape[2] - 1) * dz
    low = grid.origin_mm[2] - grid.voxel_size_mm[2]
    high = grid.origin_mm[2] + grid.shape[2] * grid.voxel_size_mm[2]
    before = max(0, int(np.ceil((first - low) / dz)))
    after = max(0, int(np.ceil((high - last) / dz)))
    if before == after == 0:
        return activity
    data = np.pad(np.asarray(activity.data, np.float32), ((0, 0), (0, 0), (before, after)), mode="edge")
    origin = (activity.grid.origin_mm[0], activity.grid.origin_mm[1], first - before * dz)
    return Volume(data, ImageGrid(data.shape, activity.grid.voxel_size_mm, origin))


def _crop_to_support(volumes: np.ndarray, grid: ImageGrid) -> tuple[np.ndarray, np.ndarray]:
    """The stacked volumes cut to the box where any is non-zero (plus one voxel), and that box's origin (mm)."""
    support = np.argwhere(np.any(volumes != 0, axis=0))
    if support.size == 0:
        return volumes.astype(np.float32), np.asarray(grid.origin_mm, np.float32)
    low = np.maximum(support.min(axis=0) - 1, 0)
    high = np.minimum(support.max(axis=0) + 2, volumes.shape[1:])
    cropped = volumes[:, low[0]:high[0], low[1]:high[1], low[2]:high[2]]
    origin = np.asarray(grid.origin_mm) + low * np.asarray(grid.voxel_size_mm)
    return np.ascontiguousarray(cropped, np.float32), origin.astype(np.float32)


def _detectors(layout: SinogramLayout, settings: ScatterSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector positions and inward normals ``(n_axial * n_transaxial, 3)`` and their fractional ring indices."""
    scanner = layout.scanner
    axial_rings = np.linspace(0, scanner.n_rings - 1, settings.n_axial_detectors)
    z = scanner.ring_z_mm()[0] + axial_rings * scanner.ring_spacing_mm
    xy = scanner.crystal_xy_mm()[:: settings.crystal_step]
    positions = np.concatenate([np.broadcast_to(xy, (len(z),) + xy.shape),
                                np.broadcast_to(z[:, None, None], (len(z), len(xy), 1))], axis=-1)
    normals = np.concatenate([-xy / np.linalg.norm(xy, axis=1, keepdims=True), np.zeros((len(xy), 1))], axis=1)
    normals = np.broadcast_to(normals, positions.shape)
    return (positions.reshape(-1, 3).astype(np.float32), np.ascontiguousarray(normals.reshape(-1, 3), np.float32),
            axial_rings)


@numba.njit(cache=True, fastmath=True)
def _trilinear(volume, origin, spacing, x, y, z):  # pragma: no cover - numba
    fx = (x - origin[0]) / spacing[0]
    fy = (y - origin[1]) / spacing[1]
    fz = (z - origin[2]) / spacing[2]
    nx, ny, nz = volume.shape
    if fx < -1.0 or fy < -1.0 or fz < -1.0 or fx > nx or fy > ny or fz > nz:
        return 0.0
    i0, j0, k0 = int(math.floor(fx)), int(math.floor(fy)), int(math.floor(fz))
    wx, wy, wz = fx - i0, fy - j0, fz - k0
    total = 0.0
    for di in range(2):
        i = i0 + di
        if i < 0 or i >= nx:
            continue
        for dj in range(2):
            j = j0 + dj
            if j < 0 or j >= ny:
                continue
            for dk in range(2):
                k = k0 + dk
                if k < 0 or k >= nz:
                    continue
                weight = (wx if di else 1.0 - wx) * (wy if dj else 1.0 - wy) * (wz if dk else 1.0 - wz)
                total += weight * volume[i, j, k]
    return total


@numba.njit(parallel=True, cache=True, fastmath=True)
def _line_integrals(volumes, origin, spacing, points, detectors, out):  # pragma: no cover - numba
    """out[v, s, d] = integral of volumes[v] from point s to detector d (midpoint rule, half-voxel steps)."""
    step = 0.5 * min(spacing[0], min(spacing[1], spacing[2]))
    n_volumes = volumes.shape[0]
    for s in numba.prange(points.shape[0]):
        for d in range(detectors.shape[0]):
            dx = detectors[d, 0] - points[s, 0]
            dy = detectors[d, 1] - points[s, 1]
            dz = detectors[d, 2] - points[s, 2]
            length = math.sqrt(dx * dx + dy * dy + dz * dz)
            n_steps = int(length / step) + 1
            dt = length / n_steps
            for v in range(n_volumes):
                out[v, s, d] = 0.0
            for i in range(n_steps):
                t = (i + 0.5) / n_steps
                x, y, z = points[s, 0] + t * dx, points[s, 1] + t * dy, points[s, 2] + t * dz
                for v in range(n_volumes):
                    out[v, s, d] += dt * _trilinear(volumes[v], origin, spacing, x, y, z)


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pair_sums(points, weights, detectors, normals, attenuation, emission, cos_first, cos_step, tables, in_fov,
               stopping_length, out):  # pragma: no cover - numba
    """out[a, b] = out[b, a] = the SSS sum over scatter points, for the transaxial pairs in the field of view."""
    n_table = tables.shape[1]
    n_transaxial = in_fov.shape[0]
    for a in numba.prange(detectors.shape[0]):
        for b in range(a + 1, detectors.shape[0]):
            total = 0.0
            if in_fov[a % n_transaxial, b % n_transaxial]:
                for s in range(points.shape[0]):
                    ax, ay, az = detectors[a, 0] - points[s, 0], detectors[a, 1] - points[s, 1], detectors[a, 2] - points[s, 2]
                    bx, by, bz = detectors[b, 0] - points[s, 0], detectors[b, 1] - points[s, 1], detectors[b, 2] - points[s, 2]
                    da2 = ax * ax + ay * ay + az * az
                    db2 = bx * bx + by * by + bz * bz
                    inverse = 1.0 / math.sqrt(da2 * db2)
                    cos_theta = -(ax * bx + ay * by + az * bz) * inverse
                    position = (cos_theta - cos_first) / cos_step
                    index = min(max(int(position), 0), n_table - 2)
                    frac = min(max(position - index, 0.0), 1.0)
                    angular = tables[0, index] * (1.0 - frac) + tables[0, index + 1] * frac
                    ratio = tables[1, index] * (1.0 - frac) + tables[1, index + 1] * frac
                    cos_a = abs(ax * normals[a, 0] + ay * normals[a, 1] + az * normals[a, 2]) / math.sqrt(da2)
                    cos_b = abs(bx * normals[b, 0] + by * normals[b, 1] + bz * normals[b, 2]) / math.sqrt(db2)
                    m_a, m_b = attenuation[s, a], attenuation[s, b]
                    paths = (emission[s, a] * math.exp(-m_a - ratio * m_b) + emission[s, b] * math.exp(-m_b - ratio * m_a))
                    stop = (1.0 - math.exp(-stopping_length / max(cos_a, 1e-6))) * (
                        1.0 - math.exp(-stopping_length / max(cos_b, 1e-6)))
                    total += weights[s] * angular * cos_a * cos_b / (da2 * db2) * paths * stop
            out[a, b] = total
            out[b, a] = total


def _pairs_in_fov(layout: SinogramLayout, crystal_step: int, n_transaxial: int) -> np.ndarray:
    """Transaxial detector pairs whose LOR lies within the radial bins (plus an interpolation margin)."""
    n_crystals = layout.scanner.n_crystals_per_ring
    crystals = np.arange(n_transaxial) * crystal_step
    difference = (crystals[None, :] - crystals[:, None]) % n_crystals
    return np.abs(n_crystals // 2 - difference) <= layout.n_radial_bins // 2 + 2 * crystal_step


def _interpolate_to_layout(coarse: np.ndarray, layout: SinogramLayout, axial_rings: np.ndarray,
                           crystal_step: int) -> np.ndarray:
    scanner = layout.scanner
    z1, z2 = layout.sinogram_axial_info()
    ring_of = lambda z: (z - scanner.ring_z_mm()[0]) / scanner.ring_spacing_mm  # noqa: E731
    axial_step = axial_rings[1] - axial_rings[0]
    axial1 = (ring_of(z1) / axial_step).astype(np.float32)
    axial2 = (ring_of(z2) / axial_step).astype(np.float32)
    c1, c2 = layout.view_crystals()
    mashing_centre = (layout.view_mashing - 1) / 2.0
    transaxial1 = ((c1[:, 0, :] + mashing_centre) / crystal_step).astype(np.float32)
    transaxial2 = ((c2[:, 0, :] + mashing_centre) / crystal_step).astype(np.float32)
    out = np.empty(layout.shape, np.float32)
    _interpolate(np.ascontiguousarray(coarse, np.float32), axial1, axial2, transaxial1, transaxial2, out)
    return out


@numba.njit(parallel=True, cache=True)
def _interpolate(coarse, axial1, axial2, transaxial1, transaxial2, out):  # pragma: no cover - numba
    n_axial, n_transaxial = coarse.shape[0], coarse.shape[1]
    for s in numba.prange(out.shape[0]):
        a1 = min(max(axial1[s], 0.0), n_axial - 1.0)
        a2 = min(max(axial2[s], 0.0), n_axial - 1.0)
        i1, i2 = min(int(a1), n_axial - 2), min(int(a2), n_axial - 2)
        w1, w2 = a1 - i1, a2 - i2
        for v in range(out.shape[1]):
            for b in range(out.shape[2]):
                t1, t2 = transaxial1[v, b], transaxial2[v, b]
                j1, j2 = int(math.floor(t1)), int(math.floor(t2))
                u1, u2 = t1 - j1, t2 - j2
                total = 0.0
                for da in range(2):
                    wa = w1 if da else 1.0 - w1
                    for db in range(2):
                        wb = w2 if db else 1.0 - w2
                        for dt in range(2):
                            wt = u1 if dt else 1.0 - u1
                            jt = (j1 + dt) % n_transaxial
                            for du in range(2):
                                wu = u2 if du else 1.0 - u2
                                ju = (j2 + du) % n_transaxial
                                total += wa * wb * wt * wu * coarse[i1 + da, jt, i2 + db, ju]
                out[s, v, b] = total
