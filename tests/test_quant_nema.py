"""NEMA NU 2 analysis on digital IEC phantoms with known truth (noise-free, blurred, rotated)."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from petrecon.errors import GeometryError, ParameterError
from petrecon.quant.analytic import blurred_sphere_profile, blurred_sphere_rc
from petrecon.quant.nema import SPHERE_CIRCLE_RADIUS_MM, SPHERE_DIAMETERS_MM, analyse_nema, find_phantom
from petrecon.volume import ImageGrid, Volume

CIRCLE_CENTRE_MM = np.array([0.0, 20.0, 0.0])  # in the phantom's own frame; sphere plane z = 0


def iec_phantom(*, voxel_mm=2.0, shape=(171, 161, 101), ratio=4.0, background=1000.0, fwhm_mm=0.0,
                rotation=np.eye(3), supersample=1):
    """Digital IEC body phantom (reference/quantification.md geometry) on a centred grid.

    Phantom frame: D-shaped body (upper half-disc of radius 150 mm, lower part 80 mm deep with
    80 mm corner radii: 300 x 230 mm), z from -110 to +70 mm (end wall 70 mm from the sphere
    plane), cold 50 mm lung cylinder on the circle's axis, spheres at 60 degree steps. World
    point p maps to the phantom frame as ``rotation.T @ p``. The body and lung are sampled at
    voxel centres; spheres with ``supersample``^3 points per voxel (1: centre sampling).
    """
    grid = ImageGrid.centred(shape, (voxel_mm,) * 3)
    axes = [grid.voxel_centres_mm(a) for a in range(3)]
    world = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    q = world @ rotation  # = rotation.T @ p for every point
    x, y, z = q[..., 0], q[..., 1], q[..., 2]
    upper = (y >= 0) & (x**2 + y**2 <= 150.0**2)
    lower = (y < 0) & (y >= -80.0) & ((np.abs(x) <= 70.0) | ((np.abs(x) - 70.0) ** 2 + y**2 <= 80.0**2))
    body = (upper | lower) & (z >= -110.0) & (z <= 70.0)
    lung = (x - CIRCLE_CENTRE_MM[0]) ** 2 + (y - CIRCLE_CENTRE_MM[1]) ** 2 <= 25.0**2
    data = np.where(body & ~lung, background, 0.0)
    centres = {}
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3) * voxel_mm
    for k, diameter in enumerate(SPHERE_DIAMETERS_MM):
        angle = np.deg2rad(90.0 + 60.0 * k)
        centre_q = CIRCLE_CENTRE_MM + SPHERE_CIRCLE_RADIUS_MM * np.array([np.cos(angle), np.sin(angle), 0.0])
        centre = rotation @ centre_q
        centres[diameter] = centre
        near = np.all(np.abs(world - centre) <= diameter / 2.0 + voxel_mm, axis=-1)
        samples = world[near][:, None, :] + sub[None, :, :]
        fraction = (np.sum((samples - centre) ** 2, axis=-1) <= (diameter / 2.0) ** 2).mean(axis=1)
        data[near] = data[near] * (1.0 - fraction) + ratio * background * fraction
    if fwhm_mm:
        data = ndimage.gaussian_filter(data, fwhm_mm / 2.3548 / voxel_mm, mode="constant")
    truth = {"centres": centres, "axis": rotation @ np.array([0.0, 0.0, 1.0]),
             "circle_centre": rotation @ CIRCLE_CENTRE_MM, "sphere": ratio * background, "background": background}
    return Volume(data, grid, {"units": "Bq/ml"}), truth


@pytest.fixture(scope="module")
def sharp_phantom():
    return iec_phantom()


@pytest.fixture(scope="module")
def blurred_phantom():
    return iec_phantom(ratio=10.0, fwhm_mm=6.0, supersample=4)


def test_finder_locates_spheres_axis_and_lung(sharp_phantom):
    volume, truth = sharp_phantom
    geometry = find_phantom(volume)
    # binary spheres sampled at 2 mm: centroids are exact to a fraction of a voxel
    for diameter, centre in truth["centres"].items():
        assert np.linalg.norm(geometry.sphere_centres_mm[diameter] - centre) < 0.5, diameter
    assert abs(geometry.axis @ truth["axis"]) > 0.9999
    assert np.linalg.norm(geometry.circle_centre_mm - truth["circle_centre"]) < 0.5
    assert geometry.background_centres_mm.shape == (12, 3)


def test_noise_free_phantom_gives_full_contrast_and_no_variability(sharp_phantom):
    volume, truth = sharp_phantom
    # with the true sphere centres the NU 2 hot ROI holds exactly the sphere's voxels (both are
    # sampled at voxel centres on the plane z = 0): Q_H = 100 % to rounding; the background ROIs
    # hold only background voxels: N = 0; the lung insert holds no activity
    geometry = dataclasses.replace(find_phantom(volume), sphere_centres_mm=truth["centres"])
    result = analyse_nema(volume, activity_ratio=4.0, geometry=geometry)
    for sphere in result.spheres:
        assert sphere.contrast_percent == pytest.approx(100.0, abs=1e-9)
        assert sphere.background_variability_percent == pytest.approx(0.0, abs=1e-9)
        assert sphere.rc_max == pytest.approx(1.0)
    assert result.background_mean == pytest.approx(truth["background"])
    assert result.lung_residual_percent == 0.0


def test_found_geometry_keeps_contrast_within_the_centre_error(sharp_phantom):
    volume, _ = sharp_phantom
    result = analyse_nema(volume, activity_ratio=4.0)
    # found centres are < 0.5 mm off: at most one ring of edge voxels of the 10 mm disc (~19
    # voxels of 4 mm^2) changes, i.e. a few voxels in or out: 15 % for 10 mm, 2 % for 37 mm
    tolerance = {10.0: 15.0, 13.0: 10.0, 17.0: 6.0, 22.0: 4.0, 28.0: 3.0, 37.0: 2.0}
    for sphere in result.spheres:
        assert sphere.contrast_percent == pytest.approx(100.0, abs=tolerance[sphere.diameter_mm])
        assert sphere.background_variability_percent < 1e-9


def test_blurred_sphere_recovery_matches_the_analytic_value(blurred_phantom):
    volume, truth = blurred_phantom
    result = analyse_nema(volume, sphere_activity=truth["sphere"], activity_ratio=10.0)
    background, sphere = truth["background"], truth["sphere"]
    for s in result.spheres:
        measured_rc = (s.max - background) / (sphere - background)  # value = S RC + B (1 - RC)
        # the hottest 2 mm voxel averages the blurred sphere over a cube centred <= sqrt(3) mm from
        # the true centre: its value lies between the analytic profile at 2 mm (mean r^2 <= 4 mm^2)
        # and the centre value; 0.01 for sampling a sigma = 1.27 voxel Gaussian kernel
        low = blurred_sphere_profile(2.0, s.diameter_mm, 6.0) - 0.01
        high = blurred_sphere_rc(s.diameter_mm, 6.0) + 0.01
        assert low <= measured_rc <= high, (s.diameter_mm, measured_rc, low, high)
        assert s.peak <= s.max and s.mean_a50 <= s.max
    # background ROIs lie >= 15 mm from every edge and sphere: a 6 mm FWHM blur leaves them at B
    assert result.background_mean == pytest.approx(background, rel=1e-6)
    big = result.spheres[-1]
    # the half-maximum surface of a 37 mm sphere blurred by 6 mm lies within ~1 mm of its wall:
    # A50 volume within 15 % of 26.52 ml (2 mm voxels at the surface)
    assert big.a50_volume_ml == pytest.approx(26.52, rel=0.15)
    assert big.rc_peak == pytest.approx(1.0, abs=0.01)  # a 12.4 mm sphere deep inside a 37 mm one
    assert result.earl["earl1"]["spheres"]["rc_max"][37.0] in (True, False)


def test_rotated_and_tilted_phantom_is_found():
    tilt = np.deg2rad(8.0)
    along_x = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # phantom axis -> world x
    tilted = along_x @ np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    volume, truth = iec_phantom(shape=(121, 161, 171), rotation=tilted)
    geometry = find_phantom(volume)
    for diameter, centre in truth["centres"].items():
        assert np.linalg.norm(geometry.sphere_centres_mm[diameter] - centre) < 1.0, diameter
    assert abs(geometry.axis @ truth["axis"]) > 0.999
    result = analyse_nema(volume, activity_ratio=4.0, geometry=geometry)
    assert max(s.background_variability_percent for s in result.spheres) < 1e-9
    assert result.lung_residual_percent == 0.0


def test_uniform_image_is_not_a_phantom():
    grid = ImageGrid.centred((40, 40, 40), (4.0, 4.0, 4.0))
    with pytest.raises(GeometryError):
        find_phantom(Volume(np.ones(grid.shape), grid))


def test_without_truth_the_fitted_sphere_concentration_is_used_and_marked(sharp_phantom):
    volume, truth = sharp_phantom
    geometry = find_phantom(volume)
    result = analyse_nema(volume, geometry=geometry)
    assert result.ratio_estimated and result.sphere_activity == result.fitted_sphere_activity
    # this digital phantom has no glass walls, the model has 1 mm ones: the fit puts the missing cold
    # shell into a higher S (measured +3 %); 5 %
    assert result.sphere_activity == pytest.approx(truth["sphere"], rel=0.05)
    with pytest.raises(ParameterError, match="activity_ratio"):
        analyse_nema(volume, geometry=dataclasses.replace(geometry, fit=None))


def test_nema_command_reads_a_container_and_writes_json_and_plot(tmp_path, blurred_phantom, capsys):
    import json

    from petrecon.cli import main
    from petrecon.io import Container, write_container

    volume, truth = blurred_phantom
    volume = Volume(volume.data.astype(np.float32), volume.grid,
                    {"units": "Bq/ml", "nema_truth": {"activity_ratio": 10.0, "sphere_activity": truth["sphere"]}})
    path = write_container(tmp_path / "iec.h5", Container(volumes={"activity": volume}))
    png = tmp_path / "rc.png"
    assert main(["nema", str(path), "--volume", "activity", "--json", "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["diameter_mm"] for s in report["spheres"]] == [10.0, 13.0, 17.0, 22.0, 28.0, 37.0]
    for key in ("max", "mean_a50", "peak", "rc_max", "rc_mean_a50", "rc_peak", "contrast_percent",
                "background_variability_percent"):
        assert key in report["spheres"][0]
    assert report["background_mean"] == pytest.approx(1000.0, rel=1e-3)  # float32 storage, blurred edges far away
    assert set(report["earl"]) == {"earl1", "earl2"} and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["nema", str(path), "--volume", "nothing"]) == 2
    assert "/volumes/nothing" in capsys.readouterr().err
    # a given ratio replaces the stored truth as a whole: the true sphere is 4 x the measured background,
    # not the stored 10:1 sphere activity
    rois = tmp_path / "rois.png"
    assert main(["nema", str(path), "--volume", "activity", "--ratio", "4", "--json", "--roi-plot", str(rois)]) == 0
    given = json.loads(capsys.readouterr().out)
    assert given["activity_ratio"] == 4.0 and not given["ratio_estimated"]
    assert given["sphere_activity"] == pytest.approx(4.0 * given["background_mean"])
    assert rois.read_bytes()[:4] == b"\x89PNG"
    bare = write_container(tmp_path / "bare.h5", Container(volumes={"activity": Volume(volume.data, volume.grid)}))
    assert main(["nema", str(bare)]) == 0
    printed = capsys.readouterr().out
    # no truth anywhere: the fitted sphere concentration, 10:1 within 3 % (no glass walls in this digital
    # phantom, 1 mm in the model: measured +1.1 %)
    ratio = float(printed.split("true sphere ")[1].split("(")[1].split(":")[0])
    assert ratio == pytest.approx(10.0, rel=0.03) and "estimated by the phantom fit" in printed
    assert "phantom tilt 0.0 deg" in printed


def test_white_noise_gives_the_expected_contrast_and_variability(sharp_phantom):
    volume, truth = sharp_phantom
    geometry = dataclasses.replace(find_phantom(volume), sphere_centres_mm=truth["centres"])
    sigma = 0.1 * truth["background"]
    noisy = Volume(volume.data + np.random.default_rng(7).normal(0.0, sigma, volume.data.shape), volume.grid)
    result = analyse_nema(noisy, activity_ratio=4.0, geometry=geometry)
    for sphere in result.spheres:
        n_voxels = np.pi * (sphere.diameter_mm / 2.0) ** 2 / 4.0  # disc area / 4 mm^2 voxel face
        expected_n = sigma / np.sqrt(n_voxels) / truth["background"] * 100.0
        # N: the SD of 60 ROI means has a 9 % standard error; disc voxel counts vary with position
        # (+-15 % at 10 mm); neighbouring 37 mm ROIs may share a few voxels: 40 %
        assert sphere.background_variability_percent == pytest.approx(expected_n, rel=0.4)
        # Q_H: noise of the hot ROI mean over (ratio - 1) = 3 is < 0.8 % at 10 mm: 3 % (4 sigma)
        assert sphere.contrast_percent == pytest.approx(100.0, abs=3.0)


def test_finder_is_robust_to_blur_and_noise_at_4_to_1():
    volume, truth = iec_phantom(ratio=4.0, fwhm_mm=7.0, supersample=2)
    volume.data += np.random.default_rng(3).normal(0.0, 0.15 * truth["background"], volume.data.shape)
    geometry = find_phantom(volume)
    # the three large spheres' half-maximum centroids average hundreds of voxels, and the small ones
    # are refined by at most 3 mm around the geometric prediction: 1 mm (half a voxel) for all
    for diameter, centre in truth["centres"].items():
        assert np.linalg.norm(geometry.sphere_centres_mm[diameter] - centre) < 1.0, diameter
