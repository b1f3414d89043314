"""The NEMA NU 2 / EARL part of a report: per-sphere table, summary figures and EARL verdicts as HTML.

Metrics and their definitions: :mod:`petrecon.quant.nema` (reference/quantification.md);
bands: :mod:`petrecon.quant.earl`.
"""

from __future__ import annotations

from petrecon.quant.earl import EARL_BANDS, earl_band
from petrecon.quant.nema import NemaResult
from petrecon.report.html import Html, join, key_value_table, table, verdict

_METRICS = (("rc_max", "RCmax"), ("rc_mean_a50", "RCmean (A50)"))


def sphere_table(result: NemaResult, *, units: str = "Bq/ml") -> Html:
    """One row per sphere: max, A50 mean, peak, the three RCs (with EARL1/EARL2 marks), Q_H and N.

    A mark after an RC says which standards' bands hold it (``1``: EARL1, ``2``: EARL2).
    """
    rows = []
    for sphere in result.spheres:
        rcs = []
        for metric, _ in (*_METRICS, ("rc_peak", "")):
            value = getattr(sphere, metric)
            inside = [standard[-1] for standard in EARL_BANDS if metric in EARL_BANDS[standard]
                      and earl_band(standard, metric, sphere.diameter_mm)[0] <= value
                      <= earl_band(standard, metric, sphere.diameter_mm)[1]]
            rcs.append(f"{value:.3f}" + (f" [{','.join(inside)}]" if inside else ""))
        rows.append([f"{sphere.diameter_mm:g}", f"{sphere.max:.4g}", f"{sphere.mean_a50:.4g}", f"{sphere.peak:.4g}",
                     *rcs, f"{sphere.contrast_percent:.1f}", f"{sphere.background_variability_percent:.2f}",
                     f"{sphere.a50_volume_ml:.2f}"])
    header = ["sphere (mm)", f"max ({units})", f"A50 mean ({units})", f"peak ({units})", "RCmax", "RCmean (A50)",
              "RCpeak", "Q_H (%)", "N (%)", "A50 volume (ml)"]
    return table(header, rows, caption="Per sphere (RC marks: inside the EARL1 [1] / EARL2 [2] band)")


def earl_table(result: NemaResult) -> Html:
    """Per standard and metric: the band of each sphere, pass/fail, and the standard's verdict."""
    rows = []
    for standard, bands in EARL_BANDS.items():
        per_metric = result.earl[standard]["spheres"]
        for metric, label in _METRICS:
            if metric not in bands:
                continue
            cells = []
            for sphere in result.spheres:
                low, high = bands[metric][sphere.diameter_mm]
                cells.append(join([f"{getattr(sphere, metric):.2f} in {low:.2f}-{high:.2f} ",
                                   verdict(per_metric[metric][sphere.diameter_mm], "ok", "out")]))
            rows.append([standard.upper(), label, *cells])
        rows.append([standard.upper(), "all spheres", *([""] * (len(result.spheres) - 1)),
                     verdict(result.earl[standard]["passes"], "PASS", "FAIL")])
    header = ["standard", "metric", *[f"{s.diameter_mm:g} mm" for s in result.spheres]]
    return table(header, rows, caption="EARL harmonisation bands")


def summary_table(result: NemaResult, *, units: str = "Bq/ml", truth_background: float | None = None) -> Html:
    """Background, true sphere value, ratio (marked when estimated), lung residual, ROI clearance, the fitted
    phantom pose and resolution, warnings and the EARL verdicts."""
    items: dict[str, object] = {f"background mean ({units})": f"{result.background_mean:.6g}"}
    if truth_background is not None:
        items["background mean / truth"] = f"{result.background_mean / truth_background:.4f}"
    items.update({
        f"true sphere concentration ({units})": f"{result.sphere_activity:.6g}",
        "sphere : background": f"{result.activity_ratio:.2f} : 1"
                               + (" (estimated by the phantom fit)" if result.ratio_estimated else ""),
        "lung residual (%)": f"{result.lung_residual_percent:.1f}",
        "background ROI clearance from spheres (mm)": f"{result.sphere_clearance_mm:g}",
    })
    if result.tilt_deg is not None:
        items.update({
            "phantom tilt (deg) and centre (mm)": f"{result.tilt_deg:.1f}; "
                                                  f"({', '.join(f'{c:.1f}' for c in result.phantom_centre_mm)})",
            "fitted resolution (FWHM, mm)": f"{result.fitted_fwhm_mm:.2f}",
            "phantom fit misfit (% of sphere - background)": f"{result.fit_residual_percent:.1f}",
        })
    for number, message in enumerate(result.warnings, 1):
        items[f"warning {number}"] = message
    for standard in EARL_BANDS:
        items[standard.upper()] = verdict(result.earl[standard]["passes"], "PASS", "FAIL")
    return key_value_table(items, caption="NEMA NU 2 image quality")
