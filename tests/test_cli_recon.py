"""`petrecon recon`: a study container to a calibrated volume, with protocol, corrections and mu-map options."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.attenuation.mumap import write_mu_map
from petrecon.cli import main
from petrecon.io import read_container, write_container
from petrecon.simulate.acquisition import simulate_study
from petrecon.simulate.phantom import phantom_from_dict

CYLINDER = {"regions": [{"activity": 5000.0, "material": "water", "shapes": [
    {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": 60.0, "length_mm": 200.0}]}]}


@pytest.fixture(scope="module")
def study_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recon")
    study = simulate_study(phantom_from_dict(CYLINDER), scanner="test", isotope="F18", duration_s=60.0,
                           noise=False, seed=2, progress=False).container
    return write_container(folder / "study.h5", study)


def _central_mean(path) -> float:
    volume = read_container(path).volumes["activity_bq_per_ml"]
    x, y, z = np.meshgrid(*(volume.grid.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    return float(volume.data[(np.hypot(x, y) < 40) & (np.abs(z) < 10)].mean())


def test_recon_of_a_simulated_study_returns_the_true_concentration(study_path, tmp_path, capsys):
    assert main(["recon", str(study_path), "--out", str(tmp_path / "r.h5"), "--quiet"]) == 0
    # noise-free data, exact corrections: 1 % (the calibration of the chain, tests/test_simulate_acquisition.py)
    assert _central_mean(tmp_path / "r.h5") == pytest.approx(5000.0, rel=0.01)
    assert "NORM ATTN RAN SCAT DECY" in capsys.readouterr().out
    provenance = read_container(tmp_path / "r.h5").provenance
    assert provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "SCAT", "DECY"]
    assert provenance["protocol"]["osem"]["n_iterations"] == 4


def test_switching_attenuation_off_is_applied_and_recorded(study_path, tmp_path):
    assert main(["recon", str(study_path), "--no", "attenuation", "--out", str(tmp_path / "r.h5"), "--quiet"]) == 0
    # 12 cm of water: the centre keeps ~exp(-1.15) ~ 0.3 of its counts uncorrected
    assert _central_mean(tmp_path / "r.h5") < 0.6 * 5000.0
    assert "ATTN" not in read_container(tmp_path / "r.h5").provenance["corrected_image"]


def test_a_mumap_container_gives_the_same_result(study_path, tmp_path):
    mu = read_container(study_path).volumes["mu_per_cm"]
    write_mu_map(tmp_path / "mu.h5", mu, scanner="test", inputs=[])
    assert main(["recon", str(study_path), "--mumap", str(tmp_path / "mu.h5"), "--out", str(tmp_path / "r.h5"),
                 "--quiet"]) == 0
    # the voxelised mu-map on the image grid instead of exact chords: 1 % (attenuation factor tests)
    assert _central_mean(tmp_path / "r.h5") == pytest.approx(5000.0, rel=0.01)


def test_bad_inputs_are_one_line_errors(study_path, tmp_path, capsys):
    assert main(["recon", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "r.h5")]) == 2
    assert "missing.h5" in capsys.readouterr().err
    assert main(["recon", str(study_path), "--protocol", str(tmp_path / "nope.toml"), "--out",
                 str(tmp_path / "r.h5")]) == 2
    assert "nope.toml" in capsys.readouterr().err


CT_FACTS = {"StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1", "FrameOfReferenceUID": "1.2.826.0.1.3680043.8.498.2",
            "PatientName": "Doe^Jane", "PatientID": "P-0042", "PatientBirthDate": "19600101", "PatientSex": "F",
            "PatientWeight": "64.5", "AcquisitionDate": "20260302", "AcquisitionTime": "135500", "KVP": "120"}


def _water_ct(write_dicom_series, folder) -> None:
    """A CT of the study's water cylinder (HU 0 inside 60 mm, air outside), 5 mm voxels over +-50 mm, HFS."""
    centres = (np.arange(48) - 23.5) * 5.0
    x, y = np.meshgrid(centres, centres, indexing="xy")
    plane = np.where(np.hypot(x, y) <= 60.0, 0, -1000)
    positions = [(centres[0], centres[0], s) for s in (np.arange(20) - 9.5) * 5.0]
    write_dicom_series(folder, "CT", [plane] * 20, positions, (1, 0, 0, 0, 1, 0), (5.0, 5.0), extra=CT_FACTS)


@pytest.fixture(scope="module")
def fast_protocol(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "fast.toml"
    path.write_text("[osem]\nn_iterations = 1\nn_subsets = 2\npost_filter_fwhm_mm = 6.0\n")
    return path


def test_the_dicom_series_joins_the_ct_study_and_frame_of_reference_so_viewers_fuse_them(
        study_path, fast_protocol, write_dicom_series, tmp_path):
    import pydicom

    _water_ct(write_dicom_series, tmp_path / "ct")
    assert main(["recon", str(study_path), "--protocol", str(fast_protocol), "--mumap-ct", str(tmp_path / "ct"),
                 "--dicom", str(tmp_path / "pet"), "--tracer", "Pentixafor", "--height-m", "1.68",
                 "--injection-time", "2026-03-02T13:00", "--scan-time", "2026-03-02T14:00", "--quiet"]) == 0
    pet = pydicom.dcmread(sorted((tmp_path / "pet").iterdir())[0])
    ct = pydicom.dcmread(sorted((tmp_path / "ct").iterdir())[0])
    assert (pet.StudyInstanceUID, pet.FrameOfReferenceUID) == (ct.StudyInstanceUID, ct.FrameOfReferenceUID)
    assert pet.SeriesInstanceUID != ct.SeriesInstanceUID
    assert (str(pet.PatientName), pet.PatientID, pet.PatientBirthDate, pet.PatientSex) == \
        ("Doe^Jane", "P-0042", "19600101", "F")
    assert float(pet.PatientWeight) == 64.5 and float(pet.PatientSize) == 1.68
    assert pet.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == "Pentixafor"
    assert pet.ReconstructionMethod == "OSEM 1i2s 6mm"
    assert (pet.SeriesDate, pet.SeriesTime[:6]) == ("20260302", "140000")


def test_the_options_win_over_the_ct_and_an_unnamed_tracer_is_unknown_not_fdg(
        study_path, fast_protocol, write_dicom_series, tmp_path, caplog):
    import pydicom

    _water_ct(write_dicom_series, tmp_path / "ct")
    assert main(["recon", str(study_path), "--protocol", str(fast_protocol), "--mumap-ct", str(tmp_path / "ct"),
                 "--dicom", str(tmp_path / "pet"), "--sex", "m", "--weight-kg", "80", "--quiet"]) == 0
    pet = pydicom.dcmread(sorted((tmp_path / "pet").iterdir())[0])
    assert (pet.PatientSex, float(pet.PatientWeight)) == ("M", 80.0)
    assert pet.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == "unknown"
    assert "tracer unknown" in caplog.text and "give --tracer" in caplog.text
    # no scan time anywhere but the CT's: the PET is dated on the CT's day, not on a nominal one
    assert pet.SeriesDate == "20260302" and "scan start unknown" in caplog.text
