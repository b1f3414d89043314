"""Randoms from singles and from delays: the crystal-pair model and the fan-sum ML estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import default_layout
from petrecon.recon.corrections import CrystalPairModel, randoms_from_delays, randoms_from_singles


def _crystal_singles(layout, seed=0) -> np.ndarray:
    """Singles per crystal: efficiencies 0.8-1.2, an axial profile, zero in the gap crystals."""
    rng = np.random.default_rng(seed)
    scanner = layout.scanner
    axial = 1.0 - 0.3 * np.abs(np.linspace(-1, 1, scanner.n_rings))[:, None]
    singles = 2e4 * rng.uniform(0.8, 1.2, (scanner.n_rings, scanner.n_crystals_per_ring)) * axial
    singles[:, scanner.is_gap_crystal()] = 0.0
    return singles


def test_fan_sums_are_the_gradient_of_the_pair_model():
    # fan_sums(y, s) is the gradient of <expand(s, s), y> with respect to s
    layout = default_layout("test")
    model = CrystalPairModel(layout)
    rng = np.random.default_rng(1)
    s = rng.uniform(0.5, 1.5, model.crystal_shape).astype(np.float32)
    y = rng.uniform(0, 1, layout.shape).astype(np.float32)
    direction = rng.uniform(-1, 1, model.crystal_shape).astype(np.float32)
    h = 0.25  # the model is quadratic in s: the central difference is exact for any step
    plus, minus = s + h * direction, s - h * direction
    numeric = (np.vdot(model.expand(plus, plus).astype(np.float64), y) -
               np.vdot(model.expand(minus, minus).astype(np.float64), y)) / (2 * h)
    analytic = np.vdot(model.fan_sums(y, s), direction)
    # central difference of a quadratic is exact; float32 sums over 1.7e5 bins: 1e-4 relative
    assert numeric == pytest.approx(analytic, rel=1e-4)


def test_randoms_from_singles_match_the_pairwise_formula_on_a_mashed_layout():
    layout = dataclasses.replace(default_layout("test"), view_mashing=2)
    singles = _crystal_singles(layout)
    randoms = randoms_from_singles(layout, singles, duration_s=60.0)
    c1, c2 = layout.view_crystals()
    window_s = layout.scanner.coincidence_window_ns * 1e-9
    sinogram, view, radial = 5, 7, 30
    expected = sum(window_s * 60.0 * singles[r1, c1[view, m, radial]] * singles[r2, c2[view, m, radial]]
                   for r1, r2 in layout.ring_pairs()[sinogram] for m in range(2))
    assert randoms[sinogram, view, radial] == pytest.approx(expected, rel=1e-5)  # float32 accumulation


def test_fan_sum_estimate_from_delays_is_unbiased_and_far_less_noisy():
    layout = default_layout("test")
    truth = randoms_from_singles(layout, _crystal_singles(layout), duration_s=300.0)
    delays = np.random.default_rng(2).poisson(truth).astype(np.float32)
    estimate = randoms_from_delays(layout, delays)
    # ML keeps the total: 30 iterations converge it well below the 0.1 % Poisson error of ~1e6 delays
    assert estimate.sum() == pytest.approx(delays.sum(), rel=1e-3)
    # unbiased within 1 % (the target) in every segment-0 and oblique sinogram group
    assert estimate.sum() == pytest.approx(truth.sum(), rel=0.01)
    sinogram_bias = estimate.sum(axis=(1, 2)) / truth.sum(axis=(1, 2)) - 1
    assert np.abs(sinogram_bias).max() < 0.03  # per sinogram: ~3.6e4 counts, 0.5 % Poisson, 3 % allows 6 sigma
    # variance reduction: the rms error of the estimate is a small fraction of the delays' own noise
    assert np.std(estimate - truth) < 0.2 * np.std(delays - truth)


def test_bad_inputs_are_refused():
    layout = default_layout("test")
    with pytest.raises(ParameterError):
        randoms_from_singles(layout, -np.ones((8, 112)), 1.0)
    with pytest.raises(GeometryError, match="crystal values"):
        randoms_from_singles(layout, np.ones((8, 100)), 1.0)
    with pytest.raises(GeometryError, match="shape"):
        randoms_from_delays(layout, np.ones((3, 3, 3)))
