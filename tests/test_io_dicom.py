"""DICOM: PET series round trips (values, SUVs, geometry), CT/Dixon reading, dciodvfy, clear errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from petrecon.errors import FormatError, PetreconError
from petrecon.io.dicom import read_ct_series, read_dixon_series, read_pet_series, write_pet_series
from petrecon.volume import ImageGrid, Volume

SCAN = dt.datetime(2026, 3, 2, 14, 1, 0)
INJECTION = dt.datetime(2026, 3, 2, 13, 1, 0)


def _asymmetric_volume() -> Volume:
    """A volume whose every axis is told apart: sizes, voxel sizes, origin and a ramp differ per axis."""
    grid = ImageGrid((9, 7, 5), (2.0, 2.5, 3.0), (-10.0, 4.0, -7.5))
    x, y, z = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    data = (1000.0 + 100.0 * x + 10.0 * y + 1.0 * z + 500.0 * ((x == 1) & (y == 5) & (z == 3))).astype(np.float32)
    return Volume(data, grid, {"units": "Bq/ml"})


def _write(volume, folder, **kwargs):
    arguments = dict(injected_dose_bq=370e6, injection_datetime=INJECTION, series_datetime=SCAN,
                     frame_duration_s=180.0, patient_weight_kg=70.0, patient_size_m=1.75, patient_sex="F",
                     half_life_s=6586.0)
    arguments.update(kwargs)
    return write_pet_series(volume, folder, **arguments)


@pytest.mark.parametrize("position", ["HFS", "FFS", "HFP", "FFP"])
def test_pet_series_round_trip_keeps_values_and_geometry(tmp_path, position):
    volume = _asymmetric_volume()
    _write(volume, tmp_path / "pet", patient_position=position)
    back = read_pet_series(tmp_path / "pet")
    assert back.grid == volume.grid
    # int16 with one slope per slice: error <= slope / 2 = max|slice| / 32767 / 2, plus float32 rounding
    peak = np.abs(volume.data).max(axis=(0, 1))
    tolerance = peak / 32767 / 2 + peak * 2.0**-23
    assert np.all(np.abs(back.data - volume.data).max(axis=(0, 1)) <= tolerance)
    assert back.metadata["units"] == "Bq/ml" and back.metadata["patient_position"] == position
    json.dumps(back.metadata)  # the header is JSON-serialisable
    assert "7FE00010" not in back.metadata["dicom_header"]
    # written again without naming the position: the volume's own position is kept
    again = read_pet_series(_write(back, tmp_path / "again")[0].parent)
    assert again.metadata["patient_position"] == position and again.grid == volume.grid


def test_hfs_positions_are_lps_with_the_head_deep_in_the_gantry(tmp_path):
    """STIR/NiftyPET (reference/scanners.md): HFS is LPS = (x, y, -z) plus the bed position along S."""
    volume = _asymmetric_volume()
    files = _write(volume, tmp_path / "pet")
    first = pydicom.dcmread(files[0])
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    # PET: the position is coded in PatientOrientationCodeSequence / PatientGantryRelationshipCodeSequence, and
    # PatientPosition shall then be absent (dciodvfy)
    assert "PatientPosition" not in first and read_pet_series(tmp_path / "pet").metadata["patient_position"] == "HFS"
    x0, y0, z0 = volume.grid.origin_mm
    np.testing.assert_allclose([float(v) for v in first.ImagePositionPatient], [x0, y0, -z0])
    np.testing.assert_allclose([float(v) for v in pydicom.dcmread(files[3]).ImagePositionPatient],
                               [x0, y0, -(z0 + 9.0)])
    # row r, column c of slice k is voxel (x=c, y=r, z=k): the marked voxel (1, 5, 3)
    slice_3 = pydicom.dcmread(files[3])
    pixels = slice_3.pixel_array * float(slice_3.RescaleSlope)
    assert pixels[5, 1] == pytest.approx(1000 + 100 * 1 + 10 * 5 + 3 + 500, abs=float(slice_3.RescaleSlope))
    assert pixels[1, 5] == pytest.approx(1000 + 100 * 5 + 10 * 1 + 3, abs=float(slice_3.RescaleSlope))
    assert slice_3.Units == "BQML" and slice_3.DecayCorrection == "START"
    assert "ATTN" in slice_3.CorrectedImage and "DECY" in slice_3.CorrectedImage
    # FFS: patient left is -x and superior is +z
    ffs = _write(volume, tmp_path / "ffs", patient_position="FFS")
    assert [float(v) for v in pydicom.dcmread(ffs[0]).ImageOrientationPatient] == [-1, 0, 0, 0, 1, 0]
    np.testing.assert_allclose([float(v) for v in pydicom.dcmread(ffs[0]).ImagePositionPatient], [-x0, y0, z0])


@pytest.mark.parametrize(("position", "centre_s_mm"), [("HFS", 150.0), ("FFS", -150.0)])
def test_bed_position_moves_the_gantry_centre_along_the_body_axis(tmp_path, position, centre_s_mm):
    """NiftyPET writes mMR images with S = -z + hbed (head first); feet first keeps the table-fixed z - hbed."""
    grid = ImageGrid.centred((4, 4, 5), (2.0, 2.0, 2.0))   # voxel (2, 2, 2) is centred on the gantry centre
    volume = Volume(np.ones(grid.shape, np.float32), grid,
                    {"units": "Bq/ml", "patient_position": position, "bed_position_mm": 150.0})
    files = _write(volume, tmp_path / "pet")
    centre_slice = pydicom.dcmread(files[2])
    assert float(centre_slice.ImagePositionPatient[2]) == pytest.approx(centre_s_mm)
    back = read_pet_series(tmp_path / "pet")                # the provenance brings the gantry frame back
    assert back.grid == grid and back.metadata["bed_position_mm"] == 150.0
    # read into the gantry frame of a bed 50 mm lower: the table-fixed coordinate z - bed is kept
    moved = read_pet_series(tmp_path / "pet", bed_position_mm=100.0)
    assert moved.grid.origin_mm[2] == pytest.approx(grid.origin_mm[2] - 50.0)


def _suv_bw(dataset, bq_per_ml):
    """SUVbw from a PET header with the QIBA logic (reference/quantification.md), for BQML, START."""
    item = dataset.RadiopharmaceuticalInformationSequence[0]
    injection = dt.datetime.strptime(item.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    series = dt.datetime.strptime(dataset.SeriesDate + dataset.SeriesTime[:6], "%Y%m%d%H%M%S")
    decayed = float(item.RadionuclideTotalDose) * 2 ** (-(series - injection).total_seconds()
                                                         / float(item.RadionuclideHalfLife))
    return bq_per_ml * float(dataset.PatientWeight) * 1000.0 / decayed


def test_suvs_survive_the_round_trip(tmp_path):
    volume = _asymmetric_volume()
    _write(volume, tmp_path / "pet")
    back = read_pet_series(tmp_path / "pet")
    header = pydicom.Dataset.from_json(back.metadata["dicom_header"])
    # reference/quantification.md known answer: 370 MBq, 60 min, 6586 s, 70 kg -> 2.76340e-4 g/Bq
    assert _suv_bw(header, 1.0) == pytest.approx(2.76340e-4, rel=1e-5)  # 6 printed digits
    assert float(header.PatientSize) == 1.75 and header.PatientSex == "F"
    inputs = back.metadata["suv_inputs"]
    assert (inputs["patient_weight_kg"], inputs["radionuclide_total_dose_bq"], inputs["radionuclide_half_life_s"]) == \
        (70.0, 370e6, 6586.0)
    assert inputs["decay_correction"] == "START" and "ATTN" in inputs["corrected_image"]
    assert inputs["radiopharmaceutical_start_datetime"].startswith("20260302130100")
    np.testing.assert_allclose(_suv_bw(header, back.data), _suv_bw(header, volume.data), rtol=1e-4)  # int16 steps


def test_writer_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    volume = _asymmetric_volume()
    _write(volume, tmp_path / "pet")
    with pytest.raises(PetreconError, match="exists"):
        _write(volume, tmp_path / "pet")
    bad = Volume(volume.data.copy(), volume.grid, {"units": "Bq/ml"})
    bad.data[2, 2, 4] = np.nan
    with pytest.raises(PetreconError, match="NaN"):
        _write(bad, tmp_path / "nan")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet"]
    _write(volume, tmp_path / "pet", overwrite=True, series_description="second")
    assert len(list((tmp_path / "pet").iterdir())) == volume.grid.shape[2]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_dciodvfy_reports_no_errors_on_our_pet_series(tmp_path):
    files = _write(_asymmetric_volume(), tmp_path / "pet", provenance={"protocol": {"iterations": 4}})
    for path in (files[0], files[-1]):
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]
        assert errors == [], errors


# ------------------------------------------------------------------------------------------ other series
def test_ct_series_in_any_slice_order_gives_hounsfield_units_and_kvp(write_dicom_series, tmp_path):
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 3000, (4, 6, 5))          # (slice, row, column)
    order = [2, 0, 3, 1]                               # files written out of order
    positions = [(-5.0, -2.5, 100.0 - 5.0 * k) for k in range(4)]  # slices go towards the feet (-z)
    write_dicom_series(tmp_path / "ct", "CT", stored[order], [positions[k] for k in order], (1, 0, 0, 0, 1, 0),
                  (0.5, 1.25), slope=1.0, intercept=-1024.0, extra={"KVP": "120", "PatientPosition": "HFS"})
    (tmp_path / "ct" / "notes.txt").write_text("not DICOM")
    ct = read_ct_series(tmp_path / "ct")
    assert ct.metadata["kvp"] == 120.0 and ct.metadata["units"] == "HU"
    # HFS at bed position 0: gantry z = -S, so the most superior slice (S = 100) is at z = -100, index 0
    assert ct.grid.voxel_size_mm == (1.25, 0.5, 5.0) and ct.grid.origin_mm == (-5.0, -2.5, -100.0)
    expected = np.transpose(stored, (2, 1, 0)) - 1024.0
    np.testing.assert_array_equal(ct.data, expected)
    # read for an acquisition at bed position 60 mm: z = -(S - 60)
    assert read_ct_series(tmp_path / "ct", bed_position_mm=60.0).grid.origin_mm == (-5.0, -2.5, -40.0)


def test_coronal_dixon_pair_lands_on_the_scanner_axes(write_dicom_series, tmp_path):
    # coronal: rows run along -z (S to I), columns along +x (L); slices step along +y (posterior)
    water = np.arange(3 * 4 * 5).reshape(3, 4, 5)      # (slice, row, column)
    positions = [(0.0, 2.0 * k, 30.0) for k in range(3)]
    for name, planes in (("water", water), ("fat", water * 2)):
        write_dicom_series(tmp_path / name, "MR", planes, positions, (1, 0, 0, 0, 0, -1), (3.0, 1.5))
    water_volume, fat_volume = read_dixon_series(tmp_path / "water", tmp_path / "fat")
    assert water_volume.grid.shape == (5, 3, 4) and water_volume.grid.voxel_size_mm == (1.5, 2.0, 3.0)
    assert water_volume.grid.origin_mm == (0.0, 0.0, -30.0)
    # HFS: z = -S increases down the rows: voxel (x=c, y=k, z index j) is row j
    np.testing.assert_array_equal(water_volume.data, np.transpose(water, (2, 0, 1)))
    np.testing.assert_array_equal(fat_volume.data, 2 * water_volume.data)
    assert (water_volume.metadata["dixon"], fat_volume.metadata["dixon"]) == ("water", "fat")


def test_bad_series_are_refused_naming_file_and_tag(write_dicom_series, tmp_path):
    planes = np.zeros((3, 4, 4))
    write_dicom_series(tmp_path / "oblique", "CT", planes, [(0, 0, k) for k in range(3)], (0.8, 0.6, 0, -0.6, 0.8, 0),
                  (1, 1))
    with pytest.raises(FormatError, match="ImageOrientationPatient"):
        read_ct_series(tmp_path / "oblique")
    write_dicom_series(tmp_path / "gaps", "CT", planes, [(0, 0, 0), (0, 0, 1), (0, 0, 3)], (1, 0, 0, 0, 1, 0), (1, 1))
    with pytest.raises(FormatError, match="not uniform"):
        read_ct_series(tmp_path / "gaps")
    missing = tmp_path / "missing"
    write_dicom_series(missing, "CT", planes, [(0, 0, k) for k in range(3)], (1, 0, 0, 0, 1, 0), (1, 1))
    dataset = pydicom.dcmread(missing / "001.dcm")
    del dataset.ImagePositionPatient
    dataset.save_as(missing / "001.dcm")
    with pytest.raises(FormatError, match="001.dcm: ImagePositionPatient"):
        read_ct_series(missing)
    with pytest.raises(FormatError, match="no readable PT"):
        read_pet_series(missing)
    with pytest.raises(FormatError, match="does not exist"):
        read_ct_series(tmp_path / "nowhere")


def test_two_series_in_one_folder_need_a_series_uid(write_dicom_series, tmp_path):
    planes = np.ones((2, 3, 3))
    first = write_dicom_series(tmp_path / "a", "CT", planes, [(0, 0, k) for k in range(2)], (1, 0, 0, 0, 1, 0), (1, 1))
    write_dicom_series(tmp_path / "b", "CT", planes * 5, [(0, 0, k) for k in range(2)], (1, 0, 0, 0, 1, 0), (1, 1))
    for path in (tmp_path / "b").iterdir():
        shutil.move(path, tmp_path / "a" / f"b_{path.name}")
    with pytest.raises(FormatError, match="SeriesInstanceUID"):
        read_ct_series(tmp_path / "a")
    assert float(read_ct_series(tmp_path / "a", series_uid=first).data.max()) == 1.0


def test_a_write_failing_half_way_leaves_no_series(tmp_path, monkeypatch):
    calls = []
    original = pydicom.Dataset.save_as

    def failing_save_as(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.Dataset, "save_as", failing_save_as)
    with pytest.raises(OSError, match="disk full"):
        _write(_asymmetric_volume(), tmp_path / "pet")
    assert list(tmp_path.iterdir()) == []
