"""QIBA SUV logic on in-memory DICOM headers: every tag path, the time edge cases, refusals naming the tag."""

import math
from datetime import datetime

import numpy as np
import pytest
from pydicom import Dataset

from petrecon.errors import FormatError
from petrecon.quant.suv import Patient, normaliser
from petrecon.quant.suv_dicom import (
    GE_PRIVATE_CREATOR,
    PHILIPS_PRIVATE_CREATOR,
    parse_dicom_datetime,
    suv_from_dicom,
    suv_volume,
)
from petrecon.volume import ImageGrid, Volume

# Reference known answer: 370 MBq at 13:01:00, scan 14:01:00, half-life 6586 s, 70 kg -> 2.76340e-4 g/Bq.
KNOWN_FACTOR_70KG = 2.76340e-4
KNOWN_REL = 5e-6  # the reference quotes 6 significant digits


def pet_header(**changes) -> Dataset:
    """A BQML, START-corrected PET header of the reference's known-answer case."""
    ds, drug = Dataset(), Dataset()
    ds.Units = "BQML"
    ds.CorrectedImage = ["NORM", "ATTN", "SCAT", "DECY"]
    ds.DecayCorrection = "START"
    ds.SeriesDate = ds.AcquisitionDate = "20240305"
    ds.SeriesTime = ds.AcquisitionTime = "140100"
    ds.PatientWeight = "70"
    ds.PatientSize = "1.85"
    ds.PatientSex = "M"
    drug.RadionuclideTotalDose = "370000000"
    drug.RadionuclideHalfLife = "6586"
    drug.RadiopharmaceuticalStartTime = "130100"
    ds.RadiopharmaceuticalInformationSequence = [drug]
    for keyword, value in changes.items():
        target = drug if keyword.startswith("Radio") and keyword != "RadiopharmaceuticalInformationSequence" else ds
        if value is None:
            delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    return ds


def test_series_time_path_gives_the_known_answer():
    suv = suv_from_dicom(pet_header())
    assert suv.scan_time_source == "series"
    assert suv.factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)
    assert suv.decayed_dose_bq / 1e6 == pytest.approx(253.31, abs=0.005)


def test_start_datetime_is_preferred_over_start_time():
    ds = pet_header(RadiopharmaceuticalStartTime="000000",
                    RadiopharmaceuticalStartDateTime="20240305130100.000000")
    assert suv_from_dicom(ds).factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)


def test_injection_before_midnight_scan_after_it():
    ds = pet_header(SeriesDate="20240306", AcquisitionDate="20240306", SeriesTime="003000",
                    AcquisitionTime="003000", RadiopharmaceuticalStartTime="233000")
    suv = suv_from_dicom(ds)
    assert suv.injection_time == datetime(2024, 3, 5, 23, 30)
    assert suv.factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)


def test_admin_decay_correction_does_not_decay_the_dose():
    suv = suv_from_dicom(pet_header(DecayCorrection="ADMIN"))
    assert suv.factor == pytest.approx(70e3 / 370e6)
    assert suv.decayed_dose_bq == 370e6


def test_post_processed_series_time_after_acquisition_uses_the_ge_private_scan_time():
    ds = pet_header(SeriesTime="170000", AcquisitionTime="140500")
    ds.private_block(0x0009, GE_PRIVATE_CREATOR, create=True).add_new(0x0D, "DT", "20240305140100.00")
    suv = suv_from_dicom(ds)
    assert suv.scan_time_source == "ge-private"
    assert suv.factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)


def test_private_tags_without_their_creator_are_read_at_the_conventional_block():
    ds = pet_header(SeriesTime="170000", AcquisitionTime="140500")
    ds.add_new(0x0009100D, "DT", "20240305140100")
    assert suv_from_dicom(ds).factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)
    philips = pet_header(Units="CNTS")
    philips.add_new(0x70531000, "DS", "0.0002")
    assert suv_from_dicom(philips).factor == pytest.approx(0.0002)


def test_a_private_creator_in_another_block_is_followed():
    ds = pet_header(SeriesTime="170000", AcquisitionTime="140500")
    ds.add_new(0x00090010, "LO", "OTHER VENDOR")
    ds.add_new(0x0009100D, "DT", "20240305120000")  # belongs to the other creator: must not be used
    ds.private_block(0x0009, GE_PRIVATE_CREATOR, create=True).add_new(0x0D, "DT", "20240305140100")
    suv = suv_from_dicom(ds)
    assert suv.scan_time == datetime(2024, 3, 5, 14, 1)


def test_post_processed_series_without_ge_tag_is_back_computed_from_the_frame():
    # bed position starts 14:05:00, 240 s long; its reference time is 240000 ms + the mean-count-rate
    # offset after the wanted scan time 14:01:00 (QIBA: scan = acq - ref/1000 + offset)
    half_life_s, frame_s = 6586.0, 180.0
    lam = math.log(2) / half_life_s
    offset_s = math.log(lam * frame_s / (1 - math.exp(-lam * frame_s))) / lam
    ds = pet_header(SeriesTime="170000", AcquisitionTime="140500")
    ds.FrameReferenceTime = f"{240000.0 + offset_s * 1000.0:.6f}"
    ds.ActualFrameDuration = "180000"
    ds.DecayFactor = "1.0"
    suv = suv_from_dicom(ds)
    assert suv.scan_time_source == "frame-back-computed"
    assert abs((suv.scan_time - datetime(2024, 3, 5, 14, 1)).total_seconds()) < 1e-3
    assert suv.factor == pytest.approx(KNOWN_FACTOR_70KG, rel=KNOWN_REL)
    assert 0 < offset_s < frame_s / 2  # decay moves the mean count time before the frame's middle


def test_post_processed_series_without_any_way_back_is_refused_naming_the_tag():
    with pytest.raises(FormatError, match=r"FrameReferenceTime \(0054,1300\)"):
        suv_from_dicom(pet_header(SeriesTime="170000", AcquisitionTime="140500"))


def test_ga68_uses_the_header_half_life():
    ds = pet_header(RadionuclideHalfLife="4069.8", SeriesTime="140100", RadiopharmaceuticalStartTime="130100")
    assert suv_from_dicom(ds).decayed_dose_bq == pytest.approx(370e6 * 0.541651, rel=1e-6)


def test_philips_counts_with_private_suv_factor():
    ds = pet_header(Units="CNTS")
    ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR, create=True).add_new(0x00, "DS", "0.000123")
    suv = suv_from_dicom(ds)
    assert suv.factor == pytest.approx(0.000123)
    lbm = suv_from_dicom(ds, "lbm-james").factor
    assert lbm == pytest.approx(0.000123 * normaliser(Patient(70, 185, "M"), "lbm-james") / 70e3)


def test_philips_counts_with_bqml_scale_follow_the_bqml_logic():
    ds = pet_header(Units="CNTS")
    ds.private_block(0x7053, PHILIPS_PRIVATE_CREATOR, create=True).add_new(0x09, "DS", "2.5")
    assert suv_from_dicom(ds).factor == pytest.approx(2.5 * KNOWN_FACTOR_70KG, rel=KNOWN_REL)


def test_philips_counts_without_private_factors_are_refused():
    with pytest.raises(FormatError, match=r"7053,1000"):
        suv_from_dicom(pet_header(Units="CNTS"))


def test_gml_values_already_are_suvbw():
    ds = pet_header(Units="GML", CorrectedImage=["ATTN"])  # corrections are not asked for SUV images
    assert suv_from_dicom(ds).factor == 1.0


@pytest.mark.parametrize("changes, tag", [
    ({"PatientWeight": None}, "(0010,1030)"),
    ({"PatientWeight": "0"}, "(0010,1030)"),
    ({"RadionuclideTotalDose": None}, "(0018,1074)"),
    ({"RadionuclideHalfLife": None}, "(0018,1075)"),
    ({"RadiopharmaceuticalStartTime": None}, "(0018,1072)"),
    ({"SeriesTime": None}, "(0008,0031)"),
    ({"AcquisitionTime": None}, "(0008,0032)"),
    ({"CorrectedImage": ["ATTN"]}, "(0028,0051)"),
    ({"CorrectedImage": ["DECY"]}, "(0028,0051)"),
    ({"DecayCorrection": "NONE"}, "(0054,1102)"),
    ({"Units": "PROPCPS"}, "(0054,1001)"),
    ({"Units": None}, "(0054,1001)"),
    ({"RadiopharmaceuticalInformationSequence": None}, "(0054,0016)"),
])
def test_untrustworthy_headers_are_errors_naming_the_tag(changes, tag):
    with pytest.raises(FormatError) as error:
        suv_from_dicom(pet_header(**changes), source="slice0001.dcm")
    assert tag in str(error.value) and "slice0001.dcm" in str(error.value)


def test_injection_after_the_scan_with_full_dates_is_refused():
    ds = pet_header(RadiopharmaceuticalStartDateTime="20240305150000")
    with pytest.raises(FormatError, match="after the scan"):
        suv_from_dicom(ds)


@pytest.mark.parametrize("normalisation, missing, tag", [
    ("lbm-james", "PatientSize", "(0010,1020)"), ("bsa", "PatientSize", "(0010,1020)"),
    ("ibw", "PatientSex", "(0010,0040)"), ("lbm-janmahasatian", "PatientSex", "(0010,0040)"),
])
def test_normalisations_name_the_missing_body_tag(normalisation, missing, tag):
    with pytest.raises(FormatError, match=tag.replace("(", r"\(").replace(")", r"\)")):
        suv_from_dicom(pet_header(**{missing: None}), normalisation)


def test_lbm_from_header_uses_height_in_metres():
    factor = suv_from_dicom(pet_header(), "lbm-james").factor
    assert factor == pytest.approx(KNOWN_FACTOR_70KG * normaliser(Patient(70, 185, "M"), "lbm-james") / 70e3,
                                   rel=KNOWN_REL)


def test_datetime_parser_drops_the_utc_offset_and_keeps_fractions():
    assert parse_dicom_datetime("20240305130100.250000-0500") == datetime(2024, 3, 5, 13, 1, 0, 250000)


def test_suv_volume_reads_the_header_json_of_a_dicom_volume():
    grid = ImageGrid.centred((2, 2, 2), (2.0, 2.0, 2.0))
    volume = Volume(np.full(grid.shape, 5000.0), grid, {"dicom_header": pet_header().to_json_dict()})
    suv = suv_volume(volume)
    assert suv.metadata["units"] == "SUVbw"
    assert np.allclose(suv.data, 5000.0 * KNOWN_FACTOR_70KG, rtol=KNOWN_REL)


def test_suv_volume_without_header_is_refused():
    grid = ImageGrid.centred((1, 1, 1), (1.0, 1.0, 1.0))
    with pytest.raises(FormatError, match="dicom_header"):
        suv_volume(Volume(np.ones((1, 1, 1)), grid, {"source": "x.h5"}))


def test_suv_command_reports_roi_records_from_a_container_volume(tmp_path, capsys):
    import json

    from petrecon.cli import main
    from petrecon.io import Container, write_container

    grid = ImageGrid.centred((30, 30, 30), (2.0, 2.0, 2.0))
    data = np.full(grid.shape, 5000.0)
    data[10:20, 10:20, 10:20] = 20000.0
    volume = Volume(data, grid, {"units": "Bq/ml", "dicom_header": pet_header().to_json_dict()})
    path = write_container(tmp_path / "pet.h5", Container(volumes={"pet": volume}))
    assert main(["suv", str(path), "--roi", "sphere:1,1,1,4", "--roi", "box:-29,-29,-29,-21,-21,-21", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["roi"] for r in records] == ["sphere:1,1,1,4", "box:-29,-29,-29,-21,-21,-21"]
    assert records[0]["suv_max"] == pytest.approx(20000.0 * KNOWN_FACTOR_70KG, rel=KNOWN_REL)
    assert records[1]["suv_mean"] == pytest.approx(5000.0 * KNOWN_FACTOR_70KG, rel=KNOWN_REL)
    assert {"suv_max", "suv_mean", "suv_peak", "volume_ml", "tlg"} <= set(records[0])
    bare = write_container(tmp_path / "bare.h5", Container(volumes={"pet": Volume(data, grid, {"units": "Bq/ml"})}))
    assert main(["suv", str(bare), "--roi", "sphere:0,0,0,4"]) == 2
    assert "dicom_header" in capsys.readouterr().err
