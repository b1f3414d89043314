"""petrecon.batch and ``petrecon batch``: cohort validation, a 2-process Dask run with a broken study,
equality with a direct reconstruction, the SUV table against ``petrecon suv``, an existing scheduler."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from petrecon.batch import read_cohort, run_batch
from petrecon.batch.outputs import CONTAINER_NAME, DICOM_FOLDER
from petrecon.cli import main
from petrecon.errors import FormatError
from petrecon.io import read_container
from petrecon.recon.study import reconstruct_study

pytest.importorskip("distributed")

PROTOCOL = "[osem]\nn_iterations = 2\nn_subsets = 4\npost_filter_fwhm_mm = 5.0\n"
ROI_CENTRE = "sphere:0,0,0,12"   # inside the 30 mm axial extent of the test grid


def _study_table(study_id: str, raw: str, weight_kg: float = 70.0, extra: str = "") -> str:
    return (f'[[study]]\nid = "{study_id}"\nraw = "{raw}"\nweight_kg = {weight_kg}\nsex = "M"\n'
            f"injected_dose_mbq = 47.142\ninjection_time = 2026-01-05T09:00:00\n{extra}")


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    """Two tiny noisy studies on the ``test`` scanner (a recon takes ~0.2 s once compiled), a truncated
    copy of one, a protocol (2 x 4) and a cohort file that lists all three with relative paths."""
    from petrecon.simulate.acquisition import simulate_to_file

    folder = tmp_path_factory.mktemp("cohort")
    (folder / "raw").mkdir()
    for name, seed in (("s1.h5", 1), ("s2.h5", 2)):
        simulate_to_file(folder / "raw" / name, "uniform-cylinder", scanner="test", duration_s=60.0, seed=seed,
                         progress=False)
    data = (folder / "raw" / "s1.h5").read_bytes()
    (folder / "raw" / "broken.h5").write_bytes(data[: len(data) // 3])
    (folder / "protocol.toml").write_text(PROTOCOL)
    (folder / "cohort.toml").write_text(
        'protocol = "protocol.toml"\n'
        + _study_table("P1", "raw/s1.h5", 70.0, f'rois = ["{ROI_CENTRE}"]\n')
        + _study_table("P2", "raw/s2.h5", 80.0, f'rois = ["{ROI_CENTRE}", "sphere:30,0,0,10"]\n')
        + _study_table("BROKEN", "raw/broken.h5"))
    return folder


@pytest.fixture(scope="module")
def batch_run(cohort_dir, tmp_path_factory):
    """``petrecon batch`` on a LocalCluster of 2 worker processes; returns (exit code, output folder, stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("batch") / "results"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["batch", str(cohort_dir / "cohort.toml"), "--out", str(out), "--workers", "2", "--quiet"])
    return code, out, stdout.getvalue()


def test_cohort_paths_resolve_against_the_cohort_folder(cohort_dir):
    cohort = read_cohort(cohort_dir / "cohort.toml")
    assert [s.id for s in cohort.studies] == ["P1", "P2", "BROKEN"]
    assert cohort.studies[0].raw == (cohort_dir / "raw" / "s1.h5").resolve()
    assert cohort.protocol.osem.n_iterations == 2 and cohort.protocol.osem.n_subsets == 4
    assert cohort.studies[1].patient.injected_dose_bq == pytest.approx(47.142e6)
    assert cohort.studies[0].mu.kind == "study"


@pytest.mark.parametrize("change, study, key", [
    (("weight_kg = 70.0", "weight_kg = 70.0\ncolour = 3"), "P1", "colour"),          # unknown key
    (('sex = "M"\n', ""), "P1", "sex"),                                                # missing key
    (("raw/s2.h5", "raw/nope.h5"), "P2", "raw"),                                     # missing file
    (('id = "P2"', 'id = "P1"'), "P1", "id"),                                         # duplicate id
    (("injection_time = 2026-01-05T09:00:00", "injection_time = 2026-01-05T09:00:00+01:00"), "P1",
     "injection_time"),                                                              # UTC offset
    ((ROI_CENTRE, "sphere:0,0,20"), "P1", "rois"),                                   # ROI of 3 numbers
    (('weight_kg = 70.0', 'weight_kg = 70.0\nct = "raw"\nmumap = "raw/s1.h5"'), "P1", "mumap"),  # two mu-maps
])
def test_a_bad_cohort_is_one_error_naming_file_study_and_key(cohort_dir, tmp_path, change, study, key):
    text = (cohort_dir / "cohort.toml").read_text().replace(*change, 1)
    path = tmp_path / "cohort.toml"
    path.write_text(text.replace('"raw/', f'"{cohort_dir}/raw/').replace('"protocol.toml"',
                                                                         f'"{cohort_dir}/protocol.toml"'))
    with pytest.raises(FormatError) as error:
        read_cohort(path)
    message = str(error.value)
    assert str(path) in message and f"study {study!r}" in message and key in message and "\n" not in message


def test_a_cohort_without_protocol_or_studies_is_refused(tmp_path):
    path = tmp_path / "cohort.toml"
    path.write_text('normalisation = "bw"\n')
    with pytest.raises(FormatError, match="protocol.*missing"):
        read_cohort(path)
    path.write_text('protocol = "clinical"\n')
    with pytest.raises(FormatError, match="lists no studies"):
        read_cohort(path)


def test_the_broken_study_is_reported_and_the_others_finish(batch_run):
    code, out, stdout = batch_run
    assert code == 1  # some studies failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_workers"] == 2
    assert [s["id"] for s in summary["succeeded"]] == ["P1", "P2"]
    assert [f["id"] for f in summary["failed"]] == ["BROKEN"]
    assert "broken.h5" in summary["failed"][0]["error"] and "not a readable HDF5 file" in summary["failed"][0]["error"]
    assert "BROKEN" in stdout and "FAILED" in stdout
    for study_id in ("P1", "P2"):
        assert (out / study_id / CONTAINER_NAME).is_file()
        assert len(list((out / study_id / DICOM_FOLDER).glob("*.dcm"))) == 15  # the test scanner's 15 planes
    assert not (out / "BROKEN").exists()
    rows = list(csv.DictReader((out / "quantification.csv").open()))
    assert sorted((r["study"], r["voi"]) for r in rows) == [("P1", ROI_CENTRE), ("P2", ROI_CENTRE),
                                                           ("P2", "sphere:30,0,0,10")]
    assert {r["units"] for r in rows} == {"SUVbw"}


def test_the_batch_volume_equals_a_direct_reconstruction(batch_run, cohort_dir):
    _, out, _ = batch_run
    cohort = read_cohort(cohort_dir / "cohort.toml")
    direct = reconstruct_study(read_container(cohort_dir / "raw" / "s1.h5"), cohort.protocol, progress=False)
    batch = read_container(out / "P1" / CONTAINER_NAME)
    volume = batch.volumes["activity_bq_per_ml"]
    assert volume.grid == direct.volume.grid
    # float32 sums in the projector's threads: the workers run 1 numba thread, this process 2 -> 1e-5 relative
    np.testing.assert_allclose(volume.data, direct.volume.data, rtol=1e-5, atol=1e-5 * float(direct.volume.data.max()))
    assert batch.provenance["corrected_image"] == list(direct.corrected)
    assert batch.provenance["inputs"][0]["path"].endswith("s1.h5")


def test_the_table_holds_what_petrecon_suv_reads_from_the_written_series(batch_run, capsys):
    _, out, _ = batch_run
    capsys.readouterr()
    assert main(["suv", str(out / "P2" / DICOM_FOLDER), "--roi", ROI_CENTRE, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    row = next(r for r in csv.DictReader((out / "quantification.csv").open())
               if r["study"] == "P2" and r["voi"] == ROI_CENTRE)
    for key in ("suv_max", "suv_mean", "suv_peak", "volume_ml"):
        assert float(row[key]) == pytest.approx(record[key], rel=1e-12)  # same numbers, written as CSV text


@pytest.mark.parametrize("study_id, weight_kg", [("P1", 70.0), ("P2", 80.0)])
def test_suv_is_the_concentration_over_dose_per_body_weight(batch_run, study_id, weight_kg):
    """SUVbw = C / (dose / weight); scan start = injection here, so no decay between them."""
    from petrecon.quant.report import roi_records

    _, out, _ = batch_run
    row = next(r for r in csv.DictReader((out / "quantification.csv").open())
               if r["study"] == study_id and r["voi"] == ROI_CENTRE)
    volume = read_container(out / study_id / CONTAINER_NAME).volumes["activity_bq_per_ml"]
    concentration = roi_records(volume, [ROI_CENTRE])[0]["suv_mean"]  # Bq/ml: the volume is not SUV-scaled
    expected = concentration * weight_kg * 1000.0 / 47.142e6
    assert float(row["suv_mean"]) == pytest.approx(expected, rel=1e-3)  # int16 DICOM pixels: < 1e-4 of the max


def test_earlier_outputs_are_refused_before_any_work(batch_run, cohort_dir, capsys):
    _, out, _ = batch_run
    assert main(["batch", str(cohort_dir / "cohort.toml"), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("petrecon: error: ") and "--overwrite" in error and "\n" not in error


def test_an_existing_scheduler_is_used(cohort_dir, tmp_path):
    from distributed import LocalCluster

    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(cohort_dir / "raw" / "s1.h5", folder / "s1.h5")
    (folder / "cohort.toml").write_text(f'protocol = "{cohort_dir}/protocol.toml"\n' + _study_table("P1", "s1.h5"))
    cohort = read_cohort(folder / "cohort.toml")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        report = run_batch(cohort, folder / "out", scheduler=cluster.scheduler_address, progress=False)
        assert report.scheduler == cluster.scheduler_address
    assert report.ok and [s["id"] for s in report.succeeded] == ["P1"]
    assert (folder / "out" / "quantification.csv").read_text().strip().count("\n") == 0  # header only: no ROIs
    direct = reconstruct_study(read_container(folder / "s1.h5"), cohort.protocol, progress=False)
    volume = read_container(folder / "out" / "P1" / CONTAINER_NAME).volumes["activity_bq_per_ml"]
    np.testing.assert_array_equal(volume.data, direct.volume.data)  # same process, same threads: bit-equal


def test_with_a_cuda_backend_each_local_worker_sees_its_own_gpu(monkeypatch):
    """One worker per GPU, pinned by CUDA_VISIBLE_DEVICES (CuPy stood in for: two devices)."""
    import os
    import types

    from distributed import Client

    from petrecon.batch.run import _local_cluster

    runtime = types.SimpleNamespace(getDeviceCount=lambda: 2)
    monkeypatch.setattr("petrecon.backend.resolve_backend", lambda name=None: "cuda")
    monkeypatch.setattr("petrecon.backend.cupy", lambda: types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)))
    with _local_cluster(None, 5, True) as cluster, Client(cluster) as client:
        devices = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert sorted(devices.values()) == ["0", "1"]


def test_a_mumap_file_replaces_the_study_attenuation(cohort_dir, tmp_path):
    """The worker task, in this process: ``mumap = FILE.h5`` is what ``reconstruct_study(mu=...)`` gets."""
    from petrecon.attenuation.mumap import write_mu_map
    from petrecon.batch.cohort import MuMapSource
    from petrecon.batch.worker import reconstruct_cohort_study

    raw = cohort_dir / "raw" / "s1.h5"
    container = read_container(raw)
    mu = container.volumes["mu_per_cm"]
    mu.data[:] = 0.5 * mu.data  # a different mu-map than the study's factors: the result must change
    write_mu_map(tmp_path / "mu.h5", mu, scanner="test", inputs=[raw])
    study = read_cohort(cohort_dir / "cohort.toml").studies[0]
    study = type(study)(study.id, study.raw, MuMapSource("mumap", (tmp_path / "mu.h5",)), study.patient, study.rois)
    protocol = read_cohort(cohort_dir / "cohort.toml").protocol
    outcome = reconstruct_cohort_study(study, protocol)
    direct = reconstruct_study(container, protocol, mu=read_container(tmp_path / "mu.h5").volumes["mu_per_cm"],
                               progress=False)
    np.testing.assert_array_equal(outcome.volume.data, direct.volume.data)
    own = reconstruct_study(container, protocol, progress=False)
    assert float(outcome.volume.data.max()) < 0.9 * float(own.volume.data.max())  # half the attenuation
    assert [i["path"] for i in outcome.provenance["inputs"]] == [str(study.raw), str(tmp_path / "mu.h5")]


def test_a_failed_study_crosses_process_boundaries_with_its_traceback():
    import pickle

    from petrecon.batch.worker import StudyFailed

    failure = pickle.loads(pickle.dumps(StudyFailed("P7: file.h5: file: does not exist", "Traceback ...")))
    assert str(failure) == "P7: file.h5: file: does not exist" and failure.details == "Traceback ..."


def test_a_listmode_study_is_histogrammed_and_its_missing_corrections_recorded(tmp_path):
    """Raw PETLINK list-mode (prompts and delays only: no normalisation, no mu-map) with scanner and isotope in the cohort: the batch
    reconstructs it like ``open_study`` + ``reconstruct_study`` and records the corrections it could not apply."""
    from distributed import LocalCluster

    from petrecon.io.study_input import open_study, plan_corrections
    from petrecon.simulate.acquisition import simulate_to_file

    study, _ = simulate_to_file(tmp_path / "s.h5", "uniform-cylinder", scanner="test", duration_s=30.0, seed=3,
                                listmode=True, progress=False)
    calibration = 1.0 / study.container.attributes["sensitivity_cps_per_bq_per_ml_mm"]
    (tmp_path / "protocol.toml").write_text(PROTOCOL + f"[calibration]\nbq_per_ml_per_unit = {calibration!r}\n")
    (tmp_path / "cohort.toml").write_text('protocol = "protocol.toml"\n'
                                          + _study_table("LM", "s.l", extra='scanner = "test"\nisotope = "F18"\n'))
    cohort = read_cohort(tmp_path / "cohort.toml")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        report = run_batch(cohort, tmp_path / "out", scheduler=cluster.scheduler_address, progress=False)
    assert report.ok, report.failed
    written = read_container(tmp_path / "out" / "LM" / CONTAINER_NAME)
    assert {"normalisation", "attenuation"} <= set(written.provenance["corrections_not_applied"])
    raw = open_study(tmp_path / "s.l", scanner="test", progress=False)
    raw.attributes["isotope"] = "F18"  # list-mode does not name its isotope: the cohort's
    protocol, _ = plan_corrections(raw, cohort.protocol)
    direct = reconstruct_study(raw, protocol, progress=False)
    np.testing.assert_array_equal(written.volumes["activity_bq_per_ml"].data, direct.volume.data)  # same process
