"""NEMA NU 2 analysis of IEC phantoms placed with a pose (tilted, shifted): the rigid-body fit and the ratio.

The phantom is the shipped analytic one (phantoms/nema-iec.toml, 1 mm glass walls) placed with a
:class:`~petrecon.simulate.phantom.Pose`, voxelised with partial volume on 3 mm voxels over a partial axial
field of view (108 mm of the 180 mm body), blurred by a 6 mm FWHM Gaussian and, for the noisy cases, given
correlated noise (white noise smoothed by 4 mm FWHM, 12 % of the background per voxel: N of 2-7 %, as in
clinical NEMA images).
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.quant.nema import analyse_nema, find_phantom
from petrecon.simulate.phantom import Pose, load_phantom
from petrecon.simulate.voxelise import blurred_activity
from petrecon.volume import ImageGrid, Volume

VOXEL_MM = 3.0
FWHM_MM = 6.0
BACKGROUND = 5300.0  # the phantom's background, Bq/ml
NOISE = 0.12
METRICS = ("contrast_percent", "rc_max", "rc_mean_a50", "rc_peak")


def posed_iec(rotation_deg=(0.0, 0.0, 0.0), shift_mm=(0.0, 0.0, 0.0), *, ratio=4.0, noise=0.0, seed=0) -> Volume:
    phantom = load_phantom("nema-iec", {"ratio": ratio}, pose=Pose(rotation_deg, shift_mm))
    return blurred_activity(phantom, ImageGrid.centred((108, 88, 36), (VOXEL_MM,) * 3), FWHM_MM, noise_fraction=noise,
                            noise_reference_bq_per_ml=BACKGROUND, seed=seed)


@pytest.fixture(scope="module")
def untilted_envelope():
    """Per sphere and metric, (low, high) over the untilted phantom moved by 0, 1/4 and 1/2 voxel: how much the
    figures change with the sampling phase alone."""
    results = [analyse_nema(posed_iec(shift_mm=(s, s, s)), activity_ratio=4.0) for s in (0.0, 0.75, 1.5)]
    return {(sphere.diameter_mm, metric): (min(getattr(r.spheres[k], metric) for r in results),
                                           max(getattr(r.spheres[k], metric) for r in results))
            for k, sphere in enumerate(results[0].spheres) for metric in METRICS}


@pytest.mark.parametrize("rotation_deg, shift_mm", [((5.0, 0.0, 0.0), (15.0, -10.0, 8.0)),
                                                    ((10.0, 0.0, 0.0), (15.0, -10.0, 8.0)),
                                                    ((0.0, 10.0, 30.0), (-20.0, 5.0, -7.0))])
def test_tilted_and_shifted_phantom_gives_the_untilted_figures(rotation_deg, shift_mm, untilted_envelope):
    pose = Pose(rotation_deg, shift_mm)
    volume = posed_iec(rotation_deg, shift_mm)
    geometry = find_phantom(volume)
    fit = geometry.fit
    expected_axis = pose.rotation()[:, 2]
    # noise-free, the model is the image up to voxel sampling: the pose within a tenth of a voxel and degree
    assert np.rad2deg(np.arccos(abs(fit.axis @ expected_axis))) < 0.1
    assert fit.tilt_deg == pytest.approx(np.rad2deg(np.arccos(abs(expected_axis[2]))), abs=0.1)
    assert np.linalg.norm(fit.centre_mm - np.array(shift_mm)) < 0.3
    assert fit.fwhm_mm == pytest.approx(FWHM_MM, abs=0.2) and not fit.warnings
    result = analyse_nema(volume, activity_ratio=4.0, geometry=geometry)
    for sphere in result.spheres:
        for metric in METRICS:
            low, high = untilted_envelope[(sphere.diameter_mm, metric)]
            # a tilt samples each sphere at a different phase per axis, the envelope spans only diagonal
            # phases; and the NU 2 disc of 9-110 voxels gains or loses edge voxels: one edge voxel of the
            # 17 mm disc (25 voxels) moves Q_H by (Q_centre - Q_edge) / 25 ~ 2 points. Margins: 5 points of Q_H,
            # 0.02 of an RC (measured at most 3.3 points and 0.011)
            margin = 5.0 if metric == "contrast_percent" else 0.02
            assert low - margin <= getattr(sphere, metric) <= high + margin, (sphere.diameter_mm, metric)


@pytest.mark.parametrize("ratio", [4.0, 10.0])
def test_ratio_is_estimated_within_three_percent_at_clinical_noise_on_a_tilted_phantom(ratio):
    volume = posed_iec((10.0, 0.0, 0.0), (15.0, -10.0, 8.0), ratio=ratio, noise=NOISE, seed=int(ratio))
    result = analyse_nema(volume)
    assert result.ratio_estimated
    # the model is exact up to voxel sampling and the noise: the fitted S averages thousands of voxels whose
    # noise (12 %, correlated over ~2 voxels) leaves it well within 1 %; the background mean (60 ROIs) alike
    # (measured ratio errors below 0.5 %); 3 % is what a user needs of an estimated truth
    assert result.activity_ratio == pytest.approx(ratio, rel=0.03)
    assert result.sphere_activity == pytest.approx(ratio * BACKGROUND, rel=0.03)
    assert result.tilt_deg == pytest.approx(10.0, abs=0.5)  # ~1 mm over the 114 mm circle
    assert np.linalg.norm(np.array(result.phantom_centre_mm) - (15.0, -10.0, 8.0)) < 1.0
    assert result.fitted_fwhm_mm == pytest.approx(FWHM_MM, abs=0.5)
    # the given truth overrides the estimate, and an inconsistent pair is reported
    given = analyse_nema(volume, activity_ratio=ratio, sphere_activity=2.0 * ratio * BACKGROUND)
    assert not given.ratio_estimated and given.sphere_activity == 2.0 * ratio * BACKGROUND
    assert any("same filling" in message for message in given.warnings)

