"""Compton scattering of annihilation photons: Klein-Nishina cross-sections and energy-window efficiency.

Klein and Nishina, Z Phys 52:853 (1929); formulas as in Attix, *Introduction
to Radiological Physics and Radiation Dosimetry*, ch. 7. With
``k = E / (m_e c^2)`` and ``P = 1 / (1 + k (1 - cos theta))`` (the ratio of
scattered to incident energy):

    d sigma / d Omega = r_e^2 / 2 * P^2 * (P + 1/P - sin^2 theta)

    sigma(k) = 2 pi r_e^2 [ (1+k)/k^2 (2(1+k)/(1+2k) - ln(1+2k)/k)
                            + ln(1+2k)/(2k) - (1+3k)/(1+2k)^2 ]

At 511 keV (``k = 1``) the total is 2.865e-25 cm^2 per free electron.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from petrecon.errors import ParameterError
from petrecon.operators import FWHM_PER_SIGMA

ELECTRON_REST_ENERGY_KEV = 510.998950
CLASSICAL_ELECTRON_RADIUS_CM = 2.8179403262e-13
CRYSTAL_DEPTH_MM = 20.0
"""LSO crystal depth of every Biograph (4 x 4 x 20 mm, reference/scanners.md)."""
LSO_MU_PER_MM = 1.0 / 11.5
"""Linear attenuation of LSO at 511 keV (attenuation length 1.15 cm; Melcher & Schweitzer, IEEE TNS 39:502, 1992)."""


def scattered_energy_kev(cos_theta, energy_kev: float = ELECTRON_REST_ENERGY_KEV) -> np.ndarray:
    """Energy after Compton scattering by the angle ``theta``.

    Examples
    --------
    >>> round(float(scattered_energy_kev(0.0)), 3)  # 90 degrees at 511 keV: 511 / (2 - cos theta)
    255.499
    """
    k = energy_kev / ELECTRON_REST_ENERGY_KEV
    return energy_kev / (1.0 + k * (1.0 - np.asarray(cos_theta, dtype=np.float64)))


def klein_nishina_differential_cm2_per_sr(cos_theta, energy_kev: float = ELECTRON_REST_ENERGY_KEV) -> np.ndarray:
    """Differential Compton cross-section per electron (cm^2/sr)."""
    cos_theta = np.asarray(cos_theta, dtype=np.float64)
    ratio = scattered_energy_kev(cos_theta, energy_kev) / energy_kev
    return 0.5 * CLASSICAL_ELECTRON_RADIUS_CM**2 * ratio**2 * (ratio + 1.0 / ratio - (1.0 - cos_theta**2))


def klein_nishina_total_cm2(energy_kev) -> np.ndarray:
    """Total Compton cross-section per electron (cm^2).

    Examples
    --------
    >>> round(float(klein_nishina_total_cm2(ELECTRON_REST_ENERGY_KEV)) * 1e25, 3)
    2.865
    """
    k = np.asarray(energy_kev, dtype=np.float64) / ELECTRON_REST_ENERGY_KEV
    log_term = np.log1p(2 * k)
    bracket = ((1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - log_term / k) + log_term / (2 * k)
               - (1 + 3 * k) / (1 + 2 * k) ** 2)
    return 2 * np.pi * CLASSICAL_ELECTRON_RADIUS_CM**2 * bracket


def window_efficiency(energy_kev, energy_window_kev: tuple[float, float], energy_resolution: float) -> np.ndarray:
    """Probability that a photon of ``energy_kev`` is accepted by the energy window.

    The detector response is Gaussian with a FWHM of ``energy_resolution x
    511 keV`` at 511 keV, scaling with ``sqrt(E)`` (photo-electron statistics).

    Examples
    --------
    >>> round(float(window_efficiency(511.0, (425.0, 650.0), 0.15)), 3)
    0.996
    """
    low, high = energy_window_kev
    if not (0 < low < high and 0 < energy_resolution < 1):
        raise ParameterError(f"energy window {energy_window_kev} keV and resolution {energy_resolution} are not valid")
    energy = np.asarray(energy_kev, dtype=np.float64)
    fwhm = energy_resolution * ELECTRON_REST_ENERGY_KEV * np.sqrt(energy / ELECTRON_REST_ENERGY_KEV)
    sigma_root2 = fwhm / FWHM_PER_SIGMA * np.sqrt(2)
    return 0.5 * (erf((high - energy) / sigma_root2) - erf((low - energy) / sigma_root2))


def compton_angle_tables(energy_window_kev: tuple[float, float], energy_resolution: float,
                         n_angles: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Tables over ``cos(theta)`` in [-1, 1] for single-scatter integrals (Watson 2000).

    Returns
    -------
    cos_theta : numpy.ndarray
        ``n_angles`` equally spaced values.
    tables : numpy.ndarray
        ``(2, n_angles)``: the Klein-Nishina angular probability at 511 keV per sr
        (``d sigma/d Omega / sigma(511)``) times the window acceptance of the
        unscattered and of the scattered photon; and ``sigma(E') / sigma(511)``,
        the factor that scales mu to the scattered energy.
    """
    cos_theta = np.linspace(-1.0, 1.0, n_angles)
    energy = scattered_energy_kev(cos_theta)
    sigma_511 = klein_nishina_total_cm2(ELECTRON_REST_ENERGY_KEV)
    angular = (klein_nishina_differential_cm2_per_sr(cos_theta) / sigma_511
               * window_efficiency(ELECTRON_REST_ENERGY_KEV, energy_window_kev, energy_resolution)
               * window_efficiency(energy, energy_window_kev, energy_resolution))
    return cos_theta, np.stack([angular, klein_nishina_total_cm2(energy) / sigma_511])


def crystal_stopping_probability(cos_incidence) -> np.ndarray:
    """Probability that a 511 keV photon entering a crystal at incidence ``cos_incidence`` interacts in it.

    ``1 - exp(-mu_LSO d / cos)``: the path through the crystal's depth lengthens as the incidence
    grows oblique (penetration into the neighbour crystal is not modelled).

    Examples
    --------
    >>> round(float(crystal_stopping_probability(1.0)), 3)  # 20 mm LSO at normal incidence
    0.824
    """
    cos_incidence = np.maximum(np.abs(np.asarray(cos_incidence, dtype=np.float64)), 1e-6)
    return -np.expm1(-LSO_MU_PER_MM * CRYSTAL_DEPTH_MM / cos_incidence)
