"""mu-maps from DICOM series onto a PET grid, and their HDF5 container file.

The steps a user runs from the command line (``petrecon mumap``), as one call each:
CT series (HU, kVp from the header) -> bilinear mu at 511 keV -> smoothed to
PET resolution -> resampled onto the PET grid; or a Dixon pair (water/fat or
in/opposed phase) -> 4 classes -> class mu values -> resampled onto the PET grid.
"""

from __future__ import annotations

import os
from pathlib import Path

from petrecon.attenuation.ct import DEFAULT_MAX_HU, ct_mu_map_on_grid
from petrecon.attenuation.dixon import dixon_mu_map, segment_dixon, water_fat_from_in_opposed
from petrecon.attenuation.resample import resample_to_grid
from petrecon.checks import check_parameter
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
                             patient_position: str | None = None, bed_position_mm: float | None = None) -> Volume:
    """Dixon-based 4-class mu-map (cm^-1) from water/fat (or in/opposed-phase) DICOM series, on ``grid`` or the MR's.

    Placed in the PET acquisition's gantry frame as :func:`mu_map_from_ct_series`;
    ``metadata["dicom_reference"]`` is the first series'.
    """
    from petrecon.io.dicom import read_dixon_series

    first, second = read_dixon_series(first_folder, second_folder, kind=kind, patient_position=patient_position,
                                      bed_position_mm=bed_position_mm)
    reference = first.metadata["dicom_reference"]
    if kind == "in_opposed":
        water, fat = water_fat_from_in_opposed(first.data, second.data)
        first, second = Volume(water, first.grid), Volume(fat, second.grid)
    mu = dixon_mu_map(segment_dixon(first, second))
    on_grid = mu if grid is None else resample_to_grid(mu, grid, order=1, fill_value=0.0)
    on_grid.metadata.update(source="dixon", dixon_kind=kind, dicom_reference=reference)
    return on_grid


def write_mu_map(path: str | os.PathLike, mu: Volume, *, scanner: str, inputs: list[str | os.PathLike],
                 overwrite: bool = False) -> Path:
    """Write ``mu`` as the container volume ``mu_per_cm`` (with its affine) and provenance.

    ``inputs`` are the DICOM folders read; every file in them is hashed.
    """
    files = sorted(p for folder in inputs for p in Path(folder).rglob("*") if p.is_file())
    provenance = make_provenance(scanner=scanner, input_files=files, protocol=dict(mu.metadata))
    container = Container(volumes={"mu_per_cm": mu}, attributes={"scanner": scanner, "source": mu.metadata.get("source", "unknown")},
                          provenance=provenance)
    return write_container(path, container, overwrite=overwrite)
