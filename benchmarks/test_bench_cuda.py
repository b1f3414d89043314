"""GPU throughput on the full Biograph mMR span-11 problem, against the roofline floor.

Run on a machine with an NVIDIA GPU and CuPy (``pip install ".[gpu,test]"``)::

    python -m pytest benchmarks/test_bench_cuda.py --benchmark-only -s

Every benchmark synchronises the device inside the timed call, records in
``extra_info`` its throughput, the floor of :mod:`petrecon.cuda.roofline`
computed with the bandwidth and FLOP/s *measured on this device*, and
``achieved_over_floor`` (measured time / floor time, >= 1), and prints one
line per result. Goals on an H100: forward + adjoint <= 0.1 s, AW-OSEM 4 x 8
<= 1 s, histogramming >= 2e9 events/s. Skipped without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.backend import gpu_available
from petrecon.bench import WATER_MU_PER_MM

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]

ROUNDS = 5
HISTOGRAM_EVENTS = 200_000_000
EVENTS_PER_MS = 999
"""Synthetic stream (:func:`petrecon.bench.synthetic_stream`): one time tag then 999 events per ms (~1e6 events/s,
a busy mMR scan)."""


@pytest.fixture(scope="module")
def cp():
    from petrecon.backend import cupy

    return cupy()


@pytest.fixture(scope="module")
def gpu():
    from petrecon.cuda.roofline import measure_gpu

    spec = measure_gpu()
    print(f"\n{spec.name}: {spec.memory_bandwidth_bytes_per_s / 1e12:.2f} TB/s copy, "
          f"{spec.fp32_flops_per_s / 1e12:.1f} TFLOP/s FMA")
    return spec


@pytest.fixture(scope="module")
def mmr(cp):
    from petrecon.cuda.roofline import count_joseph_samples
    from petrecon.geometry import default_layout
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.volume import ImageGrid

    layout = default_layout("mmr", span=11)
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    projector = SinogramProjector(layout, grid, backend="cuda")
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    body = np.hypot(x, y) < 250.0  # a body-sized cylinder
    return {"layout": layout, "grid": grid, "projector": projector, "count": count_joseph_samples(layout, grid, 4),
            "image": cp.asarray(body.astype(np.float32)),
            "mu_per_mm": cp.asarray((body * WATER_MU_PER_MM).astype(np.float32))}


def _synchronised(cp, function, *args):
    def run():
        result = function(*args)
        cp.cuda.Device().synchronize()
        return result
    return run


def _record(benchmark, work, gpu, **throughput) -> None:
    seconds = benchmark.stats.stats.min
    floor_s = work.floor_s(gpu)
    benchmark.extra_info.update(throughput)
    benchmark.extra_info.update(seconds=round(seconds, 5), floor_s=round(floor_s, 6), floor_bound=work.bound(gpu),
                                achieved_over_floor=round(seconds / floor_s, 2), device=gpu.name)
    print(f"\n{work.what}: {seconds:.4f} s, floor {floor_s * 1e3:.2f} ms ({work.bound(gpu)}), "
          f"achieved/floor {seconds / floor_s:.1f}, {throughput}")


def test_forward_full_mmr_span11_cuda(benchmark, cp, gpu, mmr):
    from petrecon.cuda.roofline import forward_work

    run = _synchronised(cp, mmr["projector"].forward, mmr["image"])
    run()  # compile outside the timing
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    n_lors = mmr["count"].n_lors
    _record(benchmark, forward_work(mmr["count"]), gpu, mlors_per_s=round(n_lors / benchmark.stats.stats.min / 1e6))


def test_adjoint_full_mmr_span11_cuda(benchmark, cp, gpu, mmr):
    from petrecon.cuda.roofline import adjoint_work

    sinogram = cp.ones(mmr["layout"].shape, cp.float32)
    run = _synchronised(cp, mmr["projector"].adjoint, sinogram)
    run()
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    n_lors = mmr["count"].n_lors
    _record(benchmark, adjoint_work(mmr["count"]), gpu, mlors_per_s=round(n_lors / benchmark.stats.stats.min / 1e6))


def test_forward_plus_adjoint_full_mmr_span11_cuda(benchmark, cp, gpu, mmr):
    from petrecon.cuda.roofline import forward_adjoint_work

    projector = mmr["projector"]
    run = _synchronised(cp, lambda image: projector.adjoint(projector.forward(image)), mmr["image"])
    run()
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _record(benchmark, forward_adjoint_work(mmr["count"]), gpu, goal_s=0.1)


def test_aw_osem_4x8_mmr_span11_cuda(benchmark, cp, gpu, mmr):
    """AW-OSEM 4 x 8, 344 x 344 x 127, attenuation x normalisation, randoms + scatter, 5 mm post-filter."""
    from petrecon.cuda.roofline import osem_work
    from petrecon.recon import OsemProtocol, osem

    projector = mmr["projector"]
    rng = cp.random.RandomState(0)
    attenuation = cp.exp(-projector.forward(mmr["mu_per_mm"]))
    normalisation = (0.8 + 0.4 * rng.random_sample(projector.out_shape, dtype=cp.float32)).astype(cp.float32)
    multiplicative = (attenuation * normalisation).astype(cp.float32)
    true_counts = multiplicative * projector.forward(mmr["image"]) * 0.05
    additive = cp.full(projector.out_shape, float(true_counts.mean()) * 0.3, cp.float32)
    prompts = rng.poisson(true_counts + additive).astype(cp.float32)
    protocol = OsemProtocol()  # 4 iterations, 8 subsets, 5 mm FWHM
    run = _synchronised(cp, lambda: osem(prompts, projector, multiplicative=multiplicative, additive=additive,
                                         protocol=protocol))
    run()
    benchmark.pedantic(run, rounds=3, iterations=1)
    _record(benchmark, osem_work(mmr["count"], protocol.n_iterations), gpu, goal_s=1.0,
            prompts_millions=round(float(prompts.sum()) / 1e6, 1))


def test_histogram_mmr_span11_events_per_second_cuda(benchmark, cp, gpu, mmr):
    from petrecon.bench import synthetic_stream
    from petrecon.cuda.histogram import histogram_words_cuda
    from petrecon.cuda.roofline import histogram_work

    layout = mmr["layout"]
    words = synthetic_stream(layout, HISTOGRAM_EVENTS, EVENTS_PER_MS, xp=cp)
    n_events = words.size - words.size // (EVENTS_PER_MS + 1)  # one time tag per ms
    run = _synchronised(cp, histogram_words_cuda, words, layout)
    prompts, delays, n_dropped = run()
    assert int(prompts.sum(dtype=cp.int64)) + int(delays.sum(dtype=cp.int64)) == n_events and n_dropped == 0
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    work = histogram_work(words.size, n_events, int(np.prod(layout.shape)))
    _record(benchmark, work, gpu, events_per_s=f"{n_events / benchmark.stats.stats.min:.3g}", goal_events_per_s=2e9)
