"""CPU throughput of the Joseph projector on the full Biograph mMR span-11 sinogram.

Run: ``python -m pytest benchmarks --benchmark-only``. Each benchmark runs once
(a full mMR pass takes minutes on two cores) and records LORs per second in
``extra_info``; results go into benchmarks/RESULTS.md.
"""

import numpy as np
import pytest

from petrecon.geometry import default_layout
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon import view_subsets
from petrecon.recon.osem import em_update
from petrecon.volume import ImageGrid


@pytest.fixture(scope="module")
def mmr():
    layout = default_layout("mmr", span=11)
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    projector = SinogramProjector(layout, grid, backend="cpu")  # the numba kernels, also on GPU machines
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    image = (np.hypot(x, y) < 250.0).astype(np.float32)  # a body-sized cylinder
    return layout, projector, image


def _record(benchmark, n_lors):
    seconds = benchmark.stats.stats.min
    benchmark.extra_info["lors"] = int(n_lors)
    benchmark.extra_info["mlors_per_s"] = round(n_lors / seconds / 1e6, 3)


def test_forward_full_mmr_span11(benchmark, mmr):
    layout, projector, image = mmr
    projector.subset_operator(np.arange(2)).forward(image)  # numba compile outside the timing
    benchmark.pedantic(projector.forward, args=(image,), rounds=1, iterations=1)
    _record(benchmark, np.prod(layout.shape))


def test_adjoint_full_mmr_span11(benchmark, mmr):
    layout, projector, image = mmr
    sinogram = np.ones(layout.shape, np.float32)
    projector.subset_operator(np.arange(2)).adjoint(sinogram[:, :2])
    benchmark.pedantic(projector.adjoint, args=(sinogram,), rounds=1, iterations=1)
    _record(benchmark, np.prod(layout.shape))


def test_one_osem_subiteration_mmr_span11(benchmark, mmr):
    layout, projector, image = mmr
    views = view_subsets(layout.n_views, 8)[0]
    operator = projector.subset_operator(views)
    counts = np.random.default_rng(0).poisson(1.0, operator.out_shape).astype(np.float32)
    sensitivity = operator.adjoint(np.ones(operator.out_shape, np.float32))
    estimate = np.ones(image.shape, np.float32)
    benchmark.pedantic(em_update, args=(estimate, operator, counts, 1.0, 0.0, sensitivity), rounds=1, iterations=1)
    _record(benchmark, 2 * np.prod(operator.out_shape))
