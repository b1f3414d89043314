"""Shared test fixtures."""

from __future__ import annotations

import dataclasses

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


def _short_biograph(name: str):
    """An axially short copy (28 rings around z = 0) of a Biograph: 200 radial bins, views mashed by 2, span 11,
    and a 160 x 160 x 55 image at the scanner's pixel size: in-plane recovery of the scanner, test-suite cost."""
    from petrecon.geometry import SinogramLayout, get_scanner
    from petrecon.volume import ImageGrid

    base = get_scanner(name)
    scanner = dataclasses.replace(base, n_rings=28, virtual_ring_positions=())
    grid = ImageGrid.centred((160, 160, 55), (*base.default_voxel_size_mm[:2], scanner.ring_spacing_mm / 2))
    return SinogramLayout(scanner, 11, 27, 200, 2), grid


@pytest.fixture(scope="session")
def short_biograph():
    """``short_biograph(name) -> (layout, grid)``: see :func:`_short_biograph`."""
    return _short_biograph


@pytest.fixture(scope="session")
def iec_noise_free(short_biograph):
    """The IEC phantom (10:1 as for EARL, 1 mm glass walls, no scatter or randoms) simulated noise-free on the
    short mMR, and its clinical reconstruction (4 x 8, 5 mm) without PSF: ``(container, protocol, volume)``.

    Shared by the NEMA noise and the PSF tests, which add a noisy and a PSF reconstruction of the same data.
    """
    from petrecon.recon import ReconstructionProtocol
    from petrecon.recon.protocol import CorrectionSettings
    from petrecon.recon.study import reconstruct_study
    from petrecon.simulate.acquisition import simulate_study

    layout, grid = short_biograph("mmr")
    study = simulate_study("nema-iec", scanner=layout, parameters={"ratio": 10}, noise=False, scatter=False,
                           randoms=False, grid=grid, supersampling=1, progress=False).container  # truth unused
    protocol = ReconstructionProtocol(image_shape=grid.shape, voxel_size_mm=grid.voxel_size_mm,
                                      corrections=CorrectionSettings(scatter=False, randoms=False))
    return study, protocol, reconstruct_study(study, protocol, progress=False).volume
