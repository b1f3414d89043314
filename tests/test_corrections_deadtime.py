"""Dead time: counter models invert their forward formulas; bins get the mean pair live fraction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.geometry import default_layout
from petrecon.recon.corrections import (
    BucketLayout, crystal_live_fraction, deadtime_factors, live_fraction, pair_live_fraction,
)
from petrecon.simulate.detection import crystal_efficiencies, crystal_singles_cps, pair_sum_sinogram

TAU_S = 2e-6
TRUE_RATES = np.array([1e3, 1e4, 5e4, 1e5, 2e5])


def test_non_paralysable_live_fraction_inverts_m_equals_n_over_one_plus_n_tau():
    measured = TRUE_RATES / (1 + TRUE_RATES * TAU_S)
    np.testing.assert_allclose(live_fraction(measured, TAU_S) * TRUE_RATES, measured, rtol=1e-12)


def test_paralysable_live_fraction_inverts_m_equals_n_exp_minus_n_tau():
    measured = TRUE_RATES * np.exp(-TRUE_RATES * TAU_S)
    np.testing.assert_allclose(live_fraction(measured, TAU_S, "paralysable") * TRUE_RATES, measured, rtol=1e-12)


def test_rates_beyond_what_a_counter_can_record_are_refused():
    with pytest.raises(ParameterError, match="1/\\(e tau\\)"):
        live_fraction(0.5 / TAU_S, TAU_S, "paralysable")
    with pytest.raises(ParameterError, match="m tau >= 1"):
        live_fraction(1.0 / TAU_S, TAU_S)
    with pytest.raises(ParameterError, match="model"):
        live_fraction(1.0, TAU_S, "extendable")


def test_bin_factor_is_the_mean_pair_product_on_a_mashed_layout():
    layout = dataclasses.replace(default_layout("test"), view_mashing=2)
    live = np.random.default_rng(0).uniform(0.7, 1.0, (8, 112)).astype(np.float32)
    factors = pair_live_fraction(layout, live)
    c1, c2 = layout.view_crystals()
    sinogram, view, radial = 10, 3, 40
    products = [live[r1, c1[view, m, radial]] * live[r2, c2[view, m, radial]]
                for r1, r2 in layout.ring_pairs()[sinogram] for m in range(2)]
    assert factors[sinogram, view, radial] == pytest.approx(np.mean(products), rel=1e-6)  # float32


def test_deadtime_factors_from_bucket_singles_match_the_simulated_truth():
    """Singles of a simulated cylinder per bucket -> measured rates -> bin factors, against the pair truth."""
    layout = default_layout("test")
    scanner = layout.scanner
    efficiencies = crystal_efficiencies(scanner, np.random.default_rng(1))
    z_mm = np.linspace(-150.0, 150.0, 61)
    slab_bq = np.full(z_mm.size, 2e7 / z_mm.size)  # 20 MBq over 30 cm in the 8-ring test scanner
    singles = crystal_singles_cps(scanner, efficiencies, z_mm, slab_bq, positron_fraction=0.97)
    buckets = BucketLayout(blocks_transaxial=2, rings=4)
    index = buckets.bucket_of_crystal(scanner)
    true_rates = np.bincount(index.ravel(), singles.ravel())  # the simulator's true singles per bucket
    for model in ("non-paralysable", "paralysable"):
        load = true_rates * TAU_S
        measured = true_rates / (1 + load) if model == "non-paralysable" else true_rates * np.exp(-load)
        true_live = (measured / true_rates)[index]  # the counter's forward model, per crystal
        # truth through the simulator's own bookkeeping (span-1 map), not the corrections' crystal-pair model
        truth = pair_sum_sinogram(layout, true_live) / pair_sum_sinogram(layout, np.ones_like(true_live))
        factors = deadtime_factors(layout, measured, TAU_S, model, buckets)
        assert 0.5 < truth.min() < 0.99  # the test is at a load where dead time matters
        np.testing.assert_allclose(factors, truth, rtol=1e-5)  # float32 factors of exact inverses


def test_bucket_rates_that_do_not_match_the_layout_are_refused():
    scanner = default_layout("test").scanner
    with pytest.raises(ParameterError, match="14 buckets"):
        crystal_live_fraction(scanner, np.ones(13), TAU_S, buckets=BucketLayout(2, 4))
    with pytest.raises(ParameterError, match="do not tile"):
        BucketLayout(3, 4).n_buckets(scanner)
