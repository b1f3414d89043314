"""VOIs on synthetic volumes with analytic answers: geometric masks, isocontours, lesion growing."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import brentq

from petrecon.errors import GeometryError, ParameterError
from petrecon.quant.analytic import blurred_sphere_profile, blurred_sphere_rc
from petrecon.quant.roi import (
    a50_voi,
    box_mask,
    grow_lesion,
    isocontour_voi,
    label_mask,
    sphere_mask,
)
from petrecon.volume import ImageGrid, Volume


def two_spheres(voxel_mm=2.0, fwhm_mm=0.0):
    """Background 1; a 24 mm sphere of 10 at x = -25 mm and a 16 mm sphere of 6 at x = +25 mm."""
    grid = ImageGrid.centred((int(100 / voxel_mm) + 1, int(60 / voxel_mm) + 1, int(60 / voxel_mm) + 1), (voxel_mm,) * 3)
    data = np.ones(grid.shape)
    data[sphere_mask(grid, (-25, 0, 0), 12.0)] = 10.0
    data[sphere_mask(grid, (25, 0, 0), 8.0)] = 6.0
    if fwhm_mm:
        data = ndimage.gaussian_filter(data, fwhm_mm / 2.3548 / voxel_mm, mode="nearest")
    return Volume(data, grid)


def test_sphere_mask_counts_voxel_centres_inside():
    grid = ImageGrid.centred((21, 21, 21), (1.0, 1.0, 1.0))
    # lattice points within radius 2: 1 + 6 + 12 + 8 + 6 = 33
    assert sphere_mask(grid, (0, 0, 0), 2.0).sum() == 33
    # the volume of a large sphere converges to 4/3 pi r^3 (voxel-centre sampling: ~1 % at r = 8 voxels)
    assert sphere_mask(grid, (0.3, -0.2, 0.1), 8.0).sum() == pytest.approx(4 / 3 * np.pi * 8**3, rel=0.01)


def test_sphere_mask_uses_the_grid_origin_and_anisotropic_voxels():
    grid = ImageGrid((10, 10, 5), (1.0, 1.0, 3.0), (100.0, -20.0, 50.0))
    mask = sphere_mask(grid, (104.0, -16.0, 56.0), 0.5)
    assert np.argwhere(mask).tolist() == [[4, 4, 2]]


def test_box_and_label_masks():
    grid = ImageGrid.centred((10, 10, 10), (2.0, 2.0, 2.0))
    assert box_mask(grid, (-2, -2, -2), (2, 2, 2)).sum() == 8
    labels = Volume(np.zeros(grid.shape, np.int16), grid)
    labels.data[2:4, 2:4, 2:4] = 7
    assert label_mask(labels, 7, grid).sum() == 8
    with pytest.raises(ParameterError, match="label 3"):
        label_mask(labels, 3)
    with pytest.raises(GeometryError):
        label_mask(labels, 7, ImageGrid.centred((10, 10, 10), (1.0, 1.0, 1.0)))
    with pytest.raises(ParameterError):
        box_mask(grid, (1, 1, 1), (0, 2, 2))


def test_isocontours_of_a_sharp_sphere_are_the_sphere():
    volume = two_spheres()
    truth = sphere_mask(volume.grid, (-25, 0, 0), 12.0)
    search = sphere_mask(volume.grid, (-25, 0, 0), 20.0)
    assert np.array_equal(isocontour_voi(volume, search, 0.41), truth)
    assert np.array_equal(a50_voi(volume, search, background=1.0), truth)


def test_isocontour_keeps_only_the_component_of_the_maximum():
    volume = two_spheres()
    everywhere = np.ones(volume.grid.shape, bool)
    # 41 % of 10 = 4.1 < 6: both spheres pass the threshold, only the hotter one is connected to the max
    voi = isocontour_voi(volume, everywhere, 0.41)
    assert np.array_equal(voi, sphere_mask(volume.grid, (-25, 0, 0), 12.0))


def test_a50_volume_of_a_blurred_large_sphere_is_close_to_the_true_volume():
    volume = two_spheres(voxel_mm=1.0, fwhm_mm=6.0)
    search = sphere_mask(volume.grid, (-25, 0, 0), 20.0)
    voi = a50_voi(volume, search, background=1.0)
    # the A50 surface is where the analytic profile falls to half its centre value (0.56 mm inside the
    # 12 mm wall: curvature); 3 % for sampling voxel centres at 1 mm and the discrete Gaussian kernel
    half_max_radius_mm = brentq(lambda r: blurred_sphere_profile(r, 24.0, 6.0) - 0.5 * blurred_sphere_rc(24.0, 6.0),
                                6.0, 12.0)
    expected_ml = 4 / 3 * np.pi * (half_max_radius_mm / 10.0) ** 3
    assert voi.sum() * volume.grid.voxel_volume_ml == pytest.approx(expected_ml, rel=0.03)


def test_grow_lesion_from_a_seed_finds_the_nearby_sphere_only():
    volume = two_spheres()
    voi = grow_lesion(volume, (22.0, 2.0, 0.0))
    assert np.array_equal(voi, sphere_mask(volume.grid, (25, 0, 0), 8.0))


def test_grow_lesion_is_confined_so_it_cannot_leak_into_a_hot_organ():
    volume = two_spheres()
    volume.data[:, :, :] = np.where(volume.data == 6.0, 6.0, 1.0)
    volume.data[30:, :, 15:] = np.maximum(volume.data[30:, :, 15:], 5.0)  # a hot "organ" touching the lesion
    voi = grow_lesion(volume, (25.0, 0.0, 0.0), fraction=0.5, max_radius_mm=12.0)
    assert voi.any() and not (voi & ~sphere_mask(volume.grid, (25, 0, 0), 12.0)).any()


def test_thresholds_above_the_maximum_are_errors():
    volume = two_spheres()
    with pytest.raises(ParameterError):
        isocontour_voi(volume, np.zeros(volume.grid.shape, bool))
    with pytest.raises(ParameterError):
        isocontour_voi(volume, np.ones(volume.grid.shape, bool), fraction=1.5)
    with pytest.raises(GeometryError):
        grow_lesion(volume, (500.0, 0.0, 0.0))


def test_roi_specifications_give_one_record_each():
    from petrecon.quant.report import parse_roi, roi_records

    volume = two_spheres()
    records = roi_records(volume, ["sphere:-25,0,0,12", "box:20,-5,-5,30,5,5"])
    assert records[0]["suv_max"] == 10.0 and records[0]["suv_mean"] == 10.0
    assert records[0]["suv_peak"] == pytest.approx(10.0)  # 12.4 mm peak sphere inside a 24 mm uniform sphere
    assert records[1]["suv_max"] == 6.0
    for bad in ("cube:1,2,3", "sphere:1,2,3", "sphere:a,b,c,d"):
        with pytest.raises(ParameterError):
            parse_roi(bad)
    with pytest.raises(ParameterError, match="no voxel"):
        roi_records(volume, ["sphere:900,0,0,5"])
