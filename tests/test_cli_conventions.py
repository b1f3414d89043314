"""Conventions of the ``petrecon`` command: global --quiet / logging / --debug, one-line errors, exit codes,
and runnable examples in every sub-command's --help."""

from __future__ import annotations

import logging
import shlex

import pytest

from petrecon.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, _apply_global_options, build_parser, main

HISTOGRAM = ["histogram", "scan.l", "--scanner", "mmr", "--out", "sino.h5"]
RECON = ["recon", "study.h5", "--out", "recon.h5"]
EXAMPLED = ["histogram", "export", "mumap", "suv", "nema", "cohort", "phantoms", "simulate", "harmonize", "batch",
            "bench"]


def _parsed(argv: list[str]):
    args = build_parser().parse_args(argv)
    _apply_global_options(args)
    return args


@pytest.mark.parametrize("argv, attribute, value", [
    (HISTOGRAM, "progress", True),
    (["--quiet", *HISTOGRAM], "progress", False),         # global --quiet reaches the sub-command's switch
    ([*HISTOGRAM, "--quiet"], "progress", False),         # the sub-command's own --quiet still works
    ([*HISTOGRAM, "--no-progress"], "progress", False),
    (RECON, "quiet", False),
    (["--quiet", *RECON], "quiet", True),                 # not overwritten by the sub-parser's default False
    ([*RECON, "--quiet"], "quiet", True),
    (["--quiet", "suv", "pet/", "--roi", "sphere:0,0,0,5"], "quiet", True),
    (["suv", "pet/", "--roi", "sphere:0,0,0,5", "--debug"], "debug", True),   # global options after the name
    (["--debug", "suv", "pet/", "--roi", "sphere:0,0,0,5"], "debug", True),
    (["suv", "pet/", "--roi", "sphere:0,0,0,5"], "debug", False),
    (["phantoms", "-v"], "verbose", True),                # phantoms keeps its own -v
])
def test_global_options_reach_every_sub_command(argv, attribute, value):
    assert getattr(_parsed(argv), attribute) is value


@pytest.mark.parametrize("argv, level", [
    (["scanners"], logging.WARNING),
    (["-v", "scanners"], logging.INFO),
    (["-vv", "scanners"], logging.DEBUG),
    (["scanners", "--verbose"], logging.INFO),
    (["--quiet", "scanners"], logging.WARNING),        # warnings (a correction switched off) still print
    (["--log-level", "debug", "scanners"], logging.DEBUG),
    (["--quiet", "--log-level", "info", "scanners"], logging.INFO),   # an explicit level wins
])
def test_log_level_of_the_petrecon_logger(argv, level, capsys):
    assert main(argv) == 0
    assert logging.getLogger("petrecon").level == level


def test_log_records_print_as_one_line_on_stderr(capsys):
    _parsed(["--log-level", "info", "scanners"])
    logging.getLogger("petrecon.recon").info("reconstructing %s", "study.h5")
    assert capsys.readouterr().err == "petrecon: info: reconstructing study.h5\n"


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("petrecon: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_a_missing_input_file_is_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "missing.h5"
    assert main(["suv", str(missing), "--roi", "sphere:0,0,0,5"]) == EXIT_BAD_INPUT
    assert str(missing) in _one_line_error(capsys)


def test_a_corrupt_hdf5_file_is_one_line_naming_it(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # an HDF5 signature and nothing behind it
    assert main(["nema", str(corrupt)]) == EXIT_BAD_INPUT
    assert str(corrupt) in _one_line_error(capsys)


def test_a_folder_given_for_a_file_is_one_line_naming_it(tmp_path, capsys):
    assert main(["cohort", str(tmp_path)]) == EXIT_BAD_INPUT
    assert str(tmp_path) in _one_line_error(capsys)


@pytest.mark.parametrize("error", [
    PermissionError(13, "Permission denied", "/data/lesions.csv"),
    IsADirectoryError(21, "Is a directory", "/data/lesions.csv"),
    FileNotFoundError(2, "No such file or directory", "/data/lesions.csv"),
])
def test_operating_system_errors_name_the_file(error, monkeypatch, capsys):
    def fail(path):
        raise error

    monkeypatch.setattr("petrecon.quant.cohort.read_lesions", fail)
    assert main(["cohort", "lesions.csv"]) == EXIT_BAD_INPUT
    line = _one_line_error(capsys)
    assert "/data/lesions.csv" in line and error.strerror in line


def test_an_hdf5_error_without_a_file_name_is_still_one_line(monkeypatch, capsys):
    def fail(path):
        raise OSError("Unable to synchronously open file (truncated file: eof = 96,\n stored_eof = 2169250)")

    monkeypatch.setattr("petrecon.quant.cohort.read_lesions", fail)
    assert main(["cohort", "lesions.csv"]) == EXIT_BAD_INPUT
    assert "truncated file" in _one_line_error(capsys)


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr("petrecon.quant.cohort.read_lesions", interrupt)
    assert main(["cohort", "lesions.csv"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "petrecon: interrupted\n"


def test_debug_shows_the_traceback(tmp_path):
    from petrecon.errors import FormatError

    with pytest.raises(FormatError):
        main(["--debug", "suv", str(tmp_path / "missing.h5"), "--roi", "sphere:0,0,0,5"])


def test_a_bad_argument_is_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--backend", "tpu"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("command", EXAMPLED)
def test_every_sub_command_help_has_examples_that_parse(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    assert "example" in help_text
    examples = [line.strip() for line in help_text.splitlines() if line.strip().startswith(f"petrecon {command}")]
    assert examples, help_text
    parser = build_parser()
    for example in examples:
        parser.parse_args(shlex.split(example.split(">")[0])[1:])  # SystemExit (exit 2) if it does not parse
