"""CT-based attenuation: the bilinear HU -> mu model, smoothing, resampling and truncation."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.attenuation import BILINEAR_BY_KVP, ct_mu_map_on_grid, ct_to_mu, find_truncated_slices, hu_to_mu_per_cm
from petrecon.errors import ParameterError
from petrecon.volume import ImageGrid, Volume


@pytest.mark.parametrize("hu, mu_per_cm", [(-1000, 0.0), (0, 0.0960), (47, 0.1005), (1000, 0.1491)])
def test_known_values_at_120_kvp(hu, mu_per_cm):
    # the reference quotes four decimals
    assert hu_to_mu_per_cm(hu, 120) == pytest.approx(mu_per_cm, abs=5e-5)


@pytest.mark.parametrize("kvp", sorted(BILINEAR_BY_KVP))
def test_model_is_continuous_at_every_breakpoint(kvp):
    breakpoint_hu = BILINEAR_BY_KVP[kvp].breakpoint_hu
    below, above = hu_to_mu_per_cm([breakpoint_hu, breakpoint_hu + 1e-3], kvp)
    # b is tabulated to 1e-4 cm^-1 (rounding <= 5e-5): the two lines meet within that (0.05 %)
    assert above == pytest.approx(below, abs=5e-5)


@pytest.mark.parametrize("kvp", sorted(BILINEAR_BY_KVP))
def test_mu_rises_with_hu_and_bone_is_flatter_at_higher_kvp(kvp):
    mu = hu_to_mu_per_cm(np.linspace(-1100, 2500, 500), kvp)
    assert np.all(np.diff(mu) >= 0)
    assert mu.min() == 0.0  # HU below air are clipped to air
    assert mu[-1] == hu_to_mu_per_cm(2000, kvp)  # metal and dense contrast are clipped at 2000 HU


def test_cortical_bone_is_denser_at_low_kvp_conversion():
    # at 511 keV bone has no photoelectric excess: the same HU means less mu at 80 kVp than at 140 kVp
    assert hu_to_mu_per_cm(1000, 80) < hu_to_mu_per_cm(1000, 140)


def test_unknown_kvp_and_missing_kvp_are_clear_errors():
    with pytest.raises(ParameterError, match="135 kVp"):
        hu_to_mu_per_cm(0, 135)
    grid = ImageGrid.centred((2, 2, 2), (1.0, 1.0, 1.0))
    with pytest.raises(ParameterError, match="KVP"):
        ct_to_mu(Volume(np.zeros(grid.shape), grid))


def _water_cylinder_ct(radius_mm: float) -> Volume:
    grid = ImageGrid.centred((128, 128, 20), (1.0, 1.0, 5.0))
    x, y = np.meshgrid(grid.voxel_centres_mm(0), grid.voxel_centres_mm(1), indexing="ij")
    hu = np.where(np.hypot(x, y) <= radius_mm, 0.0, -1000.0)
    return Volume(np.repeat(hu[:, :, None], grid.shape[2], axis=2), grid, {"kvp": 120.0})


def test_ct_mu_map_on_a_pet_grid_keeps_water_and_the_body_outline():
    ct = _water_cylinder_ct(40.0)
    pet_grid = ImageGrid.centred((40, 40, 10), (2.5, 2.5, 4.0))
    mu = ct_mu_map_on_grid(ct, pet_grid, fwhm_mm=4.0)
    centre = mu.data[20, 20, 5]
    assert centre == pytest.approx(0.096, rel=1e-4)  # uniform water far from the edge is untouched by smoothing
    # the total attenuation (mu integrated over the slice) is conserved by smoothing and linear resampling:
    # the partial-volume error of the 1 mm CT disc is < 1 % of its area (perimeter x 0.5 mm / area)
    area_mm2 = mu.data[:, :, 5].sum() * 2.5 * 2.5 / 0.096
    assert area_mm2 == pytest.approx(np.pi * 40.0**2, rel=0.01)
    assert mu.metadata["truncated_slices"] == []


def test_body_touching_the_ct_field_of_view_is_flagged():
    fov = _water_cylinder_ct(50.0).data == 0  # circular reconstruction field of view, padding outside
    hu = np.where(fov, _water_cylinder_ct(30.0).data, -3024.0)  # body well inside the field of view
    hu[:, :, 10:] = np.where(fov, 0.0, -3024.0)[:, :, 10:]  # a body wider than the field of view, cut at its edge
    flagged = find_truncated_slices(Volume(hu, _water_cylinder_ct(0.0).grid))
    assert flagged.tolist() == list(range(10, 20))
