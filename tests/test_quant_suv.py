"""SUV from explicit parameters and body-size normalisations: the known answers of reference/quantification.md."""

from datetime import datetime

import pytest

from petrecon.errors import ParameterError
from petrecon.isotopes import get_isotope
from petrecon.quant.body import (
    body_surface_area_m2,
    ideal_body_weight_kg,
    lean_body_mass_james_kg,
    lean_body_mass_janmahasatian_kg,
)
from petrecon.quant.suv import Patient, decayed_dose_bq, normaliser, suv_factor, suv_factor_from_times


def test_decayed_dose_known_answer_370_mbq_after_one_hour():
    assert decayed_dose_bq(370e6, 3600.0, 6586.0) / 1e6 == pytest.approx(253.31, abs=0.005)


@pytest.mark.parametrize("weight_kg, factor", [(59.94, 2.36626e-4), (70.0, 2.76340e-4)])
def test_suvbw_factor_known_answers(weight_kg, factor):
    computed = suv_factor_from_times(370e6, datetime(2024, 3, 5, 13, 1), datetime(2024, 3, 5, 14, 1), 6586.0,
                                     Patient(weight_kg))
    # the reference gives 6 significant digits
    assert computed == pytest.approx(factor, rel=5e-6)


@pytest.mark.parametrize("isotope, fraction", [("F18", 0.684633), ("68Ga", 0.541651)])
def test_one_hour_decay_of_f18_and_ga68(isotope, fraction):
    half_life_s = get_isotope(isotope).half_life_s
    assert decayed_dose_bq(1.0, 3600.0, half_life_s) == pytest.approx(fraction, abs=5e-7)


def test_any_half_life_is_used_as_given():
    assert decayed_dose_bq(8.0, 30.0, 10.0) == pytest.approx(1.0)


def test_james_lbm_known_answer():
    assert lean_body_mass_james_kg(75.0, 185.0, "M") == pytest.approx(61.463, abs=5e-4)


def test_body_formulas_follow_the_reference_expressions():
    w, h = 62.0, 164.0
    bmi = w / 1.64**2
    assert lean_body_mass_james_kg(w, h, "F") == pytest.approx(1.07 * w - 148 * (w / h) ** 2)
    assert lean_body_mass_janmahasatian_kg(w, h, "M") == pytest.approx(9270 * w / (6680 + 216 * bmi))
    assert lean_body_mass_janmahasatian_kg(w, h, "F") == pytest.approx(9270 * w / (8780 + 244 * bmi))
    assert body_surface_area_m2(w, h) == pytest.approx(0.007184 * w**0.425 * h**0.725)
    assert ideal_body_weight_kg(w, h, "F") == pytest.approx(45.5 + 0.91 * 12)
    assert ideal_body_weight_kg(w, h, "M") == pytest.approx(48 + 1.06 * 12)


def test_ideal_body_weight_is_capped_at_the_body_weight():
    assert ideal_body_weight_kg(50.0, 190.0, "M") == 50.0


def test_every_normalisation_scales_the_bw_factor_by_its_mass():
    patient = Patient(75.0, 185.0, "M")
    bw = suv_factor(300e6, patient)
    assert suv_factor(300e6, patient, "lbm-james") == pytest.approx(bw * 61.4627 / 75.0, rel=1e-5)
    assert suv_factor(300e6, patient, "bsa") == pytest.approx(bw * body_surface_area_m2(75, 185) * 1e4 / 75e3)
    assert suv_factor(300e6, patient, "ibw") == pytest.approx(bw)  # IBW 82.98 kg capped at 75 kg


@pytest.mark.parametrize("patient, normalisation, word", [
    (Patient(70.0), "lbm-james", "height"),
    (Patient(70.0, 170.0), "ibw", "sex"),
    (Patient(0.0), "bw", "weight"),
    (Patient(70.0), "suv-what", "unknown"),
])
def test_missing_body_facts_are_errors_not_numbers(patient, normalisation, word):
    with pytest.raises(ParameterError, match=word):
        normaliser(patient, normalisation)


def test_scan_before_injection_is_an_error():
    with pytest.raises(ParameterError, match="scan before injection"):
        suv_factor_from_times(1e8, datetime(2024, 1, 1, 12), datetime(2024, 1, 1, 11), 6586.2, Patient(70))
