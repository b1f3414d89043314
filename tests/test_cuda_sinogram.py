"""The CUDA sinogram front end and GPU AW-OSEM agree with the CPU path (ARCHITECTURE contracts 1, 3, 4, 5).

The endpoint tables are checked on the CPU; everything that launches a
kernel is marked ``gpu`` and skipped without CuPy and a GPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.backend import gpu_available
from petrecon.cuda.sinogram import axial_table, transaxial_table
from petrecon.geometry import SinogramLayout, TofSpec, default_layout, get_scanner
from petrecon.operators import GaussianFilter, adjointness_error
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon import OsemProtocol, osem
from petrecon.volume import ImageGrid

needs_gpu = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
RELATIVE_TOLERANCE = 1e-5
"""Contract 4 (expected ~1e-6: float32 samples against the CPU's float64 ones)."""


def tof_layout(view_mashing: int = 1) -> SinogramLayout:
    """The test scanner with an mCT-like TOF axis (9 bins of 312 ps, 555 ps FWHM)."""
    scanner = dataclasses.replace(get_scanner("test"), tof=TofSpec(n_bins=9, bin_width_ps=312.0, fwhm_ps=555.0))
    plain = default_layout("test")
    return SinogramLayout(scanner, plain.span, plain.max_ring_difference, plain.n_radial_bins, view_mashing,
                          use_tof=True)


def mashed_layout() -> SinogramLayout:
    plain = default_layout("test")
    return SinogramLayout(plain.scanner, 3, plain.max_ring_difference, plain.n_radial_bins, 2)


LAYOUTS = {"test": default_layout("test"), "test-span1": default_layout("test", span=1),
           "test-mashed": mashed_layout(), "test-tof": tof_layout()}


def grid_of(layout: SinogramLayout) -> ImageGrid:
    return ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)


def relative_difference(gpu, cpu) -> float:
    gpu = np.asarray(gpu.get() if hasattr(gpu, "get") else gpu, dtype=np.float64)
    cpu = np.asarray(cpu, dtype=np.float64)
    return float(np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_endpoint_tables_rebuild_lor_endpoints_bit_for_bit(name):
    layout = LAYOUTS[name]
    views = np.arange(0, layout.n_views, 5)
    xy1, xy2 = transaxial_table(layout, views)
    z1, z2 = axial_table(layout)
    xstart, xend = layout.lor_endpoints_mm(views=views)
    for xy, z, expected in ((xy1, z1, xstart), (xy2, z2, xend)):
        rebuilt = np.empty_like(expected)
        rebuilt[..., :2] = xy[None]
        rebuilt[..., 2] = z[:, None, None]
        np.testing.assert_array_equal(rebuilt, expected)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_cuda_projector_matches_cpu_on_random_images_and_sinograms(name):
    layout = LAYOUTS[name]
    grid = grid_of(layout)
    cpu = SinogramProjector(layout, grid, backend="cpu")
    gpu = SinogramProjector(layout, grid, backend="cuda")
    rng = np.random.default_rng(0)
    image = rng.random(grid.shape, dtype=np.float32)
    sinogram = rng.random(cpu.out_shape, dtype=np.float32)
    assert relative_difference(gpu.forward(image), cpu.forward(image)) < RELATIVE_TOLERANCE
    assert relative_difference(gpu.adjoint(sinogram), cpu.adjoint(sinogram)) < RELATIVE_TOLERANCE


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("scanner", ["mmr", "mct-tof"])
def test_cuda_projector_matches_cpu_at_the_full_scanner_size(scanner):
    # The clinical sizes (mMR span 11: 837 sinograms x 344 bins, 344 x 344 x 127 voxels; mCT: 13 TOF bins):
    # endpoint tables, index arithmetic and atomics at full size. Every 21st view keeps the CPU's share short.
    layout = default_layout(scanner)
    grid = grid_of(layout)
    views = np.arange(0, layout.n_views, 21)
    cpu = SinogramProjector(layout, grid, backend="cpu").subset_operator(views)
    gpu = SinogramProjector(layout, grid, backend="cuda").subset_operator(views)
    rng = np.random.default_rng(4)
    image = rng.random(grid.shape, dtype=np.float32)
    sinogram = rng.random(cpu.out_shape, dtype=np.float32)
    assert relative_difference(gpu.forward(image), cpu.forward(image)) < RELATIVE_TOLERANCE
    assert relative_difference(gpu.adjoint(sinogram), cpu.adjoint(sinogram)) < RELATIVE_TOLERANCE


@pytest.mark.gpu
@needs_gpu
def test_cuda_subset_operators_match_cpu_and_keep_cupy_arrays():
    import cupy

    layout = LAYOUTS["test-tof"]
    grid = grid_of(layout)
    views = np.arange(3, layout.n_views, 8)
    cpu = SinogramProjector(layout, grid, backend="cpu").subset_operator(views)
    gpu = SinogramProjector(layout, grid, backend="cuda").subset_operator(views)
    assert gpu.backend == "cuda" and gpu.out_shape == cpu.out_shape
    image = cupy.asarray(np.random.default_rng(1).random(grid.shape, dtype=np.float32))
    projected = gpu.forward(image)
    assert isinstance(projected, cupy.ndarray)
    assert relative_difference(projected, cpu.forward(image.get())) < RELATIVE_TOLERANCE
    assert isinstance(gpu.adjoint(projected), cupy.ndarray)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", ["test", "test-tof", "test-mashed"])
def test_cuda_sinogram_projector_is_adjoint(name):
    layout = LAYOUTS[name]
    # numpy in, numpy out; float32 sums and atomics in any order: ~1e-6 relative.
    assert adjointness_error(SinogramProjector(layout, grid_of(layout), backend="cuda")) < 1e-5


@pytest.mark.gpu
@needs_gpu
def test_cuda_tof_bins_sum_to_the_non_tof_sinogram():
    # As in tests/test_sinogram_projector.py: the object lies >= 4.5 sigma inside the outer TOF
    # edges of every LOR, so the Gaussian tail cut off is < 1e-5.
    grid = grid_of(LAYOUTS["test"])
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    image = (np.hypot(x - 10, y) < 40).astype(np.float32)
    tof = SinogramProjector(LAYOUTS["test-tof"], grid, backend="cuda").forward(image)
    plain = SinogramProjector(LAYOUTS["test"], grid, backend="cuda").forward(image)
    np.testing.assert_allclose(tof.sum(axis=0), plain, rtol=1e-4, atol=1e-3 * plain.max())


@pytest.mark.gpu
@needs_gpu
def test_gaussian_filter_on_cupy_matches_scipy():
    import cupy

    image = np.random.default_rng(2).random((30, 28, 12), dtype=np.float32)
    blur = GaussianFilter(image.shape, 5.0, (2.0, 2.0, 2.5))
    on_gpu = blur.forward(cupy.asarray(image))
    assert isinstance(on_gpu, cupy.ndarray)
    # Same separable float32 convolution; the 1-D passes may accumulate in float32 on the GPU
    # and in float64 in scipy: ~1e-7 per pass.
    assert relative_difference(on_gpu, blur.forward(image)) < 1e-5


@pytest.mark.gpu
@needs_gpu
def test_aw_osem_on_the_gpu_equals_the_cpu_reconstruction():
    import cupy

    layout = LAYOUTS["test"]
    grid = grid_of(layout)
    rng = np.random.default_rng(3)
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    truth = ((np.hypot(x, y) < 60) * 1.0 + (np.hypot(x - 25, y) < 12) * 3.0).astype(np.float32)
    cpu = SinogramProjector(layout, grid, backend="cpu")
    multiplicative = (0.3 + 0.7 * rng.random(cpu.out_shape)).astype(np.float32)  # norm x attenuation
    additive = np.full(cpu.out_shape, 0.2, np.float32)  # randoms + scatter
    prompts = rng.poisson(multiplicative * cpu.forward(truth) + additive).astype(np.float32)
    protocol = OsemProtocol(2, 4, 5.0)
    on_cpu = osem(prompts, cpu, multiplicative=multiplicative, additive=additive, protocol=protocol)
    on_gpu = osem(cupy.asarray(prompts), SinogramProjector(layout, grid, backend="cuda"),
                  multiplicative=cupy.asarray(multiplicative), additive=cupy.asarray(additive), protocol=protocol)
    assert isinstance(on_gpu, cupy.ndarray)
    # Projector differences of ~1e-6 per pass enter 8 multiplicative EM updates; float32
    # tolerance for the whole reconstruction: 1e-4 relative.
    assert relative_difference(on_gpu, on_cpu) < 1e-4
