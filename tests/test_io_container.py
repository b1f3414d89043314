"""HDF5 container: exact round trips, atomic writes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import FormatError, PetreconError
from petrecon.geometry import default_layout
from petrecon.io import Container, read_container, write_container
from petrecon.volume import ImageGrid, Volume


def _container() -> Container:
    rng = np.random.default_rng(1)
    layout = default_layout("test")
    grid = ImageGrid((5, 6, 7), (2.0, 2.5, 3.0), (-4.0, 1.0, 2.5))
    return Container(
        sinograms={"prompts": rng.poisson(3.0, layout.shape).astype(np.int16),
                   "randoms": rng.random(layout.shape, dtype=np.float32)},
        volumes={"mu_per_cm": Volume(rng.random(grid.shape), grid, {"units": "cm^-1"})},
        layout=layout, attributes={"isotope": "Ga68", "duration_s": 180.0},
        provenance={"software": "petrecon test"})


def test_container_round_trip_is_exact(tmp_path):
    original = _container()
    back = read_container(write_container(tmp_path / "s.h5", original))
    assert back.layout == original.layout
    for name, data in original.sinograms.items():
        assert back.sinograms[name].dtype == data.dtype
        np.testing.assert_array_equal(back.sinograms[name], data)
    volume = back.volumes["mu_per_cm"]
    assert volume.grid == original.volumes["mu_per_cm"].grid
    np.testing.assert_array_equal(volume.data, original.volumes["mu_per_cm"].data)
    assert volume.metadata == {"units": "cm^-1"}
    assert (back.attributes, back.provenance) == (original.attributes, original.provenance)


def test_container_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path):
    path = write_container(tmp_path / "s.h5", _container())
    with pytest.raises(PetreconError, match="exists"):
        write_container(path, _container())
    bad = _container()
    bad.sinograms["prompts"] = bad.sinograms["prompts"][:-1]
    with pytest.raises(FormatError, match="/sinograms/prompts"):
        write_container(tmp_path / "t.h5", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_reading_something_else_names_the_file(tmp_path):
    path = tmp_path / "not.h5"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError, match="not.h5"):
        read_container(path)
    with pytest.raises(FormatError, match="does not exist"):
        read_container(tmp_path / "missing.h5")


def test_provenance_records_hashes_versions_and_protocol(tmp_path):
    import hashlib

    from petrecon import __version__
    from petrecon.io.container import make_provenance
    from petrecon.recon import OsemProtocol

    listmode = tmp_path / "scan.l"
    listmode.write_bytes(b"\x01\x02\x03\x04" * 100)
    record = make_provenance(protocol=OsemProtocol(), scanner="mmr", input_files=[listmode], command="test")
    assert record["inputs"] == [{"path": str(listmode), "sha256": hashlib.sha256(listmode.read_bytes()).hexdigest(),
                                 "size_bytes": 400}]
    assert record["software_version"] == __version__ and record["protocol"]["n_subsets"] == 8
    container = _container()
    container.provenance = record
    assert read_container(write_container(tmp_path / "p.h5", container)).provenance == record
    with pytest.raises(FormatError, match="missing.l"):
        make_provenance(input_files=[tmp_path / "missing.l"])


def test_damaged_volume_attributes_are_named(tmp_path):
    import h5py

    path = write_container(tmp_path / "s.h5", _container())
    with h5py.File(path, "r+") as f:
        f["volumes/mu_per_cm"].attrs["affine"] = np.eye(4)
    with pytest.raises(FormatError, match="/volumes/mu_per_cm/affine"):
        read_container(path)
    with h5py.File(path, "r+") as f:
        del f["volumes/mu_per_cm"].attrs["origin_mm"]
    with pytest.raises(FormatError, match="origin_mm"):
        read_container(path)


def test_nifti_export_puts_voxels_at_their_ras_positions(tmp_path):
    import nibabel

    from petrecon.io.container import write_nifti

    volume = _container().volumes["mu_per_cm"]
    path = write_nifti(tmp_path / "mu.nii.gz", volume)
    image = nibabel.load(path)
    np.testing.assert_array_equal(np.asarray(image.dataobj), volume.data.astype(np.float32))
    # voxel (1, 2, 3) is at gantry (x, y, z); HFS at bed 0: LPS = (x, y, -z), so RAS = (-x, -y, -z)
    x, y, z = np.array(volume.grid.origin_mm) + np.array(volume.grid.voxel_size_mm) * [1, 2, 3]
    np.testing.assert_allclose(image.affine @ [1, 2, 3, 1], [-x, -y, -z, 1])
    # a bed position of 100 mm moves S (RAS z) by +100 mm
    shifted = nibabel.load(write_nifti(tmp_path / "bed.nii.gz", volume, bed_position_mm=100.0))
    np.testing.assert_allclose(shifted.affine @ [1, 2, 3, 1], [-x, -y, 100.0 - z, 1])
    with pytest.raises(PetreconError, match="exists"):
        write_nifti(path, volume)
