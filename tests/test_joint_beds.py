"""The joint whole-body operator: adjointness (with the PSF inside) and the plane maps of non-integer bed steps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.io.multibed import whole_body_grid
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon.joint_beds import JointBedProjector
from petrecon.recon.resolution import ResolutionModelledProjector
from petrecon.volume import ImageGrid

LAYOUT = SinogramLayout(dataclasses.replace(get_scanner("test"), n_rings=8), 3, 5, 60, 2)
BED_GRID = ImageGrid.centred((20, 20, 15), (6.0, 6.0, 2.0))
OFFSETS_MM = [19.3, 0.0, -19.3]  # a bed step of 9.65 planes: the plane maps interpolate


def _joint(psf_fwhm_mm: float = 0.0):
    grid = whole_body_grid(BED_GRID, OFFSETS_MM)
    joint = JointBedProjector(SinogramProjector(LAYOUT, BED_GRID), BED_GRID, grid, OFFSETS_MM)
    return joint if psf_fwhm_mm == 0 else ResolutionModelledProjector(joint, psf_fwhm_mm)


@pytest.mark.parametrize("psf_fwhm_mm", [0.0, 5.0])
def test_joint_subset_operator_is_the_adjoint_of_its_back_projection(psf_fwhm_mm):
    system = _joint(psf_fwhm_mm)
    assert system.out_shape == (3, *LAYOUT.shape)
    views = np.arange(1, LAYOUT.n_views, 4)
    operator = system.subset_operator(views)
    rng = np.random.default_rng(5)
    x = rng.random(operator.in_shape, dtype=np.float32)
    y = rng.random(operator.out_shape, dtype=np.float32)
    forward = float(np.vdot(operator.forward(x).astype(np.float64), y))
    adjoint = float(np.vdot(x.astype(np.float64), operator.adjoint(y)))
    # float32 sums over ~1e6 products of O(1) terms: relative rounding ~1e-6; 1e-4 leaves room, a wrong
    # transpose of the plane maps or a missing bed in the adjoint is off by > 10 %
    assert forward == pytest.approx(adjoint, rel=1e-4)
    assert forward > 0


def test_every_bed_plane_is_taken_from_the_whole_body_image():
    joint = _joint()
    grid = whole_body_grid(BED_GRID, OFFSETS_MM)
    # an image that rises linearly along z: interpolation reproduces it exactly, plane for plane
    z = grid.voxel_centres_mm(2)
    ramp = np.broadcast_to(z, grid.shape).astype(np.float32)
    for offset, plane_map in zip(OFFSETS_MM, joint.plane_maps):
        bed_planes = (ramp @ plane_map)[0, 0]
        expected = BED_GRID.voxel_centres_mm(2) + offset
        inside = expected <= z[-1] + 1e-6  # the top bed's last plane lies beyond the grid: it takes the end plane
        np.testing.assert_allclose(bed_planes[inside], expected[inside], atol=1e-4)
        np.testing.assert_allclose(bed_planes[~inside], z[-1], atol=1e-4)
        assert (~inside).sum() <= 1
        np.testing.assert_allclose(plane_map.sum(axis=0), 1.0, atol=1e-6)  # each bed plane: weights summing to 1


def test_grids_that_do_not_match_are_refused():
    with pytest.raises(ParameterError, match="image shape"):
        JointBedProjector(SinogramProjector(LAYOUT, BED_GRID), ImageGrid.centred((20, 20, 14), (6.0, 6.0, 2.0)),
                          whole_body_grid(BED_GRID, OFFSETS_MM), OFFSETS_MM)
    with pytest.raises(ParameterError, match="differ in their voxels"):
        JointBedProjector(SinogramProjector(LAYOUT, BED_GRID), BED_GRID,
                          ImageGrid.centred((20, 20, 40), (5.0, 5.0, 2.0)), OFFSETS_MM)
