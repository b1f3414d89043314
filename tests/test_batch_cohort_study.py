"""``petrecon batch`` for a PET/CT + PET/MR cohort: per-study protocols and harmonisation, organ/lesion/ROI
rows with T/B and status, DICOM tags, the per-patient reports; whole-body studies; the new cohort keys.

One small cohort on the ``test`` scanner (a reconstruction takes well under a second once compiled): study
``CT1`` with a CT series, protocol A and an image harmonisation; study ``MR1`` with protocol B and an ROI
outside its field of view; ``BAD``, a truncated file.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from petrecon.batch import read_cohort, run_batch
from petrecon.batch.cohort import TABLE_COLUMNS
from petrecon.batch.outputs import DICOM_FOLDER
from petrecon.errors import FormatError
from petrecon.io.dicom import read_pet_series

pytest.importorskip("distributed")

CONCENTRATION_BQ_PER_ML = 5000.0
LESION_RATIO = 5.0
LESION_CENTRE = (40.0, 0.0, 0.0)     # patient LPS mm; head-first supine: the gantry's (x, y, -z)
LIVER_CENTRE = (-40.0, 0.0, 0.0)
OUTSIDE_ROI = "sphere:0,0,200,10"    # 200 mm from the centre of a 30 mm axial field of view
DOSE_MBQ = 47.0
WEIGHT_KG = 70.0
CT_STUDY_UID, CT_FRAME_UID = "1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.2"
PHANTOM = f"""name = "lesion-cylinder"
description = "water cylinder with one hot sphere"
activity_unit = "Bq/ml"
isotope = "F18"
frame_start_s = 0.0
duration_s = 300.0

[[regions]]
name = "water"
material = "water"
activity = {CONCENTRATION_BQ_PER_ML}
shapes = [{{ type = "cylinder", centre_mm = [0.0, 0.0, 0.0], radius_mm = 80.0, length_mm = 100.0 }}]

[[regions]]
name = "lesion"
material = "water"
activity = {CONCENTRATION_BQ_PER_ML * LESION_RATIO}
shapes = [{{ type = "sphere", centre_mm = [{LESION_CENTRE[0]}, 0.0, 0.0], radius_mm = 10.0 }}]
"""


def _study(study_id: str, raw: str, extra: str, info: str) -> str:
    vois = (f"[study.vois]\nliver = {list(LIVER_CENTRE)}\n"
            f'lesions = ["hot:sphere:{LESION_CENTRE[0]:g},{LESION_CENTRE[1]:g},{LESION_CENTRE[2]:g},14"]\n')
    return (f'[[study]]\nid = "{study_id}"\nraw = "{raw}"\nweight_kg = {WEIGHT_KG}\nsex = "F"\n'
            f"injected_dose_mbq = {DOSE_MBQ}\ninjection_time = 2026-01-05T09:00:00\n"
            f'tracer = "Ga68-pentixafor"\nreference = "liver"\n{extra}{vois}[study.info]\n{info}')


@pytest.fixture(scope="module")
def cohort_path(tmp_path_factory, request):
    """The phantom simulated twice, a CT of the water cylinder, two protocols, a harmonisation, the cohort."""
    from petrecon.quant.image_harmonisation import ImageHarmonisation
    from petrecon.simulate.acquisition import simulate_to_file

    # the tests' conftest (--import-mode=importlib: not importable by name) writes the CT series
    (_write_dicom_series,) = {plugin._write_dicom_series for plugin in request.config.pluginmanager.get_plugins()
                              if hasattr(plugin, "_write_dicom_series")}

    folder = tmp_path_factory.mktemp("pet-ct-mr")
    (folder / "lesion.toml").write_text(PHANTOM)
    for name, seed in (("ct1.h5", 11), ("mr1.h5", 12)):
        simulate_to_file(folder / name, str(folder / "lesion.toml"), scanner="test", seed=seed, progress=False)
    data = (folder / "ct1.h5").read_bytes()
    (folder / "bad.h5").write_bytes(data[: len(data) // 3])
    centres = (np.arange(100) - 49.5) * 2.0
    disc = np.hypot(centres[None, :], centres[:, None]) <= 80.0
    _write_dicom_series(folder / "ct", "CT", np.repeat(np.where(disc, 1024, 0)[None], 12, axis=0),
                        [(centres[0], centres[0], -22.0 + 4.0 * k) for k in range(12)], (1, 0, 0, 0, 1, 0),
                        (2.0, 2.0), intercept=-1024.0,
                        extra={"KVP": "120", "StudyInstanceUID": CT_STUDY_UID, "FrameOfReferenceUID": CT_FRAME_UID})
    (folder / "a.toml").write_text('name = "ct-clinical"\n[osem]\nn_iterations = 2\nn_subsets = 4\n'
                                   "post_filter_fwhm_mm = 5.0\n")
    (folder / "b.toml").write_text('name = "mr-clinical"\n[osem]\nn_iterations = 3\nn_subsets = 4\n'
                                   "post_filter_fwhm_mm = 5.0\n")
    ImageHarmonisation(name="earl1", fwhm_mm=6.0, scanner="test").save(folder / "earl1.toml")
    (folder / "cohort.toml").write_text(
        'protocol = "a.toml"\nmin_lesion_volume_ml = 0.5\n'
        + _study("CT1", "ct1.h5", 'patient = "P01"\nct = "ct"\nharmonisation = "earl1.toml"\n',
                 'group = "A"\nuptake_min = 60\n')
        + _study("MR1", "mr1.h5", f'patient = "P01"\nprotocol = "b.toml"\nrois = ["{OUTSIDE_ROI}"]\n',
                 'group = "A"\nuptake_min = 75\n')
        + _study("BAD", "bad.h5", 'patient = "P02"\n', 'group = "B"\n'))
    return folder / "cohort.toml"


@pytest.fixture(scope="module")
def batch(cohort_path):
    """The cohort run on an in-process LocalCluster of one worker: ``(report, out folder, table rows, header)``."""
    from distributed import LocalCluster

    out = cohort_path.parent / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        report = run_batch(read_cohort(cohort_path), out, scheduler=cluster.scheduler_address, progress=False)
    with (out / "quantification.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    return report, out, rows, reader.fieldnames


def _row(rows, study: str, protocol: str, voi: str) -> dict:
    (row,) = [r for r in rows if (r["study"], r["protocol"], r["voi"]) == (study, protocol, voi)]
    return row


def test_the_table_has_the_interface_columns_then_the_info_keys(batch):
    *_, header = batch
    assert header == [*TABLE_COLUMNS, "group", "uptake_min"]


def test_each_study_is_reconstructed_with_its_own_protocol_and_harmonised_rows_follow(batch):
    report, out, rows, _ = batch
    assert [s["id"] for s in report.succeeded] == ["CT1", "MR1"] and [f["id"] for f in report.failed] == ["BAD"]
    assert sorted((r["study"], r["protocol"], r["voi"], r["kind"], r["status"]) for r in rows) == sorted([
        ("CT1", "ct-clinical", "liver", "organ", "ok"), ("CT1", "ct-clinical", "hot", "lesion", "ok"),
        ("CT1", "earl1", "liver", "organ", "ok"), ("CT1", "earl1", "hot", "lesion", "ok"),
        ("MR1", "mr-clinical", "liver", "organ", "ok"), ("MR1", "mr-clinical", "hot", "lesion", "ok"),
        ("MR1", "mr-clinical", OUTSIDE_ROI, "roi", "outside"),
        ("BAD", "ct-clinical", "liver", "organ", "failed"), ("BAD", "ct-clinical", "hot", "lesion", "failed")])
    assert {(r["study"], r["patient"], r["scanner"], r["group"]) for r in rows} == {
        ("CT1", "P01", "test", "A"), ("MR1", "P01", "test", "A"), ("BAD", "P02", "", "B")}
    assert read_pet_series(out / "CT1" / "dicom-earl1").metadata  # the harmonised series is written
    # smoothing a hot 20 mm sphere by a further 6 mm FWHM lowers its maximum
    assert float(_row(rows, "CT1", "earl1", "hot")["suv_max"]) < float(_row(rows, "CT1", "ct-clinical", "hot")["suv_max"])


def test_an_roi_outside_the_image_is_an_empty_row_and_the_study_succeeds(batch):
    _, _, rows, _ = batch
    row = _row(rows, "MR1", "mr-clinical", OUTSIDE_ROI)
    assert all(row[key] == "" for key in ("suv_max", "suv_mean", "suv_peak", "volume_ml", "tb_max", "tb_peak"))
    assert row["reference"] == "liver"
    failed = _row(rows, "BAD", "ct-clinical", "hot")
    assert failed["suv_max"] == "" and failed["status"] == "failed"


@pytest.mark.parametrize("study, protocol", [("CT1", "ct-clinical"), ("MR1", "mr-clinical")])
def test_tb_is_the_lesion_max_over_the_liver_mean_of_the_written_voxels(batch, study, protocol):
    """Independent arithmetic on the DICOM voxels: SUVbw = C weight / dose (scan at injection: no decay)."""
    _, out, rows, _ = batch
    pet = read_pet_series(out / study / DICOM_FOLDER)
    suv = np.asarray(pet.data, float) * WEIGHT_KG * 1000.0 / (DOSE_MBQ * 1e6)
    x, y, z = np.meshgrid(*(pet.grid.voxel_centres_mm(a) for a in range(3)), indexing="ij")

    def within(centre, radius_mm):  # patient (x, y, z) -> gantry (x, y, -z), head first supine
        return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z + centre[2]) ** 2 <= radius_mm**2

    liver_mean = float(suv[within(LIVER_CENTRE, 15.0)].mean())   # the liver VOI: a 30 mm sphere
    lesion_max = float(suv[within(LESION_CENTRE, 14.0)].max())   # the 41 % isocontour holds the search maximum
    liver, lesion = _row(rows, study, protocol, "liver"), _row(rows, study, protocol, "hot")
    # same voxels; the SUV image is float32 (relative rounding 6e-8 per voxel): 1e-6
    assert float(liver["suv_mean"]) == pytest.approx(liver_mean, rel=1e-6)
    assert float(lesion["tb_max"]) == pytest.approx(lesion_max / liver_mean, rel=1e-6)
    assert float(lesion["tb_peak"]) == pytest.approx(float(lesion["suv_peak"]) / liver_mean, rel=1e-6)
    # truth 5:1; a 20 mm sphere after a 5 mm filter on 3 mm voxels recovers 60-100 % of it, noise adds < 30 %
    assert 0.6 * LESION_RATIO < float(lesion["tb_max"]) < 1.3 * LESION_RATIO


def test_the_dicom_carries_the_protocol_tracer_and_the_ct_uids(batch, cohort_path):
    import pydicom

    _, out, _, _ = batch
    cohort = read_cohort(cohort_path)
    for study in ("CT1", "MR1"):
        header = pydicom.dcmread(sorted((out / study / DICOM_FOLDER).glob("*.dcm"))[0], stop_before_pixels=True)
        assert header.ReconstructionMethod == cohort.study_protocol(cohort.studies[0 if study == "CT1" else 1]).dicom_method()
        assert header.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == "Ga68-pentixafor"
        assert header.PatientID == "P01"
    ct_fused = pydicom.dcmread(sorted((out / "CT1" / "dicom-earl1").glob("*.dcm"))[0], stop_before_pixels=True)
    assert (ct_fused.StudyInstanceUID, ct_fused.FrameOfReferenceUID) == (CT_STUDY_UID, CT_FRAME_UID)
    mr = pydicom.dcmread(sorted((out / "MR1" / DICOM_FOLDER).glob("*.dcm"))[0], stop_before_pixels=True)
    assert mr.StudyInstanceUID != CT_STUDY_UID  # no CT given: a study of its own


def test_each_study_has_a_report_naming_every_voi_and_the_index_links_them(batch):
    _, out, _, _ = batch
    for study, vois in (("CT1", ["liver", "hot", "earl1"]), ("MR1", ["liver", "hot", OUTSIDE_ROI, "outside"])):
        page = (out / study / "report.html").read_text()
        assert all(name in page for name in vois)
        assert (out / study / "mips.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / study / "fused.png").read_bytes()[:4] == b"\x89PNG"
    index = (out / "index.html").read_text()
    assert 'href="CT1/report.html"' in index and 'href="MR1/report.html"' in index and "BAD" in index


def test_a_whole_body_study_is_reconstructed_as_petrecon_recon_does(cohort_path, tmp_path):
    """Two beds (the simulated study twice, 16 mm apart, one after the other) in a whole-body main file: the
    worker reconstructs and stitches them as :func:`petrecon.recon.wholebody.reconstruct_whole_body` does."""
    from petrecon.batch.cohort import CohortStudy, MuMapSource, PatientData
    from petrecon.batch.worker import reconstruct_cohort_study
    from petrecon.io import read_container
    from petrecon.io.multibed import WholeBodyStudy, read_whole_body, write_whole_body
    from petrecon.recon.protocol import OsemProtocol, ReconstructionProtocol
    from petrecon.recon.wholebody import reconstruct_whole_body

    beds = []
    for offset_mm, start_s in ((0.0, 0.0), (16.0, 300.0)):
        bed = read_container(cohort_path.parent / "mr1.h5")
        bed.attributes.update(bed_offset_mm=offset_mm, frame_start_s=start_s, duration_s=300.0)
        beds.append(bed)
    write_whole_body(tmp_path / "wb.h5", WholeBodyStudy(beds))
    protocol = ReconstructionProtocol(osem=OsemProtocol(1, 4, 5.0))
    study = CohortStudy("WB", tmp_path / "wb.h5", MuMapSource(), PatientData(70.0, "M", 4.7e7, None))
    outcome = reconstruct_cohort_study(study, protocol)
    direct = reconstruct_whole_body(read_whole_body(tmp_path / "wb.h5"), protocol, progress=False)
    assert outcome.volume.grid == direct.volume.grid and outcome.volume.grid.shape[2] > 15  # two beds, stitched
    np.testing.assert_array_equal(outcome.volume.data, direct.volume.data)  # same process, same code path
    assert outcome.attributes["frame_start_s"] == 0.0  # the series' scan start: the first bed's


@pytest.mark.parametrize("change, key", [
    (('liver = [-40.0, 0.0, 0.0]', 'kidney = [0.0, 0.0, 0.0]'), "vois.kidney"),
    (('hot:sphere:40,0,0,14', 'hot:box:0,0,0,1,1,1'), "vois.lesions"),
    (('reference = "liver"', 'reference = "spleen"'), "reference"),
    (('group = "A"', 'status = "A"'), "info"),
    (('harmonisation = "earl1.toml"', 'harmonisation = "nope.toml"'), "harmonisation"),
    (('protocol = "b.toml"', 'protocol = "nope.toml"'), "protocol"),
    (('tracer = "Ga68-pentixafor"', 'tracer = ""'), "tracer"),
    (('tracer = "Ga68-pentixafor"', 'tracer = "Ga68-pentixafor"\ndixon_bone = "atlas"'), "dixon_bone"),
])
def test_a_bad_study_key_is_one_error_naming_file_study_and_key(cohort_path, tmp_path, change, key):
    text = cohort_path.read_text().replace(*change, 1)
    path = cohort_path.parent / f"bad-{key.replace('.', '-')}.toml"
    path.write_text(text)
    with pytest.raises(FormatError) as error:
        read_cohort(path)
    message = str(error.value)
    assert str(path) in message and "study '" in message and key in message and "\n" not in message


def test_a50_needs_a_reference_and_the_isocontour_must_be_known(cohort_path):
    text = cohort_path.read_text()
    path = cohort_path.parent / "a50.toml"
    path.write_text(text.replace('min_lesion_volume_ml', 'isocontour = "a50"\nmin_lesion_volume_ml')
                    .replace('reference = "liver"\n', ""))
    with pytest.raises(FormatError, match="study 'CT1'.*a50.*reference"):
        read_cohort(path)
    path.write_text(text.replace('min_lesion_volume_ml', 'isocontour = "42%"\nmin_lesion_volume_ml'))
    with pytest.raises(FormatError, match="isocontour.*41%"):
        read_cohort(path)


def test_each_protocol_file_is_read_once(cohort_path):
    cohort = read_cohort(cohort_path)
    assert sorted(cohort.protocols) == ["a.toml", "b.toml"]
    assert cohort.study_protocol(cohort.studies[0]) is cohort.study_protocol(cohort.studies[2])
    assert [s.patient_name for s in cohort.studies] == ["P01", "P01", "P02"]
    assert cohort.info_keys() == ["group", "uptake_min"]
    assert [h.name for h in cohort.harmonisations.values()] == ["earl1"]


def test_the_report_s_anatomy_is_the_dixon_water_image_on_the_pet_grid(write_dicom_series, tmp_path):
    """A water disc (900) in a fat-free field: on the PET grid the water image reads 900 inside, 0 outside."""
    from petrecon.batch.cohort import MuMapSource
    from petrecon.batch.worker import load_anatomy
    from petrecon.volume import ImageGrid

    centres = (np.arange(100) - 49.5) * 2.0
    disc = np.hypot(centres[None, :], centres[:, None]) <= 60.0
    positions = [(centres[0], centres[0], -22.0 + 4.0 * k) for k in range(12)]
    write_dicom_series(tmp_path / "water", "MR", np.repeat(np.where(disc, 900, 0)[None], 12, axis=0), positions,
                       (1, 0, 0, 0, 1, 0), (2.0, 2.0))
    write_dicom_series(tmp_path / "fat", "MR", np.repeat(np.where(disc, 20, 0)[None], 12, axis=0), positions,
                       (1, 0, 0, 0, 1, 0), (2.0, 2.0))
    grid = ImageGrid.centred((64, 64, 15), (3.0, 3.0, 2.0))
    anatomy = load_anatomy(MuMapSource("dixon", (tmp_path / "water", tmp_path / "fat")), {}, grid)
    assert anatomy.grid == grid and anatomy.metadata["label"] == "Dixon water"
    assert anatomy.data[32, 32, 7] == pytest.approx(900.0) and anatomy.data[2, 32, 7] == 0.0  # 90 mm out: air
    assert load_anatomy(MuMapSource(), {}, grid) is None  # the study's own attenuation: no anatomical image
