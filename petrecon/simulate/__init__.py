"""Analytic simulation: exact chord lengths through shapes, never the reconstruction projector."""

from petrecon.simulate.chords import chord_length_cylinder_mm, chord_length_sphere_mm

__all__ = ["chord_length_cylinder_mm", "chord_length_sphere_mm"]
