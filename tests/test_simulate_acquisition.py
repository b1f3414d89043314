"""simulate_study: count level, Poisson noise, determinism, corrections, and the calibration of the chain."""

import math

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.isotopes import get_isotope
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon import OsemProtocol, osem
from petrecon.simulate.acquisition import (LINE_SOURCE_LENGTH_MM, LINE_SOURCE_RADIUS_MM, additive_sinogram,
                                           decay_average, multiplicative_sinogram, simulate_study)
from petrecon.simulate.phantom import phantom_from_dict
from petrecon.volume import ImageGrid

# The test scanner with 100 radial bins: its FOV (radius 118 mm) holds the 20 cm cylinder.
WIDE_TEST_LAYOUT = SinogramLayout(get_scanner("test"), 3, 7, 100, 1)
SMALL_GRID = ImageGrid.centred((8, 8, 4), (30.0, 30.0, 8.0))
SENSITIVITY_CPS_PER_KBQ = 5.0


LINE_SOURCE_BQ = 20e6
LINE_SOURCE_BQ_PER_ML = LINE_SOURCE_BQ / (math.pi * LINE_SOURCE_RADIUS_MM**2 * LINE_SOURCE_LENGTH_MM / 1000.0)


def _line_source(water_radius_mm=None):
    cylinder = {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "length_mm": LINE_SOURCE_LENGTH_MM}
    regions = []
    if water_radius_mm:
        regions.append({"activity": 0.0, "material": "water", "shapes": [dict(cylinder, radius_mm=water_radius_mm)]})
    regions.append({"activity": LINE_SOURCE_BQ_PER_ML, "material": "water" if water_radius_mm else "air",
                    "shapes": [dict(cylinder, radius_mm=LINE_SOURCE_RADIUS_MM)]})
    return phantom_from_dict({"regions": regions})


def _line_source_counts(water_radius_mm, seed):
    study = simulate_study(_line_source(water_radius_mm), scanner="test", isotope="Ga68", duration_s=300.0, frame_start_s=3600.0, randoms=False, scatter=False,
                           resolution=False, efficiency_spread=0.0, sensitivity_cps_per_kbq=SENSITIVITY_CPS_PER_KBQ, seed=seed,
                           grid=SMALL_GRID, progress=False)
    return float(study.container.sinograms["prompts"].sum())


def _expected_line_source_counts():
    # Without the resolution model: blurring moves counts into gap bins (normalisation 0), where
    # they are lost as in a real scanner (0.2 % of a line source on the test scanner).
    ga68 = get_isotope("Ga68")
    decays = LINE_SOURCE_BQ * ga68.decay_factor(3600.0) * 300.0 * decay_average(ga68.decay_constant_per_s, 300.0)
    # The NEMA sensitivity counts per kBq of 18F: scale by the positron fractions.
    return decays * SENSITIVITY_CPS_PER_KBQ / 1000.0 * ga68.positron_fraction / get_isotope("F18").positron_fraction


def test_total_counts_equal_activity_times_duration_times_sensitivity_within_poisson_error():
    expected = _expected_line_source_counts()
    counts = _line_source_counts(None, seed=1)
    # Poisson: sigma = sqrt(N) ~ 0.1 % at N ~ 1e6; 4 sigma.
    assert abs(counts - expected) < 4 * math.sqrt(expected), (counts, expected)


def test_counts_through_water_fall_by_the_attenuation_of_its_diameter():
    radius_mm, mu_per_mm, r = 50.0, 0.0096, LINE_SOURCE_RADIUS_MM
    expected = _expected_line_source_counts()
    counts = _line_source_counts(radius_mm, seed=2)
    # A transaxial LOR at distance b from the axis crosses 2 sqrt(R^2 - b^2) of water and sees
    # the source over 2 sqrt(r^2 - b^2): average the attenuation with that weight (quadrature).
    b = np.linspace(-r, r, 200001)
    weight = 2 * np.sqrt(np.clip(r**2 - b**2, 0, None))
    path = 2 * np.sqrt(radius_mm**2 - b**2)

    def mean_attenuation(stretch):
        return float(np.sum(weight * np.exp(-mu_per_mm * stretch * path)) / np.sum(weight))

    # Oblique LORs are longer by 1 / cos(polar angle): at most 0.7 % on the test scanner
    # (ring difference 7: 28 mm over 240 mm), which bounds the expectation from below.
    low = expected * mean_attenuation(math.hypot(1.0, 28.0 / 240.0))
    high = expected * mean_attenuation(1.0)
    assert low - 4 * math.sqrt(low) < counts < high + 4 * math.sqrt(high), (low, counts, high)


@pytest.fixture(scope="module")
def cylinder_study():
    return simulate_study("uniform-cylinder", scanner=WIDE_TEST_LAYOUT, duration_s=120.0, seed=3, grid=SMALL_GRID,
                          progress=False).container


def test_noise_is_poisson_with_the_expected_mean_and_variance(cylinder_study):
    expected = (cylinder_study.sinograms["trues_expected"] + cylinder_study.sinograms["scatter"]
                + cylinder_study.sinograms["randoms"]).astype(np.float64)
    prompts = cylinder_study.sinograms["prompts"].astype(np.float64)
    chosen = expected > 20.0
    z = (prompts[chosen] - expected[chosen]) / np.sqrt(expected[chosen])
    n = z.size
    assert n > 20000
    # Standardised Poisson residuals: mean 0 (sd 1/sqrt(n)) and variance 1 (sd ~ sqrt(2/n)); 5 sd.
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0 / n)
    randoms = cylinder_study.sinograms["randoms"].astype(np.float64)
    delays = cylinder_study.sinograms["delays"].astype(np.float64)
    # Delays ~ Poisson(randoms): totals agree within 5 sd of the total count.
    assert abs(delays.sum() - randoms.sum()) < 5 * math.sqrt(randoms.sum())
    assert np.issubdtype(cylinder_study.sinograms["prompts"].dtype, np.integer)


def test_same_seed_same_study_other_seed_other_noise(cylinder_study):
    again = simulate_study("uniform-cylinder", scanner=WIDE_TEST_LAYOUT, duration_s=120.0, seed=3, grid=SMALL_GRID,
                           progress=False).container
    np.testing.assert_array_equal(again.sinograms["prompts"], cylinder_study.sinograms["prompts"])
    other = simulate_study("uniform-cylinder", scanner=WIDE_TEST_LAYOUT, duration_s=120.0, seed=4, grid=SMALL_GRID,
                           progress=False).container
    assert not np.array_equal(other.sinograms["prompts"], cylinder_study.sinograms["prompts"])


def test_correction_sinograms_are_consistent(cylinder_study):
    s = cylinder_study.sinograms
    gaps = WIDE_TEST_LAYOUT.gap_bin_mask()[None]  # any gap crystal in the bin (no mashing: the only LOR)
    assert np.all(s["normalisation"][np.broadcast_to(gaps, s["normalisation"].shape)] == 0)
    assert np.all(s["prompts"][np.broadcast_to(gaps, s["prompts"].shape)] == 0)
    assert 0 < s["attenuation_factors"].min() and s["attenuation_factors"].max() <= 1
    # 20 cm of water and 2 x 3 mm PMMA on a transaxial LOR through the centre (segment 0, radial
    # bin 50): exp(-0.096 x 20 - 0.111 x 0.6); oblique LORs are longer, so this is the maximum.
    assert s["attenuation_factors"][:WIDE_TEST_LAYOUT.segment_table[0], :, 50].max() == pytest.approx(math.exp(-1.92 - 0.0666), rel=1e-3)
    scatter, trues = s["scatter"].sum(dtype=np.float64), s["trues_expected"].sum(dtype=np.float64)
    assert scatter / (scatter + trues) == pytest.approx(cylinder_study.attributes["scatter_fraction"], rel=1e-4)
    attributes = cylinder_study.attributes
    assert attributes["isotope"] == "F18" and attributes["seed"] == 3 and attributes["duration_s"] == 120.0
    truth = cylinder_study.volumes["activity_bq_per_ml"].data
    assert truth.max() == pytest.approx(5000.0, rel=1e-6)  # Bq/ml at the frame start (t = 0)


def test_noise_free_uniform_cylinder_reconstructs_to_the_true_concentration_within_one_percent():
    grid = ImageGrid.centred((72, 72, 15), (3.0, 3.0, 2.0))
    study = simulate_study("uniform-cylinder", scanner=WIDE_TEST_LAYOUT, isotope="Ga68", injected_activity_bq=40e6,
                           duration_s=180.0, frame_start_s=1800.0, noise=False, seed=5, grid=grid,
                           progress=False).container
    image = osem(study.sinograms["prompts"], SinogramProjector(WIDE_TEST_LAYOUT, grid),
                 multiplicative=multiplicative_sinogram(study), additive=additive_sinogram(study),
                 protocol=OsemProtocol(4, 8, 5.0))
    x, y, z = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    # Central region: r < 50 mm, |z| < 8 mm. (On the test scanner one OSEM subset never sees the
    # 4 central voxels: its views' central bins use gap crystals; osem() keeps their value then.)
    central = (np.hypot(x, y) < 50.0) & (np.abs(z) < 8.0)
    truth = study.volumes["activity_bq_per_ml"].data[central].mean()
    assert truth == pytest.approx(40e6 / (math.pi * 100.0**2 * 300.0 / 1000.0) * 0.5**(1800 / 4069.8), rel=1e-3)
    # The calibration claim of the whole chain: 1 % (noise-free data; measured 0.24 % low after 4 x 8).
    assert image[central].mean() == pytest.approx(truth, rel=0.01)


def test_bad_requests_raise_parameter_errors():
    with pytest.raises(ParameterError, match="duration"):
        simulate_study("uniform-cylinder", scanner="test", duration_s=-1.0, progress=False)
    with pytest.raises(ParameterError, match="list-mode"):
        simulate_study("uniform-cylinder", scanner="test", noise=False, listmode=True, progress=False)
    with pytest.raises(ParameterError, match="unknown phantom"):
        simulate_study("no-such-phantom", scanner="test", progress=False)


def test_suv_phantoms_scale_with_injected_activity_and_decay_to_the_frame_start():
    study = simulate_study("pentixafor-torso", scanner="test", injected_activity_bq=150e6, noise=False,
                           grid=ImageGrid.centred((40, 30, 3), (10.0, 10.0, 10.0)), supersampling=1,
                           progress=False).container
    attributes = study.attributes
    assert attributes["isotope"] == "Ga68" and attributes["frame_start_s"] == 3720.0
    truth = study.volumes["activity_bq_per_ml"]
    # SUVbw = Bq/ml x weight(g) / (injected x decay to the frame start) (reference/quantification.md).
    suv = truth.data * 75000.0 / (150e6 * attributes["decay_factor_frame_start"])
    x = truth.grid.voxel_centres_mm(0)
    liver_voxel = suv[np.argmin(np.abs(x + 65.0)), 14, 1]  # liver centre (-65, -10, 0) mm
    assert liver_voxel == pytest.approx(3.1, rel=1e-6)


def test_analytic_sinogram_matches_the_projection_of_the_voxelised_truth_off_centre():
    """Orientation and units of the simulator agree with the reconstruction's projector and grid."""
    layout = SinogramLayout(get_scanner("test"), 3, 7, 64, 1)
    grid = ImageGrid.centred((64, 64, 15), (3.0, 3.0, 2.0))
    phantom = phantom_from_dict({"regions": [
        {"activity": 1000.0, "shapes": [{"type": "sphere", "centre_mm": [40.0, -25.0, 3.0], "radius_mm": 20.0}]},
        {"activity": 3000.0, "shapes": [{"type": "box", "centre_mm": [-30.0, 35.0, 0.0], "size_mm": [30, 20, 40]}]}]})
    study = simulate_study(phantom, scanner=layout, noise=False, randoms=False, scatter=False, resolution=False,
                           efficiency_spread=0.0, grid=grid, supersampling=4, progress=False).container
    emission = study.sinograms["trues_expected"] / multiplicative_sinogram(study).clip(1e-30)
    live = study.sinograms["normalisation"] > 0
    joseph = SinogramProjector(layout, grid).forward(study.volumes["activity_bq_per_ml"].data)
    # Joseph on a 3 mm voxelised truth against exact chords differs at the edges of the objects:
    # measured 2.5 % (L1); mirroring z (the smallest error of orientation) gives 9 %, x 150 %.
    difference = np.abs(emission[live] - joseph[live]).sum() / joseph[live].sum()
    assert difference < 0.04, difference
    # Measured correlation 0.9989; mirrored z 0.991, swapped x/y 0.67.
    assert np.corrcoef(emission[live], joseph[live])[0, 1] > 0.997
