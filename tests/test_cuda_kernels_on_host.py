"""The Joseph kernels' source, run on the CPU: same function as the numba kernels, without a GPU.

:mod:`petrecon.cuda.host` compiles the very text CuPy compiles with g++ and
runs the threads one after the other. This checks the kernels' arithmetic,
edge handling, TOF weights and sinogram indexing against numba on machines
without a GPU; what it cannot check (concurrency of the atomics, the GPU's
rounding of erff, NVRTC itself) is left to the ``gpu``-marked tests.
Skipped when g++ is absent.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from petrecon.cuda.host import compile_for_host
from petrecon.cuda.sinogram import axial_table, transaxial_table
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.projectors import adjoint_lors, adjoint_lors_tof, forward_lors, forward_lors_tof
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.volume import ImageGrid

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="g++ is not installed")

BLOCK = 256

SHAPE = (40, 36, 24)
VOXEL_MM = np.array([2.0, 2.2, 2.5])
ORIGIN_MM = -(np.array(SHAPE) - 1) / 2 * VOXEL_MM + np.array([0.3, -0.7, 0.1])
EDGES_MM = (np.arange(14) - 6.5) * 312 * 0.1499
SIGMA_MM = 555 * 0.1499 / (2 * np.sqrt(2 * np.log(2)))
RELATIVE_TOLERANCE = 1e-5  # contract 4, as for the GPU itself


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return compile_for_host(["joseph_lors.cu", "joseph_sinogram.cu"], tmp_path_factory.mktemp("host"))


def run(host, name: str, n_threads: int, *args, n_tof: int = 1) -> None:
    """Launch ``name`` with one thread per item (and per TOF bin for the TOF forward), as the wrappers do."""
    host.launch(name, ((n_threads + BLOCK - 1) // BLOCK, n_tof), BLOCK, *args)


def grid_args(shape=SHAPE, origin=ORIGIN_MM, voxel=VOXEL_MM) -> tuple:
    return (np.asarray(shape, np.int32), np.ascontiguousarray(origin, np.float64),
            np.ascontiguousarray(voxel, np.float64))


def relative_difference(a, b) -> float:

    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def mixed_lors(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Random, near-axial, axis-aligned (through voxel centres), image-missing and zero-length LORs."""
    rng = np.random.default_rng(seed)
    half_mm = np.array(SHAPE) * VOXEL_MM / 2
    centres = rng.uniform(-half_mm, half_mm, size=(n, 3))
    d = rng.normal(size=(n, 3))
    d[: n // 10, :2] *= 0.05
    d[n // 10: n // 5] = np.eye(3)[rng.integers(0, 3, n // 10)]
    centres[n // 10: n // 5] = ORIGIN_MM + rng.integers(0, 20, (n // 10, 3)) * VOXEL_MM
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    centres[n // 5: n // 5 + 50] += 500.0
    xs, xe = centres - 150.0 * d, centres + 150.0 * d
    xe[-20:] = xs[-20:]
    return xs.astype(np.float32), xe.astype(np.float32)


def test_lor_kernels_compute_the_numba_function(host):
    xs, xe = mixed_lors(1)
    n = xs.shape[0]
    rng = np.random.default_rng(2)
    image = rng.random(SHAPE, dtype=np.float32)
    values = rng.random(n).astype(np.float32)
    out = np.empty(n, np.float32)
    run(host, "joseph_forward_lors", n, image, xs, xe, np.int64(n), *grid_args(), out)
    assert relative_difference(out, forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM)) < RELATIVE_TOLERANCE
    back = np.zeros(SHAPE, np.float32)
    run(host, "joseph_adjoint_lors", n, values, xs, xe, np.int64(n), *grid_args(), back)
    cpu_back = adjoint_lors(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    assert relative_difference(back, cpu_back) < RELATIVE_TOLERANCE


@pytest.mark.parametrize("fwhm_scale", [1.0, 0.3])
def test_tof_lor_kernels_compute_the_numba_function(host, fwhm_scale):
    xs, xe = mixed_lors(3)
    n = xs.shape[0]
    rng = np.random.default_rng(4)
    offsets = rng.uniform(-20, 20, n).astype(np.float32)
    image = rng.random(SHAPE, dtype=np.float32)
    values = rng.random((n, 13)).astype(np.float32)
    sigma = np.float32(SIGMA_MM * fwhm_scale)
    tof = (EDGES_MM.astype(np.float32), 13, sigma)
    cpu_args = (EDGES_MM, SIGMA_MM * fwhm_scale * 2 * np.sqrt(2 * np.log(2)), offsets)
    out = np.empty((n, 13), np.float32)
    run(host, "joseph_forward_tof_lors", n, image, xs, xe, offsets, np.int64(n), *grid_args(), *tof, out, n_tof=13)
    cpu = forward_lors_tof(image, xs, xe, ORIGIN_MM, VOXEL_MM, *cpu_args)
    assert relative_difference(out, cpu) < RELATIVE_TOLERANCE
    missing = forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM) == 0  # LORs missing the image, zero length
    assert missing.sum() >= 70 and np.all(out[missing] == 0)
    back = np.zeros(SHAPE, np.float32)
    run(host, "joseph_adjoint_tof_lors", n, values, xs, xe, offsets, np.int64(n), *grid_args(), *tof, back)
    cpu_back = adjoint_lors_tof(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM, *cpu_args)
    assert relative_difference(back, cpu_back) < RELATIVE_TOLERANCE


def _tof_test_layout() -> SinogramLayout:
    import dataclasses

    from petrecon.geometry import TofSpec, get_scanner

    scanner = dataclasses.replace(get_scanner("test"), tof=TofSpec(n_bins=9, bin_width_ps=312.0, fwhm_ps=555.0))
    plain = default_layout("test")
    return SinogramLayout(scanner, plain.span, plain.max_ring_difference, plain.n_radial_bins, 2, use_tof=True)


@pytest.mark.parametrize("layout", [default_layout("test"), _tof_test_layout()], ids=["non-tof", "tof-mashed"])
def test_sinogram_kernels_compute_the_cpu_front_end(host, layout):
    scanner = layout.scanner
    grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    views = np.arange(1, layout.n_views, 3)
    cpu = SinogramProjector(layout, grid, views=views, backend="cpu")
    xy1, xy2 = transaxial_table(layout, views)
    z1, z2 = axial_table(layout)
    geometry = (xy1, xy2, z1, z2, layout.n_sinograms, len(views), layout.n_radial_bins,
                *grid_args(grid.shape, grid.origin_mm, grid.voxel_size_mm))
    n_lors = layout.n_sinograms * len(views) * layout.n_radial_bins
    rng = np.random.default_rng(5)
    image = rng.random(grid.shape, dtype=np.float32)
    sinogram = rng.random(cpu.out_shape, dtype=np.float32)
    out = np.empty(cpu.out_shape, np.float32)
    back = np.zeros(grid.shape, np.float32)
    if layout.use_tof:
        tof = (np.asarray(layout.tof_bin_edges_mm, np.float32), layout.n_tof_bins,
               np.float32(scanner.tof.fwhm_mm / (2 * np.sqrt(2 * np.log(2)))))
        run(host, "joseph_forward_tof_sinogram", n_lors, image, *geometry, *tof, out, n_tof=layout.n_tof_bins)
        run(host, "joseph_adjoint_tof_sinogram", n_lors, sinogram, *geometry, *tof, back)
    else:
        run(host, "joseph_forward_sinogram", n_lors, image, *geometry, out)
        run(host, "joseph_adjoint_sinogram", n_lors, sinogram, *geometry, back)
    assert relative_difference(out, cpu.forward(image)) < RELATIVE_TOLERANCE
    assert relative_difference(back, cpu.adjoint(sinogram)) < RELATIVE_TOLERANCE
