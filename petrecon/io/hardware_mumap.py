"""The Biograph mMR's hardware mu-maps: table and coils, one Interfile image each (``umap_*.v.hdr`` + ``.v``).

The scanner keeps one file per hardware part; NiftyPET/NIPET lists those it
uses (``resources.py`` ``HMULIST``): ``umap_HNMCL_*`` and ``umap_HNMCU_*``
(head/neck coil, lower and upper part), ``umap_SPMC_*`` (spine coil),
``umap_PT_*`` (patient table), ``umap_HOMCU_*``, ``umap_BR4CH_*`` (breast
coil). Its default reconstruction adds the head/neck coil and the table
(``img/mmrimg.py`` ``rmumaps``: parts 1, 2 and 4).

Keys read (NiftyPET ``img/mmrimg.py`` ``rd_hmu``, ``hmu_shape``,
``hmu_voxsize``, ``hmu_origin``, ``hmu_offset``): ``name of data file``,
``matrix size [1..3]`` (x fastest in the file), ``scale factor (mm/pixel)
[1..3]``, ``number format`` / ``number of bytes per pixel`` (NiftyPET reads
float32 whatever they say), ``$umap origin (pixels) [1..3]`` and, when
present, ``$origin offset (mm) [1..3]``. Values are mu at 511 keV in cm^-1
(NiftyPET adds them to the patient's mu-map unscaled).

Placement (NiftyPET ``get_hmupos`` and ``mmraux.hmu_resample0``). With ``o``
the origin in pixels, ``f`` the origin offset, ``v`` the voxel size,
``G`` the ``GantryTableHomeOffset`` of the mu-map series' CSA header, ``T``
the ``TablePositionOrigin`` of the list-mode's CSA header and ``h`` the
list-mode's ``start horizontal bed position`` (all mm), voxel ``(i, j, k)``
of the file has its centre at, in petrecon's gantry frame::

    x = v_x (i - o_x) + f_x + G_x - T_x
    y = v_y (j - o_y) + f_y + G_y - T_y
    z = v_z (k - o_z) + f_z - G_z + T_z + h

(NiftyPET negates the z entries of ``o`` and ``f`` and the image's z axis;
the three cancel into the signs above.) The parts therefore move with the
bed, as the patient does (:mod:`petrecon.geometry.patient`: gantry ``z - h``
is fixed to the table), whatever the patient position. NiftyPET's own
image grid sits half a voxel off petrecon's (its ~1 mm); petrecon does not
copy that offset. NiftyPET resamples only the part of the long table that
the field of view sees (``hmu_resample0``); :func:`~petrecon.attenuation.
resample.resample_to_grid` evaluates only the target grid's voxels, which
has the same effect.

*Unverified*: petrecon has no real hardware file; the keys and the
arithmetic are NiftyPET's, checked against an independent re-implementation
of its formulas in the tests, and :func:`write_hardware_mu_map` writes the
same keys for the simulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError, ParameterError
from petrecon.io.interfile import read_header, read_interfile_image, write_image_files
from petrecon.volume import ImageGrid, Volume

ORIGIN_KEY = "$umap origin (pixels)"
OFFSET_KEY = "$origin offset (mm)"
#: mu at 511 keV above this (cm^-1) is not a hardware part (lead: 1.7 cm^-1).
MAX_MU_PER_CM = 3.0


@dataclass(frozen=True)
class TablePlacement:
    """What places the hardware parts in the gantry frame (module docstring; all mm).

    Attributes
    ----------
    bed_position_mm : float
        The list-mode header's ``start horizontal bed position``.
    table_position_origin_mm : tuple of float
        ``TablePositionOrigin`` (x, y, z) of the list-mode's CSA header.
    gantry_table_home_offset_mm : tuple of float
        ``GantryTableHomeOffset`` (x, y, z) of the mu-map series' CSA header.
    """

    bed_position_mm: float
    table_position_origin_mm: tuple[float, float, float]
    gantry_table_home_offset_mm: tuple[float, float, float]

    def shift_mm(self) -> np.ndarray:
        """The gantry position of the point the file's origin pixel and offset name (the formulas' constants)."""
        g = np.asarray(self.gantry_table_home_offset_mm, float)
        t = np.asarray(self.table_position_origin_mm, float)
        return np.array([g[0] - t[0], g[1] - t[1], t[2] - g[2] + self.bed_position_mm])


@dataclass(frozen=True)
class HardwareMuMap:
    """One hardware part as its file holds it: ``data`` (x, y, z) in cm^-1 and its placement keys (mm, pixels)."""

    path: Path
    data: np.ndarray
    voxel_size_mm: tuple[float, float, float]
    origin_pixels: tuple[float, float, float]
    origin_offset_mm: tuple[float, float, float]

    def in_gantry(self, placement: TablePlacement) -> Volume:
        """The part as a Volume in the gantry frame of the acquisition at ``placement`` (module docstring)."""
        voxel = np.asarray(self.voxel_size_mm)
        origin = -voxel * np.asarray(self.origin_pixels) + np.asarray(self.origin_offset_mm) + placement.shift_mm()
        grid = ImageGrid(self.data.shape, tuple(float(v) for v in voxel), tuple(float(v) for v in origin))
        return Volume(self.data, grid, {"units": "cm^-1", "source": "hardware", "hardware_file": str(self.path),
                                        "bed_position_mm": placement.bed_position_mm})


def read_hardware_mu_map(header_path: str | os.PathLike) -> HardwareMuMap:
    """Read one hardware part (module docstring).

    Raises
    ------
    FormatError
        Missing or non-numeric keys (``$umap origin (pixels)``, matrix size,
        voxel size), a partial ``$origin offset (mm)``, a data file of the
        wrong size, values that are not finite or beyond 3 cm^-1; names the
        file and the key.
    """
    header = read_header(header_path)
    image = read_interfile_image(header_path)
    origin = tuple(header.number(ORIGIN_KEY, i) for i in (1, 2, 3))
    given = [i for i in (1, 2, 3) if i in header.vectors.get(OFFSET_KEY, {})]
    if given and len(given) != 3:
        raise FormatError(header.path, OFFSET_KEY, f"gives entries {given}; give all three or none")
    offset = tuple(header.number(OFFSET_KEY, i) for i in (1, 2, 3)) if given else (0.0, 0.0, 0.0)
    data = np.asarray(image.data, np.float32)
    if not np.all(np.isfinite(data)):
        raise FormatError(header.path, "name of data file", "the image holds NaN or infinite values")
    if data.size and float(data.max()) > MAX_MU_PER_CM:
        raise FormatError(header.path, "name of data file", f"values reach {float(data.max()):.4g}: not mu in "
                                                            f"cm^-1 at 511 keV (at most {MAX_MU_PER_CM})")
    return HardwareMuMap(header.path, np.clip(data, 0.0, None), image.grid.voxel_size_mm, origin, offset)


def write_hardware_mu_map(header_path: str | os.PathLike, volume: Volume, placement: TablePlacement, *,
                          origin_offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
                          overwrite: bool = False) -> Path:
    """Write ``volume`` (a part in the gantry frame at ``placement``) as the scanner stores a hardware part.

    The origin in pixels is chosen so that :meth:`HardwareMuMap.in_gantry`
    with the same placement returns ``volume``'s grid. Files: ``<name>.v.hdr``
    and ``<name>.v`` (:func:`~petrecon.io.interfile.write_image_files`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> grid = ImageGrid((4, 3, 2), (2.0, 2.0, 4.0), (-3.0, 60.0, -900.0))
    >>> placement = TablePlacement(-812.5, (0.0, 0.0, -1300.0), (0.0, 0.0, 1250.0))
    >>> path = write_hardware_mu_map(pathlib.Path(tempfile.mkdtemp()) / "umap_PT_x.v.hdr",
    ...                              Volume(np.full(grid.shape, 0.1, np.float32), grid), placement)
    >>> read_hardware_mu_map(path).in_gantry(placement).grid == grid
    True
    """
    header_path = Path(header_path)
    if not header_path.name.endswith(".v.hdr"):
        raise ParameterError(f"{header_path}: a hardware mu-map header is named <name>.v.hdr")
    data_path = header_path.with_name(header_path.name.removesuffix(".hdr"))
    grid = volume.grid
    voxel = np.asarray(grid.voxel_size_mm)
    origin = (np.asarray(origin_offset_mm) + placement.shift_mm() - np.asarray(grid.origin_mm)) / voxel
    items: list[tuple[str, object]] = [
        ("!name of data file", data_path.name), ("!type of data", "PET"), ("imagedata byte order", "LITTLEENDIAN"),
        ("number format", "float"), ("number of bytes per pixel", 4), ("number of dimensions", 3)]
    for i in (1, 2, 3):
        items += [(f"matrix size [{i}]", grid.shape[i - 1]), (f"scale factor (mm/pixel) [{i}]", float(voxel[i - 1])),
                  (f"{ORIGIN_KEY} [{i}]", float(origin[i - 1])), (f"{OFFSET_KEY} [{i}]", float(origin_offset_mm[i - 1]))]
    items.append(("quantification units", "1/cm"))
    return write_image_files(header_path, volume.data, items, overwrite=overwrite)
