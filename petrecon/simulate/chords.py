"""Exact chord lengths of line segments through a sphere or a z-axis cylinder.

Convenience wrappers over the simulator's ray tracer
(:func:`petrecon.simulate.raytrace.line_integrals`, ARCHITECTURE contract 6,
no inverse crime): the length of the part of each segment
``p(t) = xstart + t (xend - xstart)``, ``t`` in [0, 1], inside the solid,
in closed form.
"""

from __future__ import annotations

import numpy as np

from petrecon.simulate.materials import get_material
from petrecon.simulate.phantom import CYLINDER, ELLIPSOID, Phantom, Region, Solid


def _chords(xstart: np.ndarray, xend: np.ndarray, solid: Solid) -> np.ndarray:
    from petrecon.simulate.raytrace import line_integrals

    water = get_material("water")
    phantom = Phantom("solid", "", (Region("solid", ((solid,),), 1.0, water, water.ct_hu, water.mr_class),))
    return line_integrals(xstart, xend, phantom.packed(), np.ones((1, 1)))[..., 0]


def chord_length_sphere_mm(xstart: np.ndarray, xend: np.ndarray, centre_mm, radius_mm: float) -> np.ndarray:
    """Length (mm) of each segment ``(..., 3)`` inside a sphere.

    Examples
    --------
    >>> round(float(chord_length_sphere_mm(np.array([[-100.0, 0, 0]]), np.array([[100.0, 0, 0]]), (0, 0, 0), 10.0)[0]), 9)
    20.0
    """
    radius_mm = float(radius_mm)
    return _chords(xstart, xend, Solid(ELLIPSOID, tuple(float(c) for c in centre_mm), (radius_mm,) * 3))


def chord_length_cylinder_mm(
    xstart: np.ndarray, xend: np.ndarray, centre_mm, radius_mm: float, length_mm: float
) -> np.ndarray:
    """Length (mm) of each segment ``(..., 3)`` inside a finite cylinder whose axis is parallel to z.

    Examples
    --------
    >>> round(float(chord_length_cylinder_mm(np.array([[0.0, 0, -50]]), np.array([[0.0, 0, 50]]), (0, 0, 0), 10.0, 30.0)[0]), 9)
    30.0
    """
    half_extent = (float(radius_mm), float(radius_mm), float(length_mm) / 2.0)
    return _chords(xstart, xend, Solid(CYLINDER, tuple(float(c) for c in centre_mm), half_extent))
