"""`petrecon suv` and `petrecon nema` on PET DICOM series folders (the scanner's export, not our container)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from scipy import ndimage

from petrecon.cli import main
from petrecon.io.dicom import write_pet_series
from petrecon.quant.suv import Patient, suv_factor
from petrecon.simulate.phantom import load_phantom
from petrecon.simulate.voxelise import voxelise
from petrecon.volume import ImageGrid, Volume

INJECTION = dt.datetime(2026, 3, 2, 13, 1)
SERIES = dt.datetime(2026, 3, 2, 14, 1)
SERIES_INFO = dict(injected_dose_bq=250e6, injection_datetime=INJECTION, series_datetime=SERIES,
                   frame_duration_s=180, isotope="Ga68", radiopharmaceutical="Pentixafor", patient_weight_kg=70.0,
                   patient_size_m=1.75, patient_sex="F")


@pytest.mark.parametrize("position", ["HFS", "FFS"])
def test_suv_of_a_sphere_roi_in_patient_coordinates(tmp_path, capsys, position):
    grid = ImageGrid.centred((40, 40, 30), (3.0, 3.0, 3.0))
    x, y, z = np.meshgrid(*(grid.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    scanner_centre = (30.0, -15.0, 20.0)
    hot = np.hypot(np.hypot(x - scanner_centre[0], y - scanner_centre[1]), z - scanner_centre[2]) <= 12.0
    volume = Volume(np.where(hot, 20000.0, 2000.0).astype(np.float32), grid, {"units": "Bq/ml"})
    write_pet_series(volume, tmp_path / "pet", patient_position=position, **SERIES_INFO)
    # the same point in DICOM patient coordinates (LPS, reference/scanners.md): HFS (x, y, -z), FFS (-x, y, z)
    signs = {"HFS": (1, 1, -1), "FFS": (-1, 1, 1)}[position]
    centre = [s * c for s, c in zip(signs, scanner_centre)]
    roi = f"sphere:{centre[0]},{centre[1]},{centre[2]},6"
    assert main(["suv", str(tmp_path / "pet"), "--roi", roi, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    factor = suv_factor(250e6, Patient(70.0), elapsed_s=3600.0, half_life_s=4069.8)
    # int16 storage with a per-slice slope: values within 1 part in 32767 (petrecon.io.dicom)
    assert record["suv_max"] == pytest.approx(20000.0 * factor, rel=1e-3)
    assert record["suv_mean"] == pytest.approx(20000.0 * factor, rel=1e-3)


def test_nema_analysis_of_a_dicom_series_finds_six_spheres_and_recovers_the_large_ones(tmp_path, capsys):
    grid = ImageGrid.centred((150, 120, 60), (2.0, 2.0, 2.5))
    activity = voxelise(load_phantom("nema-iec", {"ratio": 10}), grid, supersampling=2)["activity_bq_per_ml"]
    blurred = ndimage.gaussian_filter(activity.data, np.array([6.0, 6.0, 6.0]) / 2.3548 / np.array(grid.voxel_size_mm))
    write_pet_series(Volume(blurred.astype(np.float32), grid, {"units": "Bq/ml"}), tmp_path / "pet", **SERIES_INFO)
    assert main(["nema", str(tmp_path / "pet"), "--ratio", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    spheres = {round(s["diameter_mm"]): s for s in result["spheres"]}
    assert sorted(spheres) == [10, 13, 17, 22, 28, 37]
    # 6 mm FWHM blur: analytic RC max 1.000 for 37 mm and 0.722 for 10 mm (reference/quantification.md);
    # 2 mm voxels and partial-volume sampling: 5 %
    assert spheres[37]["rc_max"] == pytest.approx(1.0, abs=0.05)
    assert spheres[10]["rc_max"] == pytest.approx(0.722, abs=0.07)
