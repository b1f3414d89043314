"""``petrecon bench``: time the hot paths on this machine and compare each with its hardware floor.

Four figures, each the best of ``repeats`` runs (numba compilation and CUDA
module loading excluded by a warm-up on a small piece of the work):

* forward + adjoint projection of the whole sinogram
  (:class:`~petrecon.projectors.sinogram.SinogramProjector`);
* AW-OSEM: one iteration (all subsets, the subset sensitivities included) on
  the scanner's full geometry, or the clinical 4 x 8 on a reduced geometry
  with ``quick``;
* PETLINK list-mode histogramming of a synthetic stream (:mod:`petrecon.io.listmode`);
* NEMA NU 2 analysis (phantom finding, 60 background ROIs, recovery, EARL
  verdicts; :func:`petrecon.quant.nema.analyse_nema`) of the voxelised
  ``nema-iec`` phantom.

Floors are the roofline ``max(bytes / bandwidth, flops / FLOP/s)``
(Williams, Waterman & Patterson, CACM 52(4), 2009) with the byte and flop
counts of :mod:`petrecon.cuda.roofline` (Joseph samples counted with the
kernel's own set-up; compulsory bytes: every array moved once). On the CPU
the bandwidth is measured here by a numpy copy (read + write) and the FLOP/s
by a float32 matrix product (the BLAS peak this process can reach); on a GPU
by :func:`petrecon.cuda.roofline.measure_gpu`. The NEMA floor is one pass
over the image at that bandwidth (the analysis reads it many times: the ratio
says how many). A ratio of 10 means 10 times slower than the floor.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from petrecon.backend import resolve_backend
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.volume import ImageGrid, Volume

if TYPE_CHECKING:
    from petrecon.cuda.roofline import JosephCount, Work

LOG = logging.getLogger(__name__)
QUICK_RINGS = 6
"""Rings of the reduced geometry of ``--quick`` (span 3, 6-fold view mashing, 96 radial bins)."""
WATER_MU_PER_MM = 0.0096
"""Water at 511 keV, 0.096 cm^-1 (reference/quantification.md): the attenuation of the OSEM figure's cylinder."""


@dataclass(frozen=True)
class Hardware:
    """Peak figures of the device the figures are compared with."""

    name: str
    bandwidth_bytes_per_s: float
    flops_per_s: float


@dataclass(frozen=True)
class BenchFigure:
    """One timed piece of work and its floor on the measured hardware."""

    what: str
    size: str
    seconds: float
    floor_s: float
    bound: str
    rate: str
    backend: str
    per_second: float
    """The rate as a number: LORs, events or voxels per second (OSEM: iterations per second)."""

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_s


@dataclass
class BenchReport:
    """All figures of one ``petrecon bench`` run."""

    scanner: str
    backend: str
    quick: bool
    hardware: Hardware
    figures: list[BenchFigure]

    def to_dict(self) -> dict:
        return {"scanner": self.scanner, "backend": self.backend, "quick": self.quick,
                "hardware": dataclasses.asdict(self.hardware),
                "figures": [{**dataclasses.asdict(f), "ratio": f.ratio} for f in self.figures]}

    def table_lines(self) -> list[str]:
        hw = self.hardware
        lines = [f"hardware: {hw.name}: {hw.bandwidth_bytes_per_s / 1e9:.1f} GB/s, "
                 f"{hw.flops_per_s / 1e9:.1f} GFLOP/s float32 (measured)",
                 f"{'what':30s} {'size':36s} {'time':>10s} {'floor':>10s} {'ratio':>8s}  {'bound':7s} "
                 f"{'rate':18s} backend"]
        for f in self.figures:
            lines.append(f"{f.what:30s} {f.size:36s} {_seconds(f.seconds):>10s} {_seconds(f.floor_s):>10s} "
                         f"{f.ratio:>7.1f}x  {f.bound:7s} {f.rate:18s} {f.backend}")
        return lines


def _seconds(value: float) -> str:
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"


def best_seconds(run: Callable[[], object], repeats: int, synchronize: Callable[[], None] = lambda: None, *,
                 warm_up: bool = True) -> float:
    """Shortest wall time of ``repeats`` calls of ``run``, after one untimed warm-up call if ``warm_up``.

    Examples
    --------
    >>> best_seconds(lambda: sum(range(1000)), 3) > 0
    True
    """
    if warm_up:
        run()
        synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def measure_host(copy_bytes: int = 256 * 2**20, matrix_size: int = 1024, repeats: int = 3) -> Hardware:
    """Host memory bandwidth (numpy copy: ``2 * copy_bytes`` moved) and float32 FLOP/s (matrix product).

    Examples
    --------
    >>> host = measure_host(copy_bytes=2**20, matrix_size=64, repeats=1)
    >>> host.bandwidth_bytes_per_s > 1e8 and host.flops_per_s > 1e6
    True
    """
    import os

    source = np.ones(copy_bytes // 4, np.float32)
    target = np.empty_like(source)
    copy_s = best_seconds(lambda: np.copyto(target, source), repeats)
    a = np.ones((matrix_size, matrix_size), np.float32)
    matmul_s = best_seconds(lambda: a @ a, repeats)
    return Hardware(f"host CPU, {os.cpu_count()} logical cores", 2.0 * copy_bytes / copy_s,
                    2.0 * matrix_size**3 / matmul_s)


def reduced_geometry(scanner: str, tof: bool = False) -> tuple[SinogramLayout, ImageGrid]:
    """An axially short copy of ``scanner`` (:data:`QUICK_RINGS` rings) and a 96 x 96 image at 3 times its pixel size.

    ``tof`` keeps the scanner's TOF axis (a TOF scanner of the registry, e.g. ``"mct-tof"``).
    """
    base = default_layout(scanner, tof=tof)
    short = dataclasses.replace(base.scanner, n_rings=QUICK_RINGS, virtual_ring_positions=())
    layout = SinogramLayout(short, 3, QUICK_RINGS - 1, min(96, base.n_radial_bins), 6 * base.view_mashing,
                            use_tof=tof)
    voxel = base.scanner.default_voxel_size_mm
    grid = ImageGrid.centred((96, 96, 2 * QUICK_RINGS - 1), (3 * voxel[0], 3 * voxel[1], short.ring_spacing_mm / 2))
    return layout, grid


def run_bench(scanner: str = "mmr", backend: str = "auto", *, quick: bool = False,
              repeats: int | None = None) -> BenchReport:
    """Time the four figures on ``scanner`` (module docstring) with ``backend``.

    Parameters
    ----------
    scanner : str
        Registry name; its full geometry, or :func:`reduced_geometry` with ``quick``.
    backend : {"auto", "cpu", "cuda"}
        Device of the projector, OSEM and histogramming.
    quick : bool
        Reduced geometry and sizes: seconds instead of minutes on a CPU.
    repeats : int, optional
        Timed runs per figure after a warm-up run (default 1).
    """
    from petrecon.cuda.roofline import count_joseph_samples, forward_adjoint_work

    backend = resolve_backend(backend)
    repeats = repeats or 1
    if quick:
        layout, grid = reduced_geometry(scanner)
    else:
        layout = default_layout(scanner, tof=False)
        grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    hardware = measure_hardware(backend)
    LOG.info("bench: %s, %s backend, %s", layout.shape, backend, hardware.name)
    count = count_joseph_samples(layout, grid, view_stride=1 if quick else 4)
    figures = [projection_figure(layout, grid, forward_adjoint_work(count), backend, hardware, repeats),
               osem_figure(layout, grid, count, backend, hardware, repeats, n_iterations=4 if quick else 1),
               histogram_figure(layout, backend, hardware, repeats, n_events=1_000_000 if quick else 50_000_000),
               _nema_figure(grid if quick else None, scanner, hardware, repeats)]
    return BenchReport(scanner, backend, quick, hardware, figures)


def measure_hardware(backend: str) -> Hardware:
    """Bandwidth and float32 FLOP/s of the device of ``backend``: :func:`measure_host` or
    :func:`petrecon.cuda.roofline.measure_gpu`."""
    if backend == "cuda":
        from petrecon.cuda.roofline import measure_gpu

        gpu = measure_gpu()
        return Hardware(gpu.name, gpu.memory_bandwidth_bytes_per_s, gpu.fp32_flops_per_s)
    return measure_host()


def _array_module(backend: str):
    from petrecon.backend import cupy

    if backend == "cuda":
        xp = cupy()
        return xp, xp.cuda.Device().synchronize
    return np, lambda: None


def _floor(work, hardware: Hardware) -> tuple[float, str]:
    from petrecon.cuda.roofline import GpuSpec

    spec = GpuSpec(hardware.name, hardware.bandwidth_bytes_per_s, hardware.flops_per_s)
    return work.floor_s(spec), work.bound(spec)


def _cylinder(grid: ImageGrid, xp) -> object:
    x, y = np.meshgrid(grid.voxel_centres_mm(0), grid.voxel_centres_mm(1), indexing="ij")
    radius_mm = 0.4 * min(grid.shape[0] * grid.voxel_size_mm[0], grid.shape[1] * grid.voxel_size_mm[1])
    disc = (np.hypot(x, y) < radius_mm).astype(np.float32)
    return xp.asarray(np.repeat(disc[:, :, None], grid.shape[2], axis=2))


def projection_figure(layout: SinogramLayout, grid: ImageGrid, work: Work, backend: str, hardware: Hardware,
                      repeats: int) -> BenchFigure:
    """Forward + adjoint of the whole sinogram of ``layout`` (TOF or not), against the floor of ``work``.

    ``work`` is the :class:`petrecon.cuda.roofline.Work` of the pair
    (:func:`~petrecon.cuda.roofline.forward_adjoint_work`,
    :func:`~petrecon.cuda.roofline.tof_projection_work`); its ``what`` names the figure.
    """
    from petrecon.projectors.sinogram import SinogramProjector

    xp, synchronize = _array_module(backend)
    projector = SinogramProjector(layout, grid, backend=backend)
    image = _cylinder(grid, xp)
    warm = projector.subset_operator(np.arange(2))  # compile the kernels on two views, not the whole sinogram
    warm.adjoint(warm.forward(image))
    seconds = best_seconds(lambda: projector.adjoint(projector.forward(image)), repeats, synchronize, warm_up=False)
    floor_s, bound = _floor(work, hardware)
    n_lors = int(np.prod(layout.shape[-3:]))  # sinograms x views x bins, without the TOF axis
    return BenchFigure(f"{work.what} projection", f"{n_lors / 1e6:.2f} M LORs, image {grid.shape}",
                       seconds, floor_s, bound, f"{2 * n_lors / seconds / 1e6:.2f} M LORs/s", backend,
                       2 * n_lors / seconds)


def osem_figure(layout: SinogramLayout, grid: ImageGrid, count: JosephCount, backend: str, hardware: Hardware,
                repeats: int, n_iterations: int) -> BenchFigure:
    """AW-OSEM ``n_iterations`` x 8 with the 5 mm post-filter: attenuation of a water cylinder x a random
    normalisation (0.8-1.2) as the multiplicative term, a flat additive term (randoms + scatter), Poisson prompts.

    ``count`` is the :class:`petrecon.cuda.roofline.JosephCount` of ``layout`` and ``grid``.
    """
    from petrecon.cuda.roofline import osem_work
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.recon.osem import OsemProtocol, osem

    xp, synchronize = _array_module(backend)
    projector = SinogramProjector(layout, grid, backend=backend)
    protocol = OsemProtocol(n_iterations, 8, 5.0)
    cylinder = _cylinder(grid, xp)
    rng = np.random.default_rng(0)
    normalisation = xp.asarray(rng.uniform(0.8, 1.2, layout.shape).astype(np.float32))
    multiplicative = (xp.exp(-projector.forward(cylinder * WATER_MU_PER_MM)) * normalisation).astype(xp.float32)
    additive = xp.full(layout.shape, 0.1, dtype=xp.float32)
    expected = _to_numpy(multiplicative * projector.forward(cylinder) + additive)
    prompts = xp.asarray(rng.poisson(expected).astype(np.float32))
    seconds = best_seconds(lambda: osem(prompts, projector, multiplicative=multiplicative, additive=additive,
                                        protocol=protocol), repeats, synchronize,
                           warm_up=False)  # the projections above have compiled the kernels
    floor_s, bound = _floor(osem_work(count, n_iterations), hardware)
    what = f"AW-OSEM {n_iterations} x 8 + 5 mm filter"
    return BenchFigure(what, f"{count.n_lors / 1e6:.2f} M LORs, image {grid.shape}", seconds, floor_s, bound,
                       f"{seconds / n_iterations:.3g} s/iteration", backend, n_iterations / seconds)


def _to_numpy(array) -> np.ndarray:
    from petrecon.backend import to_numpy

    return to_numpy(array)


def synthetic_stream(layout: SinogramLayout, n_events: int, events_per_ms: int = 280, seed: int = 0, xp=np):
    """PETLINK words: per ms one time tag then ``events_per_ms`` events at uniform span-1 addresses, 80 % prompts;
    ``n_events`` is rounded down to whole ms. Built on the device of ``xp`` (numpy or cupy).

    Examples
    --------
    >>> words = synthetic_stream(default_layout("test"), 2800)
    >>> words.dtype, words.size  # 2800 events and 10 time tags
    (dtype('uint32'), 2810)
    """
    from petrecon.io.petlink import PROMPT_FLAG, TAG_KIND_SHIFT, TIME_TAG_KIND

    rng = xp.random.default_rng(seed)
    n_ms = max(1, n_events // events_per_ms)
    n_addresses = int(np.prod(layout.listmode_layout().shape))
    words = rng.integers(0, n_addresses, size=(n_ms, events_per_ms + 1), dtype=xp.int64).astype(xp.uint32)
    words |= (rng.random((n_ms, events_per_ms + 1), dtype=xp.float32) < 0.8).astype(xp.uint32) * PROMPT_FLAG
    words[:, 0] = xp.arange(n_ms, dtype=xp.uint32) | np.uint32(TIME_TAG_KIND << TAG_KIND_SHIFT)
    return words.ravel()


def histogram_figure(layout: SinogramLayout, backend: str, hardware: Hardware, repeats: int,
                     n_events: int) -> BenchFigure:
    """PETLINK histogramming of a :func:`synthetic_stream` of ``n_events`` into ``layout``, built on the device."""
    from petrecon.cuda.roofline import histogram_work

    xp, synchronize = _array_module(backend)
    words = synthetic_stream(layout, n_events, xp=xp)
    n_events = int(xp.count_nonzero(words >> 31 == 0))  # PETLINK event words have the top bit clear
    if backend == "cuda":
        from petrecon.cuda.histogram import histogram_words_cuda

        run = lambda: histogram_words_cuda(words, layout)  # noqa: E731
    else:
        from petrecon.io.listmode import histogram_listmode

        run = lambda: histogram_listmode(words, layout, progress=False)  # noqa: E731
    seconds = best_seconds(run, repeats, synchronize)
    floor_s, bound = _floor(histogram_work(words.size, n_events, int(np.prod(layout.shape))), hardware)
    return BenchFigure("list-mode histogramming", f"{n_events / 1e6:.1f} M events, span {layout.span}",
                       seconds, floor_s, bound, f"{n_events / seconds / 1e6:.1f} M events/s", backend,
                       n_events / seconds)


def _nema_figure(grid: ImageGrid | None, scanner: str, hardware: Hardware, repeats: int) -> BenchFigure:
    from scipy.ndimage import gaussian_filter

    from petrecon.geometry import get_scanner
    from petrecon.operators import FWHM_PER_SIGMA
    from petrecon.quant.nema import analyse_nema
    from petrecon.simulate.phantom import load_phantom
    from petrecon.simulate.voxelise import voxelise

    if grid is None:
        base = get_scanner(scanner)
        grid = ImageGrid.centred(base.default_image_shape, base.default_voxel_size_mm)
    else:  # the reduced grid's pixels, but long enough for the phantom's 180 mm body
        grid = ImageGrid.centred((*grid.shape[:2], int(np.ceil(200.0 / grid.voxel_size_mm[2]))), grid.voxel_size_mm)
    phantom = load_phantom("nema-iec", {"ratio": 10.0})
    activity = voxelise(phantom, grid, supersampling=1)["activity_bq_per_ml"]
    sigma_voxels = [6.0 / FWHM_PER_SIGMA / v for v in grid.voxel_size_mm]  # 6 mm FWHM, a typical reconstruction
    volume = Volume(gaussian_filter(activity.data.astype(np.float32), sigma_voxels), grid, {"units": "Bq/ml"})
    truth = phantom.parameters["background"]
    seconds = best_seconds(lambda: analyse_nema(volume, activity_ratio=10.0, sphere_activity=10.0 * truth), repeats,
                           warm_up=False)  # nothing to compile
    floor_s = volume.data.nbytes / hardware.bandwidth_bytes_per_s
    return BenchFigure("NEMA NU 2 + EARL analysis", f"image {grid.shape}", seconds, floor_s, "memory",
                       f"{volume.data.size / seconds / 1e6:.1f} M voxels/s", "cpu", volume.data.size / seconds)
