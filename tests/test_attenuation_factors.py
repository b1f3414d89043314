"""Attenuation factors against exact chord lengths through a water cylinder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.attenuation import attenuation_factors
from petrecon.errors import ParameterError
from petrecon.geometry import TofSpec, default_layout
from petrecon.simulate import chord_length_cylinder_mm
from petrecon.volume import ImageGrid, Volume

MU_WATER_PER_CM = 0.096
RADIUS_MM = 70.0
SUPERSAMPLING = 8


def _water_cylinder(grid: ImageGrid) -> Volume:
    """Cylinder along z through the whole grid, with partial-volume fractions from 8 x 8 sub-voxels."""
    offsets = (np.arange(SUPERSAMPLING) + 0.5) / SUPERSAMPLING - 0.5
    x = (grid.voxel_centres_mm(0)[:, None] + offsets[None, :] * grid.voxel_size_mm[0]).ravel()
    y = (grid.voxel_centres_mm(1)[:, None] + offsets[None, :] * grid.voxel_size_mm[1]).ravel()
    inside = np.hypot(x[:, None], y[None, :]) <= RADIUS_MM
    fraction = inside.reshape(grid.shape[0], SUPERSAMPLING, grid.shape[1], SUPERSAMPLING).mean(axis=(1, 3))
    mu = np.repeat(fraction[:, :, None], grid.shape[2], axis=2) * MU_WATER_PER_CM
    return Volume(mu.astype(np.float32), grid, {"units": "cm^-1"})


def test_factors_equal_exp_of_mu_times_the_exact_chord():
    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    factors = attenuation_factors(_water_cylinder(grid), layout)
    xstart, xend = layout.lor_endpoints_mm()
    image_length_mm = grid.shape[2] * grid.voxel_size_mm[2]  # the mu-map ends where the image ends
    chord_mm = chord_length_cylinder_mm(xstart.reshape(-1, 3), xend.reshape(-1, 3), (0, 0, 0), RADIUS_MM,
                                        image_length_mm)
    expected_integral = MU_WATER_PER_CM / 10 * chord_mm
    measured_integral = -np.log(factors.ravel())
    central = chord_mm > 100.0
    # Joseph interpolation of a partial-volume disc: central chords within 1 % (foundation projector tests) ...
    np.testing.assert_allclose(measured_integral[central], expected_integral[central], rtol=0.01)
    # ... chords that cross the rim within one voxel (3 mm) of water ...
    start, direction = xstart.reshape(-1, 3)[:, :2].astype(float), (xend - xstart).reshape(-1, 3)[:, :2].astype(float)
    along = -np.sum(start * direction, axis=1) / np.sum(direction * direction, axis=1)
    closest_mm = np.hypot(*(start + along[:, None] * direction).T)
    voxel_mm = grid.voxel_size_mm[0]
    grazing = np.abs(closest_mm - RADIUS_MM) < voxel_mm
    np.testing.assert_allclose(measured_integral[~grazing], expected_integral[~grazing],
                               atol=MU_WATER_PER_CM / 10 * voxel_mm)
    # ... and lines grazing the cylinder run inside its one-voxel partial-volume rim for up to
    # 2 sqrt(2 R w) mm (R the radius, w the voxel): at most that length of water
    rim_chord_mm = 2 * np.sqrt(2 * RADIUS_MM * voxel_mm)
    assert np.all(np.abs(measured_integral[grazing] - expected_integral[grazing]) <= MU_WATER_PER_CM / 10 * rim_chord_mm)
    # LORs that pass more than two voxels outside the cylinder meet no mu at all
    beyond_rim = chord_length_cylinder_mm(xstart.reshape(-1, 3), xend.reshape(-1, 3), (0, 0, 0),
                                          RADIUS_MM + 2 * grid.voxel_size_mm[0], image_length_mm) == 0
    assert beyond_rim.sum() > 1000
    assert np.all(factors.ravel()[beyond_rim] == 1.0)


def test_tof_layouts_get_the_same_factor_in_every_tof_bin():
    scanner = dataclasses.replace(default_layout("test").scanner, tof=TofSpec(9, 200.0, 400.0))
    tof_layout = dataclasses.replace(default_layout("test"), scanner=scanner, use_tof=True)
    grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    factors = attenuation_factors(_water_cylinder(grid), tof_layout)
    assert factors.shape == tof_layout.shape
    np.testing.assert_array_equal(factors, np.broadcast_to(factors[0], factors.shape))


def test_mu_maps_in_other_units_or_negative_are_refused():
    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    with pytest.raises(ParameterError, match="mm\\^-1"):
        attenuation_factors(Volume(np.zeros(grid.shape), grid, {"units": "mm^-1"}), layout)
    with pytest.raises(ParameterError, match="negative"):
        attenuation_factors(Volume(-np.ones(grid.shape), grid, {"units": "cm^-1"}), layout)
