"""Detection model: normalisation over combined LORs, gaps, singles and randoms from singles."""

import numpy as np
import pytest

from petrecon.geometry import SinogramLayout, default_layout, get_scanner
from petrecon.simulate.detection import (choose_span1_addresses, crystal_efficiencies, crystal_singles_cps,
                                         normalisation_sinogram, pair_sum_sinogram, radial_geometric_factors,
                                         ring_solid_angle_fractions)


def test_unit_efficiencies_count_the_detector_pairs_of_each_bin():
    layout = SinogramLayout(get_scanner("test"), 5, 7, 64, 2)
    counts = pair_sum_sinogram(layout, np.ones((8, 112)))
    # Every span-1 LOR lands in exactly one bin: the total is (ring pairs stored) x (views) x (bins).
    n_pairs = np.count_nonzero(layout.listmode_layout().ring_pair_to_sinogram() >= 0)
    assert counts.sum() == n_pairs * 56 * 64
    ring_pairs = layout.ring_pairs()
    per_sinogram = np.array([len(pairs) for pairs in ring_pairs]) * layout.view_mashing
    np.testing.assert_array_equal(counts[:, 3, 10], per_sinogram)


def test_gap_crystals_zero_the_normalisation_and_geometry_falls_off_radially():
    layout = default_layout("test")
    efficiencies = crystal_efficiencies(layout.scanner, np.random.default_rng(0))
    normalisation = normalisation_sinogram(layout, efficiencies)
    gaps = np.broadcast_to(layout.gap_bin_mask()[None], layout.shape)
    assert np.all(normalisation[gaps] == 0) and np.all(normalisation[~gaps] > 0)
    factors = radial_geometric_factors(layout)
    assert factors[layout.n_radial_bins // 2] == 1.0 and factors[0] < factors[16] < 1.0
    live = efficiencies[efficiencies > 0]
    assert live.mean() == pytest.approx(1.0, abs=0.01) and 0.03 < live.std() < 0.07  # 5 % spread


def test_randoms_of_uniform_singles_are_the_window_times_the_singles_product():
    layout = default_layout("test")
    singles = np.full((8, 112), 1000.0)
    randoms = pair_sum_sinogram(layout, singles) * 5e-9
    pairs = pair_sum_sinogram(layout, np.ones((8, 112)))
    np.testing.assert_allclose(randoms, 5e-9 * 1000.0**2 * pairs)


def test_singles_follow_the_solid_angle_of_each_ring():
    scanner = get_scanner("test")
    fractions = ring_solid_angle_fractions(scanner, np.array([0.0]))[0]
    # From the centre the whole 32 mm axial extent at R = 120 mm subtends sin(atan(16/120)) = 0.1322.
    assert fractions.sum() == pytest.approx(16.0 / np.hypot(120.0, 16.0), rel=1e-9)
    singles = crystal_singles_cps(scanner, np.ones((8, 112)), np.array([0.0]), np.array([1e6]), 1.0)
    assert singles[3, 0] == singles[4, 0] > singles[0, 0]  # symmetric, highest in the middle


def test_events_are_assigned_to_the_lors_of_their_bin_with_their_weights():
    layout = SinogramLayout(get_scanner("test"), 5, 7, 64, 2)
    weights = np.ones((8, 112))
    bin_index = np.ravel_multi_index((0, 3, 20), layout.shape)  # segment 0, ring sum 0: ring pair (0, 0)
    uniforms = np.random.default_rng(0).random(20000)
    addresses = choose_span1_addresses(layout, np.full(20000, bin_index), uniforms, weights)
    views = (addresses // 64) % 56
    # The two mashed views 6 and 7, equally likely: binomial sd 0.0035; 5 sd.
    assert set(np.unique(views)) == {6, 7}
    assert abs(np.mean(views == 6) - 0.5) < 0.018
