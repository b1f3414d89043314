"""Normalisation stored and reused: ``petrecon norm`` on a simulated calibration cylinder, file round trip, reuse."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from petrecon.cli import main
from petrecon.errors import FormatError, GeometryError
from petrecon.geometry import SinogramLayout, default_layout, get_scanner
from petrecon.io.container import read_container, write_container
from petrecon.recon.corrections.normalisation_file import (
    normalisation_from_calibration, read_normalisation, write_normalisation,
)
from petrecon.recon.protocol import CorrectionSettings, ReconstructionProtocol
from petrecon.recon.study import reconstruct_study
from petrecon.simulate.acquisition import simulate_study
from petrecon.volume import ImageGrid

# The test scanner with 100 radial bins (field of view radius 118 mm) and a grid over the 20 cm cylinder.
LAYOUT = SinogramLayout(get_scanner("test"), 3, 7, 100, 1)
GRID = ImageGrid.centred((72, 72, 15), (3.0, 3.0, 2.0))


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    """A 1e8-count uniform-cylinder calibration scan (no randoms or scatter) written as a container."""
    study = simulate_study("uniform-cylinder", scanner=LAYOUT, duration_s=1000.0, seed=7, grid=GRID, randoms=False,
                           scatter=False, progress=False).container
    path = tmp_path_factory.mktemp("norm") / "calibration.h5"
    write_container(path, study)
    return path


def test_petrecon_norm_writes_the_components_that_read_back_exactly(calibration_file, capsys):
    out = calibration_file.parent / "norm.h5"
    assert main(["norm", str(calibration_file), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    stored = read_normalisation(out, LAYOUT)
    fitted = normalisation_from_calibration(read_container(calibration_file))
    for name in ("crystal_efficiencies", "radial_profile", "plane_factors"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(fitted, name).astype(np.float32))
    with h5py.File(out) as f:
        assert "calibration.h5" in f.attrs["provenance"] and "sha256" in f.attrs["provenance"]
    assert main(["norm", str(calibration_file), "--out", str(out)]) == 2  # no silent overwrite


def test_stored_normalisation_matches_the_simulated_truth_within_two_percent_rms(calibration_file):
    calibration = read_container(calibration_file)
    truth = calibration.sinograms["normalisation"].astype(np.float64)
    estimate = read_normalisation(_written(calibration_file)).sinogram().astype(np.float64)
    covered = (truth > 0) & (calibration.sinograms["attenuation_factors"] < 1.0)  # LORs through the cylinder
    ratio = (estimate[covered] / estimate[covered].mean()) / (truth[covered] / truth[covered].mean())
    # The requirement's 2 % at 1e8 counts. Here the expected sinogram is the reconstruction projector's
    # projection of the voxelised cylinder (a real calibration's only option), not the simulator's: the radial
    # and plane components absorb most of the difference in resolution model (measured 0.93 % rms, against 0.32 %
    # with the simulator's own expected sinogram in tests/test_corrections_on_simulated_data.py).
    assert np.sqrt(np.mean((ratio - 1) ** 2)) < 0.02


def test_a_study_reuses_the_stored_normalisation_through_its_attribute(calibration_file):
    norm_path = _written(calibration_file)
    study = read_container(calibration_file)
    del study.sinograms["normalisation"]
    study.attributes["normalisation_file"] = str(norm_path)
    protocol = ReconstructionProtocol(image_shape=(24, 24, 5), voxel_size_mm=(9.0, 9.0, 6.0),
                                      corrections=CorrectionSettings(scatter=False, randoms=False))
    protocol = dataclasses.replace(protocol, osem=dataclasses.replace(protocol.osem, n_iterations=1))
    from_file = reconstruct_study(study, protocol, progress=False)
    given = reconstruct_study(study, protocol, progress=False, normalisation=read_normalisation(norm_path))
    assert "NORM" in from_file.corrected
    np.testing.assert_array_equal(from_file.volume.data, given.volume.data)


def test_a_normalisation_of_another_layout_or_a_foreign_file_is_refused(calibration_file, tmp_path):
    norm_path = _written(calibration_file)
    with pytest.raises(GeometryError, match="measured for layout"):
        read_normalisation(norm_path, default_layout("test"))
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(FormatError, match="format"):
        read_normalisation(foreign)
    with pytest.raises(FormatError, match="does not exist"):
        read_normalisation(tmp_path / "missing.h5")
    assert main(["norm", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "n.h5")]) == 2


def _written(calibration_file):
    path = calibration_file.parent / "norm_written.h5"
    if not path.exists():
        calibration = read_container(calibration_file)
        write_normalisation(path, normalisation_from_calibration(calibration), {"test": True})
    return path


def test_recon_norm_takes_a_stored_normalisation(calibration_file, tmp_path):
    """``petrecon recon --norm norm.h5``: the components file replaces the study's normalisation sinogram."""
    from petrecon.io.study_input import open_study

    norm_path = _written(calibration_file)
    study = open_study(calibration_file, normalisation=norm_path, progress=False)
    np.testing.assert_array_equal(study.sinograms["normalisation"], read_normalisation(norm_path).sinogram())
    other = tmp_path / "other.h5"
    write_container(other, simulate_study("uniform-cylinder", scanner="test", duration_s=1.0, seed=1,
                                          grid=ImageGrid.centred((24, 24, 15), (9.0, 9.0, 2.0)), randoms=False,
                                          scatter=False, progress=False).container)
    with pytest.raises(GeometryError, match="measured for layout"):
        open_study(other, normalisation=norm_path, progress=False)
