"""Exact line integrals and point labels of a packed phantom (numba kernels).

Along the segment ``p(t) = xstart + t (xend - xstart)``, ``t`` in [0, 1],
every solid is entered and left once (it is convex), so each part (an
intersection of solids) covers one interval ``[t_in, t_out]``: the largest
entry and the smallest exit of its solids. A region is the union of its
parts' intervals. With regions in painter's order, the line integral of a
region value ``v`` is the sum over the elementary intervals between all
entry/exit points of ``(length) x v[topmost region covering the interval]``:
exact (closed-form intersections, no sampling), whatever the overlaps.

Parts whose bounding sphere misses the line are skipped before any
intersection is computed (most parts miss most LORs).

A posed phantom (:class:`petrecon.simulate.phantom.Pose`) is handled by
mapping segment end points and sample points into its own frame, where its
solids are axis-aligned; a rigid map keeps lengths, so integrals stay exact.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from petrecon.simulate.phantom import CYLINDER, ELLIPSOID, PackedPhantom

_EMPTY = (1.0, 0.0)


@njit(cache=True)
def _quadratic_interval(a, b, c):
    """Interval where ``a t^2 + b t + c <= 0`` for ``a > 0``; (1, 0) if empty."""
    if a <= 0.0:
        if c <= 0.0:
            return -1e300, 1e300
        return 1.0, 0.0
    disc = b * b - 4.0 * a * c
    if disc <= 0.0:
        return 1.0, 0.0
    root = math.sqrt(disc)
    return (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)


@njit(cache=True)
def _slab(p, d, half):
    """Interval where ``|p + t d| <= half``."""
    if d == 0.0:
        if abs(p) <= half:
            return -1e300, 1e300
        return 1.0, 0.0
    t1 = (-half - p) / d
    t2 = (half - p) / d
    if t1 > t2:
        return t2, t1
    return t1, t2


@njit(cache=True)
def solid_interval(kind, params, start, direction):
    """Parameter interval ``[t_in, t_out]`` of the line inside one solid (unclipped)."""
    px = (start[0] - params[0]) / params[3]
    py = (start[1] - params[1]) / params[4]
    pz = (start[2] - params[2]) / params[5]
    dx = direction[0] / params[3]
    dy = direction[1] / params[4]
    dz = direction[2] / params[5]
    if kind == ELLIPSOID:
        return _quadratic_interval(dx * dx + dy * dy + dz * dz, 2.0 * (px * dx + py * dy + pz * dz),
                                   px * px + py * py + pz * pz - 1.0)
    if kind == CYLINDER:
        lo, hi = _quadratic_interval(dx * dx + dy * dy, 2.0 * (px * dx + py * dy), px * px + py * py - 1.0)
        zlo, zhi = _slab(pz, dz, 1.0)
        return max(lo, zlo), min(hi, zhi)
    lo, hi = _slab(px, dx, 1.0)
    ylo, yhi = _slab(py, dy, 1.0)
    zlo, zhi = _slab(pz, dz, 1.0)
    return max(lo, ylo, zlo), min(hi, yhi, zhi)


@njit(cache=True)
def _misses_bound(bound, start, direction, length2):
    """True if the infinite line misses the part's bounding sphere."""
    wx = bound[0] - start[0]
    wy = bound[1] - start[1]
    wz = bound[2] - start[2]
    proj = (wx * direction[0] + wy * direction[1] + wz * direction[2]) / length2
    cx = wx - proj * direction[0]
    cy = wy - proj * direction[1]
    cz = wz - proj * direction[2]
    return cx * cx + cy * cy + cz * cz > bound[3] * bound[3]


@njit(cache=True)
def _ray_integrals(start, direction, kinds, params, part_first, part_count, part_region, part_bound,
                   values, out, t_in, t_out, regions, breaks):
    """Line integrals of every value column along one segment, written into ``out`` (mm x value)."""
    length2 = direction[0] ** 2 + direction[1] ** 2 + direction[2] ** 2
    for c in range(out.shape[0]):
        out[c] = 0.0
    if length2 == 0.0:
        return
    n_hit = 0
    for q in range(part_first.shape[0]):
        if _misses_bound(part_bound[q], start, direction, length2):
            continue
        lo, hi = 0.0, 1.0
        for s in range(part_first[q], part_first[q] + part_count[q]):
            a, b = solid_interval(kinds[s], params[s], start, direction)
            lo = max(lo, a)
            hi = min(hi, b)
        if hi > lo:
            t_in[n_hit] = lo
            t_out[n_hit] = hi
            regions[n_hit] = part_region[q]
            n_hit += 1
    if n_hit == 0:
        return
    for k in range(n_hit):
        breaks[2 * k] = t_in[k]
        breaks[2 * k + 1] = t_out[k]
    n_breaks = 2 * n_hit
    for i in range(1, n_breaks):  # insertion sort: a handful of points
        value = breaks[i]
        j = i - 1
        while j >= 0 and breaks[j] > value:
            breaks[j + 1] = breaks[j]
            j -= 1
        breaks[j + 1] = value
    length = math.sqrt(length2)
    for i in range(n_breaks - 1):
        width = breaks[i + 1] - breaks[i]
        if width <= 0.0:
            continue
        middle = 0.5 * (breaks[i] + breaks[i + 1])
        top = -1
        for k in range(n_hit):
            if t_in[k] <= middle <= t_out[k] and regions[k] > top:
                top = regions[k]
        if top >= 0:
            for c in range(out.shape[0]):
                out[c] += width * length * values[top, c]


@njit(parallel=True, cache=True)
def _line_integrals(xstart, xend, kinds, params, part_first, part_count, part_region, part_bound, values):
    n = xstart.shape[0]
    n_parts = part_first.shape[0]
    result = np.zeros((n, values.shape[1]), np.float64)
    for i in prange(n):
        start = np.empty(3)
        direction = np.empty(3)
        for a in range(3):
            start[a] = xstart[i, a]
            direction[a] = xend[i, a] - xstart[i, a]
        t_in = np.empty(n_parts)
        t_out = np.empty(n_parts)
        regions = np.empty(n_parts, np.int64)
        breaks = np.empty(2 * n_parts)
        _ray_integrals(start, direction, kinds, params, part_first, part_count, part_region, part_bound,
                       values, result[i], t_in, t_out, regions, breaks)
    return result


def line_integrals(xstart: np.ndarray, xend: np.ndarray, packed: PackedPhantom, values: np.ndarray) -> np.ndarray:
    """Exact line integrals ``int v(p) dl`` (mm x value) of region values along segments.

    Parameters
    ----------
    xstart, xend : numpy.ndarray
        Segment end points, shape ``(..., 3)``, mm.
    packed : PackedPhantom
        The phantom's solids (:meth:`Phantom.packed`).
    values : numpy.ndarray
        ``(n_regions, n_columns)`` region values (e.g. activity and mu).

    Returns
    -------
    numpy.ndarray
        float64, shape ``xstart.shape[:-1] + (n_columns,)``.

    Examples
    --------
    A water cylinder of radius 10 mm holding a sphere of radius 5 mm (value 3), on a diameter:

    >>> from petrecon.simulate.phantom import phantom_from_dict
    >>> doc = {"regions": [
    ...     {"activity": 1.0, "shapes": [{"type": "cylinder", "centre_mm": [0, 0, 0], "radius_mm": 10, "length_mm": 50}]},
    ...     {"activity": 3.0, "shapes": [{"type": "sphere", "centre_mm": [0, 0, 0], "radius_mm": 5}]}]}
    >>> phantom = phantom_from_dict(doc)
    >>> values = phantom.region_values("activity")[:, None]
    >>> float(line_integrals(np.array([[-50.0, 0, 0]]), np.array([[50.0, 0, 0]]), phantom.packed(), values)[0, 0])
    40.0
    """
    xstart = np.asarray(xstart, np.float64)
    xend = np.asarray(xend, np.float64)
    shape = np.broadcast_shapes(xstart.shape, xend.shape)
    xs = np.ascontiguousarray(packed.to_phantom_frame(np.broadcast_to(xstart, shape).reshape(-1, 3)))
    xe = np.ascontiguousarray(packed.to_phantom_frame(np.broadcast_to(xend, shape).reshape(-1, 3)))
    values = np.ascontiguousarray(values, np.float64).reshape(len(values), -1)
    result = _line_integrals(xs, xe, packed.solid_kind, packed.solid_params, packed.part_first, packed.part_count,
                             packed.part_region, packed.part_bound, values)
    return result.reshape(shape[:-1] + (values.shape[1],))


@njit(cache=True)
def _inside_part(point, q, kinds, params, part_first, part_count):
    """Whether ``point`` lies in every solid of part ``q``."""
    zero = np.zeros(3)
    for s in range(part_first[q], part_first[q] + part_count[q]):
        lo, hi = solid_interval(kinds[s], params[s], point, zero)
        if not (lo <= 0.0 <= hi):
            return False
    return True


@njit(cache=True)
def _label(point, kinds, params, part_first, part_count, part_region, part_box):
    """Topmost region containing ``point``, -1 if none (parts are ordered by region)."""
    for q in range(part_first.shape[0] - 1, -1, -1):
        box = part_box[q]
        if (point[0] < box[0] or point[1] < box[1] or point[2] < box[2]
                or point[0] > box[3] or point[1] > box[4] or point[2] > box[5]):
            continue
        if _inside_part(point, q, kinds, params, part_first, part_count):
            return part_region[q]
    return -1


@njit(cache=True)
def _uniform_label(corners, kinds, params, part_first, part_count, part_region, part_box):
    """Region filling the whole voxel with these 8 ``corners`` (phantom frame), -1 for none, -2 if it may hold
    several.

    The highest part whose bounding box meets the corners' box decides: if it
    holds all 8 corners it holds the voxel (parts are convex) and no higher
    part reaches the voxel.
    """
    low = np.empty(3)
    high = np.empty(3)
    for a in range(3):
        low[a] = corners[:, a].min()
        high[a] = corners[:, a].max()
    for q in range(part_first.shape[0] - 1, -1, -1):
        box = part_box[q]
        if (high[0] < box[0] or high[1] < box[1] or high[2] < box[2]
                or low[0] > box[3] or low[1] > box[4] or low[2] > box[5]):
            continue
        for n in range(8):
            if not _inside_part(corners[n], q, kinds, params, part_first, part_count):
                return -2
        return part_region[q]
    return -1


@njit(cache=True)
def _to_frame(to_frame, x, y, z, out):
    """``out = to_frame[:, :3] @ (x, y, z) + to_frame[:, 3]``."""
    for a in range(3):
        out[a] = to_frame[a, 0] * x + to_frame[a, 1] * y + to_frame[a, 2] * z + to_frame[a, 3]


@njit(parallel=True, cache=True)
def _voxel_means(shape, origin, voxel, n_sub, kinds, params, part_first, part_count, part_region, part_box,
                 to_frame, values):
    """Mean of the region values over ``n_sub**3`` sub-samples per voxel; ``values[-1]`` is "outside".

    Voxels lying wholly inside one region (or outside all) take its value
    without sampling: the same result, computed once.
    """
    nx, ny, nz = shape
    n_values = values.shape[1]
    out = np.zeros((nx, ny, nz, n_values), np.float32)
    weight = 1.0 / n_sub**3
    outside = values.shape[0] - 1
    for i in prange(nx):
        point = np.empty(3)
        corners = np.empty((8, 3))
        acc = np.empty(n_values)
        for j in range(ny):
            for k in range(nz):
                for n in range(8):
                    _to_frame(to_frame, origin[0] + (i - 0.5 + (n & 1)) * voxel[0],
                              origin[1] + (j - 0.5 + (n >> 1 & 1)) * voxel[1],
                              origin[2] + (k - 0.5 + (n >> 2 & 1)) * voxel[2], corners[n])
                uniform = _uniform_label(corners, kinds, params, part_first, part_count, part_region, part_box)
                if uniform != -2:
                    row = uniform if uniform >= 0 else outside
                    for v in range(n_values):
                        out[i, j, k, v] = values[row, v]
                    continue
                acc[:] = 0.0
                for a in range(n_sub):
                    x = origin[0] + (i + (a + 0.5) / n_sub - 0.5) * voxel[0]
                    for b in range(n_sub):
                        y = origin[1] + (j + (b + 0.5) / n_sub - 0.5) * voxel[1]
                        for c in range(n_sub):
                            _to_frame(to_frame, x, y, origin[2] + (k + (c + 0.5) / n_sub - 0.5) * voxel[2], point)
                            label = _label(point, kinds, params, part_first, part_count, part_region, part_box)
                            row = label if label >= 0 else outside
                            for v in range(n_values):
                                acc[v] += values[row, v]
                for v in range(n_values):
                    out[i, j, k, v] = acc[v] * weight
    return out


def voxel_means(packed: PackedPhantom, values: np.ndarray, shape, origin_mm, voxel_size_mm,
                supersampling: int) -> np.ndarray:
    """Partial-volume voxel values: the mean of region values over ``supersampling**3`` points per voxel.

    The grid (``shape``, ``origin_mm``, ``voxel_size_mm``) is in scanner mm; sample points are mapped into the
    phantom's frame (its pose).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n_regions + 1, n_columns)``; the last row is the value outside every region.

    Returns
    -------
    numpy.ndarray
        float32, ``shape + (n_columns,)``.
    """
    return _voxel_means(tuple(int(n) for n in shape), np.asarray(origin_mm, np.float64),
                        np.asarray(voxel_size_mm, np.float64), int(supersampling), packed.solid_kind,
                        packed.solid_params, packed.part_first, packed.part_count, packed.part_region,
                        packed.part_box, packed.to_frame, np.ascontiguousarray(values, np.float64))
