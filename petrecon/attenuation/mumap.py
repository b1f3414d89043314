"""mu-maps from DICOM series onto a PET grid, and their HDF5 container file.

The steps a user runs from the command line (``petrecon mumap``), as one call each:
CT series (HU, kVp from the header) -> bilinear mu at 511 keV -> smoothed to
PET resolution -> resampled onto the PET grid; or a Dixon pair (water/fat or
in/opposed phase) -> 4 classes -> class mu values -> resampled onto the PET grid;
or the mMR's own mu-map series (``mu x 10000``) -> resampled onto the PET grid.
A PET/MR mu-map misses what the MR does not see: the table and the coils.
:func:`add_hardware_mu_maps` adds the scanner's hardware mu-maps
(:mod:`petrecon.io.hardware_mumap`), placed for the acquisition's bed position.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from petrecon.attenuation.ct import DEFAULT_MAX_HU, ct_mu_map_on_grid
from petrecon.attenuation.dixon import dixon_mu_map, segment_dixon, water_fat_from_in_opposed
from petrecon.attenuation.resample import resample_to_grid
from petrecon.checks import check_parameter
from petrecon.errors import ParameterError
from petrecon.io.container import Container, make_provenance, write_container
from petrecon.volume import ImageGrid, Volume


def mu_map_from_ct_series(folder: str | os.PathLike, grid: ImageGrid | None = None, *, fwhm_mm: float = 4.0,
                          max_hu: float = DEFAULT_MAX_HU, patient_position: str | None = None,
                          bed_position_mm: float | None = None) -> Volume:
    """CT-based mu-map (cm^-1) from a CT DICOM series (see :func:`ct_mu_map_on_grid`).

    On ``grid``, or on the CT's own grid when None (for attenuation factors:
    it covers the patient beyond the PET axial field of view). The CT is
    placed in the gantry frame of the PET acquisition it attenuates: give
    that acquisition's ``bed_position_mm`` (and ``patient_position`` when the
    CT header's is not the PET's): :mod:`petrecon.geometry.patient`. The
    mu-map's ``metadata["dicom_reference"]`` is the CT's
    (:func:`petrecon.io.dicom.series_reference`): a PET series written with it
    fuses with the CT in a viewer.
    """
    from petrecon.io.dicom import read_ct_series

    check_parameter("fwhm_mm", fwhm_mm, label="fwhm_mm (CT smoothing)")
    ct = read_ct_series(folder, patient_position=patient_position, bed_position_mm=bed_position_mm)
    mu = ct_mu_map_on_grid(ct, ct.grid if grid is None else grid, fwhm_mm=fwhm_mm, max_hu=max_hu)
    mu.metadata.update(source="ct", series=str(folder), kvp=ct.metadata.get("kvp"),
                       dicom_reference=ct.metadata["dicom_reference"])
    return mu


def mu_map_from_dixon_series(first_folder: str | os.PathLike, second_folder: str | os.PathLike,
                             grid: ImageGrid | None = None, *, kind: str = "water_fat",
                             patient_position: str | None = None, bed_position_mm: float | None = None,
                             bone: str = "none") -> Volume:
    """Dixon-based 4-class mu-map (cm^-1) from water/fat (or in/opposed-phase) DICOM series, on ``grid`` or the MR's.

    Placed in the PET acquisition's gantry frame as :func:`mu_map_from_ct_series`;
    ``metadata["dicom_reference"]`` is the first series'. ``bone="atlas"``
    adds the vertebral bodies as a fifth class (:mod:`petrecon.attenuation.bone_atlas`;
    not the mMR's own map, verified on simulated images only).
    """
    from petrecon.io.dicom import read_dixon_series

    first, second = read_dixon_series(first_folder, second_folder, kind=kind, patient_position=patient_position,
                                      bed_position_mm=bed_position_mm)
    reference = first.metadata["dicom_reference"]
    if kind == "in_opposed":
        water, fat = water_fat_from_in_opposed(first.data, second.data)
        first, second = Volume(water, first.grid, first.metadata), Volume(fat, second.grid, second.metadata)
    labels = segment_dixon(first, second, bone=bone)
    mu = dixon_mu_map(labels)
    on_grid = mu if grid is None else resample_to_grid(mu, grid, order=1, fill_value=0.0)
    on_grid.metadata.update(source="dixon", dixon_kind=kind, dicom_reference=reference, dixon_bone=bone,
                            **({"bone_slices": labels.metadata["bone_slices"]} if bone == "atlas" else {}))
    return on_grid


def mu_map_from_scanner_series(folder: str | os.PathLike, grid: ImageGrid | None = None, *,
                               patient_position: str | None = None, bed_position_mm: float | None = None) -> Volume:
    """The mMR's own mu-map series (cm^-1, :func:`~petrecon.io.dicom.read_scanner_mu_map_series`), on ``grid`` or its own.

    Placed in the PET acquisition's gantry frame as :func:`mu_map_from_ct_series`.
    """
    from petrecon.io.dicom import read_scanner_mu_map_series

    mu = read_scanner_mu_map_series(folder, patient_position=patient_position, bed_position_mm=bed_position_mm)
    on_grid = mu if grid is None else resample_to_grid(mu, grid, order=1, fill_value=0.0)
    on_grid.metadata.update(series=str(folder))
    return on_grid


def covering_grid(grid: ImageGrid, other: ImageGrid) -> ImageGrid:
    """A grid with ``grid``'s voxels that covers both ``grid`` and ``other`` (same voxel centres as ``grid``).

    Examples
    --------
    >>> covering_grid(ImageGrid((4, 4, 2), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0)),
    ...               ImageGrid((2, 2, 2), (4.0, 4.0, 2.0), (-4.0, 0.0, 0.0))).shape
    (7, 5, 2)
    """
    voxel = np.asarray(grid.voxel_size_mm)
    low = np.minimum(np.asarray(grid.origin_mm), np.asarray(other.origin_mm) - 0.5 * np.asarray(other.voxel_size_mm)
                     + 0.5 * voxel)
    high = np.maximum(np.asarray(grid.origin_mm) + voxel * (np.asarray(grid.shape) - 1),
                      np.asarray(other.origin_mm) + np.asarray(other.voxel_size_mm) * (np.asarray(other.shape) - 0.5)
                      - 0.5 * voxel)
    first = np.floor((low - np.asarray(grid.origin_mm)) / voxel + 1e-6)
    last = np.ceil((high - np.asarray(grid.origin_mm)) / voxel - 1e-6)
    origin = np.asarray(grid.origin_mm) + first * voxel
    return ImageGrid(tuple(int(n) for n in last - first + 1), grid.voxel_size_mm, tuple(float(v) for v in origin))


def add_hardware_mu_maps(mu: Volume, headers: Sequence[str | os.PathLike], placement, *,
                         cover: ImageGrid | None = None) -> Volume:
    """``mu`` plus the hardware parts in ``headers``, placed for the acquisition at ``placement`` (cm^-1).

    Parameters
    ----------
    mu : Volume
        The patient's mu-map in the acquisition's gantry frame (from the MR:
        it does not see the hardware). One that already holds hardware
        parts (``metadata["hardware_mu_maps"]``, or a Dixon mu-map made with a
        hardware template) or comes from a CT (which sees the
        table and the coils) is refused.
    headers : sequence of path-like
        Hardware mu-map headers (``umap_*.v.hdr``).
    placement : petrecon.io.hardware_mumap.TablePlacement
        Bed position, table position origin and gantry table home offset.
    cover : ImageGrid, optional
        A grid the result must also cover (the reconstruction's image grid:
        the table lies beside the body, often outside an MR mu-map's grid).

    Returns
    -------
    Volume
        On ``mu``'s voxels extended to ``cover``: the patient's mu-map plus
        each part resampled trilinearly (the sum, as NiftyPET's
        ``hdw_mumap`` sums the parts), with ``metadata["hardware_mu_maps"]`` listing
        the files.
    """
    from petrecon.io.hardware_mumap import read_hardware_mu_map

    held = mu.metadata.get("hardware_mu_maps") or (["a hardware template"] if mu.metadata.get("hardware") is True
                                                   else None)  # dixon_mu_map(..., hardware=) records True
    if held:
        raise ParameterError(f"{mu.metadata.get('series', 'the mu-map')}: already holds the hardware parts "
                             f"{held}; give them once")
    if mu.metadata.get("source") == "ct":
        raise ParameterError("a CT-based mu-map already holds the table and the coils (the CT sees them); "
                             "hardware mu-maps are for PET/MR mu-maps")
    grid = mu.grid if cover is None else covering_grid(mu.grid, cover)
    total = resample_to_grid(mu, grid, order=0, fill_value=0.0).data.astype(np.float32)
    for header in headers:
        part = read_hardware_mu_map(header).in_gantry(placement)
        total += np.clip(resample_to_grid(part, grid, order=1, fill_value=0.0).data, 0.0, None)
    metadata = dict(mu.metadata, hardware_mu_maps=[str(h) for h in headers],
                    table_position_origin_mm=list(placement.table_position_origin_mm),
                    gantry_table_home_offset_mm=list(placement.gantry_table_home_offset_mm))
    return Volume(total, grid, metadata)


def write_mu_map(path: str | os.PathLike, mu: Volume, *, scanner: str, inputs: list[str | os.PathLike],
                 files: Sequence[str | os.PathLike] = (), overwrite: bool = False) -> Path:
    """Write ``mu`` as the container volume ``mu_per_cm`` (with its affine) and provenance.

    ``inputs`` are the DICOM folders read (every file in them is hashed),
    ``files`` further files read (hardware mu-map headers: with their data files).
    """
    from petrecon.io.interfile import read_header, resolve_data_file

    files = sorted([p for folder in inputs for p in Path(folder).rglob("*") if p.is_file()]
                   + [q for f in files for q in (Path(f), resolve_data_file(read_header(f)))])
    provenance = make_provenance(scanner=scanner, input_files=files, protocol=dict(mu.metadata))
    container = Container(volumes={"mu_per_cm": mu}, attributes={"scanner": scanner, "source": mu.metadata.get("source", "unknown")},
                          provenance=provenance)
    return write_container(path, container, overwrite=overwrite)
