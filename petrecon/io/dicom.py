"""DICOM images: read CT, Dixon MR and PET series; write PET Image Storage series.

Coordinates
-----------
A :class:`~petrecon.volume.Volume` has axes (x, y, z) in petrecon's gantry
frame (mm). Reading and writing go through the one gantry <-> patient (LPS)
transform of :mod:`petrecon.geometry.patient`, with the patient position
(HFS, HFP, FFS, FFP; decubitus positions are refused) and the bed position
(Siemens ``start horizontal bed position``, mm): for HFS ``(L, P, S) = (x,
y, -(z - h))``. A volume read from DICOM records both in its metadata
(``patient_position``, ``bed_position_mm``); a PET series petrecon wrote
stores its bed position in its private provenance element, so it reads back
into the gantry frame it was written from. A CT or MR series read for
attenuation must be read with the *emission's* patient and bed position
(``bed_position_mm=``), so that it lands where the emission LORs see it.
Reading accepts any slice order and any axis-aligned
ImageOrientationPatient (flips and row/column swaps); oblique series are
refused with a :class:`~petrecon.errors.FormatError`.

Pixels: ``value = pixel * RescaleSlope + RescaleIntercept`` applied per
slice (reference/formats.md, reference/quantification.md). PET is written as
int16 with one RescaleSlope per slice (``max |slice| / 32767``), so a voxel
is stored to within half a slope step.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from petrecon import __version__
from petrecon.checks import check_parameter, check_uptake
from petrecon.errors import FormatError, ParameterError
from petrecon.geometry.patient import (PATIENT_POSITIONS, check_bed_position_mm, check_patient_position,
                                       gantry_to_patient_affine, patient_to_gantry_affine, volume_patient_frame)
from petrecon.io.atomic import atomic_folder
from petrecon.isotopes import decay_correction_factor, get_isotope
from petrecon.volume import ImageGrid, Volume

LOG = logging.getLogger(__name__)
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"

#: PET radionuclide codes (DICOM PS3.16 CID 4020, SRT scheme), for the isotopes of petrecon.isotopes that have one.
RADIONUCLIDE_CODES: dict[str, tuple[str, str]] = {
    "F18": ("C-111A1", "^18^Fluorine"), "Ga68": ("C-131A3", "^68^Gallium"),
    "C11": ("C-105A1", "^11^Carbon"), "O15": ("C-B1038", "^15^Oxygen")}

_ALL_CORRECTIONS = ("NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN")
_INT16_MAX = 32767


# ----------------------------------------------------------------------------------------------- reading
@dataclass
class _Series:
    data: np.ndarray          # float64, (x, y, z) scanner axes
    grid: ImageGrid
    first: Any                # pydicom Dataset of slice z = 0
    slopes: np.ndarray        # per slice (z order)
    patient_position: str
    bed_position_mm: float


def read_pet_series(folder: str | os.PathLike, *, series_uid: str | None = None,
                    patient_position: str | None = None, bed_position_mm: float | None = None) -> Volume:
    """Read a PET series (one file per slice) into a Volume of activity concentration.

    Parameters
    ----------
    folder : path-like
        Folder holding the series (other files and series may be present:
        pass ``series_uid`` when there is more than one PET series).
    series_uid : str, optional
        SeriesInstanceUID to read.
    patient_position : str, optional
        Overrides the header's PatientPosition (HFS, FFS, HFP, FFP).
    bed_position_mm : float, optional
        Bed position of the gantry frame to read into; default the one a
        petrecon series records, else 0.

    Returns
    -------
    Volume
        Values after the per-slice rescale (Bq/ml for Units BQML). Metadata:
        ``units`` (``"Bq/ml"`` for BQML, else the header's Units),
        ``dicom_units``, ``patient_position``, ``bed_position_mm``, ``suv_inputs`` (the header
        fields SUV needs, as found: see :func:`_suv_inputs`), ``dicom_header`` (the first
        slice's header, ``Dataset.to_json_dict()`` without PixelData),
        ``rescale_slopes`` (per slice, z order), and ``provenance`` (the JSON record
        :func:`write_pet_series` stores in (0071,xx00), creator ``PETRECON``) when present.

    Raises
    ------
    FormatError
        Missing or inconsistent tags (names the file and the tag), oblique
        orientation, unequal slice spacing, no PET series in the folder.
    """
    files = _series_files(Path(folder), "PT", series_uid)
    time_slices = _time_slices(files)
    if time_slices > 1:
        raise FormatError(files[0][0], "NumberOfTimeSlices", f"is {time_slices}: a dynamic series; read it frame "
                                                             "by frame with read_dynamic_pet_series")
    return _pet_volume(_assemble(files, patient_position, _pet_bed_position(files, bed_position_mm)))


def _pet_bed_position(files: list[tuple[Path, Any]], bed_position_mm: float | None) -> float | None:
    """The given bed position, else the one petrecon's provenance records, else None (0)."""
    if bed_position_mm is not None:
        return bed_position_mm
    return (_petrecon_provenance(files[0][1]) or {}).get("bed_position_mm")


def read_dynamic_pet_series(folder: str | os.PathLike, *, series_uid: str | None = None,
                            patient_position: str | None = None,
                            bed_position_mm: float | None = None) -> list[Volume]:
    """Read a dynamic PET series (NumberOfTimeSlices frames, one file per slice and frame), one Volume per frame.

    A file's frame is ``(ImageIndex - 1) // NumberOfSlices`` (DICOM PET Image
    module). Each Volume is as :func:`read_pet_series` returns, with
    ``metadata["frame_index"]``; its ``suv_inputs`` hold the frame's
    FrameReferenceTime, ActualFrameDuration and AcquisitionTime. A static
    series reads as one frame.

    Raises
    ------
    FormatError
        As :func:`read_pet_series`, and frames that miss slices or ImageIndex.
    """
    files = _series_files(Path(folder), "PT", series_uid)
    bed_position_mm = _pet_bed_position(files, bed_position_mm)
    time_slices = _time_slices(files)
    if time_slices == 1:
        return [_pet_volume(_assemble(files, patient_position, bed_position_mm))]
    n_slices = int(files[0][1].get("NumberOfSlices") or 0)
    frames: dict[int, list] = {}
    for path, dataset in files:
        index = dataset.get("ImageIndex")
        if not isinstance(index, int) or not n_slices or not 1 <= index <= n_slices * time_slices:
            raise FormatError(path, "ImageIndex", f"{index!r} is not in 1 .. NumberOfSlices x NumberOfTimeSlices")
        frames.setdefault((index - 1) // n_slices, []).append((path, dataset))
    volumes = []
    for frame in range(time_slices):
        if len(frames.get(frame, [])) != n_slices:
            raise FormatError(Path(folder), "ImageIndex", f"frame {frame + 1} has {len(frames.get(frame, []))} "
                                                          f"slices, NumberOfSlices says {n_slices}")
        volume = _pet_volume(_assemble(frames[frame], patient_position, bed_position_mm))
        volume.metadata["frame_index"] = frame
        volumes.append(volume)
    return volumes


def _time_slices(files: list[tuple[Path, Any]]) -> int:
    path, first = files[0]
    value = first.get("NumberOfTimeSlices", 1)
    if not isinstance(value, int) or value < 1:
        raise FormatError(path, "NumberOfTimeSlices", f"must be a positive integer, got {value!r}")
    return value


def _pet_volume(series: _Series) -> Volume:
    units = str(series.first.get("Units", ""))
    metadata = {"units": "Bq/ml" if units == "BQML" else units, "dicom_units": units,
                "patient_position": series.patient_position, "bed_position_mm": series.bed_position_mm,
                "suv_inputs": _suv_inputs(series.first),
                "dicom_header": _header_json(series.first), "rescale_slopes": series.slopes.tolist()}
    provenance = _petrecon_provenance(series.first)
    if provenance is not None:
        metadata["provenance"] = provenance
    return Volume(series.data.astype(np.float32), series.grid, metadata)


def read_ct_series(folder: str | os.PathLike, *, series_uid: str | None = None,
                   patient_position: str | None = None, bed_position_mm: float | None = None) -> Volume:
    """Read a CT series in Hounsfield units (``pixel * RescaleSlope + RescaleIntercept``).

    The volume is in the gantry frame of the PET acquisition it attenuates:
    give that acquisition's ``bed_position_mm`` (and ``patient_position`` if
    the CT's header does not hold the PET's).

    Metadata: ``units = "HU"``, ``kvp`` (0018,0060; None if absent),
    ``patient_position``, ``bed_position_mm``, ``dicom_header`` (first slice, JSON dict),
    ``dicom_reference`` (:func:`series_reference`).
    """
    series = _read_series(Path(folder), "CT", series_uid, patient_position, bed_position_mm)
    kvp = series.first.get("KVP")
    metadata = {"units": "HU", "kvp": None if kvp in (None, "") else float(kvp),
                "patient_position": series.patient_position, "bed_position_mm": series.bed_position_mm,
                "dicom_header": _header_json(series.first), "dicom_reference": series_reference(series.first)}
    return Volume(series.data.astype(np.float32), series.grid, metadata)


#: The mMR stores its MR-based mu-map as MR images of ``mu [cm^-1] x 10000`` (NiftyPET/NIPET ``img/mmrimg.py``
#: ``obj_mumap`` and ``mudcm2nii`` divide the rescaled values by 1e4; UCL nmtools ``MRAC.hpp`` divides by 10000).
SCANNER_MU_MAP_SCALE = 1e4


def read_scanner_mu_map_series(folder: str | os.PathLike, *, series_uid: str | None = None,
                               patient_position: str | None = None,
                               bed_position_mm: float | None = None) -> Volume:
    """Read the mMR's own mu-map series (MR images, ``mu x 10000``) into mu at 511 keV (cm^-1).

    Placed in the gantry frame of the PET acquisition's ``bed_position_mm``
    as :func:`read_ct_series`. ``value / 10000`` after the per-slice rescale
    (:data:`SCANNER_MU_MAP_SCALE`); negative values (interpolation
    undershoot) become 0, as in NiftyPET's ``obj_mumap``. The series is read
    as Modality MR: the mMR's mu-map is part of its MR study (*unverified*:
    petrecon has no real series; NiftyPET reads it with dcm2niix, whatever
    its modality).

    Metadata: ``units = "cm^-1"``, ``patient_position``, ``bed_position_mm``,
    ``gantry_table_home_offset_mm`` (the CSA element ``GantryTableHomeOffset``
    of the first slice, x y z mm, that places the hardware mu-maps:
    :mod:`petrecon.io.hardware_mumap`; None when absent), ``dicom_header``.

    Raises
    ------
    FormatError
        As :func:`read_ct_series`; values beyond 3 cm^-1 after the division
        (a CT in HU or an MR image, not a mu-map) name the first file and PixelData.
    """
    from petrecon.io.siemens_csa import csa_vector

    series = _read_series(Path(folder), "MR", series_uid, patient_position, bed_position_mm)
    mu = np.clip(series.data / SCANNER_MU_MAP_SCALE, 0.0, None)
    path = Path(series.first.filename) if getattr(series.first, "filename", None) else Path(folder)
    if float(mu.max(initial=0.0)) > 3.0:
        raise FormatError(path, "PixelData", f"values reach {float(mu.max()) * SCANNER_MU_MAP_SCALE:.6g}, "
                                             f"{float(mu.max()):.4g} cm^-1 after / {SCANNER_MU_MAP_SCALE:g}: not "
                                             "the scanner's mu-map (lead is 1.7 cm^-1)")
    offset = csa_vector(series.first, path, "GantryTableHomeOffset")
    metadata = {"units": "cm^-1", "source": "scanner", "patient_position": series.patient_position,
                "bed_position_mm": series.bed_position_mm,
                "gantry_table_home_offset_mm": None if offset is None else offset.tolist(),
                "dicom_header": _header_json(series.first)}
    return Volume(mu.astype(np.float32), series.grid, metadata)


def read_dixon_series(first_folder: str | os.PathLike, second_folder: str | os.PathLike, *,
                      kind: str = "water_fat", patient_position: str | None = None,
                      bed_position_mm: float | None = None) -> tuple[Volume, Volume]:
    """Read a Dixon MR pair: water and fat (``kind="water_fat"``) or in- and opposed-phase (``"in_opposed"``).

    In the gantry frame of the PET acquisition's ``bed_position_mm``, as
    :func:`read_ct_series`.

    Both series must share the grid (same geometry within 1e-3 mm). Each
    volume carries ``metadata["dixon"]`` = ``"water"``/``"fat"`` or
    ``"in_phase"``/``"opposed_phase"`` and ``metadata["dicom_reference"]``
    (:func:`series_reference`).

    Raises
    ------
    FormatError
        If a folder holds no MR series or the two grids differ.
    """
    names = {"water_fat": ("water", "fat"), "in_opposed": ("in_phase", "opposed_phase")}
    if kind not in names:
        raise ParameterError(f"Dixon kind must be one of {sorted(names)}, got {kind!r}")
    volumes = []
    for folder, name in zip((first_folder, second_folder), names[kind]):
        series = _read_series(Path(folder), "MR", None, patient_position, bed_position_mm)
        volumes.append(Volume(series.data.astype(np.float32), series.grid,
                              {"units": "MR signal", "dixon": name, "patient_position": series.patient_position,
                               "bed_position_mm": series.bed_position_mm, "dicom_header": _header_json(series.first),
                               "dicom_reference": series_reference(series.first)}))
    first, second = volumes[0].grid, volumes[1].grid
    if first.shape != second.shape or not np.allclose(first.affine, second.affine, atol=1e-3):
        raise FormatError(second_folder, "ImagePositionPatient/PixelSpacing",
                          f"grid {second} differs from the {names[kind][0]} series' grid {first}")
    return volumes[0], volumes[1]


def _read_series(folder: Path, modality: str, series_uid: str | None, patient_position: str | None,
                 bed_position_mm: float | None) -> _Series:
    return _assemble(_series_files(folder, modality, series_uid), patient_position, bed_position_mm)


def _series_files(folder: Path, modality: str, series_uid: str | None) -> list[tuple[Path, Any]]:
    """The (path, dataset) of every image of the one ``modality`` series in ``folder``."""
    import pydicom

    if not folder.is_dir():
        raise FormatError(folder, "folder", "is a file; give the folder of the DICOM series" if folder.exists()
                          else "does not exist")
    by_series: dict[str, list[tuple[Path, Any]]] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            dataset = pydicom.dcmread(path)
        except Exception as error:  # pydicom raises many types for broken files
            if _has_dicom_preamble(path):  # a DICOM file we cannot read: never left out in silence
                LOG.warning("%s: left out: not readable as DICOM (%s)", path, " ".join(str(error).split())[:200])
            continue  # not DICOM: other files may sit in an export folder
        if str(dataset.get("Modality", "")) != modality or "PixelData" not in dataset:
            continue
        by_series.setdefault(str(dataset.get("SeriesInstanceUID", "")), []).append((path, dataset))
    if series_uid is not None:
        by_series = {uid: files for uid, files in by_series.items() if uid == series_uid}
    if not by_series:
        raise FormatError(folder, "Modality", f"no readable {modality} image series found"
                          + (f" with SeriesInstanceUID {series_uid}" if series_uid else ""))
    if len(by_series) > 1:
        raise FormatError(folder, "SeriesInstanceUID", f"{len(by_series)} {modality} series found "
                          f"({', '.join(sorted(by_series))}); pass series_uid")
    return list(by_series.values())[0]


def _has_dicom_preamble(path: Path) -> bool:
    """Whether ``path`` starts as a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _float_tag(path: Path, dataset: Any, keyword: str, count: int) -> np.ndarray:
    value = dataset.get(keyword)
    try:
        values = np.array([float(v) for v in (value if count > 1 else [value])], dtype=np.float64)
    except (TypeError, ValueError):
        raise FormatError(path, keyword, f"is missing or not numeric ({value!r})") from None
    if values.size != count or not np.all(np.isfinite(values)):
        raise FormatError(path, keyword, f"needs {count} finite numbers, got {value!r}")
    return values


def _size_tags(path: Path, dataset: Any) -> tuple[int, int]:
    """(Rows, Columns), both positive integers."""
    values = []
    for keyword in ("Rows", "Columns"):
        value = dataset.get(keyword)
        if not isinstance(value, int) or value < 1:
            raise FormatError(path, keyword, f"must be a positive integer, got {value!r}")
        values.append(value)
    return values[0], values[1]


def _assemble(files: list[tuple[Path, Any]], position_override: str | None,
              bed_position_mm: float | None) -> _Series:
    path0, first = files[0]
    position = (position_override or str(first.get("PatientPosition", "")) or _position_from_codes(first)
                or "HFS").upper()
    if position not in PATIENT_POSITIONS:
        raise FormatError(path0, "PatientPosition", f"{position!r} is not supported; supported: "
                          f"{', '.join(PATIENT_POSITIONS)}")
    bed_position_mm = check_bed_position_mm(bed_position_mm)
    orientation = _float_tag(path0, first, "ImageOrientationPatient", 6)
    spacing = _float_tag(path0, first, "PixelSpacing", 2)
    if np.any(spacing <= 0):
        raise FormatError(path0, "PixelSpacing", f"must be positive, got {spacing.tolist()}")
    rows, columns = _size_tags(path0, first)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    if abs(np.linalg.norm(normal) - 1) > 1e-3:
        raise FormatError(path0, "ImageOrientationPatient", f"is not two orthonormal vectors: {orientation.tolist()}")
    slices = []
    for path, dataset in files:
        if not np.allclose(_float_tag(path, dataset, "ImageOrientationPatient", 6), orientation, atol=1e-4):
            raise FormatError(path, "ImageOrientationPatient", "differs from the series' first slice")
        if not np.allclose(_float_tag(path, dataset, "PixelSpacing", 2), spacing, atol=1e-4):
            raise FormatError(path, "PixelSpacing", "differs from the series' first slice")
        if _size_tags(path, dataset) != (rows, columns):
            raise FormatError(path, "Rows/Columns", "differ from the series' first slice")
        position_mm = _float_tag(path, dataset, "ImagePositionPatient", 3)
        slope = _float_tag(path, dataset, "RescaleSlope", 1)[0] if "RescaleSlope" in dataset else 1.0
        if slope == 0:
            raise FormatError(path, "RescaleSlope", "is 0: every value of the slice would be the intercept")
        intercept = _float_tag(path, dataset, "RescaleIntercept", 1)[0] if "RescaleIntercept" in dataset else 0.0
        slices.append((float(position_mm @ normal), position_mm, path, dataset, slope, intercept))
    slices.sort(key=lambda item: item[0])
    _check_slice_count(path0, first, len(slices))
    distances = np.array([item[0] for item in slices])
    if len(slices) > 1:
        steps = np.diff(distances)
        if np.any(steps < 1e-3):
            raise FormatError(slices[int(np.argmin(steps)) + 1][2], "ImagePositionPatient",
                              "two slices share one position")
        if np.ptp(steps) > 1e-2 * max(float(np.mean(steps)), 1e-9) + 1e-3:
            typical = float(np.median(steps))
            lattice = np.arange(len(slices)) * typical
            odd = int(np.argmax(np.abs(distances - lattice - np.median(distances - lattice))))
            raise FormatError(slices[odd][2], "ImagePositionPatient",
                              f"{slices[odd][1].tolist()}: slice spacing is not uniform at this slice (series "
                              f"{typical:.4f} mm, steps {steps.min():.4f} to {steps.max():.4f} mm): a corrupt, "
                              "foreign or missing slice")
        slice_step = float(np.mean(steps))
    else:
        slice_step = float(first.get("SliceThickness", 0) or 0) or 1.0
    for item in slices[1:]:
        in_plane = item[1] - slices[0][1] - (item[0] - slices[0][0]) * normal
        if np.linalg.norm(in_plane) > 1e-2:
            raise FormatError(item[2], "ImagePositionPatient", "slices are not stacked along the slice normal")
    stack = np.empty((columns, rows, len(slices)), dtype=np.float64)  # (column, row, slice) index order
    for k, (_, _, path, dataset, slope, intercept) in enumerate(slices):
        try:
            pixels = dataset.pixel_array
        except Exception as error:  # pydicom raises many types for unsupported or broken pixel data
            raise FormatError(path, "PixelData", f"cannot be decoded ({error})") from None
        if pixels.shape != (rows, columns):
            raise FormatError(path, "PixelData", f"has shape {pixels.shape}, Rows/Columns say {(rows, columns)}")
        stack[:, :, k] = pixels.T * slope + intercept
        if not np.all(np.abs(stack[:, :, k]) < np.finfo(np.float32).max):
            raise FormatError(path, "RescaleSlope", f"{slope} and intercept {intercept} give values beyond float32")
    # affine of the stack in LPS: index (c, r, s) -> mm
    lps = np.column_stack([row_cosine * spacing[1], column_cosine * spacing[0], normal * slice_step])
    to_gantry = patient_to_gantry_affine(position, bed_position_mm)
    scanner = to_gantry[:3, :3] @ lps
    origin = to_gantry[:3, :3] @ slices[0][1] + to_gantry[:3, 3]
    data, voxel_size, origin = _axis_align(path0, stack, scanner, origin)
    grid = ImageGrid(data.shape, tuple(voxel_size), tuple(origin))
    slice_axis = scanner[:, 2]
    if int(np.argmax(np.abs(slice_axis))) == 2 and slice_axis[2] < 0:
        slices = slices[::-1]  # the slice stored last is at z index 0
    return _Series(data, grid, slices[0][3], np.array([item[4] for item in slices]), position, bed_position_mm)


def _check_slice_count(path: Path, first: Any, n_found: int) -> None:
    """Refuse a series with fewer or more slices than its NumberOfSlices (0054,0081) says (static series)."""
    stated = first.get("NumberOfSlices")
    try:
        stated = int(stated) if stated not in (None, "") else None
    except (TypeError, ValueError):
        raise FormatError(path, "NumberOfSlices (0054,0081)", f"is not a whole number ({stated!r})") from None
    time_slices = first.get("NumberOfTimeSlices")
    if stated is not None and time_slices in (None, "", 1, "1") and stated != n_found:
        raise FormatError(path.parent, "NumberOfSlices (0054,0081)",
                          f"says {stated}, the folder holds {n_found} slices of the series: a slice is missing "
                          "or foreign")


def _axis_align(path: Path, stack: np.ndarray, matrix: np.ndarray, origin: np.ndarray):
    """Permute and flip ``stack`` so that its axes are scanner (x, y, z) with positive steps."""
    axis_of_index = np.argmax(np.abs(matrix), axis=0)   # scanner axis each index axis runs along
    step = matrix[axis_of_index, np.arange(3)]
    off_axis = np.abs(matrix).sum(axis=0) - np.abs(step)
    if sorted(axis_of_index.tolist()) != [0, 1, 2] or np.any(off_axis > 1e-4 * np.abs(step)):
        raise FormatError(path, "ImageOrientationPatient",
                          "oblique or non axis-aligned orientation is not supported (resample first)")
    origin = origin.copy()
    for index_axis in range(3):
        if step[index_axis] < 0:
            n = stack.shape[index_axis]
            origin = origin + matrix[:, index_axis] * (n - 1)
            stack = np.flip(stack, axis=index_axis)
    order = np.argsort(axis_of_index)                  # index axis that runs along x, y, z
    data = np.ascontiguousarray(np.transpose(stack, order))
    return data, np.abs(step)[order], origin


def _suv_inputs(dataset: Any) -> dict:
    """The fields SUV needs (reference/quantification.md), as strings/floats or None where absent.

    Times are left as DICOM strings: the time logic (series vs acquisition
    time, midnight crossing) belongs to the quantification module.
    """
    def number(value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    import pydicom

    sequence = dataset.get("RadiopharmaceuticalInformationSequence")
    item = sequence[0] if sequence else pydicom.Dataset()
    return {
        "units": str(dataset.get("Units", "")) or None,
        "decay_correction": str(dataset.get("DecayCorrection", "")) or None,
        "corrected_image": [str(v) for v in (dataset.get("CorrectedImage") or [])],
        "patient_weight_kg": number(dataset.get("PatientWeight")),
        "patient_size_m": number(dataset.get("PatientSize")),
        "patient_sex": str(dataset.get("PatientSex", "")) or None,
        "series_date": str(dataset.get("SeriesDate", "")) or None,
        "series_time": str(dataset.get("SeriesTime", "")) or None,
        "acquisition_date": str(dataset.get("AcquisitionDate", "")) or None,
        "acquisition_time": str(dataset.get("AcquisitionTime", "")) or None,
        "frame_reference_time_ms": number(dataset.get("FrameReferenceTime")),
        "actual_frame_duration_ms": number(dataset.get("ActualFrameDuration")),
        "radionuclide_total_dose_bq": number(item.get("RadionuclideTotalDose")),
        "radionuclide_half_life_s": number(item.get("RadionuclideHalfLife")),
        "radiopharmaceutical_start_datetime": str(item.get("RadiopharmaceuticalStartDateTime", "")) or None,
        "radiopharmaceutical_start_time": str(item.get("RadiopharmaceuticalStartTime", "")) or None,
    }


def _petrecon_provenance(dataset: Any) -> dict | None:
    """The provenance JSON petrecon writes into a private element, None if absent or unreadable."""
    import json

    try:
        return json.loads(str(dataset.private_block(0x0071, "PETRECON")[0x00].value))
    except (KeyError, ValueError, TypeError):
        return None


def _header_json(dataset: Any) -> dict:
    from pydicom.datadict import keyword_for_tag

    header = dataset.copy()
    if "PixelData" in header:
        del header.PixelData
    for tag in list(header.keys()):  # a value pydicom cannot convert (a DS of letters, an unknown VR) is named
        try:
            header[tag].to_json_dict(None, 1 << 30)
        except (ValueError, TypeError, OverflowError, NotImplementedError) as error:
            raise FormatError(getattr(dataset, "filename", None) or "DICOM header",
                              f"{keyword_for_tag(tag) or tag} {tag}",
                              f"unreadable ({' '.join(str(error).split())})") from None
    return header.to_json_dict(bulk_data_threshold=1 << 30)


def series_reference(dataset: Any) -> dict:
    """What a PET series takes over from the CT or MR series it is to be fused with, as found in ``dataset``.

    A viewer fuses two series when they share a FrameOfReferenceUID (their
    ImagePositionPatient are in one patient frame) and shows them as one
    study when they share a StudyInstanceUID. Keys (absent where the header
    lacks the tag or holds nothing usable): :func:`write_pet_series`'s
    ``study_instance_uid``, ``frame_of_reference_uid``, ``patient_name``,
    ``patient_id``, ``patient_birth_date``, ``patient_sex`` (M, F or O),
    ``patient_weight_kg``, ``patient_size_m`` (positive numbers), and
    ``acquisition_datetime`` (ISO 8601, from AcquisitionDate/Time, else
    SeriesDate/Time, else StudyDate/Time).

    Examples
    --------
    >>> import pydicom
    >>> ct = pydicom.Dataset()
    >>> ct.StudyInstanceUID, ct.PatientSex, ct.PatientWeight = "1.2.3", "F", "0"
    >>> ct.StudyDate, ct.StudyTime = "20260302", "125930.5"
    >>> series_reference(ct)
    {'study_instance_uid': '1.2.3', 'patient_sex': 'F', 'acquisition_datetime': '2026-03-02T12:59:30.500000'}
    """
    reference: dict = {}
    for keyword, key in (("StudyInstanceUID", "study_instance_uid"), ("FrameOfReferenceUID", "frame_of_reference_uid"),
                         ("PatientName", "patient_name"), ("PatientID", "patient_id"),
                         ("PatientBirthDate", "patient_birth_date")):
        value = str(dataset.get(keyword, "") or "").strip()
        if value:
            reference[key] = value
    sex = str(dataset.get("PatientSex", "") or "").strip().upper()
    if sex in ("M", "F", "O"):
        reference["patient_sex"] = sex
    for keyword, key in (("PatientWeight", "patient_weight_kg"), ("PatientSize", "patient_size_m")):
        try:
            value = float(dataset.get(keyword))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value > 0:
            reference[key] = value
    for prefix in ("Acquisition", "Series", "Study"):
        moment = _dicom_datetime(dataset.get(f"{prefix}Date"), dataset.get(f"{prefix}Time"))
        if moment is not None:
            reference["acquisition_datetime"] = moment.isoformat()
            break
    return reference


def _dicom_datetime(date: Any, time: Any) -> dt.datetime | None:
    """A DA and a TM value as one datetime, None if either is missing or malformed."""
    date, time = str(date or "").strip(), str(time or "").strip()
    try:
        day = dt.datetime.strptime(date, "%Y%m%d")
        whole, _, fraction = time.partition(".")
        clock = dt.datetime.strptime(whole.ljust(6, "0"), "%H%M%S")
    except ValueError:
        return None
    microseconds = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
    return day.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=microseconds)


# ----------------------------------------------------------------------------------------------- writing
#: Radiopharmaceutical written when the caller does not name the tracer.
UNKNOWN_TRACER = "unknown"
#: Longest value of a DICOM LO element (Radiopharmaceutical, ReconstructionMethod): PS3.5 table 6.2-1.
_LO_MAX_CHARS = 64


def new_dataset(sop_class_uid: str, modality: str) -> Any:
    """An empty DICOM dataset of ``sop_class_uid`` (explicit VR little endian, new SOP instance UID) and ``modality``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = sop_class_uid
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class_uid, generate_uid()
    dataset.Modality = modality
    return dataset


def write_pet_series(volume: Volume | Sequence[Volume], folder: str | os.PathLike, *, injected_dose_bq: float,
                     injection_datetime: dt.datetime, series_datetime: dt.datetime,
                     frame_duration_s: float | Sequence[float], frame_start_s: Sequence[float] | None = None,
                     isotope: str = "F18", radiopharmaceutical: str = UNKNOWN_TRACER,
                     patient_weight_kg: float | None = None, patient_size_m: float | None = None,
                     patient_sex: str = "O", patient_name: str = "Anonymous^", patient_id: str = "petrecon",
                     patient_birth_date: str = "", patient_position: str | None = None,
                     bed_position_mm: float | None = None,
                     corrected_image: tuple[str, ...] = ("NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN"),
                     half_life_s: float | None = None, series_description: str = "petrecon AW-OSEM",
                     series_number: int = 1, study_instance_uid: str | None = None,
                     frame_of_reference_uid: str | None = None, reconstruction_method: str | None = None,
                     manufacturer_model_name: str = "", provenance: dict | None = None,
                     overwrite: bool = False) -> list[Path]:
    """Write a Bq/ml volume as a PET Image Storage series, one file per slice (atomically).

    Parameters
    ----------
    volume : Volume or sequence of Volume
        Activity concentration (Bq/ml, decay-corrected to ``series_datetime``).
        ``metadata["units"]``, if present, must be ``"Bq/ml"``. A sequence
        is a dynamic series (see :func:`write_dynamic_pet_series`).
    folder : path-like
        Output folder (created; must not exist unless ``overwrite``).
    injected_dose_bq : float
        RadionuclideTotalDose (Bq) at ``injection_datetime``.
    injection_datetime, series_datetime : datetime.datetime
        RadiopharmaceuticalStartDateTime, and the scan start (SeriesDate/Time
        = AcquisitionDate/Time: DecayCorrection START refers to it).
    frame_duration_s : float or sequence of float
        ActualFrameDuration (one per volume for a dynamic series).
    frame_start_s : sequence of float, optional
        Dynamic series: each frame's start after ``series_datetime`` (default
        consecutive frames from it).
    isotope : str
        Radionuclide (petrecon.isotopes name).
    radiopharmaceutical : str
        Tracer name (Radiopharmaceutical, at most 64 characters); default
        :data:`UNKNOWN_TRACER`: never a guessed tracer.
    patient_weight_kg, patient_size_m : float, optional
        PatientWeight and PatientSize (needed for SUVbw / lean-mass SUVs).
    patient_sex : str
        ``M``, ``F`` or ``O``.
    patient_position : str, optional
        HFS, FFS, HFP or FFP: sets ImageOrientationPatient and
        ImagePositionPatient from the gantry coordinates (module docstring).
        Default: ``volume.metadata["patient_position"]``, else HFS.
    bed_position_mm : float, optional
        Siemens ``start horizontal bed position`` of the volume's gantry
        frame (:mod:`petrecon.geometry.patient`). Default:
        ``volume.metadata["bed_position_mm"]``, else 0. Recorded in the
        provenance element so that :func:`read_pet_series` reads the series
        back into the same gantry frame.
    corrected_image : tuple of str
        CorrectedImage values (subset of NORM, DTIM, ATTN, SCAT, DECY, RAN).
    half_life_s : float, optional
        RadionuclideHalfLife; default from :mod:`petrecon.isotopes`.
    study_instance_uid, frame_of_reference_uid : str, optional
        Those of the CT or MR series the PET is fused with
        (:func:`series_reference`); default new UIDs.
    reconstruction_method : str, optional
        ReconstructionMethod (at most 64 characters), e.g.
        :meth:`petrecon.recon.protocol.ReconstructionProtocol.dicom_method`.
    provenance : dict, optional
        Protocol, scanner, inputs' hashes (ARCHITECTURE contract 8); stored as
        JSON in a private element (0071,xx00), creator ``PETRECON``, and
        summarised in ImageComments.

    Returns
    -------
    list of Path
        The files written, slice z = 0 first (frame by frame).

    Examples
    --------
    >>> import tempfile, pathlib, datetime
    >>> grid = ImageGrid.centred((4, 3, 2), (2.0, 2.0, 3.0))
    >>> volume = Volume(np.arange(24, dtype=np.float32).reshape(4, 3, 2) * 100, grid, {"units": "Bq/ml"})
    >>> scan = datetime.datetime(2026, 1, 5, 14, 1)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "pet"
    >>> files = write_pet_series(volume, out, injected_dose_bq=370e6, injection_datetime=scan
    ...     - datetime.timedelta(hours=1), series_datetime=scan, frame_duration_s=180, patient_weight_kg=70)
    >>> back = read_pet_series(out)
    >>> bool(np.allclose(back.data, volume.data, atol=2300 / 32767))
    True
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dynamic = not isinstance(volume, Volume)
    volumes = list(volume) if dynamic else [volume]
    durations = [float(d) for d in (frame_duration_s if dynamic else [frame_duration_s])]
    starts = list(frame_start_s) if frame_start_s is not None else list(np.cumsum([0.0] + durations[:-1]))
    if not volumes or len(durations) != len(volumes) or len(starts) != len(volumes):
        raise ParameterError(f"{len(volumes)} volumes need as many frame durations and starts, got "
                             f"{len(durations)} and {len(starts)}")
    for frame in volumes:
        units = frame.metadata.get("units", "Bq/ml")
        if units not in ("Bq/ml", "BQML"):
            raise ParameterError(f"write_pet_series writes Bq/ml volumes; this volume's units are {units!r}")
        if frame.grid != volumes[0].grid:
            raise ParameterError(f"the frames of a series share one grid: {frame.grid} differs from {volumes[0].grid}")
    recorded_position, recorded_bed_mm = volume_patient_frame(volumes[0].metadata)
    patient_position = check_patient_position(patient_position or recorded_position, source="patient_position")
    bed_position_mm = check_bed_position_mm(recorded_bed_mm if bed_position_mm is None else bed_position_mm,
                                            source="bed_position_mm")
    provenance = {**(provenance or {}), "bed_position_mm": bed_position_mm}
    unknown = set(corrected_image) - set(_ALL_CORRECTIONS)
    if unknown:
        raise ParameterError(f"unknown CorrectedImage values {sorted(unknown)}; known: {_ALL_CORRECTIONS}")
    if not injected_dose_bq > 0 or not min(durations) > 0 or min(starts) < 0:
        raise ParameterError("injected_dose_bq and frame_duration_s must be > 0, frame_start_s >= 0")
    if patient_sex not in ("M", "F", "O"):
        raise ParameterError(f"patient_sex must be M, F or O, got {patient_sex!r}")
    for keyword, value in (("Radiopharmaceutical", radiopharmaceutical),
                           ("ReconstructionMethod", reconstruction_method or "")):
        if len(value) > _LO_MAX_CHARS or "\\" in value:
            raise ParameterError(f"{folder}: {keyword} {value!r} is not a DICOM LO value (at most "
                                 f"{_LO_MAX_CHARS} characters, no backslash)")
    if not all(np.all(np.isfinite(frame.data)) for frame in volumes):
        raise ParameterError("the volume holds NaN or infinite values")
    nuclide = get_isotope(isotope)
    half_life_s = nuclide.half_life_s if half_life_s is None else float(half_life_s)
    if patient_weight_kg is not None:
        check_parameter("weight_kg", patient_weight_kg, label=f"{folder}: PatientWeight")
    if patient_size_m is not None:
        check_parameter("height_m", patient_size_m, label=f"{folder}: PatientSize")
    check_uptake(injection_datetime, series_datetime, half_life_s, f"{folder}: RadiopharmaceuticalStartDateTime")
    if injection_datetime.utcoffset() is not None:  # one offset, the series', for the time-only tags
        injection_datetime = injection_datetime.astimezone(series_datetime.tzinfo)
    to_patient = gantry_to_patient_affine(patient_position, bed_position_mm)
    grid = volumes[0].grid
    study_uid = study_instance_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    now = dt.datetime.now()
    comments = "petrecon " + __version__ + ((": " + ", ".join(f"{k}={v}" for k, v in provenance.items()
                                                                 if isinstance(v, (str, int, float))))
                                            if provenance else "")

    def dicom_date(value: dt.datetime) -> str:
        return value.strftime("%Y%m%d")

    def dicom_time(value: dt.datetime) -> str:
        return value.strftime("%H%M%S.%f")

    files = []
    frames = [(f, k) for f in range(len(volumes)) for k in range(grid.shape[2])]
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        for f, k in frames:
            start_s, duration_s = float(starts[f]), durations[f]
            acquisition = series_datetime + dt.timedelta(seconds=start_s)
            ds = pydicom.Dataset()
            sop_uid = generate_uid()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
            ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.InstanceCreationDate, ds.InstanceCreationTime = dicom_date(now), dicom_time(now)
            ds.SOPClassUID, ds.SOPInstanceUID = PET_IMAGE_STORAGE, sop_uid
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = dicom_date(series_datetime)
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = dicom_time(series_datetime)
            if series_datetime.utcoffset() is not None:
                ds.TimezoneOffsetFromUTC = series_datetime.strftime("%z")
            ds.AcquisitionDate, ds.AcquisitionTime = dicom_date(acquisition), dicom_time(acquisition)
            ds.AccessionNumber = ""
            ds.Modality = "PT"
            ds.Manufacturer = "petrecon"
            ds.ManufacturerModelName = manufacturer_model_name
            ds.SoftwareVersions = f"petrecon {__version__}"
            ds.ReferringPhysicianName = ""
            ds.SeriesDescription = series_description
            ds.Laterality = ""
            ds.PatientName, ds.PatientID = patient_name, patient_id
            ds.PatientBirthDate, ds.PatientSex = patient_birth_date, patient_sex
            if patient_weight_kg is not None:
                ds.PatientWeight = f"{float(patient_weight_kg):.6g}"
            if patient_size_m is not None:
                ds.PatientSize = f"{float(patient_size_m):.6g}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", int(series_number), f * grid.shape[2] + k + 1
            ds.FrameOfReferenceUID = frame_uid
            ds.PositionReferenceIndicator = ""
            ds.ImageOrientationPatient = [f"{v:g}" for v in (to_patient[0, 0], 0, 0, 0, to_patient[1, 1], 0)]
            position = to_patient[:3, :3] @ (np.array(grid.origin_mm) + [0.0, 0.0, k * grid.voxel_size_mm[2]]) \
                + to_patient[:3, 3]
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
            ds.SliceLocation = f"{position[2]:.6f}"
            ds.PixelSpacing = [f"{grid.voxel_size_mm[1]:.6f}", f"{grid.voxel_size_mm[0]:.6f}"]
            ds.SliceThickness = f"{grid.voxel_size_mm[2]:.6f}"
            # PET series and image modules
            ds.Units = "BQML"
            ds.CountsSource = "EMISSION"
            ds.SeriesType = ["DYNAMIC" if dynamic else "STATIC", "IMAGE"]
            ds.CorrectedImage = list(corrected_image)
            ds.DecayCorrection = "START"
            ds.RandomsCorrectionMethod = "DLYD" if "RAN" in corrected_image else "NONE"
            if reconstruction_method:
                ds.ReconstructionMethod = reconstruction_method
            ds.CollimatorType = "NONE"
            ds.NumberOfSlices = grid.shape[2]
            if dynamic:
                ds.NumberOfTimeSlices = len(volumes)
            ds.ImageIndex = f * grid.shape[2] + k + 1
            # DecayCorrection START: the frame's mean activity corrected to the series start
            reference_s = start_s + decay_weighted_frame_time_s(duration_s, half_life_s)
            ds.FrameReferenceTime = f"{1000.0 * reference_s:.3f}"
            ds.ActualFrameDuration = int(round(duration_s * 1000))
            ds.DecayFactor = f"{decay_correction_factor(half_life_s, start_s, duration_s):.6f}"
            ds.update(_orientation_codes(patient_position))
            ds.RadiopharmaceuticalInformationSequence = pydicom.Sequence([_radiopharmaceutical_item(
                nuclide.name, radiopharmaceutical, injected_dose_bq, injection_datetime, half_life_s,
                nuclide.positron_fraction)])
            # pixels: int16, one slope per slice
            plane = np.asarray(volumes[f].data[:, :, k], dtype=np.float64).T  # rows = y, columns = x
            peak = float(np.abs(plane).max())
            slope = peak / _INT16_MAX if peak > 0 else 1.0
            pixels = np.clip(np.rint(plane / slope), -_INT16_MAX, _INT16_MAX).astype("<i2")
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.Rows, ds.Columns = plane.shape
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], "0"
            ds.SmallestImagePixelValue, ds.LargestImagePixelValue = int(pixels.min()), int(pixels.max())
            ds.ImageComments = comments[:10240]
            if provenance:
                import json

                block = ds.private_block(0x0071, "PETRECON", create=True)
                block.add_new(0x00, "UT", json.dumps(provenance, default=str))
            ds.PixelData = pixels.tobytes()
            name = f"frame_{f + 1:03d}_slice_{k + 1:04d}.dcm" if dynamic else f"slice_{k + 1:04d}.dcm"
            ds.save_as(temporary / name, enforce_file_format=True)
            files.append(Path(folder) / name)
    return files


def write_dynamic_pet_series(volumes: Sequence[Volume], folder: str | os.PathLike, *,
                             frame_start_s: Sequence[float], frame_duration_s: Sequence[float],
                             **fields: Any) -> list[Path]:
    """Write frames as one dynamic PET series: :func:`write_pet_series` with a volume per frame.

    Every frame is in Bq/ml decay-corrected to ``series_datetime`` (the
    first frame's start: DecayCorrection START). Per file: SeriesType
    DYNAMIC, NumberOfTimeSlices, ImageIndex ``= frame x NumberOfSlices +
    slice + 1``, AcquisitionDate/Time = series start + frame start,
    ActualFrameDuration, FrameReferenceTime = frame start + the
    decay-weighted mid-frame offset (:func:`decay_weighted_frame_time_s`) and
    DecayFactor = :func:`~petrecon.isotopes.decay_correction_factor` of the
    frame. ``fields`` are :func:`write_pet_series`'s keywords.

    Examples
    --------
    >>> import tempfile, pathlib, datetime
    >>> grid = ImageGrid.centred((4, 3, 2), (2.0, 2.0, 3.0))
    >>> frames = [Volume(np.full(grid.shape, v, np.float32), grid) for v in (100.0, 50.0)]
    >>> scan = datetime.datetime(2026, 1, 5, 14, 1)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "dyn"
    >>> _ = write_dynamic_pet_series(frames, out, frame_start_s=[0, 60], frame_duration_s=[60, 120],
    ...     injected_dose_bq=370e6, injection_datetime=scan, series_datetime=scan)
    >>> [(round(float(v.data.mean())), v.metadata["suv_inputs"]["actual_frame_duration_ms"])
    ...  for v in read_dynamic_pet_series(out)]
    [(100, 60000.0), (50, 120000.0)]
    """
    return write_pet_series(list(volumes), folder, frame_start_s=list(frame_start_s),
                            frame_duration_s=list(frame_duration_s), **fields)


#: NM/PET Patient Orientation codes (DICOM PS3.16 CID 19, 20, 21; SRT): recumbent, supine/prone, head/feet first.
_RECUMBENT = ("F-10450", "recumbent")
_MODIFIER = {"S": ("F-10340", "supine"), "P": ("F-10310", "prone")}
_GANTRY = {"HF": ("F-10470", "headfirst"), "FF": ("F-10480", "feet-first")}


def _code_item(code: tuple[str, str]):
    import pydicom

    item = pydicom.Dataset()
    item.CodeValue, item.CodeMeaning = code
    item.CodingSchemeDesignator = "SRT"
    return item


def _orientation_codes(position: str):
    """PatientOrientationCodeSequence (with modifier) and PatientGantryRelationshipCodeSequence for a position."""
    import pydicom

    ds = pydicom.Dataset()
    orientation = _code_item(_RECUMBENT)
    orientation.PatientOrientationModifierCodeSequence = pydicom.Sequence([_code_item(_MODIFIER[position[2]])])
    ds.PatientOrientationCodeSequence = pydicom.Sequence([orientation])
    ds.PatientGantryRelationshipCodeSequence = pydicom.Sequence([_code_item(_GANTRY[position[:2]])])
    return ds


def _position_from_codes(dataset) -> str | None:
    """HFS/FFS/HFP/FFP from the NM/PET Patient Orientation code sequences, None if they do not say."""
    try:
        modifier = dataset.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence[0].CodeValue
        gantry = dataset.PatientGantryRelationshipCodeSequence[0].CodeValue
    except (AttributeError, IndexError):
        return None
    lying = {code: key for key, (code, _) in _MODIFIER.items()}.get(modifier)
    first = {code: key for key, (code, _) in _GANTRY.items()}.get(gantry)
    return first + lying if lying and first else None


def _radiopharmaceutical_item(isotope: str, radiopharmaceutical: str, dose_bq: float, injection: dt.datetime,
                              half_life_s: float, positron_fraction: float):
    import pydicom

    item = pydicom.Dataset()
    item.Radiopharmaceutical = radiopharmaceutical
    item.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S.%f")
    item.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S.%f%z")
    item.RadionuclideTotalDose = f"{float(dose_bq):.6g}"
    item.RadionuclideHalfLife = f"{float(half_life_s):.6g}"
    item.RadionuclidePositronFraction = f"{float(positron_fraction):.6g}"
    code = pydicom.Dataset()
    codes = []
    if isotope in RADIONUCLIDE_CODES:
        code.CodeValue, code.CodeMeaning = RADIONUCLIDE_CODES[isotope]
        code.CodingSchemeDesignator = "SRT"
        codes.append(code)
    item.RadionuclideCodeSequence = pydicom.Sequence(codes)
    return item


def decay_weighted_frame_time_s(frame_duration_s: float, half_life_s: float) -> float:
    """Time after the frame start at which the activity equals the frame's mean.

    ``(1/lambda) ln(lambda T / (1 - exp(-lambda T)))`` (reference/quantification.md), the
    FrameReferenceTime written for DecayCorrection START (a little under T/2).

    Examples
    --------
    >>> round(decay_weighted_frame_time_s(180.0, 6586.2), 3)
    89.858
    """
    decay_constant = math.log(2.0) / half_life_s
    return math.log(decay_correction_factor(half_life_s, 0.0, frame_duration_s)) / decay_constant
