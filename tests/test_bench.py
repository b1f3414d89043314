"""``petrecon bench --quick``: every figure measured, compared with a floor it cannot beat, as a table or JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from petrecon.bench import reduced_geometry, synthetic_stream
from petrecon.cli import main


@pytest.fixture(scope="module")
def quick_json():
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["bench", "--quick", "--backend", "cpu", "--json"]) == 0
    return json.loads(stdout.getvalue())


def test_quick_bench_reports_the_four_figures_on_the_cpu(quick_json):
    assert quick_json["backend"] == "cpu" and quick_json["quick"] is True and quick_json["scanner"] == "mmr"
    whats = [f["what"] for f in quick_json["figures"]]
    assert whats == ["forward + adjoint projection", "AW-OSEM 4 x 8 + 5 mm filter", "list-mode histogramming",
                     "NEMA NU 2 + EARL analysis"]
    hardware = quick_json["hardware"]
    assert hardware["bandwidth_bytes_per_s"] > 1e8 and hardware["flops_per_s"] > 1e8


def test_no_figure_beats_its_floor(quick_json):
    # the floors count compulsory bytes and flops only, at the bandwidth and FLOP/s measured in the same run:
    # a time below its floor would mean a wrong count (or a wrong timing)
    for figure in quick_json["figures"]:
        assert figure["seconds"] > 0 and figure["floor_s"] > 0
        assert figure["ratio"] == pytest.approx(figure["seconds"] / figure["floor_s"])
        assert figure["ratio"] > 1.0, figure


def test_reduced_geometry_is_a_short_copy_of_the_scanner():
    layout, grid = reduced_geometry("mmr")
    assert layout.scanner.n_rings == 6 and layout.scanner.n_crystals_per_ring == 504
    assert grid.shape == (96, 96, 11)


def test_the_synthetic_stream_histograms_every_event():
    from petrecon.geometry import default_layout
    from petrecon.io.listmode import histogram_listmode

    layout = default_layout("test")
    words = synthetic_stream(layout, 28_000)
    result = histogram_listmode(words, layout, progress=False)
    assert result.n_prompts + result.n_delays == 28_000
    assert abs(result.n_prompts / 28_000 - 0.8) < 0.02  # binomial, 80 % prompts: SD 0.24 %, 8 SD margin
    assert int(np.asarray(result.prompts).sum()) == result.n_prompts


def test_the_table_names_time_floor_ratio_and_backend(capsys):
    from petrecon.bench import BenchFigure, BenchReport, Hardware

    figure = BenchFigure("forward + adjoint projection", "1 M LORs", 2.0, 0.5, "compute", "1 M LORs/s", "cpu", 1e6)
    report = BenchReport("mmr", "cpu", True, Hardware("host", 1e10, 1e11), [figure])
    header, row = report.table_lines()[1:]
    assert all(word in header for word in ("time", "floor", "ratio", "backend"))
    assert "2.00 s" in row and "500.00 ms" in row and "4.0x" in row and row.endswith("cpu")
