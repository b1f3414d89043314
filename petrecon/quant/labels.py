"""Label masks (VOIs) from files: NIfTI label images and DICOM Segmentation objects, on a PET grid.

:func:`read_label_masks` returns one boolean mask per segment on the grid of a
PET :class:`~petrecon.volume.Volume`, ready for
:func:`petrecon.quant.stats.voi_statistics`.

Orientation
-----------
Each file gives the mm position of its voxels in a patient frame; petrecon's
Volume axes are gantry coordinates, tied to DICOM's patient frame LPS by the
patient and bed position (:mod:`petrecon.geometry.patient`; HFS:
``LPS = (x, y, -(z - bed))``).

- NIfTI: the image's affine (sform, else qform, as nibabel chooses) maps
  voxel indices to **RAS+** mm, so ``LPS = diag(-1, -1, 1) RAS``.
- DICOM-SEG (SOP Class 1.2.840.10008.5.1.4.1.1.66.4): each frame's
  ImagePositionPatient (PlanePositionSequence), the ImageOrientationPatient
  (PlaneOrientationSequence) and PixelSpacing (PixelMeasuresSequence), from
  the frame's PerFrameFunctionalGroupsSequence item or else the
  SharedFunctionalGroupsSequence, give **LPS** mm; the frame's
  SegmentIdentificationSequence ReferencedSegmentNumber names its segment in
  SegmentSequence (SegmentNumber, SegmentLabel). The frames of all segments
  must form one stack of parallel planes on a regular slice grid (missing
  planes are empty); its FrameOfReferenceUID must be the PET series' (when
  both are known: the PET Volume's DICOM header, or ``frame_of_reference_uid``).

Sampling onto the PET grid
--------------------------
A PET voxel belongs to a segment when its **centre** lies in a label voxel of
that segment (nearest-neighbour sampling: the convention of
:mod:`petrecon.quant.roi`; when the grids coincide this is an exact copy).
Fractional segmentations (DICOM SegmentationType FRACTIONAL, values divided
by MaximumFractionalValue; NIfTI images with non-integer values in [0, 1])
are interpolated trilinearly at the PET voxel centres and thresholded at
0.5. Outside the label image nothing is labelled. Segments that miss the PET
grid entirely are left out (with a warning); if all miss it the file and the
PET grid cannot be matched and a :class:`~petrecon.errors.FormatError` says so.

NIfTI labels: every non-zero integer value is a segment named by its value
(``"1"``, ``"2"``, ...). DICOM segments are named by SegmentLabel (by
``"segment N"`` without one; a label used twice gets its number appended).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from scipy import ndimage

from petrecon.errors import FormatError, ParameterError
from petrecon.geometry.patient import check_patient_position, patient_to_gantry_affine, volume_patient_frame
from petrecon.io.dicom import _float_tag, _size_tags
from petrecon.volume import ImageGrid, Volume

LOG = logging.getLogger(__name__)

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
#: RAS+ (NIfTI world) -> LPS (DICOM patient) coordinates.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Fraction at or above which a PET voxel belongs to a fractional segment.
FRACTION_THRESHOLD = 0.5
#: How far (mm) frame positions may stray from one regular stack of planes.
_POSITION_TOLERANCE_MM = 1e-2
_FRAME_OF_REFERENCE_TAG = "00200052"


@dataclass
class _LabelImage:
    """Segments as stored in a file: one image on its own voxel grid, holding one or more segments."""

    values: np.ndarray             # (i, j, k) label-image index order: integer labels, or float32 fractions
    index_to_lps: np.ndarray       # 4 x 4, voxel index -> LPS mm
    segments: dict[str, int]       # name -> label number (fractional images: the only segment, number 1)
    fractional: bool = False

    def masks_on(self, index_to_scanner: np.ndarray, grid: ImageGrid) -> dict[str, np.ndarray]:
        """Each segment's mask on ``grid``: nearest label voxel, or interpolated fraction >= 0.5."""
        pet_to_label = np.linalg.inv(index_to_scanner) @ grid.affine
        snapped = np.round(pet_to_label)
        if np.allclose(pet_to_label, snapped, atol=1e-4):
            pet_to_label = snapped  # same voxel centres (up to a permutation or flip): an exact copy
        sampled = ndimage.affine_transform(self.values, pet_to_label[:3, :3], offset=pet_to_label[:3, 3],
                                           output_shape=grid.shape, order=1 if self.fractional else 0,
                                           mode="grid-constant", cval=0.0, prefilter=False)
        if self.fractional:
            return {name: sampled >= FRACTION_THRESHOLD for name in self.segments}
        return {name: sampled == number for name, number in self.segments.items()}


def read_label_masks(path: str | os.PathLike, reference: Volume | ImageGrid, *,
                     patient_position: str | None = None,
                     frame_of_reference_uid: str | None = None) -> dict[str, np.ndarray]:
    """One boolean mask per segment of a NIfTI label image or a DICOM-SEG, on the PET grid.

    Parameters
    ----------
    path : path-like
        ``.nii`` / ``.nii.gz`` (needs nibabel: ``pip install petrecon[nifti]``)
        or a DICOM Segmentation file.
    reference : Volume or ImageGrid
        The PET volume (its grid, ``metadata["patient_position"]``,
        ``metadata["bed_position_mm"]`` and the FrameOfReferenceUID of
        ``metadata["dicom_header"]`` are used) or a bare grid (gantry
        coordinates of an HFS patient at bed position 0).
    patient_position : str, optional
        HFS, FFS, HFP or FFP; default the Volume's, else HFS.
    frame_of_reference_uid : str, optional
        The PET series' FrameOfReferenceUID; default the Volume's DICOM header's.
        A DICOM-SEG with another one is refused.

    Returns
    -------
    dict
        Segment name -> bool array of the grid's shape (see the module notes),
        in the file's segment order.

    Raises
    ------
    FormatError
        Unreadable file, missing or inconsistent tags (named), another frame
        of reference, or no segment overlapping the PET grid.
    ParameterError
        NIfTI without nibabel installed, unknown patient position.

    Examples
    --------
    >>> import tempfile, nibabel
    >>> grid = ImageGrid.centred((8, 8, 4), (2.0, 2.0, 2.0))
    >>> labels = np.zeros(grid.shape, np.uint8); labels[2:4, 2:5, 1] = 3
    >>> from petrecon.geometry.patient import gantry_to_patient_affine
    >>> ras = RAS_TO_LPS @ gantry_to_patient_affine("HFS") @ grid.affine  # the same matrix maps LPS to RAS+
    >>> path = Path(tempfile.mkdtemp()) / "labels.nii.gz"
    >>> nibabel.save(nibabel.Nifti1Image(labels, ras), path)
    >>> {name: int(mask.sum()) for name, mask in read_label_masks(path, grid).items()}
    {'3': 6}
    """
    path = Path(path)
    grid = reference.grid if isinstance(reference, Volume) else reference
    metadata = reference.metadata if isinstance(reference, Volume) else {}
    recorded_position, bed_position_mm = volume_patient_frame(metadata)
    position = check_patient_position(patient_position or recorded_position)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        images, position_field = _nifti_images(path), "affine"
    else:
        images = _seg_images(path, frame_of_reference_uid or _frame_of_reference(metadata))
        position_field = "ImagePositionPatient"
    lps_to_scanner = patient_to_gantry_affine(position, bed_position_mm)
    masks, missed = {}, []
    for image in images:
        for name, mask in image.masks_on(lps_to_scanner @ image.index_to_lps, grid).items():
            if mask.any():
                masks[name] = mask
            else:
                missed.append(name)
    if not masks:
        raise FormatError(path, position_field, f"no segment ({', '.join(missed) or 'none stored'}) overlaps "
                          f"the PET grid {_extent(grid)} (patient position {position})")
    if missed:
        LOG.warning("%s: segments %s lie outside the PET grid", path, ", ".join(missed))
    return masks


def label_records(volume: Volume, path: str | os.PathLike) -> list[dict]:
    """One statistics record per segment of a label file (:func:`petrecon.quant.report.voi_record`).

    Records are named ``"<file name>:<segment>"``; positions are DICOM patient
    coordinates (LPS), as for the ROI records of ``petrecon suv``.
    """
    from petrecon.quant.report import voi_record

    return [voi_record(f"{Path(path).name}:{name}", volume, mask)
            for name, mask in read_label_masks(path, volume).items()]


def _frame_of_reference(metadata: dict) -> str | None:
    values = metadata.get("dicom_header", {}).get(_FRAME_OF_REFERENCE_TAG, {}).get("Value") or [None]
    return values[0]


def _extent(grid: ImageGrid) -> str:
    low = np.array(grid.origin_mm)
    high = low + (np.array(grid.shape) - 1) * np.array(grid.voxel_size_mm)
    return "(" + ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(low, high)) + " mm, scanner x, y, z)"


# ----------------------------------------------------------------------------------------------- NIfTI
def _nifti_images(path: Path) -> list[_LabelImage]:
    try:
        import nibabel
    except ImportError:
        raise ParameterError(f"{path}: reading NIfTI needs nibabel (pip install 'petrecon[nifti]')") from None
    try:
        image = nibabel.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for broken headers and truncated data
        raise FormatError(path, "NIfTI header", f"cannot be read ({error})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise FormatError(path, "dim", f"a label image has 3 dimensions, this one has shape {data.shape}")
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise FormatError(path, "sform/qform", f"the affine is not an invertible voxel-to-mm map:\n{affine}")
    index_to_lps = RAS_TO_LPS @ affine
    if not np.all(np.isfinite(data)):
        raise FormatError(path, "data", "holds NaN or infinite values")
    if np.array_equal(data, np.round(data)):
        labels = data if data.dtype.kind in "iu" else data.astype(np.int32)
        return [_LabelImage(labels, index_to_lps, {str(v): int(v) for v in np.unique(labels) if v != 0})]
    if data.min() < 0 or data.max() > 1:
        raise FormatError(path, "data", f"values {data.min():g}..{data.max():g} are neither integer labels "
                          "nor fractions in [0, 1]")
    return [_LabelImage(data.astype(np.float32), index_to_lps, {"1": 1}, fractional=True)]


# ----------------------------------------------------------------------------------------------- DICOM-SEG
def _seg_images(path: Path, frame_of_reference_uid: str | None) -> Iterator[_LabelImage]:
    """One label image per segment, made when asked for (a whole-body SEG may hold a hundred)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as error:
        raise FormatError(path, "file", f"is neither NIfTI (.nii, .nii.gz) nor readable DICOM ({error})") from None
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class != SEGMENTATION_STORAGE:
        raise FormatError(path, "SOPClassUID", f"{sop_class or 'missing'}: not a Segmentation ({SEGMENTATION_STORAGE})")
    seg_frame = str(ds.get("FrameOfReferenceUID", "")) or None
    if frame_of_reference_uid and seg_frame and seg_frame != frame_of_reference_uid:
        raise FormatError(path, "FrameOfReferenceUID", f"{seg_frame} differs from the PET series' "
                          f"{frame_of_reference_uid}: the segmentation belongs to another frame of reference")
    kind = str(ds.get("SegmentationType", ""))
    if kind not in ("BINARY", "FRACTIONAL"):
        raise FormatError(path, "SegmentationType", f"must be BINARY or FRACTIONAL, got {kind!r}")
    frames, scale = _seg_frames(path, ds, kind)
    names = _segment_names(path, ds)
    geometry = [_frame_geometry(path, ds, i) for i in range(len(frames))]
    orientation, spacing = geometry[0][0], geometry[0][1]
    for i, (frame_orientation, frame_spacing, _, _) in enumerate(geometry):
        if not np.allclose(frame_orientation, orientation, atol=1e-4):
            raise FormatError(path, f"frame {i + 1} ImageOrientationPatient", "differs from frame 1's")
        if not np.allclose(frame_spacing, spacing, atol=1e-4):
            raise FormatError(path, f"frame {i + 1} PixelSpacing", "differs from frame 1's")
    normal = np.cross(orientation[:3], orientation[3:])
    if abs(np.linalg.norm(normal) - 1) > 1e-3:
        raise FormatError(path, "ImageOrientationPatient", f"is not two orthonormal vectors: {orientation.tolist()}")
    positions = np.array([g[2] for g in geometry])
    slice_index, first_position, step = _stack(path, ds, positions, normal, spacing)
    index_to_lps = np.eye(4)
    index_to_lps[:3, :3] = np.column_stack([orientation[:3] * spacing[1], orientation[3:] * spacing[0], normal * step])
    index_to_lps[:3, 3] = first_position
    unknown = sorted({g[3] for g in geometry} - set(names))
    if unknown:
        raise FormatError(path, "ReferencedSegmentNumber", f"frames refer to segments {unknown} that "
                          f"SegmentSequence does not hold (it holds {sorted(names)})")
    n_slices = int(slice_index.max()) + 1
    for number, name in names.items():  # segments may overlap: one image each
        stack = np.zeros((frames.shape[2], frames.shape[1], n_slices), frames.dtype)  # (column, row, slice)
        for i in (i for i, g in enumerate(geometry) if g[3] == number):
            stack[:, :, slice_index[i]] = np.maximum(stack[:, :, slice_index[i]], frames[i].T)
        if kind == "FRACTIONAL":
            yield _LabelImage(stack.astype(np.float32) * scale, index_to_lps, {name: 1}, fractional=True)
        else:
            yield _LabelImage(stack, index_to_lps, {name: 1})


def _seg_frames(path: Path, ds: Any, kind: str) -> tuple[np.ndarray, float]:
    """(frames, rows, columns) uint8 as stored (0/1, or 0..MaximumFractionalValue) and the scale to fractions."""
    rows, columns = _size_tags(path, ds)
    n_frames = ds.get("NumberOfFrames", 1)
    try:
        n_frames = int(n_frames)
    except (TypeError, ValueError):
        n_frames = 0
    if n_frames < 1:
        raise FormatError(path, "NumberOfFrames", f"must be a positive integer, got {ds.get('NumberOfFrames')!r}")
    bits = 1 if kind == "BINARY" else 8
    if int(ds.get("BitsAllocated", 0)) != bits:
        raise FormatError(path, "BitsAllocated", f"{kind} segmentations store {bits} bit(s), got "
                          f"{ds.get('BitsAllocated')!r}")
    if "PixelData" not in ds:
        raise FormatError(path, "PixelData", "missing")
    needed = (rows * columns * n_frames * bits + 7) // 8
    stored = len(ds.PixelData)
    if not needed <= stored <= needed + 1:  # one pad byte makes an odd length even
        raise FormatError(path, "PixelData", f"holds {stored} bytes; Rows x Columns x NumberOfFrames = "
                          f"{rows} x {columns} x {n_frames} at {bits} bit(s) need {needed}")
    try:
        pixels = np.asarray(ds.pixel_array, dtype=np.uint8).reshape(n_frames, rows, columns)
    except Exception as error:  # pydicom raises many types for unsupported or broken pixel data
        raise FormatError(path, "PixelData", f"cannot be decoded ({error})") from None
    if kind == "BINARY":
        return pixels, 1.0
    maximum = float(ds.get("MaximumFractionalValue", 0) or 0)
    if not 0 < maximum <= 255:
        raise FormatError(path, "MaximumFractionalValue", f"must be 1..255, got {ds.get('MaximumFractionalValue')!r}")
    return np.minimum(pixels, int(maximum)), 1.0 / maximum


def _segment_names(path: Path, ds: Any) -> dict[int, str]:
    """SegmentNumber -> a unique name (SegmentLabel)."""
    sequence = ds.get("SegmentSequence")
    if not sequence:
        raise FormatError(path, "SegmentSequence", "missing or empty")
    numbers, labels = [], []
    for item in sequence:
        number = item.get("SegmentNumber")
        if not isinstance(number, int) or number < 1 or number in numbers:
            raise FormatError(path, "SegmentSequence SegmentNumber",
                              f"must be unique positive integers, got {number!r}")
        numbers.append(number)
        labels.append(str(item.get("SegmentLabel", "")).strip() or f"segment {number}")
    return {number: label if labels.count(label) == 1 else f"{label} ({number})"
            for number, label in zip(numbers, labels)}


def _functional_item(path: Path, ds: Any, frame: int, sequence: str, keyword: str) -> Any:
    """``keyword`` of the frame's ``sequence`` item, else the shared functional groups'."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    groups = [per_frame[frame]] if per_frame is not None and frame < len(per_frame) else []
    shared = ds.get("SharedFunctionalGroupsSequence")
    groups += [shared[0]] if shared else []
    for group in groups:
        items = group.get(sequence)
        if items and keyword in items[0]:
            return items[0]
    raise FormatError(path, f"PerFrameFunctionalGroupsSequence[{frame}] {sequence} {keyword}",
                      "missing (neither per frame nor in SharedFunctionalGroupsSequence)")


def _frame_geometry(path: Path, ds: Any, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(ImageOrientationPatient, PixelSpacing, ImagePositionPatient, ReferencedSegmentNumber) of one frame."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != int(ds.get("NumberOfFrames", 1)):
        count = 0 if per_frame is None else len(per_frame)
        raise FormatError(path, "PerFrameFunctionalGroupsSequence",
                          f"holds {count} items for NumberOfFrames {ds.get('NumberOfFrames', 1)}")
    orientation = _float_tag(path, _functional_item(path, ds, frame, "PlaneOrientationSequence",
                                                    "ImageOrientationPatient"), "ImageOrientationPatient", 6)
    spacing = _float_tag(path, _functional_item(path, ds, frame, "PixelMeasuresSequence", "PixelSpacing"),
                         "PixelSpacing", 2)
    if np.any(spacing <= 0):
        raise FormatError(path, "PixelSpacing", f"must be positive, got {spacing.tolist()}")
    position = _float_tag(path, _functional_item(path, ds, frame, "PlanePositionSequence", "ImagePositionPatient"),
                          "ImagePositionPatient", 3)
    number = _functional_item(path, ds, frame, "SegmentIdentificationSequence",
                              "ReferencedSegmentNumber").ReferencedSegmentNumber
    return orientation, spacing, position, int(number)


def _stack(path: Path, ds: Any, positions: np.ndarray, normal: np.ndarray,
           spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Slice index of each frame, the LPS position of slice 0 and the slice step (mm)."""
    distance = positions @ normal
    in_plane = positions - distance[:, None] * normal
    if np.any(np.abs(in_plane - in_plane[0]).max(axis=1) > _POSITION_TOLERANCE_MM):
        raise FormatError(path, "ImagePositionPatient", "the frames are not one stack of planes along the "
                          "ImageOrientationPatient normal")
    levels = np.unique(np.round(distance / _POSITION_TOLERANCE_MM)) * _POSITION_TOLERANCE_MM
    declared = ds.get("SharedFunctionalGroupsSequence")
    measures = declared[0].get("PixelMeasuresSequence") if declared else None
    between = measures[0].get("SpacingBetweenSlices") if measures else None
    thickness = measures[0].get("SliceThickness") if measures else None
    if between is not None and float(between) > 0:
        step = float(between)
    elif len(levels) > 1:
        step = float(np.diff(levels).min())
    else:
        step = float(thickness) if thickness is not None and float(thickness) > 0 else float(spacing.min())
    offsets = (distance - distance.min()) / step
    index = np.round(offsets).astype(np.int64)
    if np.any(np.abs(offsets - index) * step > 10 * _POSITION_TOLERANCE_MM):
        raise FormatError(path, "ImagePositionPatient", f"the frame positions are not on a regular grid of "
                          f"{step:g} mm slices")
    return index, in_plane[0] + distance.min() * normal, step
