"""Joseph projection along LOR endpoint arrays on the GPU (kernels/joseph_lors.cu).

The CUDA twins of :func:`petrecon.projectors.forward_lors`,
:func:`~petrecon.projectors.adjoint_lors`,
:func:`~petrecon.projectors.forward_lors_tof` and
:func:`~petrecon.projectors.adjoint_lors_tof`: same arguments, same function
(relative difference < 1e-5, tests/test_cuda_joseph.py), CuPy arrays in and
out (numpy inputs are copied to the device); the CPU functions hand CuPy
inputs to these. One thread per LOR, float32
samples with a float64 per-LOR set-up, image gathers through the read-only
cache, adjoint with float atomicAdd: see kernels/joseph.cuh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petrecon.backend import cupy
from petrecon.cuda.modules import get_kernel, launch
from petrecon.errors import GeometryError
from petrecon.projectors.joseph import as_grid, as_image_shape, as_lor_endpoints
from petrecon.projectors.tof import _as_tof

__all__ = ["forward_lors_cuda", "adjoint_lors_cuda", "forward_lors_tof_cuda", "adjoint_lors_tof_cuda",
           "DeviceGrid", "DeviceTof"]

SOURCE = "joseph_lors.cu"


@dataclass(frozen=True)
class DeviceGrid:
    """Image shape (int32[3]), origin and voxel size (float64[3], mm) on the device."""

    shape: tuple[int, int, int]
    shape_d: object
    origin_d: object
    voxel_d: object

    @classmethod
    def create(cls, image_shape, origin_mm, voxel_size_mm) -> "DeviceGrid":
        cp = cupy()
        shape = as_image_shape(image_shape)
        origin, voxel = as_grid(origin_mm, voxel_size_mm)
        return cls(shape, cp.asarray(shape, dtype=cp.int32), cp.asarray(origin), cp.asarray(voxel))

    def args(self) -> tuple:
        return self.shape_d, self.origin_d, self.voxel_d


@dataclass(frozen=True)
class DeviceTof:
    """TOF bin edges (float32, mm, on the device), their count and the kernel's sigma in mm."""

    edges_d: object
    n_bins: int
    sigma_mm: float

    @classmethod
    def create(cls, tof_bin_edges_mm, tof_fwhm_mm) -> "DeviceTof":
        edges, sigma_mm, _ = _as_tof(tof_bin_edges_mm, tof_fwhm_mm, None, 0, ())
        return cls(cupy().asarray(edges, dtype=np.float32), edges.size - 1, sigma_mm)

    def args(self) -> tuple:
        return self.edges_d, np.int32(self.n_bins), np.float32(self.sigma_mm)


def device_image(image):
    """A 3D image as a C-contiguous float32 CuPy array (GeometryError otherwise)."""
    cp = cupy()
    img = cp.ascontiguousarray(cp.asarray(image, dtype=cp.float32))
    if img.ndim != 3 or img.size == 0:
        raise GeometryError(f"image must be a non-empty 3D array (nx, ny, nz), got shape {img.shape}")
    return img


def device_out(out, shape: tuple[int, ...]):
    """``out`` if it is a C-contiguous float32 CuPy array of ``shape``, else a new one."""
    cp = cupy()
    if out is None:
        return cp.empty(shape, dtype=cp.float32)
    if not (isinstance(out, cp.ndarray) and out.dtype == cp.float32 and out.shape == tuple(shape)
            and out.flags.c_contiguous):
        raise GeometryError(f"out must be a C-contiguous float32 CuPy array of shape {tuple(shape)}")
    return out


def _device_lors(xstart, xend):
    """Validated float32 ``(n, 3)`` CuPy endpoint arrays and the batch shape."""
    return as_lor_endpoints(xstart, xend, xp=cupy())


def _device_values(values, shape: tuple[int, ...]):
    cp = cupy()
    vals = cp.asarray(values)
    if vals.shape != shape:
        raise GeometryError(f"values shape {vals.shape} must be {shape}")
    return cp.ascontiguousarray(vals, dtype=cp.float32)


def _device_offsets(tof_centre_offset_mm, batch_shape: tuple[int, ...], n_lors: int):
    cp = cupy()
    if tof_centre_offset_mm is None:
        return cp.zeros(n_lors, dtype=cp.float32)
    try:
        offsets = cp.broadcast_to(cp.asarray(tof_centre_offset_mm, dtype=cp.float32), batch_shape)
    except ValueError as exc:
        raise GeometryError(f"tof_centre_offset_mm must broadcast to {batch_shape}") from exc
    return cp.ascontiguousarray(offsets.reshape(n_lors))


def forward_lors_cuda(image, xstart, xend, origin_mm, voxel_size_mm, *, out=None):
    """Joseph forward projection on the GPU; see :func:`petrecon.projectors.forward_lors`.

    Returns
    -------
    cupy.ndarray of float32, shape ``xstart.shape[:-1]``
    """
    img = device_image(image)
    xs, xe, batch_shape = _device_lors(xstart, xend)
    grid = DeviceGrid.create(img.shape, origin_mm, voxel_size_mm)
    result = device_out(out, batch_shape)
    n = xs.shape[0]
    launch(get_kernel(SOURCE, "joseph_forward_lors"), n, (img, xs, xe, np.int64(n), *grid.args(), result))
    return result


def adjoint_lors_cuda(values, xstart, xend, image_shape, origin_mm, voxel_size_mm, *, out=None):
    """Exact adjoint of :func:`forward_lors_cuda`; see :func:`petrecon.projectors.adjoint_lors`.

    Returns
    -------
    cupy.ndarray of float32, shape ``image_shape`` (``out`` is overwritten)
    """
    xs, xe, batch_shape = _device_lors(xstart, xend)
    vals = _device_values(values, batch_shape)
    grid = DeviceGrid.create(image_shape, origin_mm, voxel_size_mm)
    result = device_out(out, grid.shape)
    result.fill(0)
    n = xs.shape[0]
    launch(get_kernel(SOURCE, "joseph_adjoint_lors"), n, (vals, xs, xe, np.int64(n), *grid.args(), result))
    return result


def forward_lors_tof_cuda(image, xstart, xend, origin_mm, voxel_size_mm, tof_bin_edges_mm, tof_fwhm_mm,
                          tof_centre_offset_mm=None, *, out=None):
    """TOF Joseph forward projection on the GPU; see :func:`petrecon.projectors.forward_lors_tof`.

    Returns
    -------
    cupy.ndarray of float32, shape ``xstart.shape[:-1] + (n_tof_bins,)``
    """
    img = device_image(image)
    xs, xe, batch_shape = _device_lors(xstart, xend)
    grid = DeviceGrid.create(img.shape, origin_mm, voxel_size_mm)
    tof = DeviceTof.create(tof_bin_edges_mm, tof_fwhm_mm)
    n = xs.shape[0]
    offsets = _device_offsets(tof_centre_offset_mm, batch_shape, n)
    result = device_out(out, batch_shape + (tof.n_bins,))
    launch(get_kernel(SOURCE, "joseph_forward_tof_lors"), n,
           (img, xs, xe, offsets, np.int64(n), *grid.args(), *tof.args(), result), grid_y=tof.n_bins)
    return result


def adjoint_lors_tof_cuda(values, xstart, xend, image_shape, origin_mm, voxel_size_mm, tof_bin_edges_mm,
                          tof_fwhm_mm, tof_centre_offset_mm=None, *, out=None):
    """Exact adjoint of :func:`forward_lors_tof_cuda`; see :func:`petrecon.projectors.adjoint_lors_tof`.

    Returns
    -------
    cupy.ndarray of float32, shape ``image_shape`` (``out`` is overwritten)
    """
    xs, xe, batch_shape = _device_lors(xstart, xend)
    tof = DeviceTof.create(tof_bin_edges_mm, tof_fwhm_mm)
    vals = _device_values(values, batch_shape + (tof.n_bins,))
    n = xs.shape[0]
    offsets = _device_offsets(tof_centre_offset_mm, batch_shape, n)
    grid = DeviceGrid.create(image_shape, origin_mm, voxel_size_mm)
    result = device_out(out, grid.shape)
    result.fill(0)
    launch(get_kernel(SOURCE, "joseph_adjoint_tof_lors"), n,
           (vals, xs, xe, offsets, np.int64(n), *grid.args(), *tof.args(), result))
    return result
