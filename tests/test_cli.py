"""The `petrecon` command: registry listing, geometry JSON, one-line errors, the demo."""

import json

import h5py
import numpy as np
import pytest

from petrecon.cli import main
from petrecon.demo import run_demo
from petrecon.errors import ParameterError
from petrecon.recon import OsemProtocol


def test_info_json_gives_the_reference_mmr_sinogram_shapes(capsys):
    assert main(["info", "mmr", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [837, 252, 344]
    assert main(["info", "mmr", "--span", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [4084, 252, 344]


def test_scanners_lists_every_registry_entry(capsys):
    assert main(["scanners"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == {"mmr", "mct", "mct-tof", "b64", "b64-truev", "test"}


def test_errors_are_one_line_with_exit_code_2(capsys):
    assert main(["info", "nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("petrecon: error:") and "mmr" in err and len(err.strip().splitlines()) == 1


def test_demo_recovers_the_background_and_refuses_to_overwrite(tmp_path):
    report = run_demo(tmp_path, protocol=OsemProtocol(), total_counts=2e7, progress=False)
    # 2e7 counts, ~300 voxels in the background region after a 5 mm filter: noise ~1 %;
    # 4 x 8 OSEM is not converged in a uniform region (~3 % low at this count level,
    # 0.2 % after 12 iterations): 6 % covers both.
    assert report.background_ratio == pytest.approx(1.0, abs=0.06)
    # Spheres of 17-37 mm at 4:1 with a 5 mm filter keep most of their contrast.
    assert all(0.75 < ratio < 1.25 for ratio in report.sphere_ratios), report.sphere_ratios
    with h5py.File(tmp_path / "demo.h5") as f:
        assert f["volume"].shape == tuple(f["truth"].shape)
        assert np.allclose(f["volume"].attrs["affine"][:3, :3], np.diag([3.0, 3.0, 2.0]))
        assert f.attrs["n_subsets"] == 8
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    with pytest.raises(ParameterError, match="overwrite"):
        run_demo(tmp_path, total_counts=1e4, progress=False)
