"""Sanity checks shared by the command line and the library (ARCHITECTURE contract 7).

Three concepts, one function each:

* :func:`check_parameter`: a physical or numerical parameter lies in its
  meaningful range (:data:`LIMITS`); the command line checks every option
  named there before any work starts (:func:`check_arguments`), the library
  entry points call the same function.
* :func:`check_correction`: a correction sinogram (normalisation,
  attenuation factors, randoms, scatter) or the prompts is finite,
  non-negative, not all zero and plausible for what it claims to be.
* :func:`check_result`: an image leaving petrecon is finite and not zero
  everywhere.

Examples
--------
>>> check_parameter("iterations", 4)
4
>>> check_parameter("iterations", 0)
Traceback (most recent call last):
...
petrecon.errors.ParameterError: iterations: 0 is outside 1 .. 100 (OSEM iterations)
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass

import numpy as np

from petrecon.errors import ParameterError

LOG = logging.getLogger("petrecon.checks")


@dataclass(frozen=True)
class Limit:
    """The meaningful range of one parameter: ``low <= value <= high`` (``low < value`` when ``open_low``)."""

    low: float
    high: float
    meaning: str
    integer: bool = False
    open_low: bool = False

    def describe(self) -> str:
        """The range as text, e.g. ``> 0 .. 1e+05``."""
        low = f"> {self.low:g}" if self.open_low else f"{self.low:g}"
        return f"{low} .. {self.high:g}"


#: Meaningful ranges by parameter (command-line option ``--name-with-dashes``); values outside are refused.
LIMITS: dict[str, Limit] = {
    "iterations": Limit(1, 100, "OSEM iterations", integer=True),
    "subsets": Limit(1, 1024, "OSEM subsets", integer=True),
    "fwhm_mm": Limit(0, 100, "Gaussian FWHM in mm"),
    "psf_fwhm_mm": Limit(0, 20, "image-space PSF FWHM in mm"),
    "calibration": Limit(0, 1e9, "cross-calibration factor in Bq/ml per image unit", open_low=True),
    "weight_kg": Limit(0.2, 700, "patient weight in kg"),
    "height_m": Limit(0.2, 3.0, "patient height in m"),
    "injected_mbq": Limit(0, 1e5, "injected activity in MBq", open_low=True),
    "activity_mbq": Limit(0, 1e5, "activity in MBq", open_low=True),
    "duration_s": Limit(0, 86400, "frame duration in s", open_low=True),
    "frame_start_s": Limit(0, 86400, "frame start after injection in s"),
    "seed": Limit(0, 2**32 - 1, "random seed", integer=True),
    "rings": Limit(2, 400, "detector rings", integer=True),
    "beds": Limit(1, 50, "bed positions", integer=True),
    "overlap_percent": Limit(0, 90, "bed overlap in % of the axial field of view"),
    "ratio": Limit(0, 1000, "sphere:background activity ratio", open_low=True),
    "sphere_activity": Limit(0, 1e12, "true sphere concentration in image units", open_low=True),
    "dead_time_ns": Limit(0, 1e5, "bucket dead time in ns"),
    "workers": Limit(1, 1024, "Dask workers", integer=True),
    "retries": Limit(0, 100, "Dask retries", integer=True),
}


def check_parameter(name: str, value, *, label: str | None = None):
    """Return ``value`` if it lies in ``LIMITS[name]``; raise otherwise.

    Parameters
    ----------
    name : str
        Key of :data:`LIMITS`.
    value : int or float
        The value to check.
    label : str, optional
        How the error names the parameter (default ``name``; the command line passes ``--option``).

    Raises
    ------
    ParameterError
        If ``value`` is not a finite number, not an integer where one is needed, or outside the range.
    """
    limit = LIMITS[name]
    label = label or name
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{label}: {value!r} is not a number ({limit.meaning})") from None
    if not math.isfinite(number):
        raise ParameterError(f"{label}: {value!r} is not a finite number ({limit.meaning})")
    if limit.integer and number != int(number):
        raise ParameterError(f"{label}: {value!r} is not a whole number ({limit.meaning})")
    below = number <= limit.low if limit.open_low else number < limit.low
    if below or number > limit.high:
        raise ParameterError(f"{label}: {value:g} is outside {limit.describe()} ({limit.meaning})")
    return value


def check_arguments(args: argparse.Namespace) -> None:
    """Check every numeric command-line option named in :data:`LIMITS` (before any work starts)."""
    for name, value in vars(args).items():
        if name in LIMITS and isinstance(value, (int, float)) and not isinstance(value, bool):
            check_parameter(name, value, label="--" + name.replace("_", "-"))


def check_correction(name: str, values: np.ndarray, source: str) -> None:
    """Refuse a correction sinogram (or the prompts) a physicist would not accept.

    Every one: finite, non-negative, not zero everywhere. ``normalisation``:
    not whole numbers above 1 (a count sinogram given as normalisation).
    ``attenuation_factors`` (transmissions ``exp(-integral mu)``): at most 1,
    below 1e-6 in under 1 % of the bins (a mu-map scaled wrongly), and below 1
    somewhere (a mu-map that misses the field of view); attenuating fewer than
    half of the sinogram planes is warned (a CT that covers part of it).

    Parameters
    ----------
    name : str
        ``prompts``, ``normalisation``, ``attenuation_factors``, ``randoms``, ``scatter``, ...
    values : numpy.ndarray
        The sinogram (planes along axis 0).
    source : str
        The file (or option) it came from, for the message.

    Raises
    ------
    ParameterError
        Naming ``source`` and ``name``.
    """
    values = np.asarray(values)
    where = f"{source}: {name}"
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"{where}: holds {int(np.count_nonzero(~np.isfinite(values)))} NaN or infinite values")
    if values.size and float(values.min()) < 0:
        raise ParameterError(f"{where}: holds negative values (min {float(values.min()):.4g})")
    if name in ("prompts", "normalisation", "attenuation_factors") and not np.any(values > 0):
        raise ParameterError(f"{where}: is zero everywhere; nothing can be reconstructed from it")
    if name == "normalisation" and float(values.max()) > 1 and np.all(values == np.round(values)):
        raise ParameterError(f"{where}: holds whole numbers up to {float(values.max()):g}: a count sinogram "
                             "(prompts?), not normalisation factors")
    if name == "attenuation_factors":
        _check_transmissions(where, values)


def _check_transmissions(where: str, values: np.ndarray) -> None:
    if float(values.max()) > 1.0 + 1e-4:
        raise ParameterError(f"{where}: transmissions reach {float(values.max()):.4g}; they lie in (0, 1]")
    opaque = float(np.mean(values < 1e-6))
    if opaque > 0.01:
        raise ParameterError(f"{where}: {100 * opaque:.1f} % of the lines of response are opaque (transmission "
                             "below 1e-6): the mu-map is not in cm^-1 at 511 keV or is scaled wrongly")
    attenuated = np.any(values.reshape(values.shape[0], -1) < 0.99, axis=1)
    if not np.any(attenuated):
        raise ParameterError(f"{where}: nothing attenuates any line of response: the mu-map (CT) misses the PET "
                             "field of view or is empty")
    if np.mean(attenuated) < 0.5:
        LOG.warning("%s: only %d of %d sinogram planes are attenuated: the mu-map (CT) covers part of the PET "
                    "field of view", where, int(np.sum(attenuated)), attenuated.size)


def check_mu_map(mu: np.ndarray, source: str) -> None:
    """Refuse a mu-map that is not in cm^-1 at 511 keV (negative, non-finite, above 3 cm^-1, all zero).

    Lead, the densest material in a PET field of view, has 1.7 cm^-1 at 511 keV.
    """
    mu = np.asarray(mu)
    if not np.all(np.isfinite(mu)) or float(mu.min()) < 0:
        raise ParameterError(f"{source}: mu-map: holds negative, NaN or infinite values")
    if float(mu.max()) > 3.0:
        raise ParameterError(f"{source}: mu-map: reaches {float(mu.max()):.4g} cm^-1 (lead: 1.7 cm^-1 at 511 keV); "
                             "it is not in cm^-1 at 511 keV")
    if not np.any(mu > 0.01):
        raise ParameterError(f"{source}: mu-map: nothing attenuates (max {float(mu.max()):.4g} cm^-1): the CT or "
                             "MR misses the PET field of view or is empty")


def check_voi_values(values: np.ndarray, name: str) -> None:
    """Refuse VOI statistics over NaN or infinite voxels (they would turn max, mean, TLG into NaN)."""
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ParameterError(f"VOI {name}: {bad} of its {np.size(values)} voxels are NaN or infinite; the image is "
                             "corrupt there")


def check_result(values: np.ndarray, what: str) -> None:
    """Refuse an image that is not finite everywhere or zero everywhere (it would leave as a wrong number)."""
    values = np.asarray(values)
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"{what}: the result holds NaN or infinite values; check the calibration and the "
                             "corrections")
    if not np.any(values != 0):
        raise ParameterError(f"{what}: the result is zero everywhere; check the prompts and the corrections")


def check_memory(shape, what: str, *, copies: int = 1, itemsize: int = 4) -> None:
    """Refuse an array size that cannot fit in this machine's memory, before anything is allocated.

    Parameters
    ----------
    shape : sequence of int
        Array shape; each entry a positive whole number.
    what : str
        What the shape is, for the message (``the image shape``, ``--rings``).
    copies : int
        Arrays of this shape held at once.
    itemsize : int
        Bytes per element.

    Raises
    ------
    ParameterError
        If an entry is not a positive whole number, or ``copies`` arrays need more than the physical memory.
    """
    if not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ParameterError(f"{what}: {tuple(shape)} must be positive whole numbers")
    needed = math.prod(int(n) for n in shape) * itemsize * copies
    available = physical_memory_bytes()
    if needed > available:
        raise ParameterError(f"{what}: {tuple(int(n) for n in shape)} needs about {needed / 2**30:.3g} GiB, more "
                             f"than this machine's {available / 2**30:.3g} GiB")


def physical_memory_bytes() -> int:
    """This machine's physical memory in bytes (64 GiB where the system does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 64 * 2**30


#: Uptake times beyond this many half-lives are refused: the dose would have decayed over 1000-fold.
MAX_UPTAKE_HALF_LIVES = 10.0


def check_uptake(injection, scan, half_life_s: float, where: str) -> float:
    """Seconds from injection to scan start, refused where no SUV could be trusted.

    Parameters
    ----------
    injection, scan : datetime.datetime
        Both naive (local time) or both with a UTC offset (compared in UTC).
    half_life_s : float
        Half-life of the isotope.
    where : str
        The file or fields the times come from, for the message.

    Raises
    ------
    ParameterError
        If one time has a UTC offset and the other not, the injection is after
        the scan, or the uptake exceeds :data:`MAX_UPTAKE_HALF_LIVES` half-lives.

    Examples
    --------
    >>> import datetime as dt
    >>> check_uptake(dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 10), 6586.2, "study")
    3600.0
    """
    if (injection.utcoffset() is None) != (scan.utcoffset() is None):
        raise ParameterError(f"{where}: the injection {injection.isoformat()} and the scan {scan.isoformat()} "
                             "must both carry a UTC offset or neither")
    elapsed_s = (scan - injection).total_seconds()
    if elapsed_s < 0:
        raise ParameterError(f"{where}: the injection {injection.isoformat()} is after the scan start "
                             f"{scan.isoformat()}")
    if elapsed_s > MAX_UPTAKE_HALF_LIVES * half_life_s:
        raise ParameterError(f"{where}: the injection {injection.isoformat()} is {elapsed_s / 3600:.1f} h "
                             f"({elapsed_s / half_life_s:.1f} half-lives) before the scan start {scan.isoformat()}: "
                             "check the injection date and time")
    return elapsed_s
