"""The one transform between petrecon's gantry frame and DICOM patient coordinates (LPS).

The gantry frame is STIR's (:mod:`petrecon.geometry.scanner`): x left to
right facing the gantry from the bed, y top to bottom, z from deep in the
gantry out towards the bed. DICOM's patient frame is LPS: +L the patient's
left, +P posterior, +S superior. For each patient position (STIR
``DiscretisedDensity.inl``, ``swap_axes_based_on_orientation``; reference/
scanners.md, "Patient coordinates")::

    position   (L, P, S)
    HFS        ( x,  y, -(z - h))
    HFP        (-x, -y, -(z - h))
    FFS        (-x,  y,   z - h )
    FFP        ( x, -y,   z - h )

``h`` is the bed position, the Siemens header key ``start horizontal bed
position`` (mm) used as written: the gantry centre (z = 0) lies at S = h for
a head-first patient, as NiftyPET writes mMR images (S = -z + hbed;
NiftyPET adds a further ~1 mm that petrecon does not). For feet-first
positions petrecon keeps the same table-fixed coordinate ``z - h``, so the
gantry centre lies at S = -h; no public source states the feet-first sign
(*unverified*). Decubitus positions are refused.

Every seam between the two frames goes through this module: DICOM and
NIfTI output, CT/MR mu-maps and label masks read in LPS, ROIs given in
patient coordinates, whole-body stitching and the simulator's phantom
placement. A :class:`~petrecon.volume.Volume` in the gantry frame carries
its frame in ``metadata["patient_position"]`` and
``metadata["bed_position_mm"]`` (:func:`volume_patient_frame`).

Before petrecon 0.2 the head-first positions were written with S = +z and
the bed position was ignored: images were mirrored head to feet.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from petrecon.errors import ParameterError

#: Supported DICOM PatientPosition values.
PATIENT_POSITIONS: tuple[str, ...] = ("HFS", "HFP", "FFS", "FFP")

#: Gantry axis signs of (L, P, S) per position (module docstring).
_AXIS_SIGNS: dict[str, tuple[float, float, float]] = {
    "HFS": (1.0, 1.0, -1.0), "HFP": (-1.0, -1.0, -1.0), "FFS": (-1.0, 1.0, 1.0), "FFP": (1.0, -1.0, 1.0)}

#: Bed positions beyond this (mm) are not a table position of any Biograph.
MAX_ABS_BED_POSITION_MM = 5000.0


def check_patient_position(position: str | None, *, default: str = "HFS", source: str = "patient position") -> str:
    """The upper-case PatientPosition, ``default`` when None or empty.

    Raises
    ------
    ParameterError
        For anything but HFS, HFP, FFS and FFP; names ``source``.

    Examples
    --------
    >>> check_patient_position("ffs")
    'FFS'
    """
    value = str(position or default).strip().upper()
    if value not in _AXIS_SIGNS:
        raise ParameterError(f"{source}: {value!r} is not supported; supported: {', '.join(PATIENT_POSITIONS)}")
    return value


def check_bed_position_mm(bed_position_mm: float | None, *, source: str = "bed position") -> float:
    """The bed position as a finite float (0 when None), within +-5 m.

    Raises
    ------
    ParameterError
        When not a finite number within +-``MAX_ABS_BED_POSITION_MM``.
    """
    if bed_position_mm is None:
        return 0.0
    try:
        value = float(bed_position_mm)
    except (TypeError, ValueError):
        raise ParameterError(f"{source}: {bed_position_mm!r} is not a number (mm)") from None
    if not np.isfinite(value) or abs(value) > MAX_ABS_BED_POSITION_MM:
        raise ParameterError(f"{source}: {value} mm is not a table position (finite, within "
                             f"+-{MAX_ABS_BED_POSITION_MM:g} mm)")
    return value


def gantry_to_patient_affine(position: str = "HFS", bed_position_mm: float = 0.0) -> np.ndarray:
    """4 x 4 matrix taking gantry (x, y, z, 1) in mm to DICOM (L, P, S, 1) in mm.

    Examples
    --------
    >>> gantry_to_patient_affine("HFS", 100.0) @ [10.0, 20.0, 30.0, 1.0]
    array([10., 20., 70.,  1.])
    >>> gantry_to_patient_affine("FFS", 100.0) @ [10.0, 20.0, 30.0, 1.0]
    array([-10.,  20., -70.,   1.])
    """
    signs = np.array(_AXIS_SIGNS[check_patient_position(position)])
    bed = check_bed_position_mm(bed_position_mm)
    affine = np.diag([*signs, 1.0])
    affine[2, 3] = -signs[2] * bed
    return affine


def patient_to_gantry_affine(position: str = "HFS", bed_position_mm: float = 0.0) -> np.ndarray:
    """4 x 4 matrix taking DICOM (L, P, S, 1) to gantry (x, y, z, 1), mm: the inverse of :func:`gantry_to_patient_affine`.

    Examples
    --------
    >>> patient_to_gantry_affine("HFS", 100.0) @ [10.0, 20.0, 70.0, 1.0]
    array([10., 20., 30.,  1.])
    """
    return np.linalg.inv(gantry_to_patient_affine(position, bed_position_mm))


def gantry_to_patient(points_mm: np.ndarray, position: str = "HFS", bed_position_mm: float = 0.0) -> np.ndarray:
    """Points ``(..., 3)`` from the gantry frame to LPS (mm)."""
    return _apply(gantry_to_patient_affine(position, bed_position_mm), points_mm)


def patient_to_gantry(points_mm: np.ndarray, position: str = "HFS", bed_position_mm: float = 0.0) -> np.ndarray:
    """Points ``(..., 3)`` from LPS to the gantry frame (mm)."""
    return _apply(patient_to_gantry_affine(position, bed_position_mm), points_mm)


def volume_patient_frame(metadata: Mapping) -> tuple[str, float]:
    """``(patient_position, bed_position_mm)`` recorded in a Volume's metadata (HFS and 0 when absent)."""
    return (check_patient_position(metadata.get("patient_position"), source="volume patient_position"),
            check_bed_position_mm(metadata.get("bed_position_mm"), source="volume bed_position_mm"))


def study_bed_position_mm(attributes: Mapping) -> float:
    """A study's bed position from its container attributes.

    ``bed_position_mm`` (the Siemens key's value) when present, else the
    negative of a whole-body bed's ``bed_offset_mm``, else 0.

    Examples
    --------
    >>> study_bed_position_mm({"bed_offset_mm": 120.0}), study_bed_position_mm({})
    (-120.0, 0.0)
    """
    if attributes.get("bed_position_mm") is not None:
        return check_bed_position_mm(attributes["bed_position_mm"], source="bed_position_mm attribute")
    if attributes.get("bed_offset_mm") is not None:
        return -check_bed_position_mm(attributes["bed_offset_mm"], source="bed_offset_mm attribute")
    return 0.0


def bed_attributes(bed_position_mm: float) -> dict[str, float]:
    """The container attributes that record a bed position (both signs, see :func:`study_bed_position_mm`)."""
    value = check_bed_position_mm(bed_position_mm)
    return {"bed_position_mm": value, "bed_offset_mm": -value}


def _apply(affine: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    points = np.asarray(points_mm, dtype=np.float64)
    if points.shape[-1:] != (3,):
        raise ParameterError(f"points must have shape (..., 3), got {points.shape}")
    return points @ affine[:3, :3].T + affine[:3, 3]
