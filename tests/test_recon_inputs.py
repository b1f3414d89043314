"""`petrecon recon` of every input kind: container, Interfile (.s.hdr, .mhdr), PETLINK list-mode, Siemens
DICOM wrapper, PETSIRD; DICOM output; corrections an input cannot support; bad inputs."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from petrecon.cli import main
from petrecon.errors import FormatError, ParameterError
from petrecon.io import read_container, write_container
from petrecon.io.dicom import read_pet_series
from petrecon.io.interfile import write_interfile_sinograms, write_main_header
from petrecon.io.petlink import ADDRESS_MASK
from petrecon.io.study_input import detect_format, open_study, plan_corrections
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.simulate.acquisition import simulate_study
from petrecon.simulate.listmode import write_listmode
from petrecon.simulate.phantom import phantom_from_dict
from petrecon.volume import ImageGrid

CYLINDER = {"regions": [{"activity": 5000.0, "material": "water", "shapes": [
    {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": 60.0, "length_mm": 200.0}]}]}
# coarse image, one OSEM iteration of 2 subsets: these tests check the plumbing, not convergence
PETSIRD_MS = 200
PROTOCOL_TOML = "[osem]\nn_iterations = 1\nn_subsets = 2\n[image]\nshape = [32, 32, 15]\nvoxel_size_mm = [6.0, 6.0, 2.0]\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One simulated acquisition written as every input kind petrecon reads."""
    folder = tmp_path_factory.mktemp("inputs")
    study = simulate_study(phantom_from_dict(CYLINDER), scanner="test", isotope="F18", duration_s=1.0, seed=3,
                           injected_activity_bq=2e7, listmode=True, grid=ImageGrid.centred((32, 32, 15), (6.0, 6.0, 2.0)),
                           supersampling=1, progress=False)
    container, layout = study.container, study.container.layout
    write_container(folder / "study.h5", container)
    write_listmode(folder / "scan.l", study.listmode_words)
    counts = {"prompts": container.sinograms["prompts"], "delays": container.sinograms["delays"]}
    write_interfile_sinograms(folder / "scan.s.hdr", counts, layout, duration_s=1.0)
    write_interfile_sinograms(folder / "norm.s.hdr", {"normalisation": container.sinograms["normalisation"]}, layout)
    write_main_header(folder / "scan.mhdr", [("sinogram", folder / "scan.s.hdr"), ("norm", folder / "norm.s.hdr")])
    (folder / "protocol.toml").write_text(PROTOCOL_TOML)
    return {"folder": folder, "study": study, "calibration": 1.0 / container.attributes["sensitivity_cps_per_bq_per_ml_mm"]}


def _sibling(name: str):
    """A sibling test module (its writers of Siemens wrappers and PETSIRD scanners), imported by path."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"petrecon_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recon(inputs, source, *extra, out="r.h5", tmp_path):
    folder = inputs["folder"]
    facts = ["--isotope", "F18", "--calibration", repr(inputs["calibration"]), "--mumap", str(folder / "study.h5")]
    code = main(["recon", str(source), "--protocol", str(folder / "protocol.toml"), "--out", str(tmp_path / out),
                 "--no", "scatter", "--quiet", *facts, *extra])
    assert code == 0
    return read_container(tmp_path / out)


def _image(container):
    return container.volumes["activity_bq_per_ml"].data


def test_every_raw_input_gives_the_image_of_the_same_counts(inputs, tmp_path, capsys):
    """Interfile, main header, list-mode and its DICOM wrapper hold the same prompts and delays: same image."""
    _wrap = _sibling("test_io_siemens")._wrap
    folder = inputs["folder"]
    reference = _recon(inputs, folder / "scan.s.hdr", "--norm", str(folder / "norm.s.hdr"), tmp_path=tmp_path)
    assert reference.provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "DECY"]
    assert reference.provenance["input_format"] == "interfile"
    _wrap(folder / "lm.dcm", "!INTERFILE:=\nname of data file:=scan.l\n%LM event and tag words format:=32\n",
          inputs["study"].listmode_words.tobytes())
    export = folder / "export"                             # a Siemens export: list-mode and normalisation wrappers
    export.mkdir()
    _wrap(export / "lm.dcm", "!INTERFILE:=\nname of data file:=scan.l\n", inputs["study"].listmode_words.tobytes())
    norm_header = (folder / "norm.s.hdr").read_text().replace("name of data file := norm.s", "name of data file := norm.n")
    _wrap(export / "norm.dcm", norm_header, (folder / "norm.s").read_bytes())
    for source, extra in ((folder / "scan.mhdr", ()), (folder / "scan.l", ("--scanner", "test", "--norm",
                                                                           str(folder / "study.h5"))),
                          (folder / "lm.dcm", ("--scanner", "test", "--norm", str(folder / "norm.s.hdr"))),
                          (export, ("--scanner", "test"))):
        other = _recon(inputs, source, *extra, out=f"{source.name}.h5", tmp_path=tmp_path)
        # identical sinograms and corrections: identical arithmetic, float32 round-off only
        np.testing.assert_allclose(_image(other), _image(reference), rtol=1e-5, atol=1e-3 * _image(reference).max())
        assert other.provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "DECY"]
    assert "dead_time correction off" in capsys.readouterr().err


def test_petsird_events_reconstruct_like_their_listmode(inputs, tmp_path):
    import petsird
    _test_scanner_in_petsird = _sibling("test_io_petsird")._test_scanner_in_petsird

    from petrecon.io.petsird_io import scanner_from_petsird

    folder = inputs["folder"]
    words = inputs["study"].listmode_words
    is_tag = words >> 29 == 0b100
    time_ms = np.cumsum(is_tag) - 1                        # one tag per ms from 0
    events = ~is_tag
    events &= time_ms < PETSIRD_MS                         # the yardl writer and reader are pure Python: 0.2 s
    address, prompt, when = words[events] & ADDRESS_MASK, (words[events] >> 30) & 1 == 1, time_ms[events]
    layout = inputs["study"].container.layout.listmode_layout()
    sinogram, rest = np.divmod(address.astype(np.int64), layout.n_views * layout.n_radial_bins)
    view, radial = np.divmod(rest, layout.n_radial_bins)
    rings = layout.ring_pairs()[sinogram]
    c1, c2 = layout.view_crystals(np.arange(layout.n_views))
    crystal1, crystal2 = c1[view, 0, radial], c2[view, 0, radial]
    info = _test_scanner_in_petsird()
    _, centres, ring_of, crystal_of, _ = scanner_from_petsird(info)
    element = np.empty((8, 112), np.int64)
    element[ring_of, crystal_of] = np.arange(ring_of.size)
    # the registry numbers its crystals as the scanner does: match each to the PETSIRD crystal at its angle
    registry_angle = layout.scanner.crystal_angles_rad()
    petsird_angle = np.arctan2(centres[element[0], 1], centres[element[0], 0])
    petsird_crystal = np.argmin(np.abs(np.angle(np.exp(1j * (registry_angle[:, None] - petsird_angle[None, :])))),
                                axis=1)
    pairs = np.c_[element[rings[:, 0], petsird_crystal[crystal1]], element[rings[:, 1], petsird_crystal[crystal2]]]
    with petsird.BinaryPETSIRDWriter(str(folder / "scan.petsird")) as writer:
        writer.write_header(petsird.Header(scanner=info))
        blocks = []
        for ms in range(PETSIRD_MS):
            chosen = when == ms
            # events[type_of_module_1][type_of_module_2] -> list of coincidences (one module type here)
            lists = [[[[petsird.CoincidenceEvent(detection_bins=[int(a), int(b)], tof_idx=0)
                        for a, b in pairs[chosen & flag]]]] for flag in (prompt, ~prompt)]
            blocks.append(petsird.TimeBlock.EventTimeBlock(petsird.EventTimeBlock(
                time_interval=petsird.TimeInterval(start=ms, stop=ms + 1), prompt_events=lists[0],
                delayed_events=lists[1])))
        writer.write_time_blocks(blocks)
    assert detect_format(folder / "scan.petsird") == "petsird"
    # the registry's "test" scanner is recognised from the PETSIRD geometry; the events are the list-mode's
    from_petsird = open_study(folder / "scan.petsird", progress=False)
    from_listmode = open_study(folder / "scan.l", scanner="test", frame=(0.0, PETSIRD_MS / 1000), progress=False)
    assert from_petsird.layout == from_listmode.layout and from_petsird.attributes["n_prompts"] > 1000
    for name in ("prompts", "delays"):
        np.testing.assert_array_equal(from_petsird.sinograms[name], from_listmode.sinograms[name])
    result = _recon(inputs, folder / "scan.petsird", "--norm", str(folder / "study.h5"), out="p.h5",
                    tmp_path=tmp_path)
    assert result.provenance["input_format"] == "petsird"
    assert result.provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "DECY"]


def test_dicom_output_lists_the_corrections_applied(inputs, tmp_path):
    folder = inputs["folder"]
    code = main(["recon", str(folder / "study.h5"), "--protocol", str(folder / "protocol.toml"), "--dicom",
                 str(tmp_path / "pet"), "--weight-kg", "70", "--quiet"])
    assert code == 0
    volume = read_pet_series(tmp_path / "pet")
    fields = volume.metadata["suv_inputs"]
    assert fields["corrected_image"] == ["NORM", "ATTN", "RAN", "SCAT", "DECY"]
    assert fields["decay_correction"] == "START" and fields["patient_weight_kg"] == 70.0
    assert fields["radionuclide_total_dose_bq"] == pytest.approx(2e7, rel=1e-5)   # the study's injected activity
    assert fields["actual_frame_duration_ms"] == 1000.0
    first = pydicom.dcmread(sorted((tmp_path / "pet").iterdir())[0])
    assert '"n_iterations": 1' in first[0x0071, 0x1000].value     # the protocol in the provenance element
    code = main(["recon", str(folder / "study.h5"), "--protocol", str(folder / "protocol.toml"), "--dicom",
                 str(tmp_path / "pet_noscat"), "--no", "scatter", "--quiet"])
    assert code == 0
    assert read_pet_series(tmp_path / "pet_noscat").metadata["suv_inputs"]["corrected_image"] == [
        "NORM", "ATTN", "RAN", "DECY"]


def test_missing_corrections_are_switched_off_and_said():
    from petrecon.io import Container

    protocol, off = plan_corrections(Container(sinograms={"prompts": np.zeros(1)}, attributes={"isotope": "F18"}),
                                     ReconstructionProtocol())
    assert set(off) == {"normalisation", "attenuation", "randoms", "scatter", "dead_time"}
    assert "normalisation sinogram" in off["normalisation"] and not protocol.corrections.normalisation
    assert protocol.corrections.decay


def test_raw_listmode_without_norm_is_reconstructed_with_the_omission_recorded(inputs, tmp_path, capsys):
    folder = inputs["folder"]
    result = _recon(inputs, folder / "scan.l", "--scanner", "test", tmp_path=tmp_path)
    assert result.provenance["corrected_image"] == ["ATTN", "RAN", "DECY"]
    assert "normalisation" in result.provenance["corrections_not_applied"]
    assert "normalisation correction off: the input lacks a normalisation sinogram" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("unknown", "is not a petrecon container"), ("no-scanner", "does not name its scanner"),
    ("frames-on-sinograms", "list-mode"), ("truncated", "scan.s"), ("no-dose", "--injected-mbq"),
    ("not-a-mumap", "mu_per_cm")])
def test_bad_inputs_are_one_line_errors(inputs, tmp_path, capsys, case, message):
    folder = inputs["folder"]
    args = {"unknown": [str(_write(tmp_path / "data.xyz", b"\x00" * 64)), "--out", str(tmp_path / "r.h5")],
            "no-scanner": [str(folder / "scan.l"), "--out", str(tmp_path / "r.h5")],
            "frames-on-sinograms": [str(folder / "scan.s.hdr"), "--frames", "2x1s", "--out", str(tmp_path / "r.h5")],
            "truncated": [str(_truncated(folder, tmp_path)), "--out", str(tmp_path / "r.h5")],
            "no-dose": [str(folder / "scan.s.hdr"), "--dicom", str(tmp_path / "pet"), "--no", "attenuation"],
            "not-a-mumap": [str(folder / "scan.s.hdr"), "--mumap", str(_mumap_less(tmp_path)), "--out",
                            str(tmp_path / "r.h5")]}[case]
    assert main(["recon", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("petrecon: error: ") and message in err[-1]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _mumap_less(tmp_path):
    from petrecon.io import Container

    return write_container(tmp_path / "empty.h5", Container())


def _truncated(folder, tmp_path):
    header = (folder / "scan.s.hdr").read_text()
    (tmp_path / "scan.s").write_bytes((folder / "scan.s").read_bytes()[:1000])
    return _write(tmp_path / "scan.s.hdr", header.encode())


def test_open_study_refuses_what_it_cannot_read(inputs, tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        open_study(tmp_path / "nothing.h5")
    with pytest.raises(ParameterError, match="list-mode"):
        open_study(inputs["folder"] / "study.h5", frame=(0.0, 1.0))
    halves = [open_study(inputs["folder"] / "scan.l", scanner="test", frame=frame, progress=False)
              for frame in ((0.0, 0.5), (0.5, None))]
    counts = [half.attributes["n_prompts"] for half in halves]
    assert min(counts) > 0 and sum(counts) == int(inputs["study"].container.sinograms["prompts"].sum())
    assert halves[0].attributes["duration_s"] == 0.5 and halves[0].attributes["input_format"] == "listmode"


def test_siemens_component_norm_given_or_found_in_an_export_calibrates_the_image_itself(inputs, tmp_path, capsys):
    """The simulator's normalisation written as the scanner's component file: an export of list-mode and that
    file reconstructs, with no --calibration, the image of the sinograms with the simulator's own normalisation
    and calibration; a broken component file is a one-line error naming the file and the key."""
    from petrecon.simulate.siemens_export import write_simulated_component_norm

    _wrap = _sibling("test_io_siemens")._wrap
    folder = inputs["folder"]
    reference = _recon(inputs, folder / "scan.s.hdr", "--norm", str(folder / "norm.s.hdr"), tmp_path=tmp_path)
    header = write_simulated_component_norm(inputs["study"].container, tmp_path / "scan.n.hdr")
    export = tmp_path / "export"  # list-mode and the component norm, as DICOM wrappers with .bf payloads
    export.mkdir()
    _wrap(export / "lm.dcm", "!INTERFILE:=\nname of data file:=scan.l\n", inputs["study"].listmode_words.tobytes())
    _wrap(export / "norm.dcm", header.read_text(), (tmp_path / "scan.n").read_bytes())
    for source, extra in ((export, []), (folder / "scan.l", ["--norm", str(header)])):
        code = main(["recon", str(source), "--scanner", "test", "--protocol", str(folder / "protocol.toml"),
                     "--isotope", "F18", "--mumap", str(folder / "study.h5"), "--no", "scatter", "--quiet",
                     "--out", str(tmp_path / "export.h5"), "--overwrite", *extra])
        assert code == 0
        result = read_container(tmp_path / "export.h5")
        assert result.provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "DECY"]
        assert any(item["path"].endswith(("norm.dcm", "scan.n.hdr")) for item in result.provenance["inputs"])
        # same counts, same efficiencies (float32 sums in another order) and the same calibration factor
        np.testing.assert_allclose(_image(result), _image(reference), rtol=0, atol=1e-4 * _image(reference).max())
    text = header.read_text()
    header.write_text(text.replace("%matrix size [3] := {112,8}", "%matrix size [3] := {112,9}"))
    assert main(["recon", str(folder / "scan.l"), "--scanner", "test", "--norm", str(header),
                 "--out", str(tmp_path / "refused.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "scan.n.hdr" in err and "matrix size[3]" in err
