"""Cross-calibration: the central region of a cylinder, and the factor it gives."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.recon.corrections import central_cylinder_mean, cross_calibration_factor
from petrecon.volume import ImageGrid, Volume

GRID = ImageGrid.centred((60, 60, 30), (4.0, 4.0, 4.0))


def _cylinder_with_hot_rim() -> Volume:
    x, y, z = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    radius = np.hypot(x - 10.0, y)
    data = np.where(radius <= 100.0, 2.0, 0.0) + np.where((radius > 85.0) & (radius <= 100.0), 5.0, 0.0)
    return Volume(data.astype(np.float32), GRID)


def test_central_region_excludes_the_edge_and_follows_the_centre():
    volume = _cylinder_with_hot_rim()
    # the inner 80 % of a 100 mm radius ends at 80 mm, inside the 85-100 mm hot rim
    assert central_cylinder_mean(volume, 100.0, 100.0, centre_mm=(10.0, 0.0, 0.0)) == pytest.approx(2.0)
    assert central_cylinder_mean(volume, 100.0, 100.0, centre_mm=(10.0, 0.0, 0.0), fraction=1.0) > 2.0


def test_factor_maps_the_central_mean_to_the_true_concentration():
    factor = cross_calibration_factor(_cylinder_with_hot_rim(), 5300.0, 100.0, 100.0, centre_mm=(10.0, 0.0, 0.0))
    assert factor == pytest.approx(2650.0)


def test_nothing_to_calibrate_is_an_error():
    empty = Volume(np.zeros(GRID.shape, np.float32), GRID)
    with pytest.raises(ParameterError, match="central mean"):
        cross_calibration_factor(empty, 5000.0, 100.0, 100.0)
    with pytest.raises(ParameterError, match="no voxel"):
        central_cylinder_mean(empty, 100.0, 100.0, centre_mm=(900.0, 0.0, 0.0))
