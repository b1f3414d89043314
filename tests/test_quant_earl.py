"""The one EARL band table and the verdicts drawn from it."""

import pytest

from petrecon.errors import ParameterError
from petrecon.quant.earl import EARL_BANDS, EARL_SPHERE_DIAMETERS_MM, earl_band, earl_verdict


def test_every_standard_metric_and_sphere_has_an_ordered_band():
    for standard in ("earl1", "earl2"):
        for metric in ("rc_max", "rc_mean_a50"):
            assert sorted(EARL_BANDS[standard][metric]) == list(EARL_SPHERE_DIAMETERS_MM)
            for low, high in EARL_BANDS[standard][metric].values():
                assert 0 < low < high


def test_reference_values_spot_check():
    # reference/quantification.md: EARL1 RC(A50 mean) 37 mm 0.76-0.89; EARL2 RC(max) 17 mm 1.00-1.38
    assert earl_band("earl1", "rc_mean_a50", 37) == (0.76, 0.89)
    assert earl_band("EARL2", "rc_max", 17.0) == (1.00, 1.38)


def test_verdict_passes_at_band_centres_and_fails_outside():
    centres = {m: {d: sum(earl_band("earl1", m, d)) / 2 for d in EARL_SPHERE_DIAMETERS_MM}
               for m in ("rc_max", "rc_mean_a50")}
    assert earl_verdict("earl1", centres)["passes"]
    centres["rc_max"][10.0] = 0.2
    verdict = earl_verdict("earl1", centres)
    assert not verdict["passes"] and verdict["spheres"]["rc_max"][10.0] is False


def test_unknown_standard_or_sphere_is_a_parameter_error():
    with pytest.raises(ParameterError, match="earl3"):
        earl_band("earl3", "rc_max", 10)
    with pytest.raises(ParameterError):
        earl_band("earl1", "rc_max", 12)
