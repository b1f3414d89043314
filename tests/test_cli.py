"""The `petrecon` command: registry listing, geometry JSON, one-line errors (the demo: tests/test_demo.py)."""

import json

from petrecon.cli import main


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

