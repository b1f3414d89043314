"""Place a phantom, defined in patient coordinates, in the gantry frame of an acquisition.

Shipped phantoms are written in DICOM patient coordinates (LPS, mm: +x the
patient's left, +y posterior, +z superior). A simulated acquisition puts the
phantom into the scanner as a patient lies on the table: through the one
gantry <-> patient transform of :mod:`petrecon.geometry.patient`, with the
patient position and the bed position. Every solid is symmetric under a
reflection of any axis about its centre, so the transform (axis flips and a
shift) moves centres only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from petrecon.geometry.patient import patient_to_gantry_affine
from petrecon.simulate.phantom import Phantom, Solid


def place_phantom(phantom: Phantom, patient_position: str = "HFS", bed_position_mm: float = 0.0) -> Phantom:
    """The phantom in gantry coordinates for ``patient_position`` at ``bed_position_mm``.

    Examples
    --------
    >>> from petrecon.simulate.phantom import load_phantom
    >>> placed = place_phantom(load_phantom("nema-iec"), "HFS", 100.0)
    >>> [round(v, 1) for v in placed.regions[-1].parts[0][0].centre_mm] == [
    ...     round(v, 1) for v in np.multiply(load_phantom("nema-iec").regions[-1].parts[0][0].centre_mm, [1, 1, -1])
    ...     + [0.0, 0.0, 100.0]]
    True
    """
    return transformed_phantom(phantom, patient_to_gantry_affine(patient_position, bed_position_mm))


def transformed_phantom(phantom: Phantom, affine: np.ndarray) -> Phantom:
    """The phantom with every solid's centre mapped by the 4 x 4 ``affine`` (axis flips and shifts only)."""
    linear = np.asarray(affine, np.float64)[:3, :3]
    if not np.allclose(np.abs(linear), np.eye(3)):
        raise ValueError("only axis flips and shifts keep the axis-aligned solids what they are")

    def move(solid: Solid) -> Solid:
        centre = linear @ np.asarray(solid.centre_mm, np.float64) + np.asarray(affine, np.float64)[:3, 3]
        return dataclasses.replace(solid, centre_mm=tuple(float(v) for v in centre))

    regions = tuple(dataclasses.replace(region, parts=tuple(tuple(move(s) for s in part) for part in region.parts))
                    for region in phantom.regions)
    return dataclasses.replace(phantom, regions=regions)
