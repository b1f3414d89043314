"""Place a phantom, defined in patient coordinates, in the gantry frame of an acquisition.

Shipped phantoms are written in DICOM patient coordinates (LPS, mm: +x the
patient's left, +y posterior, +z superior), optionally posed
(:class:`~petrecon.simulate.phantom.Pose`, a rotation and shift in that
frame). A simulated acquisition puts the phantom into the scanner as a
patient lies on the table: through the one gantry <-> patient transform of
:mod:`petrecon.geometry.patient`, ``gantry = D patient + t`` with ``D`` a
diagonal of axis signs. With the pose ``patient = R q + s`` of a point ``q``
of the phantom's own frame::

    gantry = (D R D) (D q) + (D s + t)

so the solids' centres are reflected by ``D`` (every solid is symmetric
under an axis reflection about its centre) and the pose becomes the proper
rotation ``D R D`` (the Euler angles about x, y, z times ``sy sz``, ``sx sz``,
``sx sy``) with the shift ``D s + t``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from petrecon.geometry.patient import patient_to_gantry_affine
from petrecon.simulate.phantom import Phantom, Pose, Solid


def place_phantom(phantom: Phantom, patient_position: str = "HFS", bed_position_mm: float = 0.0) -> Phantom:
    """The phantom in gantry coordinates for ``patient_position`` at ``bed_position_mm``.

    Examples
    --------
    >>> from petrecon.simulate.phantom import load_phantom
    >>> phantom = load_phantom("nema-iec", pose=Pose((0.0, 5.0, 0.0), (0.0, 0.0, 20.0)))
    >>> placed = place_phantom(phantom, "HFS", 100.0)
    >>> placed.pose
    Pose(rotation_deg=(-0.0, -5.0, 0.0), shift_mm=(0.0, 0.0, 80.0))
    """
    to_gantry = patient_to_gantry_affine(patient_position, bed_position_mm)
    sx, sy, sz = np.diag(to_gantry)[:3]
    ax, ay, az = phantom.pose.rotation_deg
    pose = Pose((float(sy * sz * ax), float(sx * sz * ay), float(sx * sy * az)),
                tuple(float(v) for v in np.diag(to_gantry)[:3] * phantom.pose.shift_mm + to_gantry[:3, 3]))

    def reflect(solid: Solid) -> Solid:
        return dataclasses.replace(solid, centre_mm=tuple(float(v) for v in np.multiply((sx, sy, sz),
                                                                                         solid.centre_mm)))

    regions = tuple(dataclasses.replace(region, parts=tuple(tuple(reflect(s) for s in part) for part in region.parts))
                    for region in phantom.regions)
    return dataclasses.replace(phantom, regions=regions, pose=pose)
