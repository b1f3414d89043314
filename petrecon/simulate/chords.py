"""Exact chord lengths of line segments through simple solids.

The simulator's line integrals (ARCHITECTURE contract 6, no inverse crime):
the length of the part of each segment ``xstart -> xend`` inside a solid,
computed in closed form from the segment's parametrisation
``p(t) = xstart + t (xend - xstart)``, ``t`` in [0, 1].
"""

from __future__ import annotations

import numpy as np


def _overlap_length(t_enter: np.ndarray, t_exit: np.ndarray, segment_length: np.ndarray) -> np.ndarray:
    """Length of [t_enter, t_exit] clipped to [0, 1], times the segment length."""
    return np.clip(np.minimum(t_exit, 1.0) - np.maximum(t_enter, 0.0), 0.0, None) * segment_length


def _quadratic_interval(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roots of ``a t^2 + b t + c = 0`` as an interval; empty (1, 0) where none are real."""
    discriminant = b * b - 4.0 * a * c
    has_roots = (discriminant > 0) & (a > 0)
    root = np.sqrt(np.where(has_roots, discriminant, 0.0))
    safe_a = np.where(has_roots, a, 1.0)
    t_enter = np.where(has_roots, (-b - root) / (2.0 * safe_a), 1.0)
    t_exit = np.where(has_roots, (-b + root) / (2.0 * safe_a), 0.0)
    return t_enter, t_exit


def chord_length_sphere_mm(xstart: np.ndarray, xend: np.ndarray, centre_mm, radius_mm: float) -> np.ndarray:
    """Length (mm) of each segment inside a sphere.

    Examples
    --------
    >>> round(float(chord_length_sphere_mm(np.array([[-100.0, 0, 0]]), np.array([[100.0, 0, 0]]), (0, 0, 0), 10.0)[0]), 9)
    20.0
    """
    start = np.asarray(xstart, np.float64) - np.asarray(centre_mm, np.float64)
    direction = np.asarray(xend, np.float64) - np.asarray(xstart, np.float64)
    a = np.sum(direction * direction, axis=-1)
    b = 2.0 * np.sum(start * direction, axis=-1)
    c = np.sum(start * start, axis=-1) - radius_mm**2
    t_enter, t_exit = _quadratic_interval(a, b, c)
    return _overlap_length(t_enter, t_exit, np.sqrt(a))


def chord_length_cylinder_mm(
    xstart: np.ndarray, xend: np.ndarray, centre_mm, radius_mm: float, length_mm: float
) -> np.ndarray:
    """Length (mm) of each segment inside a finite cylinder whose axis is parallel to z.

    Examples
    --------
    >>> round(float(chord_length_cylinder_mm(np.array([[0.0, 0, -50]]), np.array([[0.0, 0, 50]]), (0, 0, 0), 10.0, 30.0)[0]), 9)
    30.0
    """
    start = np.asarray(xstart, np.float64) - np.asarray(centre_mm, np.float64)
    direction = np.asarray(xend, np.float64) - np.asarray(xstart, np.float64)
    a = direction[..., 0] ** 2 + direction[..., 1] ** 2
    b = 2.0 * (start[..., 0] * direction[..., 0] + start[..., 1] * direction[..., 1])
    c = start[..., 0] ** 2 + start[..., 1] ** 2 - radius_mm**2
    t_enter, t_exit = _quadratic_interval(a, b, c)
    # A segment parallel to the axis is inside the disc for all t or for none.
    parallel_inside = (a == 0) & (c <= 0)
    t_enter = np.where(parallel_inside, -np.inf, t_enter)
    t_exit = np.where(parallel_inside, np.inf, t_exit)
    half = length_mm / 2.0
    dz = direction[..., 2]
    safe_dz = np.where(dz == 0, 1.0, dz)
    t_z1 = (-half - start[..., 2]) / safe_dz
    t_z2 = (half - start[..., 2]) / safe_dz
    inside_slab = np.abs(start[..., 2]) <= half
    slab_enter = np.where(dz == 0, np.where(inside_slab, -np.inf, 1.0), np.minimum(t_z1, t_z2))
    slab_exit = np.where(dz == 0, np.where(inside_slab, np.inf, 0.0), np.maximum(t_z1, t_z2))
    return _overlap_length(np.maximum(t_enter, slab_enter), np.minimum(t_exit, slab_exit), np.sqrt(a + dz * dz))
