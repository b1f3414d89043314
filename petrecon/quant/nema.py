"""NEMA NU 2 image quality analysis of the IEC body phantom, in any reconstructed Volume.

Geometry and formulas: reference/quantification.md (section "NEMA NU 2 image
quality"): six spheres of 10, 13, 17, 22, 28, 37 mm with centres on a 114.4 mm
circle in one plane, a ~50 mm cold lung insert along the axis through the
circle's centre; Q_H = (C_H / C_B - 1) / (a_H / a_B - 1) x 100 %;
N = SD_B / C_B x 100 % from 12 background ROIs per sphere size on the central
slice and +-1 cm, +-2 cm (60 per size); lung residual = C_lung / C_B,37 x 100 %
(30 mm ROI in the insert). EARL metrics (RC max, RC A50 mean, RC peak) use 3D
VOIs around each sphere (see :func:`analyse_nema`).

Finding the phantom (:func:`find_phantom`) works in mm from the Volume's grid,
so the phantom may lie along any axis, mirrored, tilted, anywhere in the field of view:

1. Background level B0: median of the voxels above 5 % of the 99.9th
   percentile; body = the largest connected region of the image smoothed by a
   4 mm FWHM Gaussian above B0 / 2.
2. First guess: connected regions of the 4 mm-smoothed image above
   B0 + f (max - B0) (f = 0.5, else 0.35, else 0.65: the first that works); the
   three largest are the 37, 28 and 22 mm spheres (adjacent on the circle,
   57.2 mm apart). Their centroids give the plane, the circle's centre and the
   sense of rotation.
3. The phantom as one rigid body (:mod:`petrecon.quant.iec_fit`): pose (6
   degrees of freedom), sphere and background levels and one resolution FWHM
   fitted to the blurred-sphere model of all six spheres in their 1 mm cold
   glass walls; each sphere's centre is then refined alone by at most 3 mm.
   The fitted axis and centre define the sphere plane; every sphere's VOI and
   2-D ROI sit at its fitted centre, on the slab through that centre normal
   to the axis, and the background ROIs and slices follow the phantom's planes.
3. Background ROIs: 12 positions in the sphere plane whose 37 mm circle lies
   at least 15 mm inside the body and at least 15 mm from every sphere
   (relaxed in 5 mm steps where a small phantom leaves no room; the clearance
   used is reported); the edge of the field of view counts as the body's edge, spread by farthest-point sampling; the smaller ROIs are
   concentric (NU 2). The same 12 centres are used on the slices at 0, +-10,
   +-20 mm along the axis.

A "slice" at offset t along the axis is the slab of voxels whose centres lie
in [t - h/2, t + h/2) of the sphere plane, h the voxel extent along the axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from petrecon.errors import GeometryError, ParameterError
from petrecon.operators import FWHM_PER_SIGMA
from petrecon.quant.earl import EARL_BANDS, earl_verdict
from petrecon.quant.iec_fit import SPHERE_CIRCLE_RADIUS_MM, SPHERE_DIAMETERS_MM, IecFit, fit_iec
from petrecon.quant.roi import a50_voi, sphere_mask
from petrecon.quant.stats import PEAK_DIAMETER_MM, peak_map
from petrecon.volume import Volume

LUNG_ROI_DIAMETER_MM = 30.0
BACKGROUND_SLICE_OFFSETS_MM = (-20.0, -10.0, 0.0, 10.0, 20.0)
BACKGROUND_ROIS_PER_SLICE = 12
EDGE_CLEARANCE_MM = 15.0
SPHERE_CLEARANCES_MM = (15.0, 10.0, 5.0, 0.0)
#: The EARL search VOI around a sphere: its radius plus this margin (mm).
VOI_MARGIN_MM = 5.0
_HOT_FRACTIONS = (0.5, 0.35, 0.65)
#: Given truth whose implied background differs from the measured one by more than this is reported.
TRUTH_MISMATCH = 0.2


@dataclass
class PhantomGeometry:
    """Where the phantom's parts lie, in mm (scanner/patient coordinates of the Volume)."""

    axis: np.ndarray
    circle_centre_mm: np.ndarray
    sphere_centres_mm: dict[float, np.ndarray]
    background_centres_mm: np.ndarray
    background_level: float
    sphere_clearance_mm: float
    fit: IecFit | None = None


@dataclass
class SphereResult:
    """Measurements of one sphere (image units, RCs against the true sphere activity)."""

    diameter_mm: float
    centre_mm: tuple[float, float, float]
    max: float
    mean_a50: float
    peak: float
    rc_max: float
    rc_mean_a50: float
    rc_peak: float
    a50_volume_ml: float
    contrast_percent: float
    background_variability_percent: float


@dataclass
class NemaResult:
    """Everything the analysis reports; :meth:`to_dict` is the JSON schema of ``petrecon nema --json``.

    Besides the NU 2 and EARL figures: ``ratio_estimated`` (the true sphere concentration is the fitted
    one), the phantom fit (``fitted_sphere_activity``, ``fitted_background``, ``fitted_fwhm_mm``,
    ``fit_residual_percent`` in % of the sphere-to-background step), the pose (``tilt_deg`` from the
    nearest image axis, ``phantom_centre_mm`` = lung axis in the sphere plane, ``phantom_axis``), the
    background ROI centres on the central slice, and ``warnings`` (poor fit, inconsistent truth).
    """

    spheres: list[SphereResult]
    background_mean: float
    lung_residual_percent: float
    sphere_activity: float
    activity_ratio: float
    sphere_clearance_mm: float
    earl: dict[str, dict] = field(default_factory=dict)
    ratio_estimated: bool = False
    fitted_fwhm_mm: float | None = None
    fitted_sphere_activity: float | None = None
    fitted_background: float | None = None
    tilt_deg: float | None = None
    phantom_centre_mm: tuple[float, float, float] | None = None
    phantom_axis: tuple[float, float, float] | None = None
    fit_residual_percent: float | None = None
    warnings: list[str] = field(default_factory=list)
    background_roi_centres_mm: list[tuple[float, float, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _points_mm(volume: Volume, mask: np.ndarray) -> np.ndarray:
    """(n, 3) mm positions of the voxels of ``mask``."""
    return np.argwhere(mask) * np.array(volume.grid.voxel_size_mm) + np.array(volume.grid.origin_mm)


def _along_axis_mm(volume: Volume, origin_mm: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of every voxel centre from the plane through ``origin_mm`` normal to ``axis``."""
    x, y, z = (volume.grid.voxel_centres_mm(a) - origin_mm[a] for a in range(3))
    return x[:, None, None] * axis[0] + y[None, :, None] * axis[1] + z[None, None, :] * axis[2]


def _sigma_voxels(volume: Volume, fwhm_mm: float) -> list[float]:
    return [fwhm_mm / FWHM_PER_SIGMA / v for v in volume.grid.voxel_size_mm]


def _centroid_mm(points_mm: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return (points_mm * weights[:, None]).sum(axis=0) / weights.sum()


def _circumcentre(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    ab, ac = b - a, c - a
    normal = np.cross(ab, ac)
    denominator = 2.0 * normal @ normal
    return a + (np.cross(normal, ab) * (ac @ ac) + np.cross(ac, normal) * (ab @ ab)) / denominator


def find_phantom(volume: Volume) -> PhantomGeometry:
    """Locate the body, fit the phantom's pose and place the spheres and background ROIs (module docstring).

    Raises
    ------
    GeometryError
        If no IEC phantom with its spheres can be recognised.
    """
    data = np.asarray(volume.data, float)
    top = np.percentile(data, 99.9)
    if not top > 0:
        raise GeometryError("the image holds no activity; no NEMA phantom to find")
    background = float(np.median(data[data > 0.05 * top]))
    smooth = ndimage.gaussian_filter(data, _sigma_voxels(volume, 4.0))
    labels, count = ndimage.label(smooth > 0.5 * background)
    if count == 0:
        raise GeometryError("no phantom body found")
    body = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    rotation, centre = _first_guess(volume, smooth, body, background)
    fit = fit_iec(volume, body, rotation, centre, background=background, sphere=float(smooth[body].max()))
    background_centres, clearance = _place_background_rois(volume, body, fit.axis, fit.centre_mm,
                                                           fit.sphere_centres_mm)
    return PhantomGeometry(fit.axis, fit.centre_mm, dict(fit.sphere_centres_mm), background_centres, background,
                           clearance, fit)


def _first_guess(volume: Volume, smooth: np.ndarray, body: np.ndarray,
                 background: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (columns: towards the 37 mm sphere, in-plane normal, axis) and circle centre from the three
    largest hot regions, at the first threshold fraction that shows them 57.2 mm apart."""
    problem = ""
    for fraction in _HOT_FRACTIONS:
        hot = body & (smooth > background + fraction * (smooth[body].max() - background))
        hot_labels, n_hot = ndimage.label(hot, structure=np.ones((3, 3, 3), bool))
        if n_hot < 3:
            problem = f"found {n_hot} hot spheres; need at least the 37, 28 and 22 mm spheres"
            continue
        largest = np.argsort(np.bincount(hot_labels.ravel())[1:])[::-1][:3] + 1
        c37, c28, c22 = (_centroid_mm(_points_mm(volume, hot_labels == label),
                                      smooth[hot_labels == label] - background) for label in largest)
        spacing = [np.linalg.norm(c37 - c28), np.linalg.norm(c28 - c22)]
        if not all(abs(s - SPHERE_CIRCLE_RADIUS_MM) < 10.0 for s in spacing):
            problem = (f"the three largest hot regions are {spacing[0]:.1f} and {spacing[1]:.1f} mm apart; "
                       f"the IEC spheres are {SPHERE_CIRCLE_RADIUS_MM} mm apart")
            continue
        centre = _circumcentre(c37, c28, c22)
        axis = np.cross(c28 - c37, c22 - c37)
        axis /= np.linalg.norm(axis)
        u = (c37 - centre) / np.linalg.norm(c37 - centre)
        return np.stack([u, np.cross(axis, u), axis], axis=1), centre
    raise GeometryError(problem)


def _plane_frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def _slice_thickness_mm(volume: Volume, axis: np.ndarray) -> float:
    """Thickness along ``axis`` of one voxel layer along the image axis nearest to it: the slab then holds one
    voxel per column along that image axis, the one nearest to the plane (nearest-neighbour reslicing)."""
    nearest = int(np.argmax(np.abs(axis)))
    return float(abs(axis[nearest]) * volume.grid.voxel_size_mm[nearest])


def _in_slice(along_mm: np.ndarray, thickness_mm: float, offset_mm: float) -> np.ndarray:
    relative = along_mm - offset_mm
    return (relative >= -thickness_mm / 2.0) & (relative < thickness_mm / 2.0)


class _Slices:
    """Voxels of the slices parallel to the sphere plane (cached by offset) and circular ROIs on them."""

    def __init__(self, volume: Volume, geometry: PhantomGeometry) -> None:
        self.volume, self.geometry = volume, geometry
        self.along_mm = _along_axis_mm(volume, geometry.circle_centre_mm, geometry.axis)
        self.thickness_mm = _slice_thickness_mm(volume, geometry.axis)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._discs: dict[float, tuple[cKDTree, np.ndarray]] = {}

    def slice(self, offset_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """(points, values) of the voxels whose centres lie in [t - h/2, t + h/2) along the axis."""
        if offset_mm not in self._cache:
            inside = _in_slice(self.along_mm, self.thickness_mm, offset_mm)
            self._cache[offset_mm] = _points_mm(self.volume, inside), np.asarray(self.volume.data, float)[inside]
        return self._cache[offset_mm]

    def disc_means(self, centres_mm: np.ndarray, diameter_mm: float, offset_mm: float) -> np.ndarray:
        """Mean of circular ROIs (in-plane diameter) centred at ``centres_mm`` on the slice at ``offset_mm``."""
        axis = self.geometry.axis
        if offset_mm not in self._discs:   # the slice's voxels projected onto the plane, for ball queries
            slab_points, slab_values = self.slice(offset_mm)
            self._discs[offset_mm] = cKDTree(slab_points - np.outer(slab_points @ axis, axis)), slab_values
        tree, slab_values = self._discs[offset_mm]
        means = []
        for c in np.atleast_2d(centres_mm):
            inside = tree.query_ball_point(c - (c @ axis) * axis, diameter_mm / 2.0)
            if not inside:
                raise GeometryError(f"a {diameter_mm:g} mm ROI at {c.round(1)} mm holds no voxel "
                                    f"on slice {offset_mm:+g} mm")
            means.append(slab_values[inside].mean())
        return np.array(means)


def _place_background_rois(volume: Volume, body: np.ndarray, axis: np.ndarray,
                           centre: np.ndarray, sphere_centres: dict[float, np.ndarray]) -> tuple[np.ndarray, float]:
    slab = _in_slice(_along_axis_mm(volume, centre, axis), _slice_thickness_mm(volume, axis), 0.0)
    u, w = _plane_frame(axis)
    relative = _points_mm(volume, slab) - centre
    in_plane = np.stack([relative @ u, relative @ w], axis=-1)
    inside = (body & ~_image_border(body.shape))[slab]  # the field of view's edge counts as the body's edge
    if not (~inside).any() or not inside.any():
        raise GeometryError("the phantom body does not fit the image in the sphere plane")
    outside_tree = cKDTree(in_plane[~inside])
    step = min(volume.grid.voxel_size_mm)
    candidates = in_plane[inside][:: max(1, int(round(2.0 / step)))]
    big_radius = max(SPHERE_DIAMETERS_MM) / 2.0
    edge_ok = outside_tree.query(candidates)[0] >= big_radius + EDGE_CLEARANCE_MM
    spheres_plane = {d: np.array([(c - centre) @ u, (c - centre) @ w]) for d, c in sphere_centres.items()}
    for clearance in SPHERE_CLEARANCES_MM:
        ok = edge_ok.copy()
        for diameter, position in spheres_plane.items():
            ok &= np.linalg.norm(candidates - position, axis=1) >= big_radius + diameter / 2.0 + clearance
        if ok.sum() >= BACKGROUND_ROIS_PER_SLICE:
            chosen = _farthest_points(candidates[ok], BACKGROUND_ROIS_PER_SLICE)
            return centre + chosen[:, :1] * u + chosen[:, 1:] * w, clearance
    raise GeometryError("no room for 12 background ROIs of 37 mm in the sphere plane")


def _image_border(shape: tuple[int, int, int]) -> np.ndarray:
    border = np.zeros(shape, bool)
    for axis in range(3):
        index = [slice(None)] * 3
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    return border


def _farthest_points(candidates: np.ndarray, count: int) -> np.ndarray:
    """Greedy farthest-point sampling, starting from the candidate farthest from the circle centre."""
    chosen = [int(np.argmax(np.linalg.norm(candidates, axis=1)))]
    distance = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
    for _ in range(count - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    return candidates[chosen]


def analyse_nema(volume: Volume, *, activity_ratio: float | None = None, sphere_activity: float | None = None,
                 geometry: PhantomGeometry | None = None) -> NemaResult:
    """NU 2 image quality and EARL recovery of an IEC phantom image.

    Parameters
    ----------
    volume : Volume
        Reconstructed image (Bq/ml or any linear unit).
    activity_ratio : float, optional
        True sphere : background concentration ratio (4 or 8 for NU 2, 10 for EARL).
    sphere_activity : float, optional
        True sphere concentration in image units (calibrator measurement). Without
        it the true sphere value is ``activity_ratio`` x the measured background mean.
        With both, Q_H uses the ratio and the RCs the activity; an implied true background
        (activity / ratio) more than 20 % from the measured one is reported in ``warnings``.
        With neither, the true sphere value is the one fitted with the phantom's pose
        (:mod:`petrecon.quant.iec_fit`: all spheres one concentration, one resolution) and
        the ratio is it over the measured background mean; ``ratio_estimated`` is then true.
    geometry : PhantomGeometry, optional
        A geometry found earlier (default: :func:`find_phantom`).

    Notes
    -----
    Per sphere: ``max`` = hottest voxel, ``mean_a50`` = mean of the A50 VOI
    (threshold B + (max - B) / 2, B = background mean), ``peak`` = 1 cm^3
    sphere (partial voxels weighted, centre in the VOI), all within a search VOI of
    the sphere's radius + 5 mm around its fitted centre; RC = value / true sphere concentration.
    ``contrast_percent`` = Q_H and ``background_variability_percent`` = N (NU 2).
    The fitted pose (``tilt_deg``, ``phantom_centre_mm``, ``phantom_axis``), resolution and misfit
    are reported, and ``warnings`` says when the fit looks poor.
    """
    if activity_ratio is not None and not activity_ratio > 1:
        raise ParameterError(f"activity_ratio must be > 1, got {activity_ratio}")
    if sphere_activity is not None and not sphere_activity > 0:
        raise ParameterError(f"sphere_activity must be > 0, got {sphere_activity}")
    geometry = geometry or find_phantom(volume)
    slices = _Slices(volume, geometry)
    background_rois = {d: np.concatenate([slices.disc_means(geometry.background_centres_mm, d, t)
                                          for t in BACKGROUND_SLICE_OFFSETS_MM]) for d in SPHERE_DIAMETERS_MM}
    background_mean = float(background_rois[max(SPHERE_DIAMETERS_MM)].mean())
    if not background_mean > 0:
        raise ParameterError(f"the background mean is {background_mean}; NU 2 needs a positive background")
    fit = geometry.fit
    warnings = list(fit.warnings) if fit is not None else []
    estimated = activity_ratio is None and sphere_activity is None
    if estimated:
        if fit is None:
            raise ParameterError("give the true activity_ratio or sphere_activity: this geometry has no fitted "
                                 "sphere concentration")
        sphere_activity = fit.sphere_level
    elif activity_ratio is not None and sphere_activity is not None:
        implied = sphere_activity / activity_ratio
        if abs(implied / background_mean - 1.0) > TRUTH_MISMATCH:
            warnings.append(f"the given truth implies a background of {implied:.6g}, the image holds "
                            f"{background_mean:.6g}: are the ratio and the sphere activity of the same filling?")
    true_sphere = sphere_activity if sphere_activity is not None else activity_ratio * background_mean
    ratio = activity_ratio if activity_ratio is not None else sphere_activity / background_mean
    spheres = []
    for diameter in sorted(SPHERE_DIAMETERS_MM):
        spheres.append(_sphere_result(volume, slices, diameter, background_rois[diameter],
                                      background_mean, true_sphere, ratio))
    lung_all = [slices.disc_means(geometry.circle_centre_mm, LUNG_ROI_DIAMETER_MM, t)[0]
                for t in BACKGROUND_SLICE_OFFSETS_MM]
    result = NemaResult(spheres, background_mean, float(np.mean(lung_all)) / background_mean * 100.0,
                        float(true_sphere), float(ratio), geometry.sphere_clearance_mm, ratio_estimated=estimated,
                        warnings=warnings, phantom_centre_mm=tuple(float(c) for c in geometry.circle_centre_mm),
                        phantom_axis=tuple(float(c) for c in geometry.axis),
                        background_roi_centres_mm=[tuple(float(v) for v in c) for c in geometry.background_centres_mm])
    if fit is not None:
        result.fitted_fwhm_mm, result.fitted_sphere_activity = fit.fwhm_mm, fit.sphere_level
        result.fitted_background, result.tilt_deg = fit.background_level, fit.tilt_deg
        result.fit_residual_percent = fit.residual_percent
    rc = {metric: {s.diameter_mm: getattr(s, metric) for s in spheres} for metric in ("rc_max", "rc_mean_a50")}
    result.earl = {standard: earl_verdict(standard, rc) for standard in EARL_BANDS}
    return result


def _sphere_result(volume: Volume, slices: _Slices, diameter: float,
                   background_rois: np.ndarray, background_mean: float, true_sphere: float,
                   ratio: float) -> SphereResult:
    geometry = slices.geometry
    centre = geometry.sphere_centres_mm[diameter]
    search = sphere_mask(volume.grid, centre, diameter / 2.0 + VOI_MARGIN_MM)
    values = np.asarray(volume.data, float)
    sphere_max = float(values[search].max())
    a50 = a50_voi(volume, search, background_mean)
    mean_a50 = float(values[a50].mean())
    peak = float(np.nanmax(peak_map(volume, search, PEAK_DIAMETER_MM)))
    offset = float((centre - geometry.circle_centre_mm) @ geometry.axis)
    hot_mean = float(slices.disc_means(centre, diameter, offset)[0])
    roi_background = float(background_rois.mean())
    contrast = (hot_mean / roi_background - 1.0) / (ratio - 1.0) * 100.0
    variability = float(background_rois.std(ddof=1)) / roi_background * 100.0
    return SphereResult(diameter, tuple(float(c) for c in centre), sphere_max, mean_a50, peak,
                        sphere_max / true_sphere, mean_a50 / true_sphere, peak / true_sphere,
                        float(a50.sum()) * volume.grid.voxel_volume_ml, contrast, variability)
