"""Shared test fixtures."""

from __future__ import annotations

import pytest


def _write_dicom_series(folder, modality, planes, positions, orientation, spacing, *, slope=1.0, intercept=0.0,
                        series_uid=None, extra=None):
    """Write ``planes`` (slice, row, column) as a CT or MR DICOM series, one file per slice."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from petrecon.io.dicom import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    for k, (plane, position) in enumerate(zip(planes, positions)):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
        ds.Modality, ds.SeriesInstanceUID = modality, series_uid
        ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:g}" for v in position]
        ds.PixelSpacing = [f"{v:g}" for v in spacing]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = plane.astype("<i2").tobytes()
        ds.save_as(folder / f"{k:03d}.dcm", enforce_file_format=True)
    return series_uid


@pytest.fixture
def write_dicom_series():
    """``write(folder, modality, planes, positions, orientation, spacing, *, slope, intercept, series_uid, extra)``."""
    return _write_dicom_series
