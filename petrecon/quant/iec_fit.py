"""Fit of the IEC body phantom to an image as one rigid body: pose, sphere and background levels, resolution.

Geometry (reference/quantification.md, "NEMA NU 2 image quality"): in the phantom's own frame the six
spheres (inner diameters 37, 28, 22, 17, 13, 10 mm, in that order at 60 degree steps) have their centres
on a 114.4 mm circle in the plane z = 0 around the lung insert's axis (the z axis); each has a cold glass
wall of ``wall_mm`` (1 mm). The frame's x axis points to the 37 mm sphere; z is the normal for which the
37, 28 and 22 mm spheres follow each other counter-clockwise. Near the spheres the image is modelled as

    v(p) = B + sum_k [S f(|p - c_k|; R_k) - B f(|p - c_k|; R_k + w)],

``f`` the unit sphere blurred by an isotropic Gaussian (:func:`petrecon.quant.analytic.blurred_sphere_profile`),
``c_k = t + R q_k`` the pose (rotation R, translation t: 6 degrees of freedom) applied to the layout ``q_k``,
S the sphere and B the background concentration, one resolution for all spheres. The model is evaluated at
voxel centres with the Gaussian's variance raised by the voxel's own (the mean of ``dx^2 / 12`` over the
axes: the variance of a box); the reported FWHM has it removed.

Voxels used: those within ``R_k + w + 8 mm`` of a sphere centre (8 mm: more than 1.3 FWHM of a clinical
image, where the blurred edge has reached the background), at least 8 mm inside the body and 8 mm
outside the 50 mm lung insert, whose own blurred edges the model does not hold. The fit is a bounded
least-squares (:func:`scipy.optimize.least_squares`, Levenberg-Marquardt) of the 9 parameters, run twice: first on about 4000 of
the voxels (evenly spread: fast), then on all the voxels around the first fit's spheres. Each sphere's centre is then refined alone (3 parameters, the
levels and the FWHM fixed), kept if it moves by at most 3 mm (manufacturing tolerance of the sphere
positions), so that its VOI follows the sphere where the real phantom departs from the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation

from petrecon.operators import FWHM_PER_SIGMA
from petrecon.quant.analytic import blurred_sphere_profile
from petrecon.volume import Volume

#: Inner sphere diameters (mm), in the order they follow each other on the circle.
SPHERE_DIAMETERS_MM = (37.0, 28.0, 22.0, 17.0, 13.0, 10.0)
SPHERE_CIRCLE_RADIUS_MM = 114.4 / 2.0
LUNG_RADIUS_MM = 25.0
GLASS_WALL_MM = 1.0
FIT_MARGIN_MM = 8.0
MAX_SPHERE_SHIFT_MM = 3.0
#: A fit whose RMS misfit exceeds this share of the sphere-to-background step is reported as poor.
POOR_FIT_PERCENT = 25.0
IMPLAUSIBLE_FWHM_MM = 20.0
#: Stop when a step changes the parameters or the misfit by less than 1e-5 relative: 1e-3 mm in position,
#: far below what the figures notice.
_TOLERANCES = {"xtol": 1e-5, "ftol": 1e-5}
_COARSE_VOXELS = 4000


def layout_mm(diameter_mm: float) -> np.ndarray:
    """Centre of a sphere in the phantom's frame (mm).

    Examples
    --------
    >>> layout_mm(28.0).round(2).tolist()
    [28.6, 49.54, 0.0]
    """
    angle = np.deg2rad(60.0 * SPHERE_DIAMETERS_MM.index(diameter_mm))
    return SPHERE_CIRCLE_RADIUS_MM * np.array([np.cos(angle), np.sin(angle), 0.0])


def tilt_deg(axis: np.ndarray) -> float:
    """Angle (degrees) between a direction and the nearest image axis.

    Examples
    --------
    >>> round(tilt_deg(np.array([0.0, np.sin(0.1), np.cos(0.1)])), 3)
    5.73
    """
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return float(np.rad2deg(np.arccos(min(1.0, np.abs(axis).max()))))


def sphere_model(distance_mm: np.ndarray, diameter_mm: float, sphere: float, background: float,
                 fwhm_mm: float, wall_mm: float = GLASS_WALL_MM) -> np.ndarray:
    """The blurred sphere in its cold wall on a background, at distances from its centre (module docstring).

    Examples
    --------
    >>> round(float(sphere_model(np.array([0.0]), 37.0, 10.0, 1.0, 6.0)[0]), 3)
    10.0
    """
    return (background + sphere * blurred_sphere_profile(distance_mm, diameter_mm, fwhm_mm)
            - background * blurred_sphere_profile(distance_mm, diameter_mm + 2.0 * wall_mm, fwhm_mm))


@dataclass
class IecFit:
    """The fitted phantom (module docstring); positions in the Volume's mm.

    Attributes
    ----------
    rotation : numpy.ndarray
        3 x 3; its columns are the phantom's x (towards the 37 mm sphere), y and z (axis) in the image.
    centre_mm : numpy.ndarray
        The circle's centre: the lung insert's axis in the sphere plane.
    sphere_level, background_level : float
        S and B (image units).
    fwhm_mm : float
        Resolution (Gaussian FWHM), the voxel's own blur removed.
    residual_percent : float
        RMS misfit over the voxels used, in percent of ``S - B``.
    sphere_centres_mm : dict
        Per diameter, the centre after its own refinement.
    warnings : list of str
        Why the fit may be poor (empty when it is not).
    """

    rotation: np.ndarray
    centre_mm: np.ndarray
    sphere_level: float
    background_level: float
    fwhm_mm: float
    residual_percent: float
    sphere_centres_mm: dict[float, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def axis(self) -> np.ndarray:
        return self.rotation[:, 2]

    @property
    def tilt_deg(self) -> float:
        """Angle between the phantom's axis and the nearest image axis (degrees)."""
        return tilt_deg(self.axis)

    def rigid_centre_mm(self, diameter_mm: float) -> np.ndarray:
        """Where the rigid pose puts a sphere's centre."""
        return self.centre_mm + self.rotation @ layout_mm(diameter_mm)


class _Data:
    """Voxel positions and values around the spheres, for the model fit."""

    def __init__(self, volume: Volume, body: np.ndarray, centre_mm: np.ndarray) -> None:
        self.volume = volume
        self.values = np.asarray(volume.data)
        self.voxel_mm = np.asarray(volume.grid.voxel_size_mm, float)
        self.origin_mm = np.asarray(volume.grid.origin_mm, float)
        self.voxel_sigma2 = float(np.mean(self.voxel_mm**2)) / 12.0
        # the body's distance map only where spheres may be (a large image's full map would cost seconds and GB):
        # within the circle's radius + the largest sphere + margins + 20 mm of slack for the pose to move; the crop's
        # faces count as the body's edge (padding), so a crop inside the body still has one
        reach = SPHERE_CIRCLE_RADIUS_MM + max(SPHERE_DIAMETERS_MM) / 2.0 + GLASS_WALL_MM + 2 * FIT_MARGIN_MM + 20.0
        low = np.maximum(np.floor((centre_mm - reach - self.origin_mm) / self.voxel_mm).astype(int), 0)
        high = np.minimum(np.ceil((centre_mm + reach - self.origin_mm) / self.voxel_mm).astype(int) + 1, body.shape)
        crop = tuple(slice(a, b) for a, b in zip(low, high))
        self.inside_body = np.zeros(body.shape, bool)
        distance = ndimage.distance_transform_edt(np.pad(body[crop], 1), sampling=self.voxel_mm)[1:-1, 1:-1, 1:-1]
        self.inside_body[crop] = distance >= FIT_MARGIN_MM

    def near(self, centre_mm: np.ndarray, radius_mm: float, axis: np.ndarray,
             circle_centre_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(points mm, values) of usable voxels within ``radius_mm`` of ``centre_mm``."""
        low = np.maximum(np.floor((centre_mm - radius_mm - self.origin_mm) / self.voxel_mm).astype(int), 0)
        high = np.minimum(np.ceil((centre_mm + radius_mm - self.origin_mm) / self.voxel_mm).astype(int) + 1,
                          self.values.shape)
        if np.any(high <= low):
            return np.empty((0, 3)), np.empty(0)
        index = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high)], indexing="ij"),
                         axis=-1).reshape(-1, 3)
        points = index * self.voxel_mm + self.origin_mm
        relative = points - circle_centre_mm
        from_axis = np.linalg.norm(relative - np.outer(relative @ axis, axis), axis=1)
        keep = ((np.linalg.norm(points - centre_mm, axis=1) <= radius_mm)
                & (from_axis >= LUNG_RADIUS_MM + FIT_MARGIN_MM) & self.inside_body[tuple(index.T)])
        return points[keep], self.values[tuple(index[keep].T)].astype(np.float64)

    def effective_fwhm_mm(self, sigma_mm: float) -> float:
        """FWHM of the resolution's Gaussian (``sigma_mm``, either sign) widened by the voxel's own blur."""
        return FWHM_PER_SIGMA * float(np.sqrt(sigma_mm**2 + self.voxel_sigma2))


def _neighbourhoods(data: _Data, rotation: np.ndarray, centre_mm: np.ndarray, wall_mm: float):
    return {d: data.near(centre_mm + rotation @ layout_mm(d), d / 2.0 + wall_mm + FIT_MARGIN_MM, rotation[:, 2],
                         centre_mm) for d in SPHERE_DIAMETERS_MM}


def fit_iec(volume: Volume, body: np.ndarray, rotation: np.ndarray, centre_mm: np.ndarray, *,
            background: float, sphere: float, fwhm_mm: float = 8.0, wall_mm: float = GLASS_WALL_MM) -> IecFit:
    """Fit pose, levels and resolution from a first guess (module docstring).

    Parameters
    ----------
    volume : Volume
    body : numpy.ndarray
        Boolean mask of the phantom's body on the Volume's grid.
    rotation, centre_mm : numpy.ndarray
        First guess of the pose (:class:`IecFit` attributes).
    background, sphere, fwhm_mm : float
        First guesses of B, S and the resolution.
    wall_mm : float
        Thickness of the cold sphere walls.
    """
    data = _Data(volume, body, centre_mm)
    scale = background if background > 0 else 1.0
    start = np.array([0.0, 0.0, 0.0, *centre_mm, sphere / scale, background / scale, fwhm_mm / FWHM_PER_SIGMA])

    def pose(p: np.ndarray) -> np.ndarray:
        return Rotation.from_rotvec(p[:3]).as_matrix() @ rotation

    for first in (True, False):
        near = _neighbourhoods(data, pose(start), start[3:6], wall_mm)
        if first:  # a coarse fit on about _COARSE_VOXELS evenly spread voxels, then all of them
            stride = max(1, sum(len(v) for _, v in near.values()) // _COARSE_VOXELS)
            near = {d: (points[::stride], v[::stride]) for d, (points, v) in near.items()}
        values = np.concatenate([v for _, v in near.values()]) / scale

        def residuals(p: np.ndarray, near=near, values=values) -> np.ndarray:
            turned = pose(p)
            model = [sphere_model(np.linalg.norm(points - p[3:6] - turned @ layout_mm(d), axis=1), d, p[6], p[7],
                                  data.effective_fwhm_mm(p[8]), wall_mm) for d, (points, _) in near.items()]
            return np.concatenate(model) - values

        solution = optimize.least_squares(residuals, start, method="lm", x_scale="jac", **_TOLERANCES)
        start = solution.x
    sphere_level, background_level = start[6] * scale, start[7] * scale
    rms = float(np.sqrt(np.mean(solution.fun**2))) * scale
    step = sphere_level - background_level
    fit = IecFit(pose(start), start[3:6].copy(), float(sphere_level), float(background_level),
                 FWHM_PER_SIGMA * abs(float(start[8])), 100.0 * rms / step if step > 0 else float("inf"))
    fit.warnings = _fit_warnings(fit)
    for diameter, (points, values) in near.items():
        fit.sphere_centres_mm[diameter] = _refine(fit, points, values, diameter, data.effective_fwhm_mm(start[8]),
                                                  wall_mm)
    return fit


def _refine(fit: IecFit, points: np.ndarray, values: np.ndarray, diameter_mm: float, fwhm_mm: float,
            wall_mm: float) -> np.ndarray:
    """One sphere's centre fitted alone from its rigid position; the rigid one (and a warning) if that moves it
    more than 3 mm."""
    rigid = fit.rigid_centre_mm(diameter_mm)
    if len(values) < 10:
        return rigid

    def residuals(centre: np.ndarray) -> np.ndarray:
        return sphere_model(np.linalg.norm(points - centre, axis=1), diameter_mm, fit.sphere_level,
                            fit.background_level, fwhm_mm, wall_mm) - values

    refined = optimize.least_squares(residuals, rigid, method="lm", **_TOLERANCES).x
    if np.linalg.norm(refined - rigid) <= MAX_SPHERE_SHIFT_MM:
        return refined
    fit.warnings.append(f"the {diameter_mm:g} mm sphere fits best {np.linalg.norm(refined - rigid):.1f} mm from "
                        f"where the phantom's pose puts it (> {MAX_SPHERE_SHIFT_MM:g} mm): its VOI stays there")
    return rigid


def _fit_warnings(fit: IecFit) -> list[str]:
    messages = []
    if not fit.sphere_level > 1.5 * fit.background_level:
        messages.append(f"the fitted spheres ({fit.sphere_level:.4g}) are not clearly hotter than the background "
                        f"({fit.background_level:.4g}): is this an IEC phantom with hot spheres?")
    if fit.residual_percent > POOR_FIT_PERCENT:
        messages.append(f"the phantom model fits poorly: RMS misfit {fit.residual_percent:.0f} % of the "
                        f"sphere-to-background step (> {POOR_FIT_PERCENT:g} %)")
    if fit.fwhm_mm > IMPLAUSIBLE_FWHM_MM:
        messages.append(f"the fitted resolution, {fit.fwhm_mm:.1f} mm FWHM, is implausible for PET "
                        f"(> {IMPLAUSIBLE_FWHM_MM:g} mm)")
    return messages
