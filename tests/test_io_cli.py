"""`petrecon histogram` and `petrecon export`: outputs, summary, one-line errors."""

from __future__ import annotations

import numpy as np

from petrecon.cli import main
from petrecon.geometry import default_layout
from petrecon.io import petlink, read_container


def _listmode_file(path, n_events=3000, duration_ms=50):
    layout = default_layout("test", span=1)
    rng = np.random.default_rng(8)
    address = rng.integers(0, int(np.prod(layout.shape)), n_events)
    prompt = rng.random(n_events) < 0.8
    times = rng.integers(0, duration_ms, n_events)
    petlink.interleave_time_tags(petlink.encode_event_words(address, prompt), times, duration_ms).tofile(path)
    return address, prompt, times


def test_histogram_command_writes_the_container_and_prints_a_summary(tmp_path, capsys):
    address, prompt, times = _listmode_file(tmp_path / "scan.l")
    out = tmp_path / "sino.h5"
    code = main(["histogram", str(tmp_path / "scan.l"), "--scanner", "test", "--span", "1", "--frame", "0:0.02",
                 "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "prompts" in printed and "rate" in printed
    container = read_container(out)
    in_frame = times < 20
    assert int(container.sinograms["prompts"].sum()) == np.count_nonzero(prompt & in_frame)
    assert int(container.sinograms["delays"].sum()) == np.count_nonzero(~prompt & in_frame)
    assert container.layout == default_layout("test", span=1)
    assert container.attributes["duration_s"] == 0.02
    assert len(container.provenance["inputs"][0]["sha256"]) == 64


def test_histogram_command_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "cut.l").write_bytes(b"\x00" * 6)
    code = main(["histogram", str(tmp_path / "cut.l"), "--scanner", "test", "--out", str(tmp_path / "o.h5"),
                 "--quiet"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "cut.l: size" in error
    assert not (tmp_path / "o.h5").exists()
    assert main(["histogram", str(tmp_path / "cut.l"), "--scanner", "nope", "--out", "x.h5"]) == 2
    assert main(["histogram", str(tmp_path / "cut.l"), "--scanner", "test", "--frame", "5", "--out", "x.h5"]) == 2


def test_export_command_lists_an_empty_folder(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 0
    assert "no Siemens raw-data objects" in capsys.readouterr().out
