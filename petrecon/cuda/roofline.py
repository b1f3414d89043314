"""Performance floor of the CUDA kernels: bytes and flops against a GPU's bandwidth and FLOP/s.

A kernel cannot run faster than ``max(bytes / bandwidth, flops / FLOP/s)``
(the roofline model, Williams, Waterman & Patterson, CACM 52(4), 2009). This
module counts both for the Joseph kernels (kernels/joseph.cuh), one AW-OSEM
reconstruction and the PETLINK histogram (kernels/histogram.cu), so
benchmarks can state ``achieved / floor``.

Counting rules (per Joseph sample = one plane visited by one LOR, counted
exactly by the CPU kernel's own set-up, :func:`~petrecon.projectors.joseph.lor_setup`):

* flops: forward 20 (two position FMAs, two floors, two fractions, two
  ``1 - u``, four weight products, four FMAs into the sum); adjoint 18 (the
  same without the sum, plus four products ``w * value``). The per-LOR
  float64 set-up (~60 operations) is not counted.
* compulsory bytes: every array read or written once (image, sinogram,
  endpoint tables) - the traffic if the gathers were all cache hits.
* gathered bytes: 16 B per sample (four float32 neighbours; the adjoint's
  atomics move the same amount through L2). At HBM bandwidth this is the
  time with no cache reuse at all, an upper reference, not a floor.

GPU figures: NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/h100):
H100 SXM 3.35 TB/s HBM3, 67 TFLOP/s FP32; H100 PCIe 2.0 TB/s, 51 TFLOP/s FP32.
Benchmarks replace the bandwidth by the one they measure on the device.

Run ``python -m petrecon.cuda.roofline`` for the mMR span-11 table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from petrecon.backend import cupy
from petrecon.cuda.modules import get_kernel
from petrecon.geometry import SinogramLayout
from petrecon.projectors.joseph import lor_setup
from petrecon.volume import ImageGrid

FLOPS_PER_SAMPLE = {"forward": 20, "adjoint": 18}
GATHERED_BYTES_PER_SAMPLE = 16
EM_SINOGRAM_PASSES = 14
"""Sinogram-sized float32 reads and writes of one EM update besides the projections:
subset selection of y, m, a (3 reads + 3 writes), m * Ax + a (3 + 1), the masked ratio
(2 + 1), m * ratio (2 + 1) -> 16; the forward's write and the adjoint's read are counted
with the projections: 14 remain."""
BYTES_PER_RANDOM_ATOMIC = 32
"""A scattered 4-byte atomic moves one 32-byte sector between L2 and HBM."""


@dataclass(frozen=True)
class GpuSpec:
    """Peak figures of a GPU."""

    name: str
    memory_bandwidth_bytes_per_s: float
    fp32_flops_per_s: float


H100_SXM = GpuSpec("NVIDIA H100 SXM (datasheet)", 3.35e12, 67e12)
H100_PCIE = GpuSpec("NVIDIA H100 PCIe (datasheet)", 2.0e12, 51e12)


@dataclass(frozen=True)
class Work:
    """Bytes and flops of one kernel run, and the floor time on a GPU."""

    what: str
    compulsory_bytes: float
    flops: float
    gathered_bytes: float = 0.0
    parts: tuple["Work", ...] = ()
    """Kernels run one after the other; the floor of a sequence is the sum of theirs."""

    def floor_s(self, gpu: GpuSpec) -> float:
        """``max(bytes / bandwidth, flops / FLOP/s)``, summed over the parts of a sequence."""
        if self.parts:
            return sum(part.floor_s(gpu) for part in self.parts)
        return max(self.compulsory_bytes / gpu.memory_bandwidth_bytes_per_s, self.flops / gpu.fp32_flops_per_s)

    def bound(self, gpu: GpuSpec) -> str:
        """``"memory"`` or ``"compute"``: which term sets (most of) the floor."""
        memory_s = self.compulsory_bytes / gpu.memory_bandwidth_bytes_per_s
        return "memory" if memory_s >= self.flops / gpu.fp32_flops_per_s else "compute"

    def no_reuse_s(self, gpu: GpuSpec) -> float:
        """Time if every gathered byte came from HBM (no cache reuse): an upper reference."""
        return (self.compulsory_bytes + self.gathered_bytes) / gpu.memory_bandwidth_bytes_per_s


def sequence(what: str, works: list[Work]) -> Work:
    """Kernels run one after another: bytes and flops add up, and so do their floors.

    Examples
    --------
    >>> one = Work("copy", 2e12, 0.0)
    >>> sequence("two copies", [one, one]).floor_s(H100_SXM) == 2 * one.floor_s(H100_SXM)
    True
    """
    return Work(what, sum(w.compulsory_bytes for w in works), sum(w.flops for w in works),
                sum(w.gathered_bytes for w in works), tuple(works))


@njit(parallel=True, cache=True)
def _count_samples(xs, xe, origin_mm, voxel_size_mm, shape) -> int:
    total = 0
    for i in prange(xs.shape[0]):
        setup = lor_setup(xs[i], xe[i], origin_mm, voxel_size_mm, shape)
        total += max(0, setup[4] - setup[3] + 1)
    return total


@dataclass(frozen=True)
class JosephCount:
    """LORs, Joseph samples and voxels of a full sinogram projection."""

    n_lors: int
    n_samples: float
    n_voxels: int
    n_views: int
    n_sinograms: int
    n_radial_bins: int


def count_joseph_samples(layout: SinogramLayout, grid: ImageGrid, view_stride: int = 1) -> JosephCount:
    """Number of planes the Joseph kernels visit for the whole (non-TOF) sinogram.

    ``view_stride > 1`` counts every ``view_stride``-th view and scales up
    (the count varies smoothly with the view).

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    >>> count = count_joseph_samples(layout, grid)
    >>> count.n_lors, 40 < count.n_samples / count.n_lors < 80
    (168448, True)
    """
    views = np.arange(0, layout.n_views, view_stride)
    origin = np.asarray(grid.origin_mm, dtype=np.float64)
    voxel = np.asarray(grid.voxel_size_mm, dtype=np.float64)
    samples = 0
    for view in views:
        xs, xe = layout.lor_endpoints_mm(views=np.array([view]))
        samples += _count_samples(xs.reshape(-1, 3), xe.reshape(-1, 3), origin, voxel, grid.shape)
    n_lors = layout.n_sinograms * layout.n_views * layout.n_radial_bins
    return JosephCount(n_lors, samples * layout.n_views / len(views), int(np.prod(grid.shape)),
                       layout.n_views, layout.n_sinograms, layout.n_radial_bins)


def _table_bytes(count: JosephCount) -> float:
    """Endpoint tables: xy of both ends per (view, bin), z of both ends per sinogram."""
    return 4.0 * (4 * count.n_views * count.n_radial_bins + 2 * count.n_sinograms)


def forward_work(count: JosephCount) -> Work:
    """Forward projection: read the image and tables once, write the sinogram."""
    return Work("forward", 4.0 * (count.n_voxels + count.n_lors) + _table_bytes(count),
                FLOPS_PER_SAMPLE["forward"] * count.n_samples, GATHERED_BYTES_PER_SAMPLE * count.n_samples)


def adjoint_work(count: JosephCount) -> Work:
    """Adjoint: zero and write the image, read the sinogram and tables once."""
    return Work("adjoint", 4.0 * (2 * count.n_voxels + count.n_lors) + _table_bytes(count),
                FLOPS_PER_SAMPLE["adjoint"] * count.n_samples, GATHERED_BYTES_PER_SAMPLE * count.n_samples)


def forward_adjoint_work(count: JosephCount) -> Work:
    """A forward projection then an adjoint of the whole sinogram (the pair every EM update runs)."""
    return sequence("forward + adjoint", [forward_work(count), adjoint_work(count)])


def osem_work(count: JosephCount, n_iterations: int = 4) -> Work:
    """AW-OSEM with a multiplicative and an additive term over all subsets.

    Per iteration one forward and one adjoint of the whole sinogram plus
    :data:`EM_SINOGRAM_PASSES` sinogram-sized element-wise passes; one more
    adjoint for the subset sensitivities; the post-filter and image updates
    (a few image-sized passes) are included as 10 image passes per iteration.
    """
    elementwise = Work("EM element-wise", 4.0 * (EM_SINOGRAM_PASSES * count.n_lors + 10 * count.n_voxels),
                       3.0 * count.n_lors)
    per_iteration = [forward_work(count), adjoint_work(count), elementwise]
    return sequence(f"AW-OSEM {n_iterations} iterations + sensitivities",
                    per_iteration * n_iterations + [adjoint_work(count)])


def tof_projection_work(n_voxels: int, n_sinogram_bins: int) -> Work:
    """TOF forward + adjoint, compulsory bytes only: the image read, the TOF sinogram (``n_sinogram_bins`` bins,
    TOF axis included) written, read back, and the image zeroed and written.

    The TOF kernels visit only the planes within 5 sigma of each TOF bin; that sample count is not modelled, so
    this floor is the memory term alone: a lower bound, looser than the non-TOF one.

    Examples
    --------
    >>> work = tof_projection_work(1000, 2000)
    >>> work.compulsory_bytes, work.bound(H100_SXM)
    (28000.0, 'memory')
    """
    return Work("TOF forward + adjoint", 4.0 * (3 * n_voxels + 2 * n_sinogram_bins), 0.0)


def histogram_work(n_words: int, n_events: int, n_bins: int) -> Work:
    """PETLINK histogram: two passes over the words, a zeroed prompt and delay sinogram, one atomic per event."""
    return Work("histogram", 8.0 * n_words + 2 * 4.0 * n_bins + BYTES_PER_RANDOM_ATOMIC * n_events, 0.0)


PEAK_CHAINS = 8
"""Independent FMA chains per thread in kernels/peak.cu."""


def _best_seconds(run, repeats: int) -> float:
    """Shortest of ``repeats`` timings of ``run()`` with CUDA events (after one warm-up run)."""
    cp = cupy()
    run()
    best = float("inf")
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        run()
        stop.record()
        stop.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return best


def measure_gpu(copy_bytes: int = 2 * 2**30, repeats: int = 5) -> GpuSpec:
    """Bandwidth and float32 FLOP/s measured on the current device (needs CuPy and a GPU).

    Bandwidth: a device-to-device copy of ``copy_bytes`` (read + write, so
    ``2 * copy_bytes`` moved). FLOP/s: kernels/peak.cu, 2 flops per FMA.
    """
    cp = cupy()
    source = cp.empty(copy_bytes // 4, dtype=cp.float32)
    target = cp.empty_like(source)
    copy_s = _best_seconds(lambda: cp.copyto(target, source), repeats)
    device = cp.cuda.Device()
    n_sms = device.attributes["MultiProcessorCount"]
    blocks, threads, iterations = 64 * n_sms, 256, 4096
    out = cp.empty(blocks * threads, dtype=cp.float32)
    kernel = get_kernel("peak.cu", "fma_peak")
    args = (out, np.int32(iterations), np.float32(0.999), np.float32(1e-3))
    fma_s = _best_seconds(lambda: kernel((blocks,), (threads,), args), repeats)
    name = cp.cuda.runtime.getDeviceProperties(device.id)["name"].decode()
    return GpuSpec(f"{name} (measured)", 2 * copy_bytes / copy_s,
                   2.0 * PEAK_CHAINS * iterations * blocks * threads / fma_s)


def _report() -> str:  # pragma: no cover - the command-line table
    from petrecon.geometry import default_layout

    layout = default_layout("mmr", span=11)
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    count = count_joseph_samples(layout, grid, view_stride=4)
    lines = [f"mMR span 11: {count.n_lors / 1e6:.2f} M LORs, {count.n_samples / 1e9:.2f} G samples "
             f"({count.n_samples / count.n_lors:.0f} per LOR), image {grid.shape}",
             "| work | GB compulsory | GFLOP | GB gathered | GPU | floor ms | bound | no-reuse ms |",
             "|---|---|---|---|---|---|---|---|"]
    n_span11 = int(np.prod(layout.shape))
    works = [forward_work(count), adjoint_work(count),
             forward_adjoint_work(count),
             osem_work(count), histogram_work(200_000_000, 200_000_000 // 1000 * 999, n_span11)]  # the benchmark stream
    for work in works:
        for gpu in (H100_SXM, H100_PCIE):
            lines.append(f"| {work.what} | {work.compulsory_bytes / 1e9:.2f} | {work.flops / 1e9:.0f} | "
                         f"{work.gathered_bytes / 1e9:.0f} | {gpu.name} | {1e3 * work.floor_s(gpu):.2f} | "
                         f"{work.bound(gpu)} | {1e3 * work.no_reuse_s(gpu):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(_report())
