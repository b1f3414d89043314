"""The CUDA Joseph kernels along LOR arrays compute the numba kernels' function (ARCHITECTURE contract 4).

All tests need CuPy and a GPU (marker ``gpu``); they are skipped without one.
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.backend import gpu_available
from petrecon.errors import GeometryError
from petrecon.projectors import adjoint_lors, adjoint_lors_tof, forward_lors, forward_lors_tof

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]

SHAPE = (40, 36, 24)
VOXEL_MM = np.array([2.0, 2.2, 2.5])
ORIGIN_MM = -(np.array(SHAPE) - 1) / 2 * VOXEL_MM + np.array([0.3, -0.7, 0.1])
HALF_BOX_MM = np.array(SHAPE) * VOXEL_MM / 2
MCT_EDGES_MM = (np.arange(14) - 6.5) * 312 * 0.1499  # 13 bins of 312 ps
MCT_FWHM_MM = 555 * 0.1499
RELATIVE_TOLERANCE = 1e-5
"""Contract 4. The GPU samples in float32 (positions < 1e-4 voxel from the CPU's float64 ones,
sums of ~50 float32 terms): expected differences are ~1e-6."""


def relative_difference(gpu, cpu) -> float:
    """``||gpu - cpu|| / ||cpu||`` in float64."""
    gpu = np.asarray(gpu.get(), dtype=np.float64)
    cpu = np.asarray(cpu, dtype=np.float64)
    return float(np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu))


def mixed_lors(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Random LORs from outside the image, plus near-axial, axis-aligned, missing and zero-length ones."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-HALF_BOX_MM, HALF_BOX_MM, size=(n, 3))
    d = rng.normal(size=(n, 3))
    d[: n // 10, :2] *= 0.05  # near-axial: z dominant
    d[n // 10: n // 5] = np.eye(3)[rng.integers(0, 3, n // 10)]  # exactly along an axis
    centres[n // 10: n // 5] = ORIGIN_MM + rng.integers(0, 20, (n // 10, 3)) * VOXEL_MM  # through voxel centres
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    centres[n // 5: n // 5 + 50] += 500.0  # miss the image
    xs, xe = centres - 150.0 * d, centres + 150.0 * d
    xe[-20:] = xs[-20:]  # zero length
    return xs.astype(np.float32), xe.astype(np.float32)


@pytest.fixture(scope="module")
def cuda():
    import petrecon.cuda.joseph as cuda_joseph

    return cuda_joseph


def test_forward_matches_numba_on_a_random_image(cuda):
    xs, xe = mixed_lors(1)
    image = np.random.default_rng(2).random(SHAPE, dtype=np.float32)
    cpu = forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    gpu = cuda.forward_lors_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    assert gpu.shape == cpu.shape
    assert relative_difference(gpu, cpu) < RELATIVE_TOLERANCE
    assert np.array_equal(gpu.get() == 0, cpu == 0)  # the same LORs miss the image


def test_adjoint_matches_numba_on_random_values(cuda):
    xs, xe = mixed_lors(3)
    values = np.random.default_rng(4).random(xs.shape[0]).astype(np.float32)
    cpu = adjoint_lors(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    gpu = cuda.adjoint_lors_cuda(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    assert relative_difference(gpu, cpu) < RELATIVE_TOLERANCE


def test_tof_forward_and_adjoint_match_numba(cuda):
    xs, xe = mixed_lors(5)
    rng = np.random.default_rng(6)
    offsets_mm = rng.uniform(-20, 20, xs.shape[0]).astype(np.float32)
    image = rng.random(SHAPE, dtype=np.float32)
    values = rng.random((xs.shape[0], 13)).astype(np.float32)
    args = (MCT_EDGES_MM, 0.3 * MCT_FWHM_MM, offsets_mm)  # a narrow kernel: the bins differ a lot
    cpu = forward_lors_tof(image, xs, xe, ORIGIN_MM, VOXEL_MM, *args)
    gpu = cuda.forward_lors_tof_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM, *args)
    assert relative_difference(gpu, cpu) < RELATIVE_TOLERANCE
    cpu_back = adjoint_lors_tof(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM, *args)
    gpu_back = cuda.adjoint_lors_tof_cuda(values, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM, *args)
    assert relative_difference(gpu_back, cpu_back) < RELATIVE_TOLERANCE


def _dot_mismatch(a_x, y, x, at_y) -> float:
    lhs = float(np.vdot(a_x.get().astype(np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), at_y.get().astype(np.float64)))
    return abs(lhs - rhs) / abs(lhs)


def test_cuda_operators_are_adjoint(cuda):
    xs, xe = mixed_lors(7)
    rng = np.random.default_rng(8)
    x = rng.random(SHAPE, dtype=np.float32)
    y = rng.random(xs.shape[0]).astype(np.float32)
    a_x = cuda.forward_lors_cuda(x, xs, xe, ORIGIN_MM, VOXEL_MM)
    at_y = cuda.adjoint_lors_cuda(y, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    # Same weights both ways; float32 sums and atomics in any order: ~1e-6.
    assert _dot_mismatch(a_x, y, x, at_y) < 1e-5
    y_tof = rng.random((xs.shape[0], 13)).astype(np.float32)
    a_x = cuda.forward_lors_tof_cuda(x, xs, xe, ORIGIN_MM, VOXEL_MM, MCT_EDGES_MM, MCT_FWHM_MM)
    at_y = cuda.adjoint_lors_tof_cuda(y_tof, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM, MCT_EDGES_MM, MCT_FWHM_MM)
    assert _dot_mismatch(a_x, y_tof, x, at_y) < 1e-5


def test_tof_bins_sum_to_the_non_tof_projection(cuda):
    # LORs through the image centre, 300 mm long; 13 bins of 46.8 mm cover +-304 mm, so every
    # sample (within 150 mm of the midpoint) lies >= 154 mm = 4.4 sigma (sigma 35.3 mm) inside
    # the outer edges: the Gaussian tail lost is < 1e-5 of a sample.
    rng = np.random.default_rng(9)
    d = rng.normal(size=(500, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    xs, xe = (-150.0 * d).astype(np.float32), (150.0 * d).astype(np.float32)
    image = rng.random(SHAPE, dtype=np.float32)
    tof = cuda.forward_lors_tof_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM, MCT_EDGES_MM, MCT_FWHM_MM)
    plain = cuda.forward_lors_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    np.testing.assert_allclose(tof.sum(axis=-1).get(), plain.get(), rtol=2e-5)


def test_batch_shapes_and_out_arrays_are_kept(cuda):
    import cupy

    xs, xe = mixed_lors(10, n=600)
    image = cupy.asarray(np.random.default_rng(11).random(SHAPE, dtype=np.float32))
    out = cupy.empty((20, 30), cupy.float32)
    result = cuda.forward_lors_cuda(image, xs.reshape(20, 30, 3), xe.reshape(20, 30, 3), ORIGIN_MM, VOXEL_MM, out=out)
    assert result is out
    flat = cuda.forward_lors_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    np.testing.assert_array_equal(result.get().ravel(), flat.get())


def test_bad_inputs_raise_geometry_errors(cuda):
    xs, xe = mixed_lors(12, n=100)
    image = np.ones(SHAPE, np.float32)
    with pytest.raises(GeometryError, match="differs"):
        cuda.forward_lors_cuda(image, xs, xe[:50], ORIGIN_MM, VOXEL_MM)
    xs[0, 0] = np.nan
    with pytest.raises(GeometryError, match="finite"):
        cuda.forward_lors_cuda(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    with pytest.raises(GeometryError, match="values shape"):
        cuda.adjoint_lors_cuda(np.ones(3, np.float32), xe, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    with pytest.raises(GeometryError, match="voxel_size_mm"):
        cuda.forward_lors_cuda(image, xe, xe, ORIGIN_MM, (1.0, 0.0, 1.0))
