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
