"""Body-size normalisations of the SUV: lean body mass, body surface area, ideal body weight.

Formulas from reference/quantification.md (James 1976 and Janmahasatian 2005
lean body mass, Du Bois body surface area, ideal body weight); weight in kg,
height in cm.
"""

from __future__ import annotations

from petrecon.errors import ParameterError


def _sex_code(sex: str) -> str:
    code = str(sex).strip().upper()[:1]
    if code not in ("M", "F"):
        raise ParameterError(f"sex must be 'M' or 'F' for this normalisation, got {sex!r}")
    return code


def _check_body(weight_kg: float, height_cm: float) -> None:
    if not weight_kg > 0 or not height_cm > 0:
        raise ParameterError(f"weight_kg and height_cm must be positive, got {weight_kg} and {height_cm}")


def lean_body_mass_james_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass after James: male ``1.10 W - 128 (W/H)^2``, female ``1.07 W - 148 (W/H)^2``.

    Examples
    --------
    >>> round(lean_body_mass_james_kg(75.0, 185.0, "M"), 3)
    61.463
    """
    _check_body(weight_kg, height_cm)
    if _sex_code(sex) == "M":
        return 1.10 * weight_kg - 128.0 * (weight_kg / height_cm) ** 2
    return 1.07 * weight_kg - 148.0 * (weight_kg / height_cm) ** 2


def lean_body_mass_janmahasatian_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Lean body mass after Janmahasatian: male ``9270 W / (6680 + 216 BMI)``, female ``9270 W / (8780 + 244 BMI)``.

    BMI = W / (H/100)^2 in kg/m^2.

    Examples
    --------
    >>> round(lean_body_mass_janmahasatian_kg(75.0, 185.0, "M"), 3)
    60.915
    """
    _check_body(weight_kg, height_cm)
    bmi = weight_kg / (height_cm / 100.0) ** 2
    if _sex_code(sex) == "M":
        return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)
    return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)


def body_surface_area_m2(weight_kg: float, height_cm: float) -> float:
    """Body surface area after Du Bois: ``0.007184 W^0.425 H^0.725`` m^2.

    Examples
    --------
    >>> round(body_surface_area_m2(75.0, 185.0), 4)
    1.9814
    """
    _check_body(weight_kg, height_cm)
    return 0.007184 * weight_kg**0.425 * height_cm**0.725


def ideal_body_weight_kg(weight_kg: float, height_cm: float, sex: str) -> float:
    """Ideal body weight: male ``48 + 1.06 (H - 152)``, female ``45.5 + 0.91 (H - 152)``, capped at the body weight.

    Examples
    --------
    >>> round(ideal_body_weight_kg(75.0, 185.0, "M"), 2)
    75.0
    >>> round(ideal_body_weight_kg(90.0, 170.0, "F"), 2)
    61.88
    """
    _check_body(weight_kg, height_cm)
    if _sex_code(sex) == "M":
        ideal = 48.0 + 1.06 * (height_cm - 152.0)
    else:
        ideal = 45.5 + 0.91 * (height_cm - 152.0)
    return min(ideal, weight_kg)
