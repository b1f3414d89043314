"""VOI statistics with analytic answers: uniform spheres, linear ramps, blurred spheres; T/B; organ references."""

import numpy as np
import pytest
from scipy import ndimage

from petrecon.errors import ParameterError
from petrecon.quant.analytic import blurred_sphere_profile, blurred_sphere_rc
from petrecon.quant.organs import liver_qc_passes, organ_reference
from petrecon.quant.roi import sphere_mask
from petrecon.quant.stats import PEAK_DIAMETER_MM, peak_kernel, tumour_to_background, voi_statistics
from petrecon.volume import ImageGrid, Volume


def test_peak_sphere_is_one_millilitre():
    assert 4 / 3 * np.pi * (PEAK_DIAMETER_MM / 2) ** 3 == pytest.approx(1000.0)
    assert PEAK_DIAMETER_MM == pytest.approx(12.41, abs=0.005)
    # partial-voxel weights: the kernel's support volume (sum of fractions x voxel volume) is 1 ml
    # to the 5^3 sub-sampling accuracy (~1 %)
    for voxel in [(2.0, 2.0, 2.0), (4.0, 4.0, 2.0), (1.0, 1.0, 3.0)]:
        kernel = peak_kernel(voxel)
        assert kernel.sum() == pytest.approx(1.0) and np.allclose(kernel, kernel[::-1, ::-1, ::-1])


@pytest.mark.parametrize("voxel_mm", [(2.0, 2.0, 2.0), (4.0, 4.0, 3.0)])
def test_uniform_sphere_peak_equals_its_value(voxel_mm):
    grid = ImageGrid.centred((41, 41, 41), voxel_mm)
    lesion = sphere_mask(grid, (1.0, -2.0, 0.5), 20.0)
    stats = voi_statistics(Volume(np.where(lesion, 7.5, 1.0), grid), lesion)
    assert stats.peak == pytest.approx(7.5, rel=1e-12)
    assert (stats.max, stats.mean, stats.sd) == (7.5, 7.5, 0.0)
    assert stats.volume_ml == pytest.approx(lesion.sum() * grid.voxel_volume_ml)
    assert stats.tlg == pytest.approx(7.5 * stats.volume_ml)


def test_peak_of_a_linear_ramp_is_the_ramp_at_the_hottest_voi_centre():
    # a symmetric kernel averages a linear function to its value at the centre
    grid = ImageGrid.centred((40, 40, 40), (2.0, 2.0, 2.0))
    x = grid.voxel_centres_mm(0)[:, None, None] + 0 * grid.voxel_centres_mm(1)[None, :, None] + 0 * grid.voxel_centres_mm(2)
    data = 100.0 + 0.5 * x
    voi = sphere_mask(grid, (0.0, 0.0, 0.0), 10.0)
    stats = voi_statistics(Volume(data, grid), voi)
    assert stats.peak == pytest.approx(100.0 + 0.5 * stats.peak_position_mm[0], rel=1e-12)
    assert stats.peak_position_mm[0] == max(x[voi])
    assert stats.max == pytest.approx(stats.peak)


def test_max_of_a_blurred_sphere_follows_the_analytic_recovery():
    grid = ImageGrid.centred((41, 41, 41), (1.0, 1.0, 1.0))
    sub = 4  # partial-volume sub-sampling of the sphere before the blur
    fine = ImageGrid.centred((41 * sub,) * 3, (1.0 / sub,) * 3)
    sphere = sphere_mask(fine, (0, 0, 0), 5.0).reshape(41, sub, 41, sub, 41, sub).mean(axis=(1, 3, 5))
    fwhm_mm = 6.0
    blurred = ndimage.gaussian_filter(sphere, fwhm_mm / 2.3548, mode="constant")
    stats = voi_statistics(Volume(blurred, grid), sphere_mask(grid, (0, 0, 0), 8.0))
    # centre voxel: the profile averaged over a 1 mm cube (r^2 = 0.25 mm^2 on average) lies between
    # the profile at 0.5 mm and the centre value; 0.005 for sampling the sigma = 2.5 voxel kernel
    assert blurred_sphere_profile(0.5, 10.0, fwhm_mm) - 0.005 <= stats.max <= blurred_sphere_rc(10.0, fwhm_mm) + 0.005
    assert stats.peak < stats.max  # 12.4 mm peak sphere around a 10 mm sphere's centre averages lower values


def test_tumour_to_background_against_a_named_reference():
    grid = ImageGrid.centred((40, 40, 40), (2.0, 2.0, 2.0))
    data = np.full(grid.shape, 2.0)
    lesion = sphere_mask(grid, (-20, 0, 0), 8.0)
    data[lesion] = 9.0
    volume = Volume(data, grid)
    liver = organ_reference(volume, "liver", (20.0, 0.0, 0.0))
    assert liver.mean == pytest.approx(2.0) and liver_qc_passes(liver)
    assert tumour_to_background(voi_statistics(volume, lesion), liver) == pytest.approx(4.5)
    assert tumour_to_background(voi_statistics(volume, lesion), liver, "mean") == pytest.approx(4.5)
    with pytest.raises(ParameterError):
        tumour_to_background(liver, liver, "median")
    with pytest.raises(ParameterError, match="organ"):
        organ_reference(volume, "heart", (0, 0, 0))


def test_liver_qc_flags_values_outside_the_eanm_range():
    grid = ImageGrid.centred((30, 30, 30), (3.0, 3.0, 3.0))
    assert not liver_qc_passes(organ_reference(Volume(np.full(grid.shape, 3.4), grid), "liver", (0, 0, 0)))


def test_empty_or_mismatched_vois_are_errors():
    grid = ImageGrid.centred((10, 10, 10), (2.0, 2.0, 2.0))
    volume = Volume(np.ones(grid.shape), grid)
    with pytest.raises(ParameterError, match="no voxel"):
        voi_statistics(volume, np.zeros(grid.shape, bool))
    with pytest.raises(ParameterError, match="shape"):
        voi_statistics(volume, np.ones((5, 5, 5), bool))
