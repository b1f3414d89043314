"""Per-patient report figures: drawn in patient coordinates, head up and the patient's left to the right."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.report.patient import _plane, patient_axes
from petrecon.volume import ImageGrid, Volume

GRID = ImageGrid.centred((10, 8, 12), (2.0, 2.0, 3.0))


@pytest.mark.parametrize("position, gantry_index, centre_s_mm, spot_s_mm", [
    # HFS: L = x, S = -(z - h): the head (high S) is at low gantry z; FFS: L = -x, S = z - h (STIR's convention);
    # h = 40 mm, slice centres z = -16.5 ... 16.5 mm
    ("HFS", (9, 4, 0), 40.0, 56.5),
    ("FFS", (0, 4, 11), -40.0, -23.5),
])
def test_a_spot_at_the_patients_upper_left_is_drawn_top_right(position, gantry_index, centre_s_mm, spot_s_mm):
    data = np.zeros(GRID.shape, np.float32)
    data[gantry_index] = 1.0
    volume = Volume(data, GRID, {"patient_position": position, "bed_position_mm": 40.0})
    plane, extent = _plane(volume, data.max(axis=1), 0, 2)
    # rows along S (origin lower: the last row is the top), columns along L (the last column is the right)
    assert plane.shape == (12, 10) and plane[-1, -1] == 1.0
    left, right, bottom, top = extent
    assert right - left == pytest.approx(20.0) and top - bottom == pytest.approx(36.0)
    assert (bottom + top) / 2 == pytest.approx(centre_s_mm)
    assert patient_axes(volume)[2][gantry_index[2]] == pytest.approx(spot_s_mm)
