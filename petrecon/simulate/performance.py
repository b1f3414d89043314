"""Scanner performance figures the simulator needs: NEMA NU 2 sensitivity and scatter fraction.

These set the count level and the scatter fraction of a simulation; the
geometry itself comes from :mod:`petrecon.geometry`. Published NEMA NU 2
figures (approximate; a caller can override both):

=========== ============ =========== =============================================
scanner     cps/kBq      scatter     source
=========== ============ =========== =============================================
mmr         15.0         0.379       Delso et al., J Nucl Med 52:1914 (2011)
mct, tof    9.7          0.332       Jakoby et al., Phys Med Biol 56:2375 (2011)
b64-truev   8.1          0.32        Jakoby et al., IEEE NSS-MIC 2006 (TrueV)
b64         4.9          0.32        same (TruePoint without TrueV)
test        5.0          0.30        invented, for the small test scanner
=========== ============ =========== =============================================

The sensitivity is the NEMA NU 2 system sensitivity: counts per second per
kBq of 18F in a 700 mm line source on the scanner axis, extrapolated to no
attenuation (so it includes 18F's positron fraction).
"""

from __future__ import annotations

from dataclasses import dataclass

from petrecon.errors import ParameterError


@dataclass(frozen=True)
class Performance:
    """NEMA figures of one scanner."""

    sensitivity_cps_per_kbq: float
    scatter_fraction: float


PERFORMANCE: dict[str, Performance] = {
    "mmr": Performance(15.0, 0.379),
    "mct": Performance(9.7, 0.332),
    "mct-tof": Performance(9.7, 0.332),
    "b64-truev": Performance(8.1, 0.32),
    "b64": Performance(4.9, 0.32),
    "test": Performance(5.0, 0.30),
}


def get_performance(scanner_name: str) -> Performance:
    """NEMA figures of a registered scanner.

    Examples
    --------
    >>> get_performance("mmr").sensitivity_cps_per_kbq
    15.0
    """
    if scanner_name not in PERFORMANCE:
        raise ParameterError(f"no NEMA performance figures for scanner {scanner_name!r}; "
                             f"known: {', '.join(PERFORMANCE)} (pass sensitivity and scatter fraction explicitly)")
    return PERFORMANCE[scanner_name]
