"""ROI specifications from the command line and their statistics as JSON records.

A specification is ``sphere:x,y,z,r`` (centre and radius in mm) or
``box:x0,y0,z0,x1,y1,z1`` (two corners, mm), in DICOM patient coordinates
(LPS), mapped to the Volume's gantry axes by the patient and bed position
the Volume records (:mod:`petrecon.geometry.patient`). Positions in the
records are patient coordinates too.
Each record holds ``suv_max``, ``suv_mean``, ``suv_peak``, ``suv_sd``,
``volume_ml``, ``tlg`` and the positions of max and peak; the values are in the
image's units (SUV when the Volume is an SUV image, see
:func:`petrecon.quant.suv_dicom.suv_volume`).
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry.patient import gantry_to_patient, patient_to_gantry_affine, volume_patient_frame
from petrecon.quant.roi import box_mask, sphere_mask
from petrecon.quant.stats import voi_statistics
from petrecon.volume import ImageGrid, Volume

_SHAPES = {"sphere": 4, "box": 6}


def parse_roi(spec: str) -> tuple[str, tuple[float, ...]]:
    """``"sphere:10,0,-5,8"`` -> ``("sphere", (10.0, 0.0, -5.0, 8.0))``.

    Examples
    --------
    >>> parse_roi("sphere:10,0,-5,8")
    ('sphere', (10.0, 0.0, -5.0, 8.0))
    """
    shape, _, numbers = spec.partition(":")
    shape = shape.strip().lower()
    if shape not in _SHAPES:
        raise ParameterError(f"ROI {spec!r}: shape must be one of {', '.join(_SHAPES)} (e.g. sphere:x,y,z,r)")
    try:
        values = tuple(float(v) for v in numbers.split(","))
    except ValueError:
        raise ParameterError(f"ROI {spec!r}: the coordinates must be numbers in mm") from None
    if len(values) != _SHAPES[shape]:
        raise ParameterError(f"ROI {spec!r}: a {shape} takes {_SHAPES[shape]} numbers, got {len(values)}")
    return shape, values


def roi_mask(grid: ImageGrid, spec: str, patient_to_gantry: np.ndarray | None = None) -> np.ndarray:
    """The mask of one ROI specification on ``grid`` (patient coordinates, see the module notes).

    ``patient_to_gantry`` is the 4 x 4 LPS -> gantry matrix of the grid's
    frame (:func:`petrecon.geometry.patient.patient_to_gantry_affine`);
    default HFS at bed position 0.

    Raises
    ------
    ParameterError
        A malformed specification, or an ROI that holds no voxel of the grid.

    Examples
    --------
    >>> int(roi_mask(ImageGrid.centred((10, 10, 10), (1.0, 1.0, 1.0)), "box:-1,-1,-1,1,1,1").sum())
    8
    """
    to_gantry = patient_to_gantry_affine() if patient_to_gantry is None else np.asarray(patient_to_gantry)
    shape, values = parse_roi(spec)
    points = np.array([values[:3], values[3:]] if shape == "box" else [values[:3]], dtype=np.float64)
    points = points @ to_gantry[:3, :3].T + to_gantry[:3, 3]
    if shape == "sphere":
        mask = sphere_mask(grid, points[0], values[3])
    else:
        mask = box_mask(grid, points.min(axis=0), points.max(axis=0))
    if not mask.any():
        raise ParameterError(f"ROI {spec!r} holds no voxel of the image")
    low, high = (points[0] - values[3], points[0] + values[3]) if shape == "sphere" else \
        (points.min(axis=0), points.max(axis=0))
    for axis, name in enumerate("xyz"):
        centres = grid.voxel_centres_mm(axis)
        half = grid.voxel_size_mm[axis] / 2
        start, stop = float(centres.min()) - half, float(centres.max()) + half
        if low[axis] < start - half or high[axis] > stop + half:
            raise ParameterError(f"ROI {spec!r} reaches beyond the image along {name} ({low[axis]:g} .. "
                                 f"{high[axis]:g} mm, gantry axes; the image spans {start:g} .. {stop:g} mm): "
                                 "its statistics would cover only part of it")
    return mask


def roi_records(volume: Volume, specs: list[str]) -> list[dict]:
    """One record of statistics per ROI specification (patient coordinates, see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((30, 30, 30), (2.0, 2.0, 2.0))
    >>> record = roi_records(Volume(np.full(grid.shape, 3.0), grid), ["sphere:0,0,0,12"])[0]
    >>> record["suv_max"], round(record["suv_peak"], 9)
    (3.0, 3.0)
    """
    to_gantry = patient_to_gantry_affine(*volume_patient_frame(volume.metadata))
    return [voi_record(spec, volume, roi_mask(volume.grid, spec, to_gantry)) for spec in specs]


def volume_roi_mask(volume: Volume, spec: str) -> np.ndarray:
    """:func:`roi_mask` on the volume's grid, in the patient frame the volume records."""
    return roi_mask(volume.grid, spec, patient_to_gantry_affine(*volume_patient_frame(volume.metadata)))


def voi_record(name: str, volume: Volume, mask: np.ndarray) -> dict:
    """The record of one VOI (any mask on the volume's grid), named ``name``; positions in patient coordinates."""
    frame = volume_patient_frame(volume.metadata)
    stats = voi_statistics(volume, mask, name=name)
    return {"roi": name, "suv_max": stats.max, "suv_mean": stats.mean, "suv_peak": stats.peak,
            "suv_sd": stats.sd, "volume_ml": stats.volume_ml, "tlg": stats.tlg, "n_voxels": stats.n_voxels,
            "max_position_mm": tuple(float(v) for v in gantry_to_patient(stats.max_position_mm, *frame)),
            "peak_position_mm": tuple(float(v) for v in gantry_to_patient(stats.peak_position_mm, *frame))}
