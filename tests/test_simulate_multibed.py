"""Whole-body simulation: bed offsets, each bed's axial window of the phantom, decay between beds, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.isotopes import get_isotope
from petrecon.simulate.multibed import bed_offsets_mm, simulate_whole_body
from petrecon.simulate.phantom import phantom_from_dict
from petrecon.volume import ImageGrid

GRID = ImageGrid.centred((9, 9, 8), (30.0, 30.0, 4.0))  # 32 mm: the test scanner's axial field of view
FAST = {"scanner": "test", "grid": GRID, "noise": False, "randoms": False, "scatter": False, "resolution": False,
        "efficiency_spread": 0.0, "supersampling": 1, "progress": False}


def test_bed_offsets_step_by_the_field_of_view_less_the_overlap():
    assert bed_offsets_mm(258.0, 4, 20.0, centre_mm=-100.0).tolist() == pytest.approx(
        [-100.0 + 1.5 * 206.4, -100.0 + 0.5 * 206.4, -100.0 - 0.5 * 206.4, -100.0 - 1.5 * 206.4])
    with pytest.raises(ParameterError, match="overlap"):
        bed_offsets_mm(258.0, 2, 100.0)
    with pytest.raises(ParameterError, match="number of beds"):
        bed_offsets_mm(258.0, 0, 20.0)


def test_each_bed_sees_only_its_axial_window_of_the_phantom():
    phantom = phantom_from_dict({"name": "two-spheres", "isotope": "Ga68", "regions": [
        {"name": "top", "activity": 1000.0, "shapes": [{"type": "sphere", "centre_mm": [0.0, 0.0, 16.0],
                                                         "radius_mm": 6.0}]},
        {"name": "bottom", "activity": 3000.0, "shapes": [{"type": "sphere", "centre_mm": [0.0, 0.0, -16.0],
                                                            "radius_mm": 6.0}]}]})
    study = simulate_whole_body(phantom, n_beds=2, overlap_percent=0.0, duration_s=60.0, frame_start_s=600.0,
                                **FAST)
    # head first supine: the head (top, S = +16) is deep in the gantry (z = -16 at bed position 0), scanned first
    assert study.bed_offsets_mm().tolist() == [-16.0, 16.0]
    assert [bed.attributes["bed_position_mm"] for bed in study.beds] == [16.0, -16.0]
    top, bottom = (bed.volumes["activity_bq_per_ml"] for bed in study.beds)
    # each bed's ground truth (its scanner frame) holds its own sphere only, at the scanner centre
    assert top.data.max() > 0 and bottom.data.max() > 0
    assert np.allclose(top.data[:, :, :2], 0) and np.allclose(bottom.data[:, :, -2:], 0)
    ratio = bottom.data.max() / top.data.max()
    decay_60_s = get_isotope("Ga68").decay_factor(60.0)
    assert ratio == pytest.approx(3.0 * decay_60_s, rel=1e-6)  # bed 1 starts 60 s later
    # and the whole-body truth (at bed 0's start, the gantry frame at bed position 0: z = -S) places the
    # spheres at their phantom positions
    whole = study.volumes["activity_bq_per_ml"]
    z = whole.grid.voxel_centres_mm(2)
    profile = whole.data.sum(axis=(0, 1))
    for half in (z < 0, z > 0):
        centroid_mm = np.sum(z[half] * profile[half]) / profile[half].sum()
        assert abs(centroid_mm) == pytest.approx(16.0, abs=1e-6)
    assert profile[np.abs(z + 16.0) < 4].sum() / profile[np.abs(z - 16.0) < 4].sum() == pytest.approx(1 / 3, rel=1e-6)


def test_beds_count_the_activity_decayed_to_their_start():
    """A uniform cylinder longer than all beds, identical crystals: bed b's trues differ only by decay."""
    study = simulate_whole_body("uniform-cylinder", n_beds=3, overlap_percent=25.0, isotope="Ga68",
                                duration_s=180.0, frame_start_s=3720.0, bed_move_s=20.0, **FAST)
    starts = study.frame_starts_s()
    assert starts.tolist() == [3720.0, 3920.0, 4120.0]
    trues = np.array([bed.attributes["counts"]["trues"] for bed in study.beds])
    expected = 2.0 ** (-(starts - starts[0]) / 4069.8)  # 68Ga half-life (petrecon.isotopes)
    assert trues / trues[0] == pytest.approx(expected, rel=1e-5)  # float32 sinogram sums
    assert [bed.attributes["bed_index"] for bed in study.beds] == [0, 1, 2]
    assert all(bed.attributes["frame_start_s"] == s for bed, s in zip(study.beds, starts))


def test_whole_body_simulation_refuses_list_mode_and_its_own_frame_start():
    with pytest.raises(ParameterError, match="no list-mode"):
        simulate_whole_body("uniform-cylinder", n_beds=2, overlap_percent=25.0, listmode=True, **FAST)


def test_simulate_and_recon_commands_handle_whole_body_studies(tmp_path, capsys):
    import pydicom

    from petrecon.cli import main
    from petrecon.io import read_container
    from petrecon.io.multibed import read_whole_body

    out = tmp_path / "wb.h5"
    assert main(["simulate", "uniform-cylinder", "--scanner", "test", "--beds", "2", "--overlap-percent", "25",
                 "--isotope", "Ga68", "--duration-s", "30", "--no-noise", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "bed 1    table" in printed and "wb.bed1.h5" in printed
    study = read_whole_body(out)
    assert study.bed_offsets_mm().tolist() == [-12.0, 12.0]   # head first: the head bed is deepest (-z)
    protocol = tmp_path / "fast.toml"
    protocol.write_text("[osem]\nn_iterations = 1\nn_subsets = 2\n[image]\nshape = [24, 24, 16]\n"
                        "voxel_size_mm = [10.0, 10.0, 2.0]\n")
    recon = tmp_path / "recon.h5"
    assert main(["recon", str(out), "--protocol", str(protocol), "--out", str(recon), "--quiet"]) == 0
    assert "2 beds at -12, 12 mm" in capsys.readouterr().out
    volume = read_container(recon).volumes["activity_bq_per_ml"]
    assert volume.grid.shape == (24, 24, 28)  # 16 planes + 12 planes of bed step
    assert read_container(recon).provenance["bed_offsets_mm"] == [-12.0, 12.0]
    assert main(["recon", str(out), "--protocol", str(protocol), "--out", str(recon), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    dicom = tmp_path / "dicom"
    assert main(["recon", str(out), "--protocol", str(protocol), "--dicom", str(dicom), "--weight-kg", "71.5",
                 "--height-m", "1.65", "--sex", "F", "--tracer", "Pentixafor", "--quiet"]) == 0
    from petrecon.io.dicom import read_pet_series

    series = read_pet_series(dicom)
    header = series.metadata["suv_inputs"]  # whole-body series carry the patient facts the options give
    assert (header["patient_weight_kg"], header["patient_size_m"], header["patient_sex"]) == (71.5, 1.65, "F")
    first = pydicom.dcmread(sorted(dicom.iterdir())[0])
    assert first.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical == "Pentixafor"
    assert first.ReconstructionMethod == "OSEM 1i2s 5mm"
    assert series.grid.shape == (24, 24, 28)  # one series over both beds
    np.testing.assert_allclose(series.data, volume.data, rtol=1e-3, atol=1e-3 * float(volume.data.max()))  # int16 slope
    joint = tmp_path / "joint.h5"
    assert main(["recon", str(out), "--protocol", str(protocol), "--whole-body", "joint", "--out", str(joint),
                 "--quiet"]) == 0
    assert "2 beds at -12, 12 mm, reconstructed jointly" in capsys.readouterr().out
    assert read_container(joint).volumes["activity_bq_per_ml"].grid.shape == (24, 24, 28)
    assert read_container(joint).provenance["protocol"]["whole_body"] == "joint"
