"""Tests of petrecon.simulate.placement: a patient-frame phantom placed in the gantry by the patient transform."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.geometry.patient import gantry_to_patient, gantry_to_patient_affine
from petrecon.simulate.phantom import Pose, load_phantom
from petrecon.simulate.placement import place_phantom
from petrecon.simulate.voxelise import voxelise
from petrecon.volume import ImageGrid


@pytest.mark.parametrize(("position", "bed_position_mm"), [("HFS", 40.0), ("FFS", -30.0), ("HFP", 0.0)])
def test_placed_phantom_at_a_gantry_point_is_the_phantom_at_its_patient_point(position, bed_position_mm):
    """Voxel centres sample the placed phantom exactly where the original has the patient point (no supersampling)."""
    phantom = load_phantom("nema-iec", pose=Pose((3.0, -7.0, 20.0), (5.0, -10.0, 15.0)))
    gantry_grid = ImageGrid.centred((40, 34, 30), (6.0, 6.0, 6.0))
    placed = voxelise(place_phantom(phantom, position, bed_position_mm), gantry_grid,
                      supersampling=1, progress=False)["activity_bq_per_ml"].data
    # the same voxel centres in patient coordinates: an axis-aligned grid with flipped axes
    signs = np.diag(gantry_to_patient_affine(position))[:3]
    corner = gantry_to_patient(np.array(gantry_grid.origin_mm), position, bed_position_mm)
    far = gantry_to_patient(np.array(gantry_grid.origin_mm) + (np.array(gantry_grid.shape) - 1)
                            * gantry_grid.voxel_size_mm, position, bed_position_mm)
    patient_grid = ImageGrid(gantry_grid.shape, gantry_grid.voxel_size_mm, tuple(np.minimum(corner, far)))
    original = voxelise(phantom, patient_grid, supersampling=1, progress=False)["activity_bq_per_ml"].data
    flipped = original[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in signs)]
    assert placed.max() > 0
    # exact point sampling of the same solids: equal but for centres on a boundary (float rounding)
    assert np.mean(placed != flipped) < 1e-3
