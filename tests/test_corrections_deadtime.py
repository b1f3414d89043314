"""Dead time: counter models invert their forward formulas; bins get the mean pair live fraction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.geometry import default_layout
from petrecon.recon.corrections import live_fraction, pair_live_fraction

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
