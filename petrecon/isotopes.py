"""Positron emitters: the one table of half-lives, branching ratios and positron ranges.

Sources
-------
- Half-lives: reference/quantification.md (18F 109.77 min = 6586.2 s;
  68Ga 67.83 min = 4069.8 s; older tables give 67.71 min). DICOM headers carry
  the half-life the scanner used; prefer it when present.
- Positron branching ratios: NNDC / DDEP evaluated decay data
  (18F 96.86 %, 68Ga 88.91 %, 11C 99.76 %, 15O 99.89 %, 89Zr 22.7 %).
- Mean positron range in water: reference/clinical-protocol.md
  (18F ~0.6 mm, 68Ga ~2.9-3.5 mm; 3.5 mm is the value used here); 11C and 15O
  from Conti & Eriksson, EJNMMI Physics 3:8 (2016), Table 1 (1.2 and 2.5 mm);
  89Zr 1.3 mm (same table).

Decay correction of a frame to a reference time (DICOM DecayCorrection
START): a frame from ``t0`` to ``t0 + T`` seconds after the reference time
records on average ``A_ref exp(-lambda t0) (1 - exp(-lambda T)) / (lambda T)``
of the reference activity; :func:`decay_correction_factor` is the inverse
(the factor DICOM calls DecayFactor, PS3.3 C.8.9.1.1.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from petrecon.errors import ParameterError


@dataclass(frozen=True)
class Isotope:
    """Decay facts of one positron emitter.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"F18"``.
    half_life_s : float
        Physical half-life in seconds.
    positron_fraction : float
        Positrons per decay (branching ratio).
    mean_positron_range_mm : float
        Mean positron range in water (mm).
    """

    name: str
    half_life_s: float
    positron_fraction: float
    mean_positron_range_mm: float

    @property
    def decay_constant_per_s(self) -> float:
        """``ln 2 / half_life_s``."""
        return math.log(2.0) / self.half_life_s

    def decay_factor(self, elapsed_s: float) -> float:
        """Fraction of the activity left after ``elapsed_s`` seconds.

        Examples
        --------
        >>> round(ISOTOPES["F18"].decay_factor(3600.0), 6)
        0.684633
        >>> round(ISOTOPES["Ga68"].decay_factor(3600.0), 6)
        0.541651
        """
        return 2.0 ** (-elapsed_s / self.half_life_s)


ISOTOPES: dict[str, Isotope] = {
    isotope.name: isotope
    for isotope in (
        Isotope("F18", 6586.2, 0.9686, 0.6),
        Isotope("Ga68", 4069.8, 0.8911, 3.5),
        Isotope("C11", 1221.8, 0.9976, 1.2),
        Isotope("O15", 122.24, 0.9989, 2.5),
        Isotope("Zr89", 282276.0, 0.227, 1.3),
    )
}

_ALIASES = {"18F": "F18", "F-18": "F18", "FDG": "F18", "68GA": "Ga68", "GA-68": "Ga68", "11C": "C11",
            "C-11": "C11", "15O": "O15", "O-15": "O15", "89ZR": "Zr89", "ZR-89": "Zr89"}


def get_isotope(name: str) -> Isotope:
    """Look an isotope up by name, case-insensitively (``"Ga68"``, ``"68Ga"``, ``"Ga-68"``, ``"F18"``, ...).

    Examples
    --------
    >>> get_isotope("68Ga").half_life_s
    4069.8
    """
    key = name.strip().replace(" ", "")
    by_upper = {isotope.upper(): isotope for isotope in ISOTOPES}
    canonical = by_upper.get(key.upper()) or _ALIASES.get(key.upper())
    if canonical is None:
        raise ParameterError(f"unknown isotope {name!r}; known: {', '.join(ISOTOPES)}")
    return ISOTOPES[canonical]


def decay_correction_factor(half_life_s: float, frame_start_s: float, frame_duration_s: float) -> float:
    """Factor that brings a frame's mean activity back to the reference time.

    Parameters
    ----------
    half_life_s : float
        Half-life of the isotope (see :mod:`petrecon.isotopes`, or the header's).
    frame_start_s : float
        Frame start after the reference time (>= 0 for later frames).
    frame_duration_s : float
        Frame length (> 0).

    Examples
    --------
    A 3-minute 68Ga frame starting at the reference time:

    >>> round(decay_correction_factor(4069.8, 0.0, 180.0), 5)
    1.01541
    >>> round(decay_correction_factor(6586.2, 3600.0, 1e-9), 6)  # a short frame one hour later: 1/0.684633
    1.460637
    """
    if not half_life_s > 0:
        raise ParameterError(f"half_life_s must be > 0, got {half_life_s}")
    if not frame_duration_s > 0:
        raise ParameterError(f"frame_duration_s must be > 0, got {frame_duration_s}")
    decay_constant = math.log(2.0) / half_life_s
    decay_during_frame = decay_constant * frame_duration_s
    average = -math.expm1(-decay_during_frame) / decay_during_frame
    return math.exp(decay_constant * frame_start_s) / average
