"""Joseph's method: forward and exact adjoint line projection along LORs.

For every line of response (LOR) from ``xstart`` to ``xend`` the dominant
axis ``a`` is the axis along which the LOR crosses the most voxel planes
(the largest component of the direction in *voxel index* units, so that the
LOR moves at most one voxel in the other two axes per step). The LOR is
sampled where it crosses the planes of voxel centres along ``a``; at each
plane the image is bilinearly interpolated in the other two axes and the
sample is weighted with the step length along the LOR between two planes,
``step_mm = voxel_size_mm[a] / |cos(angle between LOR and axis a)|``
(Joseph, IEEE TMI 1(3), 1982, pp. 192-196).

Conventions
-----------
* Image axes are ``(x, y, z)``; voxel ``[i, j, k]`` has its centre at
  ``origin_mm + (i, j, k) * voxel_size_mm``.
* Only planes whose LOR crossing lies on the segment ``[xstart, xend]`` are
  sampled: the projection is a line integral from ``xstart`` to ``xend``
  (detector positions normally lie outside the image, so this is the whole
  chord through the image).
* Interpolation neighbours outside the image count as zero, so the edge
  voxels are seen with partial weight by LORs grazing the image boundary.
* A zero-length LOR (``xstart == xend``) projects to 0 and back-projects
  nothing.
* Weights are computed in float64 from the float32 endpoints by the same
  function for the forward and the adjoint, so the adjoint is the exact
  transpose of the forward; only the order of the float accumulation
  differs (forward sums per LOR in float64; adjoint accumulates into a
  float32 image).

Parallelisation
---------------
The forward projector runs ``prange`` over LORs. The adjoint splits the LORs
into one contiguous chunk per numba thread; chunk 0 writes into the output
image and every other chunk into its own private float32 image copy, which
are summed into the output afterwards (in parallel over voxels). This is
race-free without atomics and costs ``(n_threads - 1)`` extra images of
memory (60 MB each for a 344 x 344 x 127 image).

CuPy arrays in (image, values or endpoints) are projected on the GPU by
:mod:`petrecon.cuda.joseph`, the same function, CuPy arrays out.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from petrecon.backend import is_cupy_array
from petrecon.errors import GeometryError

__all__ = ["forward_lors", "adjoint_lors"]

_MARGIN = 1e-6
"""Margin in voxels keeping the branch-free inner planes safely inside the image."""


@njit(cache=True, fastmath=False)
def _axis_range(p0_a: float, p0_o: float, slope_o: float, p_min: float, p_max: float,
                lo: float, hi: float):
    """Narrow the plane range ``[lo, hi]`` to where ``p_min <= p_o <= p_max``.

    The other-axis index coordinate at plane ``i`` is
    ``p_o = p0_o + (i - p0_a) * slope_o``.
    """
    if slope_o == 0.0:
        if p0_o < p_min or p0_o > p_max:
            return 1.0, 0.0
        return lo, hi
    t_lo = p0_a + (p_min - p0_o) / slope_o
    t_hi = p0_a + (p_max - p0_o) / slope_o
    if t_lo > t_hi:
        t_lo, t_hi = t_hi, t_lo
    return max(lo, t_lo), min(hi, t_hi)


@njit(cache=True, fastmath=False)
def lor_setup(xs, xe, origin_mm, voxel_size_mm, shape):
    """Per-LOR constants of the plane-by-plane traversal.

    Parameters
    ----------
    xs, xe : ndarray of float32, shape (3,)
        LOR start and end points in mm.
    origin_mm, voxel_size_mm : ndarray of float64, shape (3,)
        Centre of voxel ``[0, 0, 0]`` and voxel size.
    shape : tuple of int
        Image shape ``(nx, ny, nz)``.

    Returns
    -------
    tuple
        ``(a, b, c, i_first, i_last, p0_a, p0_b, slope_b, p0_c, slope_c,
        step_mm, t0_mm, dt_mm, i_inner_first, i_inner_last)`` where ``a``
        is the dominant axis, ``b`` and ``c`` the other two, planes
        ``i_first..i_last`` (inclusive) are sampled, on planes
        ``i_inner_first..i_inner_last`` all four interpolation neighbours
        are inside the image, the other-axis index coordinates at plane ``i`` are
        ``p0_b + (i - p0_a) * slope_b`` (same for ``c``), and the signed
        distance of that sample from the LOR midpoint (positive towards
        ``xe``) is ``t0_mm + (i - p0_a) * dt_mm``. An empty traversal has
        ``i_first > i_last``.
    """
    p0 = np.empty(3)
    dp = np.empty(3)
    length_sq_mm2 = 0.0
    for ax in range(3):
        p0[ax] = (np.float64(xs[ax]) - origin_mm[ax]) / voxel_size_mm[ax]
        dp[ax] = (np.float64(xe[ax]) - np.float64(xs[ax])) / voxel_size_mm[ax]
        d_mm = np.float64(xe[ax]) - np.float64(xs[ax])
        length_sq_mm2 += d_mm * d_mm
    length_mm = math.sqrt(length_sq_mm2)
    a = 0
    if abs(dp[1]) > abs(dp[a]):
        a = 1
    if abs(dp[2]) > abs(dp[a]):
        a = 2
    b = (a + 1) % 3
    c = (a + 2) % 3
    if dp[a] == 0.0:
        return a, b, c, 1, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1, 0
    slope_b = dp[b] / dp[a]
    slope_c = dp[c] / dp[a]
    lo = max(0.0, min(p0[a], p0[a] + dp[a]))
    hi = min(shape[a] - 1.0, max(p0[a], p0[a] + dp[a]))
    lo, hi = _axis_range(p0[a], p0[b], slope_b, -1.0, shape[b], lo, hi)
    lo, hi = _axis_range(p0[a], p0[c], slope_c, -1.0, shape[c], lo, hi)
    if lo > hi:
        return a, b, c, 1, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1, 0
    # Inner planes keep a margin far above rounding errors (~1e-13 voxel)
    # inside [0, n - 1), so their lower neighbour index is >= 0 and the
    # upper one <= n - 1 for sure.
    in_lo, in_hi = _axis_range(p0[a], p0[b], slope_b, _MARGIN, shape[b] - 1.0 - _MARGIN, lo, hi)
    in_lo, in_hi = _axis_range(p0[a], p0[c], slope_c, _MARGIN, shape[c] - 1.0 - _MARGIN, in_lo, in_hi)
    step_mm = length_mm / abs(dp[a])
    dt_mm = length_mm / dp[a]
    t0_mm = -0.5 * length_mm
    return (a, b, c, int(math.ceil(lo)), int(math.floor(hi)), p0[a], p0[b],
            slope_b, p0[c], slope_c, step_mm, t0_mm, dt_mm,
            int(math.ceil(in_lo)), int(math.floor(in_hi)))


@njit(cache=True, fastmath=False)
def bilinear(p_b: float, p_c: float, n_b: int, n_c: int, stride_b: int, stride_c: int,
             inside: bool):
    """Flat offsets and weights of the four bilinear neighbours of ``(p_b, p_c)``.

    Neighbours outside ``[0, n_b) x [0, n_c)`` get weight 0 and an in-image
    offset. ``inside=True`` promises that all four neighbours are inside
    and skips those checks (same weights, fewer instructions).

    Returns
    -------
    tuple
        ``(o00, o01, o10, o11, w00, w01, w10, w11)``: offsets relative to
        the plane start and interpolation weights, first index along ``b``.
    """
    f_b = math.floor(p_b)
    f_c = math.floor(p_c)
    u_b = p_b - f_b
    u_c = p_c - f_c
    i_b = int(f_b)
    i_c = int(f_c)
    if inside:
        o00 = i_b * stride_b + i_c * stride_c
        w_b0 = 1.0 - u_b
        w_c0 = 1.0 - u_c
        return (o00, o00 + stride_c, o00 + stride_b, o00 + stride_b + stride_c,
                w_b0 * w_c0, w_b0 * u_c, u_b * w_c0, u_b * u_c)
    wb0 = (1.0 - u_b) if 0 <= i_b < n_b else 0.0
    wb1 = u_b if 0 <= i_b + 1 < n_b else 0.0
    wc0 = (1.0 - u_c) if 0 <= i_c < n_c else 0.0
    wc1 = u_c if 0 <= i_c + 1 < n_c else 0.0
    ob0 = min(max(i_b, 0), n_b - 1) * stride_b
    ob1 = min(max(i_b + 1, 0), n_b - 1) * stride_b
    oc0 = min(max(i_c, 0), n_c - 1) * stride_c
    oc1 = min(max(i_c + 1, 0), n_c - 1) * stride_c
    return (ob0 + oc0, ob0 + oc1, ob1 + oc0, ob1 + oc1,
            wb0 * wc0, wb0 * wc1, wb1 * wc0, wb1 * wc1)


@njit(cache=True, fastmath=False)
def _forward_one(image_flat, xs, xe, origin_mm, voxel_size_mm, shape, strides) -> float:
    """Line integral of ``image_flat`` along one LOR (float64)."""
    (a, b, c, i_first, i_last, p0_a, p0_b, slope_b, p0_c, slope_c,
     step_mm, _t0, _dt, i_in_first, i_in_last) = lor_setup(xs, xe, origin_mm, voxel_size_mm, shape)
    total = 0.0
    for i_a in range(i_first, i_last + 1):
        s = i_a - p0_a
        o00, o01, o10, o11, w00, w01, w10, w11 = bilinear(
            p0_b + s * slope_b, p0_c + s * slope_c,
            shape[b], shape[c], strides[b], strides[c],
            i_in_first <= i_a <= i_in_last)
        base = i_a * strides[a]
        total += step_mm * (w00 * image_flat[base + o00] + w01 * image_flat[base + o01]
                            + w10 * image_flat[base + o10] + w11 * image_flat[base + o11])
    return total


@njit(cache=True, fastmath=False)
def _adjoint_one(value: float, image_flat, xs, xe, origin_mm, voxel_size_mm, shape, strides) -> None:
    """Add ``value`` times the weights of one LOR into ``image_flat``."""
    (a, b, c, i_first, i_last, p0_a, p0_b, slope_b, p0_c, slope_c,
     step_mm, _t0, _dt, i_in_first, i_in_last) = lor_setup(xs, xe, origin_mm, voxel_size_mm, shape)
    scaled = step_mm * value
    for i_a in range(i_first, i_last + 1):
        s = i_a - p0_a
        o00, o01, o10, o11, w00, w01, w10, w11 = bilinear(
            p0_b + s * slope_b, p0_c + s * slope_c,
            shape[b], shape[c], strides[b], strides[c],
            i_in_first <= i_a <= i_in_last)
        base = i_a * strides[a]
        image_flat[base + o00] += w00 * scaled
        image_flat[base + o01] += w01 * scaled
        image_flat[base + o10] += w10 * scaled
        image_flat[base + o11] += w11 * scaled


@njit(parallel=True, cache=True, fastmath=False)
def _forward_kernel(image_flat, xs, xe, origin_mm, voxel_size_mm, shape, out) -> None:
    strides = (shape[1] * shape[2], shape[2], 1)
    for i in prange(xs.shape[0]):
        out[i] = _forward_one(image_flat, xs[i], xe[i], origin_mm, voxel_size_mm, shape, strides)


@njit(parallel=True, cache=True, fastmath=False)
def _adjoint_kernel(values, xs, xe, origin_mm, voxel_size_mm, shape, n_chunks, out_flat) -> None:
    strides = (shape[1] * shape[2], shape[2], 1)
    n_voxels = out_flat.shape[0]
    n_lors = xs.shape[0]
    private = np.zeros((n_chunks - 1, n_voxels), dtype=np.float32)
    out_flat[:] = 0.0
    for chunk in prange(n_chunks):
        target = out_flat if chunk == 0 else private[chunk - 1]
        for i in range(chunk * n_lors // n_chunks, (chunk + 1) * n_lors // n_chunks):
            if values[i] != 0.0:
                _adjoint_one(np.float64(values[i]), target, xs[i], xe[i],
                             origin_mm, voxel_size_mm, shape, strides)
    add_private_images(out_flat, private)


@njit(parallel=True, cache=True, fastmath=False)
def add_private_images(out_flat, private) -> None:
    """Add the rows of ``private`` (per-chunk images) into ``out_flat``, parallel over voxels."""
    if private.shape[0] == 0:
        return
    for j in prange(out_flat.shape[0]):
        total = out_flat[j]
        for k in range(private.shape[0]):
            total += private[k, j]
        out_flat[j] = total


def as_lor_endpoints(xstart, xend, xp=np) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validate LOR endpoints and flatten them to float32 ``(n, 3)`` arrays of module ``xp`` (numpy or CuPy).

    Returns
    -------
    xstart, xend : ndarray of float32, shape (n, 3), C-contiguous
    batch_shape : tuple of int
        ``xstart.shape[:-1]``, the shape of one value per LOR.
    """
    xs = xp.asarray(xstart)
    xe = xp.asarray(xend)
    if xs.ndim < 1 or xs.shape[-1] != 3:
        raise GeometryError(f"xstart must have shape (..., 3), got {xs.shape}")
    if xe.shape != xs.shape:
        raise GeometryError(f"xend shape {xe.shape} differs from xstart shape {xs.shape}")
    batch_shape = xs.shape[:-1]
    xs = xp.ascontiguousarray(xs.reshape(-1, 3), dtype=xp.float32)
    xe = xp.ascontiguousarray(xe.reshape(-1, 3), dtype=xp.float32)
    if not (bool(xp.isfinite(xs).all()) and bool(xp.isfinite(xe).all())):
        raise GeometryError("LOR endpoints must be finite")
    return xs, xe, batch_shape


def as_grid(origin_mm, voxel_size_mm) -> tuple[np.ndarray, np.ndarray]:
    """Validate the image grid; return float64 ``(3,)`` origin and voxel size."""
    origin = np.asarray(origin_mm, dtype=np.float64)
    voxel = np.asarray(voxel_size_mm, dtype=np.float64)
    if origin.shape != (3,) or not np.isfinite(origin).all():
        raise GeometryError(f"origin_mm must be 3 finite numbers, got {origin_mm!r}")
    if voxel.shape != (3,) or not (np.isfinite(voxel).all() and (voxel > 0).all()):
        raise GeometryError(f"voxel_size_mm must be 3 positive numbers, got {voxel_size_mm!r}")
    return origin, voxel


def as_image_shape(image_shape) -> tuple[int, int, int]:
    """Validate a 3D image shape with every dimension >= 1."""
    shape = tuple(int(n) for n in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise GeometryError(f"image_shape must be 3 positive sizes (nx, ny, nz), got {image_shape!r}")
    return shape


def as_image(image) -> np.ndarray:
    """Validate a 3D image and return it as float32 C-contiguous."""
    img = np.asarray(image)
    if img.ndim != 3 or img.size == 0:
        raise GeometryError(f"image must be a non-empty 3D array (nx, ny, nz), got shape {img.shape}")
    return np.ascontiguousarray(img, dtype=np.float32)


def check_out(out, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Return ``out`` if it is a C-contiguous float32 array of ``shape``, else a new one."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not (isinstance(out, np.ndarray) and out.dtype == np.float32
            and out.shape == shape and out.flags.c_contiguous):
        raise GeometryError(f"{name} must be a C-contiguous float32 array of shape {shape}")
    return out


def forward_lors(image, xstart, xend, origin_mm, voxel_size_mm, *, out=None) -> np.ndarray:
    """Joseph forward projection of an image along LORs.

    Parameters
    ----------
    image : array_like, shape (nx, ny, nz)
        Image, cast to float32; axes ``(x, y, z)``, z the scanner axis.
    xstart, xend : array_like, shape (..., 3)
        LOR end points in mm.
    origin_mm : array_like, shape (3,)
        Centre of voxel ``[0, 0, 0]`` in mm.
    voxel_size_mm : array_like, shape (3,)
        Voxel size in mm, all positive.
    out : ndarray of float32, shape ``xstart.shape[:-1]``, optional
        Written in place and returned.

    Returns
    -------
    ndarray of float32, shape ``xstart.shape[:-1]``
        Line integrals in image units x mm; 0 for LORs missing the image and
        for zero-length LORs.

    Raises
    ------
    GeometryError
        (a ``ValueError``) for bad shapes, non-finite points or voxel sizes.
    """
    if is_cupy_array(image) or is_cupy_array(xstart):  # the same function on the GPU, CuPy out
        from petrecon.cuda.joseph import forward_lors_cuda

        return forward_lors_cuda(image, xstart, xend, origin_mm, voxel_size_mm, out=out)
    img = as_image(image)
    xs, xe, batch_shape = as_lor_endpoints(xstart, xend)
    origin, voxel = as_grid(origin_mm, voxel_size_mm)
    result = check_out(out, batch_shape, "out")
    flat_out = result.reshape(-1)
    _forward_kernel(img.reshape(-1), xs, xe, origin, voxel, img.shape, flat_out)
    return result


def adjoint_lors(values, xstart, xend, image_shape, origin_mm, voxel_size_mm, *, out=None) -> np.ndarray:
    """Exact adjoint (back projection) of :func:`forward_lors`.

    Parameters
    ----------
    values : array_like, shape ``xstart.shape[:-1]``
        One value per LOR, cast to float32.
    xstart, xend : array_like, shape (..., 3)
        LOR end points in mm.
    image_shape : tuple of int
        ``(nx, ny, nz)``.
    origin_mm, voxel_size_mm : array_like, shape (3,)
        As in :func:`forward_lors`.
    out : ndarray of float32, shape ``image_shape``, optional
        Overwritten (not accumulated into) and returned.

    Returns
    -------
    ndarray of float32, shape ``image_shape``
        The back-projected image.
    """
    if is_cupy_array(values) or is_cupy_array(xstart):  # the same function on the GPU, CuPy out
        from petrecon.cuda.joseph import adjoint_lors_cuda

        return adjoint_lors_cuda(values, xstart, xend, image_shape, origin_mm, voxel_size_mm, out=out)
    xs, xe, batch_shape = as_lor_endpoints(xstart, xend)
    vals = np.asarray(values)
    if vals.shape != batch_shape:
        raise GeometryError(f"values shape {vals.shape} must equal xstart.shape[:-1] = {batch_shape}")
    vals = np.ascontiguousarray(vals.reshape(-1), dtype=np.float32)
    shape = as_image_shape(image_shape)
    origin, voxel = as_grid(origin_mm, voxel_size_mm)
    result = check_out(out, shape, "out")
    _adjoint_kernel(vals, xs, xe, origin, voxel, shape, n_adjoint_chunks(xs.shape[0]),
                    result.reshape(-1))
    return result


def n_adjoint_chunks(n_lors: int) -> int:
    """Number of private-image chunks for the adjoint: one per thread, at least 1."""
    return max(1, min(numba.get_num_threads(), n_lors))
