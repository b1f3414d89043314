"""Single-scatter simulation: Compton physics, symmetry, sampling accuracy, and the tail fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import default_layout
from petrecon.recon.corrections.compton import (
    CLASSICAL_ELECTRON_RADIUS_CM, klein_nishina_differential_cm2_per_sr, klein_nishina_total_cm2,
)
from petrecon.recon.corrections.scatter import ScatterSettings, fit_scatter_tails, single_scatter
from petrecon.volume import ImageGrid, Volume

LAYOUT = default_layout("test")
GRID = ImageGrid.centred(LAYOUT.scanner.default_image_shape, LAYOUT.scanner.default_voxel_size_mm)


def _cylinder(radius_mm: float = 70.0) -> tuple[Volume, Volume]:
    x, y, _ = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    inside = (np.hypot(x, y) <= radius_mm).astype(np.float32)
    return Volume(1000.0 * inside, GRID), Volume(0.096 * inside, GRID, {"units": "cm^-1"})


@pytest.mark.parametrize("energy_kev", [10.0, 140.0, 511.0, 1000.0])
def test_klein_nishina_differential_integrates_to_the_total(energy_kev):
    cos_theta = np.linspace(-1, 1, 200001)
    integral = 2 * np.pi * np.trapezoid(klein_nishina_differential_cm2_per_sr(cos_theta, energy_kev), cos_theta)
    # trapezoid rule with 2e5 intervals of a smooth integrand: 1e-8 relative
    assert integral == pytest.approx(float(klein_nishina_total_cm2(energy_kev)), rel=1e-6)


def test_klein_nishina_tends_to_thomson_at_low_energy():
    thomson_cm2 = 8 * np.pi / 3 * CLASSICAL_ELECTRON_RADIUS_CM**2
    # at 1 keV the Klein-Nishina total is below Thomson by ~2k = 0.4 %
    assert float(klein_nishina_total_cm2(1.0)) == pytest.approx(thomson_cm2, rel=0.005)


def test_centred_cylinder_scatter_is_view_independent_and_radially_symmetric():
    scatter = single_scatter(*_cylinder(), LAYOUT)
    segment0 = scatter[: LAYOUT.segment_table[0]]
    by_view = segment0.sum(axis=(0, 2))
    # detectors every 8th crystal (14 per ring): the interpolation ripple over views stays below 2 %
    assert by_view.std() / by_view.mean() < 0.02
    profile = segment0.sum(axis=(0, 1))
    centre = LAYOUT.n_radial_bins // 2
    # bins t and -t are the same distance from the centre up to the half-crystal interleaving: 3 %
    np.testing.assert_allclose(profile[centre + 1: centre + 25], profile[centre - 1: centre - 25: -1], rtol=0.03)
    assert profile[centre] > 3 * profile[2]  # scatter falls off outside the body


def test_scatter_is_linear_in_activity_and_vanishes_without_matter():
    activity, mu = _cylinder()
    once = single_scatter(activity, mu, LAYOUT)
    twice = single_scatter(Volume(2 * activity.data, GRID), mu, LAYOUT)
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-5)  # float32 sums
    assert single_scatter(activity, Volume(np.zeros(GRID.shape, np.float32), GRID), LAYOUT).max() == 0


def test_a_higher_energy_threshold_rejects_more_scatter():
    activity, mu = _cylinder()
    narrow = dataclasses.replace(LAYOUT, scanner=dataclasses.replace(LAYOUT.scanner, energy_window_kev=(480.0, 650.0)))
    assert single_scatter(activity, mu, narrow).sum() < 0.7 * single_scatter(activity, mu, LAYOUT).sum()


def test_detector_subsampling_costs_little_against_every_crystal_and_ring():
    activity, mu = _cylinder()
    # every 4th of 112 crystals is 12.9 degrees apart, coarser than the default on the Biograph rings
    # (every 8th of 504-672 crystals: 4.3-5.7 degrees)
    coarse = single_scatter(activity, mu, LAYOUT, ScatterSettings(crystal_step=4, n_axial_detectors=5))
    full = single_scatter(activity, mu, LAYOUT, ScatterSettings(crystal_step=1, n_axial_detectors=8))
    body = full > 0.5 * full.max()
    # multilinear interpolation of a smooth function: within 3 % where scatter matters (measured 2.7 % max)
    np.testing.assert_allclose(coarse[body], full[body], rtol=0.03)


def test_tail_fit_recovers_the_scatter_scale_within_two_percent():
    activity, mu = _cylinder()
    from petrecon.attenuation import attenuation_factors

    factors = attenuation_factors(mu, LAYOUT)
    normalisation = np.random.default_rng(6).uniform(0.8, 1.2, LAYOUT.shape).astype(np.float32)
    unscaled = single_scatter(activity, mu, LAYOUT)
    true_scale = 2.5e4
    trues = np.where(factors < 0.95, 50.0, 0.0) * normalisation * factors  # trues only through the body
    randoms = np.full(LAYOUT.shape, 2.0, np.float32)
    prompts = np.random.default_rng(7).poisson(trues + randoms + true_scale * normalisation * unscaled)
    estimate = fit_scatter_tails(unscaled, prompts, randoms, normalisation, factors, axial_window=47)
    # the tails hold ~2e6 scatter counts: Poisson error 0.1 %, the target is 2 %
    assert np.median(estimate.scale) == pytest.approx(true_scale, rel=0.02)


def test_bad_scatter_inputs_are_refused():
    activity, mu = _cylinder()
    with pytest.raises(ParameterError, match="crystal_step"):
        single_scatter(activity, mu, LAYOUT, ScatterSettings(crystal_step=5))
    ones = np.ones(LAYOUT.shape, np.float32)
    with pytest.raises(GeometryError, match="shape"):
        fit_scatter_tails(ones, ones, ones, ones, np.ones((2, 2, 2)))
    with pytest.raises(ParameterError, match="no tail bins"):
        fit_scatter_tails(ones, ones, ones, ones, 0.5 * ones)
