"""Label masks from NIfTI and DICOM-SEG files land on the PET grid where they were drawn.

A synthetic PET volume holds a hot sphere; label files of that sphere, written with nibabel or built as
DICOM Segmentation objects with pydicom, must give the sphere's own VOI and statistics, whatever their
orientation, voxel grid and the patient position; files that cannot be matched to the PET grid are refused
naming the field.
"""

from __future__ import annotations

import json

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import pack_bits
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from petrecon.cli import main
from petrecon.errors import FormatError, ParameterError
from petrecon.io import Container, write_container
from petrecon.geometry.patient import PATIENT_POSITIONS, gantry_to_patient, gantry_to_patient_affine
from petrecon.quant.labels import SEGMENTATION_STORAGE, read_label_masks
from petrecon.quant.roi import box_mask, sphere_mask
from petrecon.quant.stats import voi_statistics
from petrecon.volume import ImageGrid, Volume

GRID = ImageGrid.centred((40, 36, 24), (4.0, 4.0, 3.0))
CENTRE_MM = (22.0, -14.0, 9.0)       # scanner coordinates, off centre on every axis (flips would show)
RADIUS_MM = 15.0
BOX_MM = ((-60.0, 10.0, -20.0), (-20.0, 50.0, 10.0))
FRAME_OF_REFERENCE = generate_uid()
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # NIfTI world coordinates are RAS+


def _pet(position: str = "HFS") -> Volume:
    rng = np.random.default_rng(3)
    sphere = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    data = (np.where(sphere, 8.0, 2.0) * rng.uniform(0.8, 1.2, GRID.shape)).astype(np.float32)
    header = {"00200052": {"vr": "UI", "Value": [FRAME_OF_REFERENCE]}}
    return Volume(data, GRID, {"units": "SUVbw", "patient_position": position, "dicom_header": header})


def _lps_affine(grid: ImageGrid, position: str = "HFS") -> np.ndarray:
    """Voxel index -> LPS mm of a Volume grid (bed position 0)."""
    return gantry_to_patient_affine(position) @ grid.affine


def _save_nifti(path, data, lps_affine):
    nibabel.save(nibabel.Nifti1Image(data, LPS_TO_RAS @ lps_affine), path)
    return path


# ---------------------------------------------------------------------------------------------- NIfTI
def test_nifti_label_image_on_the_pet_grid_gives_the_sphere_voi_and_its_statistics(tmp_path):
    pet = _pet()
    sphere = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    labels = np.where(sphere, 7, 0).astype(np.int16)
    labels[box_mask(GRID, *BOX_MM)] = 2
    masks = read_label_masks(_save_nifti(tmp_path / "l.nii.gz", labels, _lps_affine(GRID)), pet)
    assert list(masks) == ["2", "7"]
    np.testing.assert_array_equal(masks["7"], sphere)
    np.testing.assert_array_equal(masks["2"], box_mask(GRID, *BOX_MM))
    assert voi_statistics(pet, masks["7"]) == voi_statistics(pet, sphere)


def test_flipped_and_permuted_nifti_lands_in_the_same_place(tmp_path):
    sphere = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    # stored as (z, y, x) with x and z reversed: index (a, b, c) -> voxel (n_x - 1 - c, b, n_z - 1 - a)
    stored = np.flip(sphere.astype(np.uint8), axis=(0, 2)).transpose(2, 1, 0)
    to_pet_index = np.zeros((4, 4))
    to_pet_index[0, 2], to_pet_index[0, 3] = -1.0, GRID.shape[0] - 1
    to_pet_index[1, 1] = 1.0
    to_pet_index[2, 0], to_pet_index[2, 3] = -1.0, GRID.shape[2] - 1
    to_pet_index[3, 3] = 1.0
    path = _save_nifti(tmp_path / "flipped.nii", stored, _lps_affine(GRID) @ to_pet_index)
    assert nibabel.aff2axcodes(nibabel.load(path).affine) != ("R", "A", "S")
    np.testing.assert_array_equal(read_label_masks(path, _pet())["1"], sphere)


@pytest.mark.parametrize("position", ["HFS", "FFS", "HFP"])
def test_finer_nifti_is_resampled_and_the_patient_position_respected(tmp_path, position):
    """A 1 mm label image of the sphere drawn in patient coordinates (LPS)."""
    centre_lps = gantry_to_patient(CENTRE_MM, position)
    fine = ImageGrid((40, 40, 40), (1.0, 1.0, 1.0), tuple(centre_lps - 19.5))  # axes along L, P, S
    labels = sphere_mask(fine, centre_lps, RADIUS_MM).astype(np.uint8)
    mask = read_label_masks(_save_nifti(tmp_path / "fine.nii.gz", labels, fine.affine), _pet(position),
                            patient_position=position)["1"]
    # nearest 1 mm voxel: a PET voxel centre is mislabelled only within sqrt(3)/2 mm of the sphere surface
    x, y, z = (GRID.voxel_centres_mm(a) - CENTRE_MM[a] for a in range(3))
    distance = np.sqrt(x[:, None, None] ** 2 + y[None, :, None] ** 2 + z[None, None, :] ** 2)
    truth = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    assert np.all((mask == truth) | (np.abs(distance - RADIUS_MM) <= np.sqrt(3) / 2))
    assert abs(int(mask.sum()) - int(truth.sum())) <= 0.1 * truth.sum()


def test_fractional_nifti_is_thresholded_at_one_half(tmp_path):
    fractions = sphere_mask(GRID, CENTRE_MM, RADIUS_MM) * 0.6 + 0.1   # 0.7 inside, 0.1 outside
    mask = read_label_masks(_save_nifti(tmp_path / "p.nii.gz", fractions.astype(np.float32), _lps_affine(GRID)),
                            GRID)["1"]
    np.testing.assert_array_equal(mask, sphere_mask(GRID, CENTRE_MM, RADIUS_MM))


def test_bad_nifti_files_are_refused_naming_the_field(tmp_path, monkeypatch):
    two = np.zeros((*GRID.shape, 2), np.uint8)
    with pytest.raises(FormatError, match="dim"):
        read_label_masks(_save_nifti(tmp_path / "4d.nii", two, _lps_affine(GRID)), GRID)
    far = _lps_affine(GRID).copy()
    far[:3, 3] += 1000.0
    with pytest.raises(FormatError, match="affine.*overlaps"):
        read_label_masks(_save_nifti(tmp_path / "far.nii", np.ones(GRID.shape, np.uint8), far), GRID)
    (tmp_path / "broken.nii").write_bytes(b"not a nifti header")
    with pytest.raises(FormatError, match="NIfTI header"):
        read_label_masks(tmp_path / "broken.nii", GRID)
    monkeypatch.setitem(__import__("sys").modules, "nibabel", None)  # as if the nifti extra were not installed
    with pytest.raises(ParameterError, match=r"petrecon\[nifti\]"):
        read_label_masks(tmp_path / "far.nii", GRID)


# ---------------------------------------------------------------------------------------------- DICOM-SEG
def _write_seg(path, segments: dict[str, np.ndarray], grid: ImageGrid = GRID, *, fractional: bool = False,
               frame_of_reference: str = FRAME_OF_REFERENCE, position: str = "HFS", n_frames_declared=None):
    """A DICOM Segmentation (one frame per non-empty plane and segment) of masks/fractions on ``grid``."""
    affine = _lps_affine(grid, position)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SEGMENTATION_STORAGE
    ds.SOPClassUID, ds.SOPInstanceUID = SEGMENTATION_STORAGE, generate_uid()
    ds.Modality, ds.FrameOfReferenceUID = "SEG", frame_of_reference
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType, ds.MaximumFractionalValue = "PROBABILITY", 255
    ds.SegmentSequence = []
    for number, name in enumerate(segments, start=1):
        item = pydicom.Dataset()
        item.SegmentNumber, item.SegmentLabel, item.SegmentAlgorithmType = number, name, "MANUAL"
        ds.SegmentSequence.append(item)
    shared, measures, plane = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
    measures.PixelSpacing = [grid.voxel_size_mm[1], grid.voxel_size_mm[0]]
    measures.SliceThickness = measures.SpacingBetweenSlices = grid.voxel_size_mm[2]
    plane.ImageOrientationPatient = [*affine[:3, 0] / grid.voxel_size_mm[0], *affine[:3, 1] / grid.voxel_size_mm[1]]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [plane]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence, frames = [], []
    for number, values in enumerate(segments.values(), start=1):
        for k in np.flatnonzero(values.any(axis=(0, 1))):
            group, where, which = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
            where.ImagePositionPatient = list(affine @ [0, 0, k, 1])[:3]
            which.ReferencedSegmentNumber = number
            group.PlanePositionSequence, group.SegmentIdentificationSequence = [where], [which]
            ds.PerFrameFunctionalGroupsSequence.append(group)
            frames.append(values[:, :, k].T)                # rows = y, columns = x
    ds.NumberOfFrames = n_frames_declared or len(frames)
    ds.Rows, ds.Columns = frames[0].shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    pixels = np.stack(frames)
    if fractional:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelData = np.rint(pixels * 255).astype(np.uint8).tobytes()
    else:
        ds.BitsAllocated = ds.BitsStored = 1
        ds.HighBit = 0
        ds.PixelData = pack_bits(pixels.astype(np.uint8))
    ds.save_as(path, enforce_file_format=True)
    return path


def test_binary_seg_with_two_segments_gives_each_voi(tmp_path):
    pet = _pet()
    sphere, box = sphere_mask(GRID, CENTRE_MM, RADIUS_MM), box_mask(GRID, *BOX_MM)
    masks = read_label_masks(_write_seg(tmp_path / "seg.dcm", {"lesion": sphere, "liver": box}), pet)
    assert list(masks) == ["lesion", "liver"]
    np.testing.assert_array_equal(masks["lesion"], sphere)
    np.testing.assert_array_equal(masks["liver"], box)
    assert voi_statistics(pet, masks["lesion"]) == voi_statistics(pet, sphere)


@pytest.mark.parametrize("position", ["FFS", "HFP"])
def test_seg_of_a_feet_first_or_prone_patient_lands_on_the_sphere(tmp_path, position):
    sphere = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    mask = read_label_masks(_write_seg(tmp_path / "seg.dcm", {"lesion": sphere}, position=position),
                            _pet(position))["lesion"]
    np.testing.assert_array_equal(mask, sphere)


def test_fractional_seg_on_a_finer_grid_is_resampled_to_the_sphere(tmp_path):
    fine = ImageGrid.centred((80, 72, 48), (2.0, 2.0, 1.5))
    # partial-volume fraction of each fine voxel inside the sphere (4^3 sub-samples)
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    fractions = np.zeros(fine.shape)
    for dx in sub:
        for dy in sub:
            for dz in sub:
                shifted = ImageGrid(fine.shape, fine.voxel_size_mm, tuple(
                    o + d * v for o, d, v in zip(fine.origin_mm, (dx, dy, dz), fine.voxel_size_mm)))
                fractions += sphere_mask(shifted, CENTRE_MM, RADIUS_MM) / 64
    mask = read_label_masks(_write_seg(tmp_path / "frac.dcm", {"lesion": fractions}, fine, fractional=True),
                            _pet())["lesion"]
    truth = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    # the 50 % iso-surface of the interpolated fractions is the sphere surface to within a fine voxel (2 mm)
    x, y, z = (GRID.voxel_centres_mm(a) - CENTRE_MM[a] for a in range(3))
    distance = np.sqrt(x[:, None, None] ** 2 + y[None, :, None] ** 2 + z[None, None, :] ** 2)
    assert np.all((mask == truth) | (np.abs(distance - RADIUS_MM) <= 2.0))
    assert abs(int(mask.sum()) - int(truth.sum())) <= 0.05 * truth.sum()


def test_seg_of_another_frame_of_reference_is_refused(tmp_path):
    path = _write_seg(tmp_path / "seg.dcm", {"lesion": sphere_mask(GRID, CENTRE_MM, RADIUS_MM)},
                      frame_of_reference=generate_uid())
    with pytest.raises(FormatError, match="FrameOfReferenceUID"):
        read_label_masks(path, _pet())


def test_seg_whose_pixel_data_does_not_fit_its_size_is_refused(tmp_path):
    path = _write_seg(tmp_path / "seg.dcm", {"lesion": sphere_mask(GRID, CENTRE_MM, RADIUS_MM)},
                      n_frames_declared=40)
    with pytest.raises(FormatError, match="PixelData.*NumberOfFrames"):
        read_label_masks(path, _pet())


def test_seg_outside_the_pet_grid_and_other_dicom_objects_are_refused(tmp_path):
    far = ImageGrid(GRID.shape, GRID.voxel_size_mm, (500.0, 0.0, 0.0))
    path = _write_seg(tmp_path / "far.dcm", {"lesion": np.ones(GRID.shape, bool)}, far)
    with pytest.raises(FormatError, match="ImagePositionPatient.*overlaps"):
        read_label_masks(path, _pet())
    ds = pydicom.dcmread(path)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    ds.save_as(tmp_path / "pet.dcm")
    with pytest.raises(FormatError, match="SOPClassUID"):
        read_label_masks(tmp_path / "pet.dcm", _pet())


def test_cli_suv_prints_one_record_per_segment(tmp_path, capsys):
    pet = _pet()
    sphere, box = sphere_mask(GRID, CENTRE_MM, RADIUS_MM), box_mask(GRID, *BOX_MM)
    write_container(tmp_path / "pet.h5", Container(volumes={"suv": pet}))
    seg = _write_seg(tmp_path / "seg.dcm", {"lesion": sphere, "liver": box})
    assert main(["suv", str(tmp_path / "pet.h5"), "--labels", str(seg), "--roi", "sphere:0,0,0,10", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["roi"] for r in records] == ["sphere:0,0,0,10", "seg.dcm:lesion", "seg.dcm:liver"]
    expected = voi_statistics(pet, sphere)
    assert records[1]["suv_max"] == pytest.approx(expected.max) and records[1]["n_voxels"] == expected.n_voxels
    assert records[1]["suv_mean"] == pytest.approx(expected.mean, rel=1e-12)
    assert main(["suv", str(tmp_path / "pet.h5")]) == 2  # neither --roi nor --labels
    assert "--labels" in capsys.readouterr().err


def test_label_volume_exported_by_write_nifti_reads_back_for_any_patient_position(tmp_path):
    from petrecon.io.container import write_nifti

    sphere = sphere_mask(GRID, CENTRE_MM, RADIUS_MM)
    for position in PATIENT_POSITIONS:
        path = write_nifti(tmp_path / f"{position}.nii.gz", Volume(sphere.astype(np.float32) * 4, GRID),
                           patient_position=position)
        np.testing.assert_array_equal(read_label_masks(path, _pet(position))["4"], sphere)


def test_cli_seg_record_on_a_feet_first_dicom_series_equals_the_sphere_roi_record(tmp_path, capsys):
    import datetime

    from petrecon.io.dicom import write_pet_series

    pet = _pet("FFS")
    scan = datetime.datetime(2026, 3, 2, 10, 0)
    write_pet_series(Volume(pet.data * 1000.0, GRID, {"units": "Bq/ml", "patient_position": "FFS"}),
                     tmp_path / "pet", injected_dose_bq=300e6, injection_datetime=scan - datetime.timedelta(hours=1),
                     series_datetime=scan, frame_duration_s=120, patient_weight_kg=75,
                     frame_of_reference_uid=FRAME_OF_REFERENCE)
    seg = _write_seg(tmp_path / "seg.dcm", {"lesion": sphere_mask(GRID, CENTRE_MM, RADIUS_MM)}, position="FFS")
    centre_lps = gantry_to_patient(CENTRE_MM, "FFS")
    sphere = "sphere:" + ",".join(f"{v:g}" for v in (*centre_lps, RADIUS_MM))
    assert main(["suv", str(tmp_path / "pet"), "--roi", sphere, "--labels", str(seg), "--json"]) == 0
    by_roi, by_seg = json.loads(capsys.readouterr().out)
    assert by_seg["roi"] == "seg.dcm:lesion"
    assert {k: v for k, v in by_seg.items() if k != "roi"} == {k: v for k, v in by_roi.items() if k != "roi"}
    other = _write_seg(tmp_path / "other.dcm", {"lesion": sphere_mask(GRID, CENTRE_MM, RADIUS_MM)},
                       frame_of_reference=generate_uid(), position="FFS")
    assert main(["suv", str(tmp_path / "pet"), "--labels", str(other)]) == 2
    assert "FrameOfReferenceUID" in capsys.readouterr().err


def test_seg_with_missing_or_dangling_frame_references_names_the_field(tmp_path):
    path = _write_seg(tmp_path / "seg.dcm", {"lesion": sphere_mask(GRID, CENTRE_MM, RADIUS_MM)})
    ds = pydicom.dcmread(path)
    ds.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence[0].ReferencedSegmentNumber = 5
    ds.save_as(tmp_path / "dangling.dcm")
    with pytest.raises(FormatError, match="ReferencedSegmentNumber.*5"):
        read_label_masks(tmp_path / "dangling.dcm", _pet())
    ds = pydicom.dcmread(path)
    del ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
    ds.save_as(tmp_path / "no-orientation.dcm")
    with pytest.raises(FormatError, match="PlaneOrientationSequence ImageOrientationPatient"):
        read_label_masks(tmp_path / "no-orientation.dcm", _pet())
