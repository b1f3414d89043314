"""`petrecon mumap`: CT and Dixon DICOM series to a mu-map container on a scanner's PET grid."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.cli import main
from petrecon.geometry import get_scanner
from petrecon.io import read_container

AXIAL = (1, 0, 0, 0, 1, 0)


def _disc_planes(n_slices: int, inside: float, outside: float, radius_mm: float = 60.0, pixel_mm: float = 2.0):
    centres = (np.arange(100) - 49.5) * pixel_mm
    inside_disc = np.hypot(centres[None, :], centres[:, None]) <= radius_mm
    return np.repeat(np.where(inside_disc, inside, outside)[None], n_slices, axis=0), centres[0]


def test_ct_series_becomes_water_mu_on_the_scanner_grid(write_dicom_series, tmp_path):
    planes, first_mm = _disc_planes(12, 1024, 0)  # stored values: HU = stored - 1024 (water 0, air -1024)
    positions = [(first_mm, first_mm, -22.0 + 4.0 * k) for k in range(12)]
    write_dicom_series(tmp_path / "ct", "CT", planes, positions, AXIAL, (2.0, 2.0), intercept=-1024.0,
                       extra={"KVP": "120"})
    assert main(["mumap", "--ct", str(tmp_path / "ct"), "--scanner", "test", "--out", str(tmp_path / "mu.h5")]) == 0
    mu = read_container(tmp_path / "mu.h5").volumes["mu_per_cm"]
    scanner = get_scanner("test")
    assert mu.grid.shape == scanner.default_image_shape
    centre = tuple(n // 2 for n in mu.grid.shape)
    assert mu.data[centre] == pytest.approx(0.096, rel=1e-3)  # water at 120 kVp, far from the edge
    assert mu.data[0, 0, centre[2]] == 0.0  # air (clipped from -1024 HU)
    assert mu.metadata["source"] == "ct" and mu.metadata["kvp"] == 120.0


def test_dixon_series_give_soft_tissue_and_fat_classes(write_dicom_series, tmp_path):
    water, first_mm = _disc_planes(12, 900, 0)
    rim, _ = _disc_planes(12, 1, 0, radius_mm=45.0)
    fat_rim = (water > 0) & (rim == 0)  # a 15 mm fat layer around a soft-tissue core
    fat = np.where(fat_rim, 900, 20)
    water = np.where(fat_rim, 80, water)
    positions = [(first_mm, first_mm, -22.0 + 4.0 * k) for k in range(12)]
    for name, planes in (("water", water), ("fat", np.where(water > 0, fat, 0))):
        write_dicom_series(tmp_path / name, "MR", planes, positions, AXIAL, (2.0, 2.0))
    assert main(["mumap", "--dixon", str(tmp_path / "water"), str(tmp_path / "fat"), "--scanner", "test",
                 "--out", str(tmp_path / "mu.h5")]) == 0
    mu = read_container(tmp_path / "mu.h5").volumes["mu_per_cm"].data
    centre = tuple(n // 2 for n in mu.shape)
    assert mu[centre] == pytest.approx(0.100, rel=1e-4)  # soft tissue
    assert np.any(np.isclose(mu[:, centre[1], centre[2]], 0.0854, rtol=1e-3))  # the fat layer (3 mm PET voxels)


def test_ct_without_kvp_is_a_one_line_error(write_dicom_series, tmp_path, capsys):
    planes, first_mm = _disc_planes(3, 1024, 0)
    write_dicom_series(tmp_path / "ct", "CT", planes, [(first_mm, first_mm, 4.0 * k) for k in range(3)], AXIAL,
                       (2.0, 2.0), intercept=-1024.0)
    assert main(["mumap", "--ct", str(tmp_path / "ct"), "--scanner", "test", "--out", str(tmp_path / "mu.h5")]) == 2
    assert "KVP" in capsys.readouterr().err
    assert not (tmp_path / "mu.h5").exists()
