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
least-squares (:func:`scipy.optimize.least_squares`) of the 9 parameters, run twice: the second time on the
voxels around the first fit's spheres. Each sphere's centre is then refined alone (3 parameters, the
levels and the FWHM fixed), by at most 3 mm (manufacturing tolerance of the sphere positions), so that its
VOI follows the sphere where the real phantom departs from the drawing.
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

    def __init__(self, volume: Volume, body: np.ndarray) -> None:
        self.volume = volume
        self.values = np.asarray(volume.data, np.float64)
        self.voxel_mm = np.asarray(volume.grid.voxel_size_mm, float)
        self.origin_mm = np.asarray(volume.grid.origin_mm, float)
        self.voxel_sigma2 = float(np.mean(self.voxel_mm**2)) / 12.0
        self.inside_body = ndimage.distance_transform_edt(body, sampling=self.voxel_mm) >= FIT_MARGIN_MM

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
        keep = ((np.linalg.norm(points - centre_mm, axis=1) <= radius_mm) & (from_axis >= LUNG_RADIUS_MM + FIT_MARGIN_MM)
                & self.inside_body[tuple(index.T)])
        return points[keep], self.values[tuple(index[keep].T)]

    def fwhm_mm(self, sigma_mm: float) -> float:
        """Resolution FWHM of a fitted effective sigma, the voxel's variance removed."""
        return FWHM_PER_SIGMA * float(np.sqrt(max(sigma_mm**2 - self.voxel_sigma2, 0.0)))


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
    data = _Data(volume, body)
    scale = background if background > 0 else 1.0
    sigma0 = np.hypot(fwhm_mm / FWHM_PER_SIGMA, np.sqrt(data.voxel_sigma2))
    start = np.array([0.0, 0.0, 0.0, *centre_mm, sphere / scale, background / scale, sigma0])
    low = np.array([-np.pi, -np.pi, -np.pi, -np.inf, -np.inf, -np.inf, 0.0, -np.inf, np.sqrt(data.voxel_sigma2)])
    high = np.array([np.pi, np.pi, np.pi, np.inf, np.inf, np.inf, np.inf, np.inf, 30.0])

    def pose(p: np.ndarray) -> np.ndarray:
        return Rotation.from_rotvec(p[:3]).as_matrix() @ rotation

    for _ in range(2):
        near = _neighbourhoods(data, pose(start), start[3:6], wall_mm)
        values = np.concatenate([v for _, v in near.values()]) / scale

        def residuals(p: np.ndarray, near=near, values=values) -> np.ndarray:
            turned = pose(p)
            model = [sphere_model(np.linalg.norm(points - p[3:6] - turned @ layout_mm(d), axis=1), d, p[6], p[7],
                                  FWHM_PER_SIGMA * p[8], wall_mm) for d, (points, _) in near.items()]
            return np.concatenate(model) - values

        solution = optimize.least_squares(residuals, start, bounds=(low, high), x_scale="jac")
        start = solution.x
    turned = pose(start)
    sphere_level, background_level, sigma = start[6] * scale, start[7] * scale, start[8]
    rms = float(np.sqrt(np.mean(solution.fun**2))) * scale
    step = sphere_level - background_level
    fit = IecFit(turned, start[3:6].copy(), float(sphere_level), float(background_level), data.fwhm_mm(sigma),
                 100.0 * rms / step if step > 0 else float("inf"))
    for diameter, (points, values) in near.items():
        fit.sphere_centres_mm[diameter] = _refine(fit, points, values, diameter, FWHM_PER_SIGMA * sigma, wall_mm)
    fit.warnings = _fit_warnings(fit)
    return fit


def _refine(fit: IecFit, points: np.ndarray, values: np.ndarray, diameter_mm: float, fwhm_mm: float,
            wall_mm: float) -> np.ndarray:
    """One sphere's centre fitted alone around its rigid position (at most 3 mm away per axis)."""
    rigid = fit.rigid_centre_mm(diameter_mm)
    if len(values) < 10:
        return rigid

    def residuals(centre: np.ndarray) -> np.ndarray:
        return sphere_model(np.linalg.norm(points - centre, axis=1), diameter_mm, fit.sphere_level,
                            fit.background_level, fwhm_mm, wall_mm) - values

    solution = optimize.least_squares(residuals, rigid, bounds=(rigid - MAX_SPHERE_SHIFT_MM,
                                                                rigid + MAX_SPHERE_SHIFT_MM))
    return solution.x


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
    for diameter, centre in fit.sphere_centres_mm.items():
        if np.max(np.abs(centre - fit.rigid_centre_mm(diameter))) > MAX_SPHERE_SHIFT_MM - 0.01:
            messages.append(f"the {diameter:g} mm sphere lies {MAX_SPHERE_SHIFT_MM:g} mm or more from where the "
                            f"phantom's pose puts it")
    return messages
