"""EARL harmonisation bands: the one table of acceptable recovery coefficients.

Source: reference/quantification.md, section "EARL harmonisation bands"
(EARL1: EANM guideline 2015; EARL2: Kaalep et al., EJNMMI 45:1344, 2018).
RC = measured / true sphere activity concentration, for the NEMA NU 2 spheres
of 10-37 mm filled 10:1 against the background.
"""

from __future__ import annotations

from petrecon.errors import ParameterError

#: Sphere inner diameters (mm) the bands are given for.
EARL_SPHERE_DIAMETERS_MM = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)

#: EARL_BANDS[standard][metric][diameter_mm] = (lowest, highest) acceptable RC.
EARL_BANDS: dict[str, dict[str, dict[float, tuple[float, float]]]] = {
    "earl1": {
        "rc_mean_a50": {37.0: (0.76, 0.89), 28.0: (0.72, 0.85), 22.0: (0.63, 0.78), 17.0: (0.57, 0.73),
                        13.0: (0.44, 0.60), 10.0: (0.27, 0.43)},
        "rc_max": {37.0: (0.95, 1.16), 28.0: (0.91, 1.13), 22.0: (0.83, 1.09), 17.0: (0.73, 1.01),
                   13.0: (0.59, 0.85), 10.0: (0.34, 0.57)},
    },
    "earl2": {
        "rc_mean_a50": {37.0: (0.85, 1.00), 28.0: (0.82, 0.97), 22.0: (0.80, 0.99), 17.0: (0.76, 0.97),
                        13.0: (0.63, 0.86), 10.0: (0.39, 0.61)},
        "rc_max": {37.0: (1.05, 1.29), 28.0: (1.01, 1.26), 22.0: (1.01, 1.32), 17.0: (1.00, 1.38),
                   13.0: (0.85, 1.22), 10.0: (0.52, 0.88)},
    },
}


def earl_band(standard: str, metric: str, diameter_mm: float) -> tuple[float, float]:
    """The (low, high) RC band of one sphere.

    Examples
    --------
    >>> earl_band("earl2", "rc_max", 10)
    (0.52, 0.88)
    """
    try:
        return EARL_BANDS[standard.lower()][metric][float(diameter_mm)]
    except KeyError:
        raise ParameterError(f"no EARL band for standard {standard!r}, metric {metric!r}, sphere {diameter_mm} mm; "
                             f"standards {list(EARL_BANDS)}, metrics rc_max and rc_mean_a50, "
                             f"spheres {EARL_SPHERE_DIAMETERS_MM} mm") from None


def earl_verdict(standard: str, rc_by_metric: dict[str, dict[float, float]]) -> dict:
    """Which spheres lie in the bands of ``standard``, per metric, and whether all do.

    Parameters
    ----------
    rc_by_metric : dict
        ``{"rc_max": {diameter_mm: rc}, "rc_mean_a50": {...}}``.

    Examples
    --------
    >>> rcs = {"rc_max": {d: 1.1 for d in EARL_SPHERE_DIAMETERS_MM}}
    >>> earl_verdict("earl2", rcs)["passes"]
    False
    """
    per_metric = {}
    for metric, rcs in rc_by_metric.items():
        per_metric[metric] = {float(d): bool(earl_band(standard, metric, d)[0] <= rc <= earl_band(standard, metric, d)[1])
                              for d, rc in rcs.items()}
    passes = all(all(spheres.values()) for spheres in per_metric.values())
    return {"standard": standard.lower(), "spheres": per_metric, "passes": passes}
