"""One prepared command for a GPU machine: versions, ``pytest -m gpu``, the CUDA benchmarks, one JSON file.

Stages, in this order, each in its own Python process under its own time limit
(:data:`STAGE_LIMITS_S`) and all within :data:`BUDGET_S`; a stage that fails or
overruns is recorded as ``failed`` or ``timeout`` and the next one starts, so a
partial result always comes back:

1. ``environment``: GPU, CuPy, CUDA runtime and driver, numpy, numba, Python;
2. ``gpu_tests``: ``pytest -m gpu`` over every test module that carries the
   marker (the CPU-vs-CUDA agreement tests, at the full mMR span-11 and mCT
   TOF sizes among them), JUnit XML in ``gpu-tests.xml``;
3. ``hardware``: memory bandwidth (device-to-device copy) and float32 FLOP/s
   (``kernels/peak.cu``), :func:`petrecon.bench.measure_hardware`: the
   ceilings of every floor below;
4. ``projection``: forward + adjoint of the full mMR span-11 sinogram
   (72.6 M LORs, 344 x 344 x 127 image);
5. ``osem``: AW-OSEM 4 x 8 with normalisation x attenuation, an additive
   term and the 5 mm post-filter on the same geometry;
6. ``histogram``: PETLINK histogramming of 1e9 events (a 60-minute scan)
   into the mMR span-11 sinogram;
7. ``tof``: forward + adjoint of the full mCT TOF sinogram (13 TOF bins);
8. ``demo``: ``petrecon demo --full`` (:func:`petrecon.demo.run_demo`).

The figures are those of ``petrecon bench`` (:mod:`petrecon.bench`): each is
the best of a few runs after a warm-up, with its roofline floor at the
bandwidth and FLOP/s measured in stage 3, and is compared with the goals
(:data:`GOALS`). Everything lands in ``gpu-<date>.json`` (keys: ``device``,
``cupy_version``, ``gpu_tests_passed``, ``gpu_tests_failed``,
``forward_adjoint_s``, ``osem_4x8_s``, ``histogram_events_per_s``,
``demo_full_s``, ``tof_forward_adjoint_s``, ``hardware``, ``goals``,
``stages``; a figure whose stage did not finish is null) in ``--out``
(default ``$OUT``) and, on a GPU, in ``benchmarks/results/``; each stage's
output goes to ``run.log`` beside it.

``--dry-run`` runs the same stages on the CPU backend at tiny sizes (the
6-ring geometry of ``petrecon bench --quick``, 1e5 events, a 12-ring demo) in
well under a minute, so the command is known to work before a GPU is spent on
it; ``pytest -m gpu`` then skips every test (0 passed). The test suite runs it
(``tests/test_gpu_script.py``).

On the lent device machine (no network, no pydicom): fetch pydicom once here,
into the ignored folder ``.device-wheels/``::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        -d .device-wheels pydicom==3.0.2

then call the device tool's ``run`` with ``command`` =
``bash benchmarks/gpu/run.sh``, ``carry`` = ``[".device-wheels"]`` and
``timeout_s`` = 540 (the stages stop after 8 minutes). ``run.sh`` installs the
wheels into a temporary folder, puts the checkout on ``PYTHONPATH`` and runs
this script. The JSON comes back from ``$OUT``: copy it into
``benchmarks/results/`` and commit it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPOSITORY / "benchmarks" / "results"
BUDGET_S = 480.0
"""The whole run: 8 minutes, inside the device tool's 10-minute command limit."""
MIN_STAGE_S = 5.0
"""A stage with less time than this left in the budget is skipped."""
STAGE_LIMITS_S = {"environment": 30.0, "gpu_tests": 120.0, "hardware": 30.0, "projection": 60.0, "osem": 75.0,
                  "histogram": 40.0, "tof": 60.0, "demo": 240.0}
"""Each stage's time limit (s); the budget left caps it (the demo gets what the others leave)."""
GOALS = {"forward_adjoint_s": ("<=", 0.1), "osem_4x8_s": ("<=", 1.0), "histogram_events_per_s": (">=", 2e9)}
"""The GPU goals (README, "GPU backend"): mMR span-11 forward + adjoint, AW-OSEM 4 x 8, histogramming."""
FIGURE_KEYS = {"forward_adjoint_s": ("projection", "seconds"), "osem_4x8_s": ("osem", "seconds"),
               "histogram_events_per_s": ("histogram", "per_second"),
               "tof_forward_adjoint_s": ("tof", "seconds"), "demo_full_s": ("demo", "seconds")}
"""Top-level JSON keys and the stage result and field they are read from."""


@dataclass(frozen=True)
class Sizes:
    """What one run measures: the device sizes or the dry run's tiny ones."""

    backend: str
    histogram_events: int
    repeats: int
    osem_repeats: int


DEVICE = Sizes("cuda", 1_000_000_000, repeats=3, osem_repeats=2)
DRY_RUN = Sizes("cpu", 100_000, repeats=1, osem_repeats=1)


@dataclass(frozen=True)
class StageContext:
    """What a stage process is told by the run: sizes, the measured hardware, folders."""

    sizes: Sizes
    dry_run: bool
    hardware: dict | None
    work_dir: Path
    out_dir: Path


def _geometry(scanner: str, dry_run: bool):
    """The scanner's default sinogram and image, or :func:`petrecon.bench.reduced_geometry` in a dry run."""
    from petrecon.bench import reduced_geometry
    from petrecon.geometry import default_layout
    from petrecon.volume import ImageGrid

    layout = default_layout(scanner)
    if dry_run:
        return reduced_geometry(scanner, tof=layout.use_tof)
    return layout, ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)


def _hardware(context: StageContext):
    from petrecon.bench import Hardware, measure_hardware

    if context.hardware is None:  # the hardware stage did not finish: measure here
        return measure_hardware(context.sizes.backend)
    return Hardware(**context.hardware)


def _figure_result(figure) -> dict:
    return {**dataclasses.asdict(figure), "ratio": figure.ratio}


def stage_environment(context: StageContext) -> dict:
    """Versions of Python, numpy, numba and, on a GPU, CuPy, the CUDA runtime and driver, the device."""
    import numba
    import numpy

    from petrecon import __version__

    result = {"python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__,
              "petrecon": __version__, "cupy_version": None,
              "device": f"host CPU ({platform.machine()}, {os.cpu_count()} logical cores)"}
    if context.sizes.backend == "cuda":
        from petrecon.backend import cupy

        cp = cupy()
        properties = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        result.update(device=properties["name"].decode(), cupy_version=cp.__version__,
                      compute_capability=f"{properties['major']}.{properties['minor']}",
                      memory_gib=round(properties["totalGlobalMem"] / 2**30, 1),
                      cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
                      cuda_driver=cp.cuda.runtime.driverGetVersion())
    return result


def gpu_test_files() -> list[str]:
    """The test modules that carry the ``gpu`` marker, relative to the repository."""
    return sorted(str(path.relative_to(REPOSITORY)) for path in (REPOSITORY / "tests").glob("test_*.py")
                  if "pytest.mark.gpu" in path.read_text())


def stage_gpu_tests(context: StageContext) -> dict:
    """``pytest -m gpu`` over :func:`gpu_test_files`; counts from its JUnit XML (``gpu-tests.xml``)."""
    import pytest

    xml = context.out_dir / "gpu-tests.xml"
    exit_code = pytest.main(["-m", "gpu", "-q", "-rfE", f"--junitxml={xml}", *gpu_test_files()])
    suite = ElementTree.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    return {"exit_code": int(exit_code), "passed": counts["tests"] - counts["failures"] - counts["errors"]
            - counts["skipped"], "failed": counts["failures"] + counts["errors"], "skipped": counts["skipped"]}


def stage_hardware(context: StageContext) -> dict:
    """Bandwidth and float32 FLOP/s of the device (:func:`petrecon.bench.measure_hardware`)."""
    from petrecon.bench import measure_hardware

    return {"hardware": dataclasses.asdict(measure_hardware(context.sizes.backend))}


def stage_projection(context: StageContext) -> dict:
    """Forward + adjoint of the whole mMR span-11 sinogram against its floor."""
    from petrecon.bench import projection_figure
    from petrecon.cuda.roofline import count_joseph_samples, forward_adjoint_work

    layout, grid = _geometry("mmr", context.dry_run)
    count = count_joseph_samples(layout, grid, view_stride=1 if context.dry_run else 4)
    return _figure_result(projection_figure(layout, grid, forward_adjoint_work(count), context.sizes.backend,
                                            _hardware(context), context.sizes.repeats))


def stage_osem(context: StageContext) -> dict:
    """AW-OSEM 4 x 8 with normalisation x attenuation, an additive term and the post-filter."""
    from petrecon.bench import osem_figure
    from petrecon.cuda.roofline import count_joseph_samples

    layout, grid = _geometry("mmr", context.dry_run)
    count = count_joseph_samples(layout, grid, view_stride=1 if context.dry_run else 4)
    return _figure_result(osem_figure(layout, grid, count, context.sizes.backend, _hardware(context),
                                      context.sizes.osem_repeats, n_iterations=4))


def stage_histogram(context: StageContext) -> dict:
    """PETLINK histogramming of :attr:`Sizes.histogram_events` events into the mMR span-11 sinogram."""
    from petrecon.bench import histogram_figure
    from petrecon.geometry import default_layout

    return _figure_result(histogram_figure(default_layout("mmr"), context.sizes.backend, _hardware(context),
                                           context.sizes.repeats, context.sizes.histogram_events))


def stage_tof(context: StageContext) -> dict:
    """Forward + adjoint of the whole mCT TOF sinogram; its floor counts bytes only
    (:func:`petrecon.cuda.roofline.tof_projection_work`)."""
    import numpy as np

    from petrecon.bench import projection_figure
    from petrecon.cuda.roofline import tof_projection_work

    layout, grid = _geometry("mct-tof", context.dry_run)
    work = tof_projection_work(int(np.prod(grid.shape)), int(np.prod(layout.shape)))
    return _figure_result(projection_figure(layout, grid, work, context.sizes.backend, _hardware(context),
                                            context.sizes.repeats))


def stage_demo(context: StageContext) -> dict:
    """``petrecon demo --full`` (a 12-ring mMR copy with 4 mm voxels and a 60 s frame in a dry run)."""
    from petrecon.demo import DemoSampling, reduced_mmr_sampling, run_demo
    from petrecon.volume import ImageGrid

    options = {"full": True}
    if context.dry_run:
        reduced = reduced_mmr_sampling(n_rings=12, n_radial_bins=160, view_mashing=12, image_size=84)
        grid = ImageGrid.centred((84, 84, reduced.grid.shape[2]), (4.0, 4.0, reduced.grid.voxel_size_mm[2]))
        options = {"sampling": DemoSampling(reduced.layout, grid, "12-ring mMR copy (dry run)", True),
                   "duration_s": 60.0}
    started = time.perf_counter()
    result = run_demo(context.work_dir / "demo", progress=False, overwrite=True, **options)
    seconds = time.perf_counter() - started
    nema = result.nema
    return {"seconds": seconds, "timings_s": result.timings_s, "sampling": result.sampling.description,
            "background_over_truth": nema.background_mean / result.truth_background_bq_per_ml,
            "rc_mean_a50": [s.rc_mean_a50 for s in nema.spheres],
            "earl_passes": {band: verdict["passes"] for band, verdict in nema.earl.items()}}


STAGES: dict[str, Callable[[StageContext], dict]] = {
    "environment": stage_environment, "gpu_tests": stage_gpu_tests, "hardware": stage_hardware,
    "projection": stage_projection, "osem": stage_osem, "histogram": stage_histogram, "tof": stage_tof,
    "demo": stage_demo}


def _write_json_atomically(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    temporary.replace(path)


def _run_stage(name: str, limit_s: float, arguments: list[str], log_path: Path, result_path: Path,
               backend: str) -> dict:
    """Run one stage in a child process under ``limit_s``; its status, wall time and result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--stage-out", str(result_path),
               *arguments]
    environment = {**os.environ, "PETRECON_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with log_path.open("a") as log:
        log.write(f"\n===== stage {name} (limit {limit_s:.0f} s) =====\n")
        log.flush()
        try:
            completed = subprocess.run(command, cwd=REPOSITORY, env=environment, stdout=log,
                                       stderr=subprocess.STDOUT, timeout=limit_s, check=False)
            status = "ok" if completed.returncode == 0 and result_path.is_file() else "failed"
        except subprocess.TimeoutExpired:
            status = "timeout"
    outcome = {"status": status, "wall_s": round(time.monotonic() - started, 2), "limit_s": round(limit_s, 1)}
    if status == "ok":
        outcome["result"] = json.loads(result_path.read_text())
    return outcome


def _summary(stages: dict, dry_run: bool) -> dict:
    """The top-level keys: device, versions, test counts, figures (null where a stage did not finish), goals
    (``met`` null where the figure is missing, and in a dry run, whose tiny sizes are not the goals' problems)."""
    def result(stage: str) -> dict:
        return stages.get(stage, {}).get("result", {})

    environment, tests = result("environment"), result("gpu_tests")
    summary = {"device": environment.get("device"), "cupy_version": environment.get("cupy_version"),
               "gpu_tests_passed": tests.get("passed"), "gpu_tests_failed": tests.get("failed"),
               "gpu_tests_skipped": tests.get("skipped"), "hardware": result("hardware").get("hardware")}
    summary.update({key: result(stage).get(field) for key, (stage, field) in FIGURE_KEYS.items()})
    summary["goals"] = {key: {"goal": f"{sign} {limit:g}", "measured": summary[key],
                              "met": None if summary[key] is None or dry_run
                              else (summary[key] <= limit if sign == "<=" else summary[key] >= limit)}
                        for key, (sign, limit) in GOALS.items()}
    return summary


def _table(report: dict) -> list[str]:
    lines = [f"device {report['device']}, CuPy {report['cupy_version']}, backend {report['backend']}"
             f"{' (dry run)' if report['dry_run'] else ''}; GPU tests: {report['gpu_tests_passed']} passed, "
             f"{report['gpu_tests_failed']} failed, {report['gpu_tests_skipped']} skipped",
             f"{'stage':12s} {'status':8s} {'wall':>8s}  {'time':>10s} {'floor':>10s} {'ratio':>8s}  rate"]
    for name, stage in report["stages"].items():
        figure = stage.get("result", {})
        timing = (f"{figure['seconds']:>10.4f} {figure['floor_s']:>10.5f} {figure['ratio']:>7.1f}x  {figure['rate']}"
                  if "floor_s" in figure else "")
        lines.append(f"{name:12s} {stage['status']:8s} {stage['wall_s']:>7.1f}s  {timing}")
    lines += [f"goal {key} {goal['goal']}: measured {goal['measured']}, met {goal['met']}"
              for key, goal in report["goals"].items()]
    return lines


def run(out_dir: Path, dry_run: bool, budget_s: float = BUDGET_S) -> dict:
    """Every stage in turn within ``budget_s``; the report, also written as ``gpu-<date>.json``.

    Parameters
    ----------
    out_dir : Path
        Folder of the JSON, ``run.log`` and ``gpu-tests.xml`` (created).
    dry_run : bool
        CPU backend and tiny sizes; the JSON is written to ``out_dir`` only
        (on a GPU also to ``benchmarks/results/``).
    budget_s : float
        Wall time of all stages together.
    """
    sizes = DRY_RUN if dry_run else DEVICE
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "run.log"
    log_path.write_text("")
    date = dt.datetime.now(dt.timezone.utc)
    started = time.monotonic()
    stages: dict[str, dict] = {}
    hardware: dict | None = None
    with tempfile.TemporaryDirectory(prefix="petrecon-gpu-") as work_dir:
        for name in STAGES:
            left_s = budget_s - (time.monotonic() - started)
            if left_s < MIN_STAGE_S:
                stages[name] = {"status": "skipped", "wall_s": 0.0, "limit_s": round(max(left_s, 0.0), 1)}
                continue
            arguments = ["--work", work_dir, "--out", str(out_dir), *(["--dry-run"] if dry_run else []),
                         *(["--hardware", json.dumps(hardware)] if hardware else [])]
            stages[name] = _run_stage(name, min(STAGE_LIMITS_S[name], left_s), arguments, log_path,
                                      Path(work_dir) / f"{name}.json", sizes.backend)
            print(f"{name}: {stages[name]['status']} in {stages[name]['wall_s']:.1f} s", flush=True)
            if name == "hardware" and stages[name]["status"] == "ok":
                hardware = stages[name]["result"]["hardware"]
    report = {"date": date.isoformat(timespec="seconds"), "dry_run": dry_run, "backend": sizes.backend,
              "sizes": dataclasses.asdict(sizes), "budget_s": budget_s,
              "total_wall_s": round(time.monotonic() - started, 2), **_summary(stages, dry_run), "stages": stages}
    filename = f"gpu-{date:%Y-%m-%d}.json"
    for folder in [out_dir] if dry_run else [out_dir, RESULTS_DIR]:
        _write_json_atomically(report, folder / filename)
    print("\n".join(_table(report)))
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="folder of the JSON, run.log and gpu-tests.xml (default $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="CPU backend, tiny sizes: check the command itself")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="wall time of all stages together")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--stage-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hardware", type=json.loads, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command: the whole run, or (``--stage``, inside the run) one stage."""
    args = _parser().parse_args(argv)
    if args.out is None:
        _parser().error("--out is needed where $OUT is not set")
    if args.stage:
        context = StageContext(DRY_RUN if args.dry_run else DEVICE, args.dry_run, args.hardware, args.work, args.out)
        _write_json_atomically(STAGES[args.stage](context), args.stage_out)
        return 0
    run(args.out, args.dry_run, args.budget_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
