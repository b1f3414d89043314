"""The isotope table: reference decay factors and lookup by any common spelling."""

from __future__ import annotations

import pytest

from petrecon.errors import ParameterError
from petrecon.isotopes import get_isotope


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
