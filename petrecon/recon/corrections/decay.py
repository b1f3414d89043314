"""Decay correction of a frame to a reference time (DICOM DecayCorrection START).

A frame from ``t0`` to ``t0 + T`` seconds after the reference time (the scan
start, or the first bed's start in a whole-body study) records on average
``A_ref * exp(-lambda t0) * (1 - exp(-lambda T)) / (lambda T)`` of the
reference activity. The correction factor is the inverse (the factor DICOM
calls DecayFactor, PS3.3 C.8.9.1.1.6):

    f = exp(lambda t0) * lambda T / (1 - exp(-lambda T))
"""

from __future__ import annotations

import math

from petrecon.errors import ParameterError


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
