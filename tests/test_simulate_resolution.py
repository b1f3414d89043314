"""Resolution model: detector FWHM, positron range (18F vs 68Ga), and the measured blur of a point source."""

import numpy as np
import pytest

from petrecon.geometry import default_layout, get_scanner
from petrecon.isotopes import get_isotope
from petrecon.simulate.phantom import phantom_from_dict
from petrecon.simulate.projection import project_phantom
from petrecon.simulate.resolution import (FWHM_PER_SIGMA, blur_sinogram, detector_fwhm_mm, positron_range_fwhm_mm,
                                          system_fwhm_mm)


def test_detector_fwhm_is_the_4_mm_class_of_lso_block_scanners():
    # Moses 2011 with 4 mm crystals; measured NEMA values 4.3 (mMR) and 4.4 mm (mCT) at 1 cm.
    assert 3.8 < detector_fwhm_mm(get_scanner("mmr")) < 4.5
    assert 3.8 < detector_fwhm_mm(get_scanner("mct")) < 4.5


def test_gallium_blurs_more_than_fluorine():
    f18, ga68 = get_isotope("F18"), get_isotope("Ga68")
    assert positron_range_fwhm_mm(ga68) > 5 * positron_range_fwhm_mm(f18)
    mmr = get_scanner("mmr")
    assert system_fwhm_mm(mmr, ga68) > system_fwhm_mm(mmr, f18) + 1.5


@pytest.mark.parametrize("isotope", ["F18", "Ga68"])
def test_a_small_sphere_is_seen_with_the_system_resolution(isotope):
    layout = default_layout("test")
    sphere = phantom_from_dict({"regions": [{"activity": 1.0, "shapes": [
        {"type": "sphere", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": 1.0}]}]})
    ideal = project_phantom(layout, sphere.packed(), np.ones((1, 1)))[..., 0]
    fwhm = system_fwhm_mm(layout.scanner, get_isotope(isotope))
    blurred = blur_sinogram(ideal, layout, fwhm, fwhm)
    # A radial blur moves counts, it makes none (the axial blur loses what would fall beyond the
    # ends of the short oblique segments, as on a real scanner).
    assert blur_sinogram(ideal, layout, fwhm, 0.0).sum() == pytest.approx(ideal.sum(), rel=1e-4)
    assert 0.95 * ideal.sum() < blurred.sum() <= ideal.sum() * (1 + 1e-6)
    s_mm = (np.arange(layout.n_radial_bins) - layout.n_radial_bins // 2) * layout.radial_bin_size_mm

    def variance_mm2(profile):
        profile = profile.astype(np.float64)
        return np.sum(profile * s_mm**2) / profile.sum() - (np.sum(profile * s_mm) / profile.sum()) ** 2

    # Convolution adds variances: the radial profile of the direct plane through the sphere (view 0)
    # widens by the variance of the sampled Gaussian kernel of sigma = FWHM / 2.355 (scipy's
    # kernel, truncated at 4 sigma), in radial bins of the layout.
    sigma_bins = fwhm / FWHM_PER_SIGMA / layout.radial_bin_size_mm
    j = np.arange(-int(4 * sigma_bins + 0.5), int(4 * sigma_bins + 0.5) + 1)
    kernel = np.exp(-0.5 * (j / sigma_bins) ** 2)
    kernel_variance_mm2 = np.sum(kernel * j**2) / kernel.sum() * layout.radial_bin_size_mm**2
    added = variance_mm2(blurred[7, 0]) - variance_mm2(ideal[7, 0])
    assert added == pytest.approx(kernel_variance_mm2, rel=1e-3)
    # ... which is the model's sigma^2 to within the sampling of a kernel narrower than 2 bins (15 %).
    assert added == pytest.approx((fwhm / FWHM_PER_SIGMA) ** 2, rel=0.15)
