"""``benchmarks/gpu/run.sh --dry-run``: the GPU run's command works on the CPU before a GPU is spent on it.

The dry run goes through every stage of ``benchmarks/gpu/run_device.py`` (each in its own process) on the CPU
backend at tiny sizes and writes the JSON the GPU run writes, with the same keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "benchmarks" / "gpu" / "run_device.py"
FIGURES = ("forward_adjoint_s", "osem_4x8_s", "histogram_events_per_s", "demo_full_s", "tof_forward_adjoint_s")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-dry-run")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    completed = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)], cwd=REPOSITORY,
                               env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    return out, completed.stdout


def _report(dry_run) -> dict:
    (path,) = dry_run[0].glob("gpu-*.json")
    return json.loads(path.read_text())


def test_every_stage_runs_and_the_json_holds_the_figures(dry_run):
    report = _report(dry_run)
    assert report["dry_run"] is True and report["backend"] == "cpu" and report["cupy_version"] is None
    assert {name: stage["status"] for name, stage in report["stages"].items()} == dict.fromkeys(
        ["environment", "gpu_tests", "hardware", "projection", "osem", "histogram", "tof", "demo"], "ok")
    assert isinstance(report["device"], str) and report["device"].startswith("host CPU")
    for key in FIGURES:
        assert isinstance(report[key], float) and report[key] > 0, key
    assert report["hardware"]["bandwidth_bytes_per_s"] > 0 and report["hardware"]["flops_per_s"] > 0


def test_gpu_tests_are_skipped_on_the_cpu_and_counted_as_none_passed(dry_run):
    report = _report(dry_run)
    assert report["gpu_tests_passed"] == 0 and report["gpu_tests_failed"] == 0
    assert report["gpu_tests_skipped"] > 0  # the modules with the marker were collected, their tests skipped
    assert (dry_run[0] / "gpu-tests.xml").is_file()


def test_each_figure_has_a_floor_and_no_goal_is_judged_on_the_tiny_sizes(dry_run):
    report = _report(dry_run)
    for stage in ("projection", "osem", "histogram", "tof"):
        figure = report["stages"][stage]["result"]
        assert figure["floor_s"] > 0 and figure["ratio"] == pytest.approx(figure["seconds"] / figure["floor_s"])
    assert set(report["goals"]) == {"forward_adjoint_s", "osem_4x8_s", "histogram_events_per_s"}
    for key, goal in report["goals"].items():
        assert goal["measured"] == report[key] and goal["met"] is None
    assert "goal forward_adjoint_s <= 0.1" in dry_run[1]  # the closing table


def test_a_stage_over_the_budget_is_recorded_as_skipped_and_the_json_still_written(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from run_device import run
    finally:
        sys.path.remove(str(SCRIPT.parent))
    report = run(tmp_path, dry_run=True, budget_s=0.0)
    assert {stage["status"] for stage in report["stages"].values()} == {"skipped"}
    assert report["forward_adjoint_s"] is None and report["goals"]["osem_4x8_s"]["met"] is None
    assert len(list(tmp_path.glob("gpu-*.json"))) == 1
