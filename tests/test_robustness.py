"""Bad input as a new user gives it: refused with one line naming the file or option (exit 2), warned and
recorded where the data may be legitimate, never a traceback, a hang or a wrong number with exit 0.

One section per class of failure; the fuzz targets at the end feed damaged DICOM, HDF5, Interfile, list-mode and
cohort files to the readers. Everything runs on the small ``test`` scanner and refuses before reconstructing, so
the whole module takes seconds."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrecon.checks import check_correction, check_parameter, check_uptake
from petrecon.cli import EXIT_BAD_INPUT, main
from petrecon.errors import FormatError, ParameterError, PetreconError
from petrecon.geometry import default_layout
from petrecon.io.atomic import all_or_nothing, atomic_output
from petrecon.io.container import Container, read_container, write_container
from petrecon.io.dicom import write_pet_series
from petrecon.volume import ImageGrid, Volume

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SCAN = dt.datetime(2024, 1, 1, 14, 1, 0)
SERIES_INFO = dict(injected_dose_bq=370e6, injection_datetime=SCAN - dt.timedelta(hours=1), series_datetime=SCAN,
                   frame_duration_s=180.0, patient_weight_kg=70.0)


def _refused(capsys, argv: list[str], *expected: str) -> str:
    """Run ``petrecon argv``: exit 2 and one line ``petrecon: error: ...`` holding every ``expected`` text."""
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("petrecon: warning:")]
    assert len(lines) == 1 and lines[0].startswith("petrecon: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def study_parts():
    """The sinograms and attributes of a small consistent study on the ``test`` scanner (not reconstructed)."""
    layout = default_layout("test")
    rng = np.random.default_rng(0)
    sinograms = {"prompts": rng.poisson(20.0, layout.shape).astype(np.int32),
                 "normalisation": np.full(layout.shape, 0.9, np.float32),
                 "attenuation_factors": np.full(layout.shape, 0.3, np.float32),
                 "randoms": np.full(layout.shape, 1.0, np.float32),
                 "scatter": np.full(layout.shape, 2.0, np.float32)}
    attributes = {"duration_s": 60.0, "isotope": "F18", "calibration_bq_per_ml_per_unit": 1.0,
                  "injected_activity_bq": 2e8}
    return layout, sinograms, attributes


def _study(path, study_parts, **changes) -> str:
    layout, sinograms, attributes = study_parts
    write_container(path, Container({**sinograms, **changes}, layout=layout, attributes=attributes))
    return str(path)


@pytest.fixture
def pet_series(tmp_path):
    """A PET DICOM series of 4 slices (8 x 8) with a warm centre: its folder."""
    grid = ImageGrid.centred((8, 8, 4), (4.0, 4.0, 4.0))
    data = np.full(grid.shape, 1000.0, np.float32)
    data[3:5, 3:5, :] = 5000.0
    write_pet_series(Volume(data, grid, {"units": "Bq/ml"}), tmp_path / "pet", **SERIES_INFO)
    return tmp_path / "pet"


def _edit_slices(folder, edit) -> None:
    import pydicom

    with pydicom.config.disable_value_validation():
        for path in sorted(folder.iterdir()):
            ds = pydicom.dcmread(path)
            edit(path, ds)
            if path.exists():
                ds.save_as(path)


# --- silent wrong results: parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["recon", "in.h5", "--out", "r.h5", "--iterations", "0"], "--iterations"),
    (["recon", "in.h5", "--out", "r.h5", "--subsets", "0"], "--subsets"),
    (["recon", "in.h5", "--out", "r.h5", "--calibration", "inf"], "--calibration"),
    (["recon", "in.h5", "--out", "r.h5", "--weight-kg", "nan"], "--weight-kg"),
    (["recon", "in.h5", "--out", "r.h5", "--weight-kg", "-70"], "--weight-kg"),
    (["nema", "recon.h5", "--sphere-activity", "-5"], "--sphere-activity"),
    (["mumap", "--ct", "ct/", "--scanner", "test", "--out", "mu.h5", "--fwhm-mm", "1e9"], "--fwhm-mm"),
    (["simulate", "uniform-cylinder", "--scanner", "test", "--seed", "-1"], "--seed"),
    (["simulate", "uniform-cylinder", "--scanner", "test", "--activity-mbq", "1e12"], "--activity-mbq"),
    (["harmonize", "--scanner", "mmr", "--standard", "earl1", "--rings", "100000", "--out", "p.toml"], "--rings"),
    (["demo", "--duration-s", "0"], "--duration-s"),
])
def test_parameters_outside_their_range_are_refused_before_any_work(tmp_path, capsys, monkeypatch, argv, option):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, argv, option, "outside" if "nan" not in argv and "inf" not in argv else "finite")
    assert list(tmp_path.iterdir()) == []


def test_the_library_uses_the_same_limits():
    from petrecon.recon import OsemProtocol

    with pytest.raises(ParameterError, match="n_iterations"):
        OsemProtocol(0, 8, 5.0)
    with pytest.raises(ParameterError, match="fwhm_mm"):
        from petrecon.attenuation.mumap import mu_map_from_ct_series
        mu_map_from_ct_series("ct/", fwhm_mm=1e9)
    assert check_parameter("subsets", 8) == 8


def test_sizes_that_cannot_fit_are_refused_before_allocating():
    from petrecon.recon import ReconstructionProtocol

    with pytest.raises(ParameterError, match="GiB"):
        ReconstructionProtocol(image_shape=(100000, 100000, 1000), voxel_size_mm=(1.0, 1.0, 1.0))


# --- silent wrong results: prompts and corrections ------------------------------------------------------------

@pytest.mark.parametrize("case, expected", [
    ("zero prompts", "prompts: is zero everywhere"),
    ("prompts as --norm", "a count sinogram"),
    ("zero --norm", "normalisation: is zero everywhere"),
    ("mu-map x 1000", "not in cm^-1"),
    ("no sinograms", "/sinograms/prompts: is missing"),
    ("nan scatter", "scatter: holds"),
])
def test_implausible_data_and_corrections_are_refused_naming_the_file(tmp_path, capsys, study_parts, case, expected):
    layout, sinograms, _ = study_parts
    study = _study(tmp_path / "study.h5", study_parts)
    argv = ["recon", study, "--out", str(tmp_path / "r.h5"), "--quiet"]
    named = study
    if case == "zero prompts":
        study = _study(tmp_path / "zero.h5", study_parts, prompts=np.zeros(layout.shape, np.int32))
        argv[1] = named = study
    elif case in ("prompts as --norm", "zero --norm"):
        values = sinograms["prompts"] if case == "prompts as --norm" else np.zeros(layout.shape, np.float32)
        named = str(tmp_path / "norm.h5")
        write_container(named, Container({"normalisation": values}, layout=layout))
        argv += ["--norm", named]
    elif case == "mu-map x 1000":
        grid = ImageGrid.centred((16, 16, 8), (8.0, 8.0, 8.0))
        named = str(tmp_path / "mu.h5")
        write_container(named, Container(volumes={"mu_per_cm": Volume(np.full(grid.shape, 96.0, np.float32), grid)}))
        argv += ["--mumap", named]
    elif case == "no sinograms":
        grid = ImageGrid.centred((4, 4, 4), (4.0, 4.0, 4.0))
        named = str(tmp_path / "recon.h5")
        write_container(named, Container(volumes={"activity_bq_per_ml": Volume(np.ones(grid.shape, np.float32), grid)}))
        argv[1] = named
    else:
        argv[1] = named = _study(tmp_path / "nan.h5", study_parts,
                                 scatter=np.full(layout.shape, np.nan, np.float32))
    _refused(capsys, argv, named, expected)
    assert not (tmp_path / "r.h5").exists()


def test_transmissions_that_attenuate_nothing_are_refused_and_partial_cover_warned(caplog):
    with pytest.raises(ParameterError, match="misses the PET field of view"):
        check_correction("attenuation_factors", np.ones((10, 4, 4), np.float32), "ct/")
    partial = np.ones((10, 4, 4), np.float32)
    partial[:2] = 0.4
    with caplog.at_level(logging.WARNING, logger="petrecon"):
        check_correction("attenuation_factors", partial, "ct/")
    assert "only 2 of 10 sinogram planes" in caplog.text


def test_an_all_zero_or_nan_result_is_refused():
    from petrecon.checks import check_result

    with pytest.raises(ParameterError, match="zero everywhere"):
        check_result(np.zeros(4), "study.h5")
    with pytest.raises(ParameterError, match="NaN"):
        check_result(np.array([1.0, np.inf]), "study.h5")


# --- silent wrong results: times, weight, DICOM series --------------------------------------------------------

def test_dicom_fields_refuse_an_injection_after_the_scan_and_a_bad_weight():
    from petrecon.io.study_input import pet_series_fields

    attributes = {"injected_activity_bq": 2e8, "isotope": "F18"}
    with pytest.raises(ParameterError, match="after the scan"):
        pet_series_fields(attributes, injection_datetime="2024-01-01T15:00", scan_datetime="2024-01-01T14:00")
    with pytest.raises(ParameterError, match="weight"):
        pet_series_fields({**attributes, "patient_weight_kg": 0.0}, injection_datetime="2024-01-01T13:00",
                          scan_datetime="2024-01-01T14:00")
    with pytest.raises(ParameterError, match="UTC offset"):
        pet_series_fields(attributes, injection_datetime="2024-01-01T13:00+05:00", scan_datetime="2024-01-01T14:00")
    with pytest.raises(ParameterError, match="half-lives"):
        check_uptake(SCAN - dt.timedelta(days=1), SCAN, 6586.2, "study")


def test_a_utc_offset_is_written_not_dropped(tmp_path):
    import pydicom

    zone = dt.timezone(dt.timedelta(hours=5))
    grid = ImageGrid.centred((4, 4, 2), (4.0, 4.0, 4.0))
    write_pet_series(Volume(np.ones(grid.shape, np.float32), grid, {"units": "Bq/ml"}), tmp_path / "pet",
                     **{**SERIES_INFO, "series_datetime": SCAN.replace(tzinfo=zone),
                        "injection_datetime": (SCAN - dt.timedelta(hours=6)).replace(tzinfo=dt.timezone.utc)})
    ds = pydicom.dcmread(sorted((tmp_path / "pet").iterdir())[0])
    assert ds.TimezoneOffsetFromUTC == "+0500"
    # 08:01 UTC is 13:01 at +05:00, one hour before the scan at 14:01 +05:00
    assert ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime.startswith("130100")
    # 14:01 +05:00 is 09:01 UTC: an injection at 14:01 UTC is after the scan, refused
    with pytest.raises(ParameterError, match="after the scan"):
        write_pet_series(Volume(np.ones(grid.shape, np.float32), grid, {"units": "Bq/ml"}), tmp_path / "pet2",
                         **{**SERIES_INFO, "series_datetime": SCAN.replace(tzinfo=zone),
                            "injection_datetime": SCAN.replace(tzinfo=dt.timezone.utc)})


@pytest.mark.parametrize("damage, field", [
    ("first slice missing", "NumberOfSlices"),
    ("last slice missing", "NumberOfSlices"),
    ("RescaleSlope 0", "RescaleSlope"),
    ("PatientWeight not a number", "PatientWeight"),
    ("SeriesTime 256199", "SeriesDate/SeriesTime"),
    ("injection time after the scan time, no date", "RadiopharmaceuticalStartTime"),
])
def test_damaged_pet_series_are_refused_naming_the_tag(capsys, pet_series, damage, field):
    files = sorted(pet_series.iterdir())

    def edit(path, ds):
        if damage == "first slice missing" and path == files[0] or damage == "last slice missing" and path == files[-1]:
            path.unlink()
        elif damage == "RescaleSlope 0" and path == files[1]:
            ds.RescaleSlope = "0"
        elif damage == "PatientWeight not a number":
            ds.PatientWeight = "71.5"  # made "abcd" in the bytes below: pydicom fails on reading it
        elif damage == "SeriesTime 256199":
            ds.SeriesTime = "256199"
        elif damage.startswith("injection"):
            drug = ds.RadiopharmaceuticalInformationSequence[0]
            del drug.RadiopharmaceuticalStartDateTime
            drug.RadiopharmaceuticalStartTime = "150100"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _edit_slices(pet_series, edit)
    for path in pet_series.iterdir():
        path.write_bytes(path.read_bytes().replace(b"71.5", b"abcd"))
    line = _refused(capsys, ["suv", str(pet_series), "--roi", "sphere:0,0,0,4"], field)
    assert "warning" not in capsys.readouterr().err


def test_voxels_that_are_not_finite_and_rois_beyond_the_image_are_refused():
    from petrecon.quant.report import roi_records
    from petrecon.quant.tac import time_activity_curves

    grid = ImageGrid.centred((10, 10, 10), (2.0, 2.0, 2.0))
    data = np.ones(grid.shape)
    data[5, 5, 5] = np.nan
    with pytest.raises(ParameterError, match="NaN or infinite"):
        roi_records(Volume(data, grid), ["sphere:0,0,0,4"])
    with pytest.raises(ParameterError, match="NaN or infinite"):
        time_activity_curves([Volume(data, grid)], [0.0], [60.0], {"roi": np.ones(grid.shape, bool)})
    with pytest.raises(ParameterError, match="beyond the image along x"):
        roi_records(Volume(np.ones(grid.shape), grid), ["sphere:8,0,0,5"])
    assert roi_records(Volume(np.ones(grid.shape), grid), ["sphere:4,0,0,5"])[0]["suv_mean"] == 1.0


# --- silent wrong results: list-mode --------------------------------------------------------------------------

@pytest.mark.parametrize("content, extra, expected", [
    (b"", [], "events: none"),
    (np.array([0x80000000 + ms for ms in range(0, 200, 10)], "<u4").tobytes(), ["--frame", "100:200"], "none in"),
    (np.random.default_rng(1).integers(0, 2**30, 4000, dtype=np.uint32).astype("<u4").tobytes()
     + np.array([0x80000005], "<u4").tobytes(), [], "address no bin"),
])
def test_listmode_without_usable_events_is_refused(tmp_path, capsys, content, extra, expected):
    from petrecon.io import petlink

    path = tmp_path / "scan.l"
    if expected == "address no bin":  # addresses far beyond the test scanner's sinogram
        content = petlink.interleave_time_tags(petlink.encode_event_words(
            np.full(200, 2**29, np.int64), np.ones(200, bool)), np.arange(200), 200).astype("<u4").tobytes()
    path.write_bytes(content)
    _refused(capsys, ["histogram", str(path), "--scanner", "test", "--out", str(tmp_path / "s.h5"), "--quiet", *extra],
             str(path), expected)
    assert not (tmp_path / "s.h5").exists()


def test_a_header_of_64_bit_words_is_refused(tmp_path, capsys):
    (tmp_path / "scan.l").write_bytes(bytes(64))
    (tmp_path / "scan.l.hdr").write_text("!INTERFILE:=\n!name of data file:=scan.l\n"
                                         "%LM event and tag words format:=64\n")
    _refused(capsys, ["histogram", str(tmp_path / "scan.l"), "--scanner", "test", "--out", str(tmp_path / "s.h5"),
                      "--quiet"],
             "64")


def test_nema_with_negative_activity_is_refused(capsys):
    with pytest.raises(ParameterError):
        check_parameter("sphere_activity", -5.0)


# --- tracebacks and crashes -----------------------------------------------------------------------------------

def test_batch_without_dask_names_the_extra(tmp_path, capsys, study_parts, monkeypatch):
    study = _study(tmp_path / "study.h5", study_parts)
    (tmp_path / "cohort.toml").write_text(f'protocol = "clinical"\n[[study]]\nid = "P1"\nraw = "{study}"\n'
                                          'weight_kg = 72.0\nsex = "M"\ninjected_dose_mbq = 250.0\n'
                                          'injection_time = 2026-01-05T09:12:00\n')
    monkeypatch.setitem(sys.modules, "distributed", None)
    _refused(capsys, ["batch", str(tmp_path / "cohort.toml"), "--out", str(tmp_path / "out")], "petrecon[dask]")


def test_a_cohort_table_that_is_not_utf8_is_one_line(tmp_path, capsys):
    table = tmp_path / "lesions.csv"
    table.write_bytes("patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\nP1,é,1,liver,FDG,3,2,1\n"
                      .encode("latin-1"))
    _refused(capsys, ["cohort", str(table)], str(table), "UTF-8")


def test_a_dicom_file_given_as_hdf5_and_a_folder_as_file_say_what_they_are(tmp_path, capsys, pet_series):
    _refused(capsys, ["nema", str(sorted(pet_series.iterdir())[0])], "it is a DICOM file")
    _refused(capsys, ["recon", str(tmp_path), "--out", str(tmp_path / "r.h5")], str(tmp_path))


def test_library_warnings_print_as_one_petrecon_line(capsys, monkeypatch):
    from petrecon.cli import basics

    def noisy(args):
        warnings.warn("Invalid value for VR TM: '256199'", UserWarning)

    monkeypatch.setattr(basics, "_cmd_scanners", noisy)
    assert main(["scanners"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["petrecon: warning: Invalid value for VR TM: '256199' (UserWarning, test_robustness)"]


# --- order of checks and all-or-nothing outputs ---------------------------------------------------------------

def test_outputs_are_checked_before_the_input_is_read(tmp_path, capsys):
    (tmp_path / "r.h5").write_bytes(b"earlier")
    _refused(capsys, ["recon", "missing.h5", "--out", str(tmp_path / "r.h5")], "r.h5", "exists")
    _refused(capsys, ["recon", "missing.h5", "--out", str(tmp_path / "new.h5"), "--dicom", str(tmp_path / "no/pet")],
             "does not exist", "no")
    _refused(capsys, ["tac", "missing.h5", "--roi", "sphere:0,0,0,5", "--csv", str(tmp_path / "t.csv"),
                      "--plot", str(tmp_path / "no" / "t.png")], "t.png")
    _refused(capsys, ["norm", "missing.h5", "--out", str(tmp_path / "r.h5")], "exists")
    assert (tmp_path / "r.h5").read_bytes() == b"earlier" and not (tmp_path / "t.csv").exists()


def test_an_invocation_writes_all_of_its_outputs_or_none(tmp_path):
    (tmp_path / "b.txt").write_text("earlier")
    with pytest.raises(PetreconError, match="later step"):
        with all_or_nothing():
            with atomic_output(tmp_path / "a.txt") as temporary:
                temporary.write_text("new")
            with atomic_output(tmp_path / "b.txt", overwrite=True) as temporary:
                temporary.write_text("replaced")
            raise PetreconError("a later step failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]
    assert (tmp_path / "b.txt").read_text() == "earlier"


def test_partial_files_of_a_killed_run_are_removed(tmp_path):
    stale = tmp_path / ".out.h5.999999999.partial"   # no process has this id
    running = tmp_path / f".out.h5.{os.getpid()}0.partial"
    stale.write_bytes(b"x")
    with atomic_output(tmp_path / "out.h5") as temporary:
        temporary.write_bytes(b"done")
    assert not stale.exists() and (tmp_path / "out.h5").read_bytes() == b"done"
    assert not running.exists()


def test_a_non_ascii_data_file_name_reads_back(tmp_path, study_parts):
    from petrecon.io.interfile import read_interfile_sinograms, write_interfile_sinograms

    layout, sinograms, _ = study_parts
    header = write_interfile_sinograms(tmp_path / "Müller_prompts.s.hdr", {"prompts": sinograms["prompts"]}, layout)
    assert np.array_equal(read_interfile_sinograms(header, scanner="test").data["prompts"], sinograms["prompts"])


# --- fuzz targets: every reader gives data or a petrecon error ------------------------------------------------

@FUZZ
@given(position=st.integers(0, 2000), value=st.integers(0, 255), length=st.integers(1, 8))
def test_damaged_dicom_files_give_a_volume_or_a_petrecon_error(tmp_path_factory, position, value, length):
    from petrecon.io.dicom import read_pet_series

    folder = tmp_path_factory.mktemp("dicom")
    grid = ImageGrid.centred((4, 4, 2), (4.0, 4.0, 4.0))
    write_pet_series(Volume(np.ones(grid.shape, np.float32), grid, {"units": "Bq/ml"}), folder / "pet", **SERIES_INFO)
    path = sorted((folder / "pet").iterdir())[0]
    raw = bytearray(path.read_bytes())
    raw[position:position + length] = bytes([value]) * length
    path.write_bytes(bytes(raw[:len(raw)]))
    try:
        read_pet_series(folder / "pet")
    except PetreconError:
        pass


@FUZZ
@given(position=st.integers(0, 6000), value=st.integers(0, 255))
def test_damaged_hdf5_containers_give_a_container_or_a_format_error(tmp_path_factory, study_parts, position, value):
    folder = tmp_path_factory.mktemp("hdf5")
    grid = ImageGrid.centred((4, 4, 4), (4.0, 4.0, 4.0))
    path = folder / "c.h5"
    write_container(path, Container(volumes={"v": Volume(np.ones(grid.shape, np.float32), grid)},
                                    attributes={"isotope": "F18"}))
    raw = bytearray(path.read_bytes())
    raw[position % len(raw)] = value
    path.write_bytes(bytes(raw))
    try:
        read_container(path)
    except FormatError:
        pass


@FUZZ
@given(table=st.binary(max_size=300))
def test_random_cohort_tables_give_lesions_or_a_format_error(tmp_path_factory, table):
    from petrecon.quant.cohort import read_lesions

    path = tmp_path_factory.mktemp("cohort") / "lesions.csv"
    path.write_bytes(b"patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\n" + table)
    try:
        read_lesions(path)
    except FormatError:
        pass


@FUZZ
@given(header=st.text(max_size=200), data=st.binary(max_size=64))
def test_random_listmode_headers_and_words_give_a_histogram_or_a_petrecon_error(tmp_path_factory, header, data):
    from petrecon.io.listmode import histogram_listmode_to_container

    folder = tmp_path_factory.mktemp("lm")
    (folder / "scan.l").write_bytes(data)
    (folder / "scan.l.hdr").write_text("!INTERFILE:=\n" + header, encoding="utf-8")
    try:
        histogram_listmode_to_container(folder / "scan.l", default_layout("test"), folder / "s.h5", progress=False)
    except PetreconError:
        assert not (folder / "s.h5").exists()


def test_demo_refuses_an_unwritable_output_folder_before_any_work(tmp_path):
    from petrecon.demo import run_demo

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PetreconError, match="is a file"):
        run_demo(blocker)
    with pytest.raises(PetreconError, match="cannot write there"):
        run_demo(blocker / "inside")


def test_a_write_that_exceeds_the_file_size_limit_fails_cleanly_and_leaves_nothing(tmp_path):
    """A full disk or ``ulimit -f``: one error line naming the output, exit 2, no crash, no partial file."""
    import resource
    import subprocess

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))   # 1 MB: the container needs more

    result = subprocess.run([sys.executable, "-m", "petrecon", "simulate", "uniform-cylinder", "--scanner",
                             "test", "--duration-s", "5", "--out", str(tmp_path / "x.h5"), "--quiet"],
                            capture_output=True, text=True, preexec_fn=limit_file_size, timeout=600)
    assert result.returncode == 2, result.stderr
    assert "x.h5: could not be written" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
