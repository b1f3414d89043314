"""SUV from explicit parameters: decay of the dose and the body-size normalisations.

Facts from reference/quantification.md (QIBA SUV logic, step "decayed dose";
SUVbw factor = weight_kg * 1000 / decayed dose in g/Bq). An SUV factor
multiplies an activity concentration in Bq/ml; SUVbw, SUVlbm and SUVibw come
out in g/ml, SUVbsa in cm^2/ml.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from petrecon.errors import ParameterError
from petrecon.quant.body import (
    body_surface_area_m2,
    ideal_body_weight_kg,
    lean_body_mass_james_kg,
    lean_body_mass_janmahasatian_kg,
)

#: Accepted normalisations and what each divides the dose by.
NORMALISATIONS = {
    "bw": "body weight (g)",
    "lbm-james": "lean body mass after James (g)",
    "lbm-janmahasatian": "lean body mass after Janmahasatian (g)",
    "bsa": "body surface area after Du Bois (cm^2)",
    "ibw": "ideal body weight (g)",
}


@dataclass(frozen=True)
class Patient:
    """Body facts the SUV normalisations need (height and sex only for LBM, BSA and IBW)."""

    weight_kg: float
    height_cm: float | None = None
    sex: str | None = None


def decayed_dose_bq(dose_bq: float, elapsed_s: float, half_life_s: float) -> float:
    """Activity remaining of ``dose_bq`` after ``elapsed_s`` (QIBA SUV logic, decayed dose).

    Examples
    --------
    >>> round(decayed_dose_bq(370e6, 3600, 6586.0) / 1e6, 2)
    253.31
    """
    if not half_life_s > 0:
        raise ParameterError(f"half_life_s must be positive, got {half_life_s}")
    return dose_bq * 2.0 ** (-elapsed_s / half_life_s)


def normaliser(patient: Patient, normalisation: str = "bw") -> float:
    """The quantity the dose is divided by: grams (bw, lbm-*, ibw) or cm^2 (bsa).

    Examples
    --------
    >>> round(normaliser(Patient(75.0, 185.0, "M"), "lbm-james") / 1000, 3)
    61.463
    """
    if normalisation not in NORMALISATIONS:
        raise ParameterError(f"unknown SUV normalisation {normalisation!r}; known: {', '.join(NORMALISATIONS)}")
    if patient.weight_kg is None or not patient.weight_kg > 0:
        raise ParameterError(f"patient weight must be positive, got {patient.weight_kg}")
    if normalisation == "bw":
        return patient.weight_kg * 1000.0
    if patient.height_cm is None:
        raise ParameterError(f"SUV normalisation {normalisation!r} needs the patient's height")
    if normalisation == "bsa":
        return body_surface_area_m2(patient.weight_kg, patient.height_cm) * 1.0e4
    if patient.sex is None:
        raise ParameterError(f"SUV normalisation {normalisation!r} needs the patient's sex")
    formula = {"lbm-james": lean_body_mass_james_kg, "lbm-janmahasatian": lean_body_mass_janmahasatian_kg,
               "ibw": ideal_body_weight_kg}[normalisation]
    return formula(patient.weight_kg, patient.height_cm, patient.sex) * 1000.0


def suv_factor(dose_bq: float, patient: Patient, normalisation: str = "bw", *, elapsed_s: float = 0.0,
               half_life_s: float | None = None) -> float:
    """Factor that turns Bq/ml into SUV: ``normaliser / decayed dose``.

    Parameters
    ----------
    dose_bq : float
        Injected activity at injection time.
    patient : Patient
        Body facts.
    normalisation : str
        One of :data:`NORMALISATIONS`.
    elapsed_s : float
        Time from injection to the image's decay-correction reference time
        (0 for images decay-corrected to the injection, DICOM ``ADMIN``).
    half_life_s : float, optional
        Needed when ``elapsed_s`` is not 0.

    Examples
    --------
    >>> f"{suv_factor(370e6, Patient(59.94), elapsed_s=3600, half_life_s=6586.0):.5e}"
    '2.36626e-04'
    """
    if not dose_bq > 0:
        raise ParameterError(f"dose_bq must be positive, got {dose_bq}")
    if elapsed_s < 0:
        raise ParameterError(f"elapsed_s must not be negative (scan before injection), got {elapsed_s}")
    dose = dose_bq
    if elapsed_s:
        if half_life_s is None:
            raise ParameterError("half_life_s is needed to decay the dose")
        dose = decayed_dose_bq(dose_bq, elapsed_s, half_life_s)
    return normaliser(patient, normalisation) / dose


def suv_factor_from_times(dose_bq: float, injection_time: datetime, scan_time: datetime, half_life_s: float,
                          patient: Patient, normalisation: str = "bw") -> float:
    """SUV factor for an image decay-corrected to ``scan_time`` (DICOM ``START``).

    Examples
    --------
    >>> from datetime import datetime
    >>> from petrecon.isotopes import get_isotope
    >>> f = suv_factor_from_times(370e6, datetime(2024, 1, 1, 13, 1), datetime(2024, 1, 1, 14, 1),
    ...                           get_isotope("F18").half_life_s, Patient(70.0))
    >>> f"{f:.4e}"
    '2.7634e-04'
    """
    elapsed_s = (scan_time - injection_time).total_seconds()
    return suv_factor(dose_bq, patient, normalisation, elapsed_s=elapsed_s, half_life_s=half_life_s)
