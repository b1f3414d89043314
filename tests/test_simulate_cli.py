"""`petrecon simulate` and `petrecon phantoms`: outputs, container names, list-mode file, errors."""

import numpy as np

from petrecon.cli import main
from petrecon.io.container import read_container


def test_phantoms_lists_the_shipped_phantoms(capsys):
    assert main(["phantoms"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert listed == {"nema-iec", "uniform-cylinder", "pentixafor-torso"}


def test_simulate_writes_a_container_and_listmode_next_to_it(tmp_path, capsys):
    out = tmp_path / "study.h5"
    argv = ["simulate", "nema-iec", "--scanner", "test", "--ratio", "10", "--activity-mbq", "2",
            "--duration-s", "5", "--seed", "3", "--listmode", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    container = read_container(out)
    assert {"prompts", "delays", "normalisation", "attenuation_factors", "randoms", "scatter",
            "trues_expected"} <= set(container.sinograms)
    assert {"activity_bq_per_ml", "mu_per_cm", "ct_hu", "dixon_water", "dixon_fat"} <= set(container.volumes)
    attributes = container.attributes
    assert attributes["phantom"] == "nema-iec" and attributes["phantom_parameters"]["ratio"] == 10.0
    assert attributes["injected_activity_bq"] == 2e6 and attributes["listmode_file"] == "study.l"
    words = np.fromfile(tmp_path / "study.l", dtype="<u4")
    events = words[(words >> 31) == 0]
    assert events.size == container.sinograms["prompts"].sum() + container.sinograms["delays"].sum()
    assert main(argv) == 2  # refuses to overwrite
    assert "overwrite" in capsys.readouterr().err


def test_simulate_errors_are_one_line(tmp_path, capsys):
    assert main(["simulate", "nema-iec", "--scanner", "test", "--ratio", "6", "--out", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("petrecon: error:") and "ratio" in err and len(err.strip().splitlines()) == 1
    assert main(["simulate", "uniform-cylinder", "--scanner", "test", "--ratio", "4", "--out", str(tmp_path / "b.h5")]) == 2
    assert "no parameter 'ratio'" in capsys.readouterr().err
