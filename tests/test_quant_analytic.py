"""Analytic recovery of a Gaussian-blurred sphere: the reference table and an independent check."""

import pytest
from scipy import stats

from petrecon.quant.analytic import FWHM_PER_SIGMA, blurred_sphere_profile, blurred_sphere_rc


def test_reference_rc_values_of_the_blurred_sphere():
    # reference/quantification.md, spheres 10 -> 37 mm, three decimals
    table = {6.0: (0.722, 0.911, 0.989, 1.000, 1.000, 1.000), 8.0: (0.461, 0.699, 0.900, 0.985, 0.999, 1.000)}
    for fwhm, values in table.items():
        assert [round(blurred_sphere_rc(d, fwhm), 3) for d in (10, 13, 17, 22, 28, 37)] == list(values)


@pytest.mark.parametrize("r_mm", [0.0, 1.0, 3.0, 5.0, 8.0, 15.0])
def test_profile_is_the_probability_that_a_blurred_point_lies_in_the_sphere(r_mm):
    # a 3D isotropic Gaussian centred r from the sphere's centre: |X|^2 / sigma^2 is non-central
    # chi-square with 3 degrees of freedom and non-centrality (r / sigma)^2
    diameter_mm, fwhm_mm = 13.0, 6.0
    sigma = fwhm_mm / FWHM_PER_SIGMA
    expected = stats.ncx2.cdf((diameter_mm / 2 / sigma) ** 2, df=3, nc=(r_mm / sigma) ** 2) if r_mm else \
        stats.chi2.cdf((diameter_mm / 2 / sigma) ** 2, df=3)
    assert blurred_sphere_profile(r_mm, diameter_mm, fwhm_mm) == pytest.approx(expected, abs=1e-9)
