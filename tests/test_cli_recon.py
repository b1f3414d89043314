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
