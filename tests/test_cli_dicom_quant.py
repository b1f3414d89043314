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


@pytest.fixture(scope="module")
def lesion_series(tmp_path_factory):
    """A 2000 Bq/ml background with a 24 mm sphere of 20000 Bq/ml and a 7-voxel speck of 20000 Bq/ml (no blur),
    head-first supine: patient (x, y, z) = gantry (x, y, -z)."""
    grid = ImageGrid.centred((40, 40, 30), (3.0, 3.0, 3.0))
    x, y, z = np.meshgrid(*(grid.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    hot = np.hypot(np.hypot(x - 30.0, y + 15.0), z - 21.0) <= 12.0
    speck = np.hypot(np.hypot(x + 30.0, y - 30.0), z) <= 3.0
    volume = Volume(np.where(hot | speck, 20000.0, 2000.0).astype(np.float32), grid, {"units": "Bq/ml"})
    folder = tmp_path_factory.mktemp("lesions") / "pet"
    write_pet_series(volume, folder, patient_position="HFS", **SERIES_INFO)
    return folder, int(hot.sum()), int(speck.sum())


def test_suv_organs_lesions_size_exclusion_and_tb_with_an_roi_outside(lesion_series, capsys):
    folder, n_hot, n_speck = lesion_series
    code = main(["suv", str(folder), "--organ", "liver:-25,-20,0", "--lesion", "hot:sphere:30,-15,-21,18",
                 "--lesion", "speck:sphere:-30,30,0,8", "--min-volume-ml", "0.5", "--reference", "liver",
                 "--roi", "sphere:0,0,200,10", "--json"])
    captured = capsys.readouterr()
    assert code == 0  # some VOIs measured
    assert "sphere:0,0,200,10" in captured.err and "\n" not in captured.err.strip()
    records = {r["roi"]: r for r in json.loads(captured.out)}
    assert [(r["kind"], r["status"]) for r in records.values()] == [("organ", "ok"), ("lesion", "ok"),
                                                                    ("lesion", "too-small"), ("roi", "outside")]
    factor = suv_factor(250e6, Patient(70.0), elapsed_s=3600.0, half_life_s=4069.8)
    liver, hot, speck = records["liver"], records["hot"], records["speck"]
    # int16 storage with a per-slice slope: values within 1 part in 32767 of the slice maximum (2e-4 of 2000)
    assert liver["suv_mean"] == pytest.approx(2000.0 * factor, rel=1e-3)
    assert liver["volume_ml"] < 4 / 3 * np.pi * 1.5**3 * 1.1  # the 30 mm liver sphere (14.1 ml), voxelised
    # no blur: the 41 % isocontour of a 10:1 step is the sphere's voxels, exactly
    assert hot["n_voxels"] == n_hot and speck["n_voxels"] == n_speck
    assert speck["volume_ml"] == pytest.approx(n_speck * 0.027) and speck["volume_ml"] < 0.5
    assert hot["tb_max"] == pytest.approx(10.0, rel=1e-3) and hot["reference"] == "liver"
    assert hot["tb_peak"] == pytest.approx(hot["suv_peak"] / liver["suv_mean"], rel=1e-12)
    assert records["sphere:0,0,200,10"]["suv_max"] is None and liver["tb_max"] is None


def test_suv_a50_takes_its_background_from_the_reference(lesion_series, capsys):
    folder, n_hot, _ = lesion_series
    assert main(["suv", str(folder), "--organ", "liver:-25,-20,0", "--lesion", "hot:sphere:30,-15,-21,18",
                 "--isocontour", "a50", "--reference", "liver", "--json"]) == 0
    hot = json.loads(capsys.readouterr().out)[1]
    assert hot["n_voxels"] == n_hot  # threshold 2000 + 0.5 (20000 - 2000) = 11000 Bq/ml: the step again
    # a search sphere in the uniform background: its maximum is the reference mean, so A50 has no contour
    assert main(["suv", str(folder), "--organ", "liver:-25,-20,0", "--lesion", "flat:sphere:0,30,20,8",
                 "--isocontour", "a50", "--reference", "liver", "--json"]) == 0
    flat = json.loads(capsys.readouterr().out)[1]
    assert flat["status"] == "below-background" and flat["suv_max"] is None
    assert main(["suv", str(folder), "--lesion", "hot:sphere:30,-15,-21,18", "--isocontour", "a50"]) == 2
    assert "a50" in capsys.readouterr().err


def test_suv_exits_2_when_no_voi_could_be_measured(lesion_series, capsys):
    folder, _, _ = lesion_series
    assert main(["suv", str(folder), "--roi", "sphere:0,0,200,10", "--organ", "spleen:0,0,-300"]) == 2
    captured = capsys.readouterr()
    assert "spleen" in captured.err and "outside" in captured.out
