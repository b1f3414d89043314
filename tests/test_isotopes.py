"""The isotope table: reference decay factors and lookup by any common spelling."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.isotopes import decay_correction_factor, get_isotope


@pytest.mark.parametrize("name, factor", [("F18", 0.684633), ("Ga68", 0.541651)])
def test_decay_over_one_hour_matches_the_reference(name, factor):
    # reference/quantification.md gives six decimals
    assert get_isotope(name).decay_factor(3600.0) == pytest.approx(factor, abs=5e-7)


@pytest.mark.parametrize("spelling", ["Ga68", "68Ga", "ga-68", "GA68"])
def test_common_spellings_find_the_same_isotope(spelling):
    assert get_isotope(spelling).name == "Ga68"


def test_ga68_travels_further_than_f18():
    assert get_isotope("Ga68").mean_positron_range_mm > 4 * get_isotope("F18").mean_positron_range_mm


def test_unknown_isotope_is_a_clear_error():
    with pytest.raises(ParameterError, match="Tc99m"):
        get_isotope("Tc99m")


@pytest.mark.parametrize("isotope", ["F18", "Ga68"])
def test_factor_inverts_the_numerically_integrated_decay(isotope):
    half_life_s = get_isotope(isotope).half_life_s
    start_s, duration_s = 600.0, 180.0
    t = start_s + (np.arange(100000) + 0.5) / 100000 * duration_s
    mean_activity = np.mean(2.0 ** (-t / half_life_s))
    # midpoint rule over 1e5 steps: error ~1e-12
    assert decay_correction_factor(half_life_s, start_s, duration_s) * mean_activity == pytest.approx(1.0, abs=1e-9)


def test_short_frame_at_one_hour_matches_the_reference_decay():
    # reference/quantification.md: 18F decays to 0.684633 in 60 min
    assert 1.0 / decay_correction_factor(6586.2, 3600.0, 1e-6) == pytest.approx(0.684633, abs=1e-6)


def test_absurd_parameters_are_refused():
    with pytest.raises(ParameterError, match="half_life_s"):
        decay_correction_factor(0.0, 0.0, 1.0)
    with pytest.raises(ParameterError, match="frame_duration_s"):
        decay_correction_factor(100.0, 0.0, -1.0)
