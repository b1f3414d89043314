"""AW-OSEM speed: the clinical 4 x 8 on an axially short mMR, one full-mMR iteration, a whole study chain.

Run: ``python -m pytest benchmarks/test_bench_osem.py --benchmark-only``. The system model is the one
of a real study (``y_bar = m (A x) + a`` with m = 0.5 and a = 0.1 everywhere) on counts drawn from a
body-sized cylinder; kernels are compiled before the timing. Results in benchmarks/RESULTS.md.
"""

import importlib.util
from pathlib import Path

import numpy as np

from petrecon.geometry import default_layout
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon.osem import OsemProtocol, osem
from petrecon.volume import ImageGrid

_spec = importlib.util.spec_from_file_location("tests_conftest", Path(__file__).parents[1] / "tests" / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)


def _problem(layout, grid):
    projector = SinogramProjector(layout, grid, backend="cpu")  # the numba kernels, also on GPU machines
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    image = (np.hypot(x, y) < 150.0).astype(np.float32)
    warm = projector.subset_operator(np.arange(2))
    warm.adjoint(warm.forward(image))  # numba compile outside the timing
    prompts = np.random.default_rng(0).poisson(0.5 * projector.forward(image) + 0.1).astype(np.float32)
    model = {"multiplicative": np.full(layout.shape, 0.5, np.float32), "additive": np.full(layout.shape, 0.1, np.float32)}
    return projector, prompts, model


def _record(benchmark, layout, n_iterations):
    benchmark.extra_info["lors"] = int(np.prod(layout.shape))
    benchmark.extra_info["seconds_per_iteration"] = round(benchmark.stats.stats.min / n_iterations, 3)


def test_aw_osem_4x8_short_mmr(benchmark):
    layout, grid = _conftest._short_biograph("mmr")
    projector, prompts, model = _problem(layout, grid)
    benchmark.pedantic(osem, args=(prompts, projector), kwargs={**model, "protocol": OsemProtocol(4, 8, 5.0)},
                       rounds=1, iterations=1)
    _record(benchmark, layout, 4)


def test_aw_osem_one_iteration_full_mmr_span11(benchmark):
    layout = default_layout("mmr", span=11)
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    projector, prompts, model = _problem(layout, grid)
    benchmark.pedantic(osem, args=(prompts, projector), kwargs={**model, "protocol": OsemProtocol(1, 8, 5.0)},
                       rounds=1, iterations=1)
    _record(benchmark, layout, 1)


def test_reconstruct_study_test_scanner(benchmark, tmp_path):
    from petrecon.recon.protocol import ReconstructionProtocol
    from petrecon.recon.study import reconstruct_study
    from petrecon.simulate.acquisition import simulate_study

    study = simulate_study("uniform-cylinder", scanner="test", duration_s=60.0, progress=False).container
    reconstruct_study(study, progress=False)  # compile
    result = benchmark.pedantic(reconstruct_study, args=(study, ReconstructionProtocol()), kwargs={"progress": False},
                                rounds=3, iterations=1)
    assert result.corrected[:2] == ("NORM", "ATTN")
