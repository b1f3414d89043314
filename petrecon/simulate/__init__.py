"""Analytic simulation of declarative phantoms: exact chord lengths, never the reconstruction projector.

Modules: :mod:`~petrecon.simulate.phantom` (TOML phantoms, solids),
:mod:`~petrecon.simulate.materials` (mu at 511 keV, HU, MR class),
:mod:`~petrecon.simulate.raytrace` (exact line integrals, voxel sampling),
:mod:`~petrecon.simulate.voxelise`, :mod:`~petrecon.simulate.projection`,
:mod:`~petrecon.simulate.resolution`, :mod:`~petrecon.simulate.detection`
(normalisation, singles, randoms), :mod:`~petrecon.simulate.scatter`,
:mod:`~petrecon.simulate.listmode`, :mod:`~petrecon.simulate.performance`
and :mod:`~petrecon.simulate.acquisition` (:func:`simulate_study`);
:mod:`~petrecon.simulate.multibed` simulates whole-body studies of several beds.
"""

from petrecon.simulate.chords import chord_length_cylinder_mm, chord_length_sphere_mm
from petrecon.simulate.phantom import Phantom, load_phantom, shipped_phantoms
from petrecon.simulate.voxelise import voxelise
from petrecon.simulate.acquisition import (  # noqa: E402 (after the modules it builds on)
    SimulatedStudy, additive_sinogram, multiplicative_sinogram, simulate_study, simulate_to_file)

__all__ = ["Phantom", "SimulatedStudy", "additive_sinogram", "chord_length_cylinder_mm", "chord_length_sphere_mm",
           "load_phantom", "multiplicative_sinogram", "shipped_phantoms", "simulate_study", "simulate_to_file",
           "voxelise"]
