"""Reconstruction protocols: TOML round trips, the shipped clinical protocol, clear errors."""

from __future__ import annotations

import pytest

from petrecon.errors import FormatError, PetreconError
from petrecon.recon import OsemProtocol
from petrecon.recon.protocol import CorrectionSettings, ReconstructionProtocol, shipped_protocols


def test_shipped_clinical_protocol_is_the_study_protocol():
    protocol = ReconstructionProtocol.load("clinical")
    assert protocol.osem == OsemProtocol(4, 8, 5.0)  # reference/clinical-protocol.md
    assert protocol.corrections == CorrectionSettings()
    assert protocol.psf_fwhm_mm == 0.0
    assert protocol.whole_body == "stitched"
    assert "clinical" in shipped_protocols()


def test_every_parameter_survives_a_file_round_trip(tmp_path):
    protocol = ReconstructionProtocol(
        name="earl2-mmr", description='harmonised "EARL2"', scanner="mmr", osem=OsemProtocol(3, 21, 6.5),
        psf_fwhm_mm=4.0, corrections=CorrectionSettings(scatter=False, scatter_rounds=3),
        image_shape=(172, 172, 127), voxel_size_mm=(4.17252, 4.17252, 2.03125), calibration_bq_per_ml_per_unit=1.7,
        whole_body="joint")
    path = protocol.save(tmp_path / "p.toml")
    assert ReconstructionProtocol.load(path) == protocol
    with pytest.raises(PetreconError, match="exists"):
        protocol.save(path)


@pytest.mark.parametrize("text, field", [
    ("[osem]\nn_iteration = 4\n", "[osem] n_iteration"),
    ("[filter]\nfwhm = 5\n", "filter"),
    ("[osem]\nn_subsets = 0\n", "value"),
    ("[corrections]\nscatter_rounds = 50\n", "value"),
    ("[image]\nshape = [1, 2, 3]\n", "value"),
    ("[whole_body]\nmethod = \"mean\"\n", "value"),
    ("[whole_body]\njoint = true\n", "[whole_body] joint"),
    ("name = \n", "TOML"),
])
def test_bad_protocol_files_name_the_file_and_the_field(text, field):
    with pytest.raises(FormatError) as error:
        ReconstructionProtocol.from_toml(text, "site.toml")
    assert error.value.path == "site.toml" and field in error.value.field


def test_missing_protocol_lists_the_shipped_ones(tmp_path):
    with pytest.raises(FormatError, match="clinical"):
        ReconstructionProtocol.load(tmp_path / "nope.toml")
