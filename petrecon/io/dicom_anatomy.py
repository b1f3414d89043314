"""Write CT and Dixon MR DICOM series of a volume: the anatomy a PET/CT or PET/MR study carries.

The counterpart of the readers of :mod:`petrecon.io.dicom` (``read_ct_series``,
``read_dixon_series``) for simulated studies: a CT in Hounsfield units
(int16, ``HU = pixel x RescaleSlope + RescaleIntercept`` with slope 1 and
intercept -1024, as CT scanners store it) and a Dixon water/fat pair (MR
signal in arbitrary units, int16, slope 1).

Volumes are given in petrecon's gantry frame and placed in DICOM patient
coordinates (LPS) by the one transform of :mod:`petrecon.geometry.patient`
for the acquisition's patient position and bed position, so a reader given
the same bed position puts every voxel back where it was. Slices are
transverse (CT, ImageOrientationPatient ``[1, 0, 0, 0, 1, 0]`` for HFS) or
coronal (the Biograph mMR's Dixon VIBE is a coronal 3D acquisition,
reference/clinical-protocol.md: ImageOrientationPatient ``[1, 0, 0, 0, 0, -1]``
for HFS, rows running from head to feet).

Series of one acquisition share a :class:`SeriesIdentity` (patient, study
and frame-of-reference UIDs, date and time), so a viewer shows them as one
study and fuses them. Folders are written atomically and refused if they
exist unless ``overwrite``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petrecon import __version__
from petrecon.errors import ParameterError
from petrecon.geometry.patient import check_bed_position_mm, check_patient_position, gantry_to_patient_affine
from petrecon.io.atomic import atomic_folder
from petrecon.io.dicom import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, new_dataset
from petrecon.volume import Volume

#: CT pixels are stored as ``HU + 1024`` (RescaleIntercept -1024), so air (-1000 HU) is a small positive number.
CT_RESCALE_INTERCEPT = -1024.0
#: Index of the gantry axis each slice orientation steps along (transverse: z; coronal: y).
SLICE_AXES = {"transverse": 2, "coronal": 1}
_INT16 = np.iinfo(np.int16)


def _new_uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid()


@dataclass(frozen=True)
class SeriesIdentity:
    """Patient, study and frame of reference shared by the series of one acquisition.

    Attributes
    ----------
    patient_id, patient_name : str
    patient_sex : str
        ``M``, ``F`` or ``O``.
    patient_weight_kg : float or None
    study_datetime : datetime.datetime
        StudyDate/Time and the series' AcquisitionDate/Time (local time).
    patient_size_m : float, optional
    patient_age_years : int, optional
        Weight, size and age are left out of the headers when None (a phantom).
    patient_position : str
        HFS, HFP, FFS or FFP.
    bed_position_mm : float
        The emission's ``start horizontal bed position``: where the gantry frame lies in LPS.
    study_instance_uid, frame_of_reference_uid : str
        New UIDs by default.
    """

    patient_id: str
    patient_name: str
    patient_sex: str
    patient_weight_kg: float | None
    study_datetime: dt.datetime
    patient_size_m: float | None = None
    patient_age_years: int | None = None
    patient_position: str = "HFS"
    bed_position_mm: float = 0.0
    study_instance_uid: str = field(default_factory=_new_uid)
    frame_of_reference_uid: str = field(default_factory=_new_uid)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patient_position", check_patient_position(self.patient_position))
        object.__setattr__(self, "bed_position_mm", check_bed_position_mm(self.bed_position_mm))
        if self.patient_sex not in ("M", "F", "O"):
            raise ParameterError(f"patient_sex must be M, F or O, got {self.patient_sex!r}")
        if not ((self.patient_weight_kg is None or self.patient_weight_kg > 0) and (self.patient_size_m is None or self.patient_size_m > 0)
                and (self.patient_age_years is None or 0 <= self.patient_age_years < 150)):
            raise ParameterError("patient weight and size must be > 0 and the age 0 to 149 years")


def write_ct_series(hu: Volume, folder: str | os.PathLike, identity: SeriesIdentity, *, kvp: float = 120.0,
                    tube_current_time_mas: float = 26.0, series_number: int = 2,
                    series_description: str = "CT low dose (attenuation)", overwrite: bool = False) -> list[Path]:
    """Write ``hu`` (Hounsfield units, gantry frame) as a transverse CT Image Storage series.

    Parameters
    ----------
    hu : Volume
        CT numbers on any grid in the gantry frame; values are rounded to whole HU and clipped to
        what int16 pixels with intercept -1024 hold.
    folder : path-like
        Output folder (its parent must exist).
    identity : SeriesIdentity
    kvp, tube_current_time_mas : float
        KVP (0018,0060) and Exposure (0018,1152): the clinical low-dose CT is 120 kV, 26 mAs
        (reference/clinical-protocol.md); petrecon's HU -> mu conversion reads the kVp.
    series_number : int
    series_description : str
    overwrite : bool

    Returns
    -------
    list of Path
        The files written, slice z index 0 first.

    Examples
    --------
    >>> import tempfile, pathlib, datetime
    >>> from petrecon.io.dicom import read_ct_series
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((4, 3, 2), (2.5, 2.5, 3.0))
    >>> hu = Volume(np.arange(24, dtype=np.float32).reshape(4, 3, 2) * 50 - 1000, grid)
    >>> who = SeriesIdentity("P01", "Sim^P01", "F", 60.0, datetime.datetime(2026, 1, 5, 10), 1.65, 50, "HFS", 40.0)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "ct"
    >>> _ = write_ct_series(hu, out, who)
    >>> back = read_ct_series(out, bed_position_mm=40.0)
    >>> bool(np.array_equal(back.data, hu.data)), back.grid == grid, back.metadata["kvp"]
    (True, True, 120.0)
    """
    pixels = np.clip(np.rint(np.asarray(hu.data, np.float64) - CT_RESCALE_INTERCEPT), _INT16.min, _INT16.max)

    def ct_tags(ds) -> None:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = f"{float(kvp):g}"
        ds.Exposure = f"{float(tube_current_time_mas):g}"
        ds.ConvolutionKernel = "B19f"
        ds.RescaleType = "HU"

    return _write_series(pixels, hu, folder, identity, CT_IMAGE_STORAGE, "CT", "transverse",
                         intercept=CT_RESCALE_INTERCEPT, series_number=series_number,
                         series_description=series_description, extra=ct_tags, overwrite=overwrite)


def write_dixon_series(water: Volume, fat: Volume, water_folder: str | os.PathLike, fat_folder: str | os.PathLike,
                       identity: SeriesIdentity, *, signal_scale: float = 1000.0, first_series_number: int = 3,
                       overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """Write Dixon water and fat images (gantry frame, one grid) as two coronal MR series.

    Parameters
    ----------
    water, fat : Volume
        Water and fat signals (e.g. proton-density fractions 0-1) on one grid.
    water_folder, fat_folder : path-like
        Output folders.
    identity : SeriesIdentity
        Shared by both series (one acquisition, one frame of reference).
    signal_scale : float
        Stored pixel = round(signal x scale) (MR signal has arbitrary units).
    first_series_number : int
        Water's SeriesNumber; fat's is the next.
    overwrite : bool

    Returns
    -------
    tuple of list of Path
        The water and the fat files.
    """
    if water.grid != fat.grid:
        raise ParameterError(f"Dixon water and fat must share one grid: {water.grid} vs {fat.grid}")
    if not signal_scale > 0:
        raise ParameterError(f"signal_scale must be > 0, got {signal_scale}")
    written = []
    for number, (name, volume, folder) in enumerate((("W", water, water_folder), ("F", fat, fat_folder))):
        pixels = np.clip(np.rint(np.clip(np.asarray(volume.data, np.float64), 0.0, None) * signal_scale), 0,
                         _INT16.max)

        def mr_tags(ds, name=name) -> None:
            ds.ImageType = ["DERIVED", "PRIMARY", "DIXON", name]
            ds.ScanningSequence, ds.SequenceVariant = "GR", ["SP", "SS"]
            ds.MRAcquisitionType = "3D"
            ds.MagneticFieldStrength = "3"
            ds.SequenceName = "*fl3d2"

        description = "t1_vibe_dixon_cor_" + ("W" if name == "W" else "F")
        written.append(_write_series(pixels, volume, folder, identity, MR_IMAGE_STORAGE, "MR", "coronal",
                                     intercept=0.0, series_number=first_series_number + number,
                                     series_description=description, extra=mr_tags, overwrite=overwrite))
    return written[0], written[1]


def _write_series(pixels: np.ndarray, volume: Volume, folder: str | os.PathLike, identity: SeriesIdentity,
                  sop_class_uid: str, modality: str, orientation: str, *, intercept: float, series_number: int,
                  series_description: str, extra, overwrite: bool) -> list[Path]:
    """One file per slice of ``pixels`` (int16 values on ``volume``'s grid) along the ``orientation``'s axis."""
    from pydicom.uid import generate_uid

    grid = volume.grid
    slice_axis = SLICE_AXES[orientation]
    row_axis, column_axis = (0, 1) if orientation == "transverse" else (0, 2)  # gantry axes along a row, a column
    to_patient = gantry_to_patient_affine(identity.patient_position, identity.bed_position_mm)
    series_uid = generate_uid()
    day, clock = identity.study_datetime.strftime("%Y%m%d"), identity.study_datetime.strftime("%H%M%S.%f")
    files = []
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        for k in range(grid.shape[slice_axis]):
            ds = new_dataset(sop_class_uid, modality)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = day
            ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = clock
            ds.Manufacturer, ds.ManufacturerModelName = "petrecon", "simulated"
            ds.SoftwareVersions = f"petrecon {__version__}"
            ds.PatientID, ds.PatientName = identity.patient_id, identity.patient_name
            ds.PatientSex = identity.patient_sex
            if identity.patient_weight_kg is not None:
                ds.PatientWeight = f"{identity.patient_weight_kg:.6g}"
            if identity.patient_age_years is not None:
                ds.PatientAge = f"{identity.patient_age_years:03d}Y"
            if identity.patient_size_m is not None:
                ds.PatientSize = f"{identity.patient_size_m:.6g}"
            ds.PatientBirthDate = ""
            ds.StudyInstanceUID, ds.SeriesInstanceUID = identity.study_instance_uid, series_uid
            ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = identity.frame_of_reference_uid, ""
            ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
            ds.SeriesNumber, ds.InstanceNumber = int(series_number), k + 1
            ds.SeriesDescription = series_description
            ds.PatientPosition = identity.patient_position
            index = [0.0, 0.0, 0.0]
            index[slice_axis] = float(k)
            corner = to_patient @ [*(np.asarray(grid.origin_mm) + np.multiply(index, grid.voxel_size_mm)), 1.0]
            ds.ImagePositionPatient = [f"{v:.4f}" for v in corner[:3]]
            ds.ImageOrientationPatient = [f"{v:g}" for v in (*to_patient[:3, row_axis], *to_patient[:3, column_axis])]
            ds.SliceLocation = f"{corner[slice_axis]:.4f}"
            ds.PixelSpacing = [f"{grid.voxel_size_mm[column_axis]:g}", f"{grid.voxel_size_mm[row_axis]:g}"]
            ds.SliceThickness = f"{grid.voxel_size_mm[slice_axis]:g}"
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = "1", f"{intercept:g}"
            extra(ds)
            plane = np.take(pixels, k, axis=slice_axis)  # (row axis, column axis) of the gantry, x first
            stored = np.ascontiguousarray(plane.T).astype("<i2")  # DICOM rows run along the column axis
            ds.Rows, ds.Columns = stored.shape
            ds.PixelData = stored.tobytes()
            name = f"{modality}{k + 1:04d}.dcm"
            ds.save_as(temporary / name, enforce_file_format=True)
            files.append(Path(folder) / name)
    return files
