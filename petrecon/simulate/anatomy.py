"""The CT and Dixon MR of a simulated acquisition, as DICOM series: :func:`write_ct`, :func:`write_dixon`.

A simulated PET/CT or PET/MR study needs its anatomy the way a real one has
it, so that the reconstruction makes its own mu-map from it (CT: bilinear
HU -> mu; Dixon: 4 classes without bone, the PET/MR bias) instead of using
the simulator's true attenuation. The phantom (patient coordinates, LPS) is
placed in the gantry as the emission was (:func:`petrecon.simulate.placement.place_phantom`
with the acquisition's patient and bed position) and voxelised, noise-free,
with 2^3 partial-volume sub-samples per voxel:

- CT: HU of the phantom's materials and overrides; 2.5 mm pixels over
  500 mm, 3 mm transverse slices (a low-dose attenuation CT; the clinical
  study's were 5 mm, reference/clinical-protocol.md);
- Dixon: the materials' water and fat fractions (cortical bone and lung
  dark, air 0); 2.6 mm pixels, 3 mm coronal slices (a typical mMR Dixon
  VIBE resolution, *unverified*);

both covering the PET grid's axial extent plus :data:`ANATOMY_MARGIN_MM` each
side. Written by :mod:`petrecon.io.dicom_anatomy`. :func:`write_study_anatomy`
writes them for a simulated study container (``petrecon simulate --ct-dicom
/ --dixon-dicom``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import Sequence

from petrecon.geometry.patient import study_bed_position_mm
from petrecon.io.atomic import check_outputs
from petrecon.io.container import Container
from petrecon.io.dicom_anatomy import SeriesIdentity, write_ct_series, write_dixon_series
from petrecon.simulate.phantom import Phantom
from petrecon.simulate.placement import place_phantom
from petrecon.simulate.voxelise import voxelise
from petrecon.volume import ImageGrid

ANATOMY_MARGIN_MM = 15.0
CT_VOXEL_MM = (2.5, 2.5, 3.0)
CT_IN_PLANE_VOXELS = (200, 200)
MR_VOXEL_MM = (2.6, 3.0, 2.6)  # coronal slices: 3 mm along y (anterior-posterior)
MR_IN_PLANE_VOXELS = (192, 96)
ANATOMY_SUPERSAMPLING = 2


def anatomy_grid(pet_grid: ImageGrid, voxel_size_mm: Sequence[float], in_plane_voxels: Sequence[int]) -> ImageGrid:
    """A grid centred on the gantry that covers the PET grid's axial extent plus :data:`ANATOMY_MARGIN_MM` each side.

    Examples
    --------
    >>> anatomy_grid(ImageGrid.centred((10, 10, 55), (2.0, 2.0, 2.0)), (2.5, 2.5, 3.0), (200, 200)).shape
    (200, 200, 47)
    """
    extent_mm = pet_grid.shape[2] * pet_grid.voxel_size_mm[2] + 2 * ANATOMY_MARGIN_MM
    n_slices = math.ceil(extent_mm / voxel_size_mm[2])
    return ImageGrid.centred((*in_plane_voxels, n_slices), tuple(voxel_size_mm))


def write_ct(phantom: Phantom, folder: str | os.PathLike, pet_grid: ImageGrid, identity: SeriesIdentity, *,
             overwrite: bool = False) -> list[Path]:
    """The phantom's low-dose CT (module docstring) for the acquisition of ``identity``'s patient and bed position."""
    placed = place_phantom(phantom, identity.patient_position, identity.bed_position_mm)
    grid = anatomy_grid(pet_grid, CT_VOXEL_MM, CT_IN_PLANE_VOXELS)
    hu = voxelise(placed, grid, supersampling=ANATOMY_SUPERSAMPLING)["ct_hu"]
    return write_ct_series(hu, folder, identity, overwrite=overwrite)


def write_dixon(phantom: Phantom, water_folder: str | os.PathLike, fat_folder: str | os.PathLike,
                pet_grid: ImageGrid, identity: SeriesIdentity, *,
                overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """The phantom's Dixon water and fat series (module docstring) for the acquisition of ``identity``."""
    placed = place_phantom(phantom, identity.patient_position, identity.bed_position_mm)
    grid = anatomy_grid(pet_grid, MR_VOXEL_MM, MR_IN_PLANE_VOXELS)
    images = voxelise(placed, grid, supersampling=ANATOMY_SUPERSAMPLING)
    return write_dixon_series(images["dixon_water"], images["dixon_fat"], water_folder, fat_folder, identity,
                              overwrite=overwrite)


def anatomy_outputs(ct_folder: str | os.PathLike | None, dixon_folder: str | os.PathLike | None) -> list[Path]:
    """The folders :func:`write_study_anatomy` writes: the CT's, and the Dixon folder's ``water`` and ``fat``."""
    return ([Path(ct_folder)] if ct_folder else []) + ([Path(dixon_folder) / "water", Path(dixon_folder) / "fat"]
                                                      if dixon_folder else [])


def check_anatomy_outputs(ct_folder, dixon_folder, *, overwrite: bool = False) -> None:
    """Refuse, before a simulation, anatomy folders that exist (unless ``overwrite``) or cannot be written."""
    if dixon_folder:
        Path(dixon_folder).mkdir(parents=True, exist_ok=True)
    check_outputs(anatomy_outputs(ct_folder, dixon_folder), overwrite=overwrite)


def write_study_anatomy(phantom: Phantom, container: Container, *, ct_folder: str | os.PathLike | None = None,
                        dixon_folder: str | os.PathLike | None = None, overwrite: bool = False) -> list[Path]:
    """The CT and/or Dixon series of a simulated study, placed by its patient and bed position attributes.

    The patient is the phantom (ID ``petrecon-sim``, its weight for SUV phantoms); the series' date is now.

    Returns
    -------
    list of Path
        The folders written (:func:`anatomy_outputs`).
    """
    attributes = container.attributes
    scanner = container.layout.scanner
    pet_grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    identity = SeriesIdentity("petrecon-sim", f"Phantom^{phantom.name}", "O", phantom.weight_kg,
                              dt.datetime.now().replace(microsecond=0),
                              patient_position=attributes.get("patient_position", "HFS"),
                              bed_position_mm=study_bed_position_mm(attributes))
    folders = anatomy_outputs(ct_folder, dixon_folder)
    if ct_folder:
        write_ct(phantom, ct_folder, pet_grid, identity, overwrite=overwrite)
    if dixon_folder:
        write_dixon(phantom, folders[-2], folders[-1], pet_grid, identity, overwrite=overwrite)
    return folders
