"""Whole-body studies: several overlapping bed positions of one acquisition, and their HDF5 storage.

Clinical PET covers skull base to mid-thigh in several bed positions of a
few minutes each (reference/clinical-protocol.md: 3 min per bed, overlapping
beds). A :class:`WholeBodyStudy` is the ordered list (acquisition order) of
per-bed :class:`~petrecon.io.container.Container` objects, each an ordinary
single-bed study that :func:`~petrecon.recon.study.reconstruct_study` can
reconstruct alone, plus volumes in the whole-body frame (a CT-based mu-map
covering every bed, a simulation's ground truth).

Per-bed attributes (in each bed container's ``attributes``)
-----------------------------------------------------------
``bed_offset_mm``
    Table position: the whole-body z (mm) of the scanner centre while this
    bed was acquired. A point fixed to the table at whole-body ``z`` sits at
    scanner ``z - bed_offset_mm``. Readers take it as the negative of the
    Siemens Interfile key ``start horizontal bed position (mm)``
    (reference/formats.md), so that the whole-body frame is the gantry frame
    at bed position 0 and a head-first patient's S coordinate decreases
    from the head bed to the feet bed as on the scanner
    (:mod:`petrecon.geometry.patient`); each bed also carries that key's
    value as ``bed_position_mm``.
``frame_start_s``
    Start of the bed's acquisition in seconds after the study's reference
    time (injection for simulated studies): decay between beds is corrected
    from the differences, SUVs from the first bed's value. A histogrammed
    list-mode file counts from its own start: set each bed's value to its
    start after injection before stitching (beds starting before the previous
    one ends are refused).
``duration_s``
    Acquisition time of the bed (s).

The overlap between consecutive beds follows from the offsets and the
scanner's axial field of view (:meth:`WholeBodyStudy.overlaps_mm`).

Storage (:func:`write_whole_body`, :func:`read_whole_body`)
-----------------------------------------------------------
A main file, itself a petrecon container holding the whole-body volumes, with
the attribute ``whole_body = {"beds": [{"file", "size_bytes", "sha256",
"bed_offset_mm", "frame_start_s", "duration_s"}, ...]}``, and one ordinary
container per bed next to it (``study.h5`` -> ``study.bed0.h5``, ...): each
bed file stays readable by every single-bed tool (``petrecon recon
study.bed1.h5``), and the main file records the beds' hashes (ARCHITECTURE
contract 8). Bed file names must stay inside the main file's folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from petrecon.errors import FormatError
from petrecon.io.atomic import EXISTS
from petrecon.io.container import Container, read_container, sha256_file, write_container
from petrecon.volume import ImageGrid, Volume

BED_KEYS = ("bed_offset_mm", "frame_start_s", "duration_s")
WHOLE_BODY_KEY = "whole_body"


@dataclass
class WholeBodyStudy:
    """Bed positions of one whole-body acquisition (see the module docstring).

    Attributes
    ----------
    beds : list of Container
        Single-bed studies in acquisition order, each carrying ``bed_offset_mm``,
        ``frame_start_s`` and ``duration_s`` attributes.
    volumes : dict of str to Volume
        Volumes in the whole-body frame (``mu_per_cm`` covering all beds,
        ``activity_bq_per_ml`` ground truth at the first bed's start, ...).
    attributes, provenance : dict
        JSON-serialisable study facts and provenance of the whole.

    Examples
    --------
    >>> beds = [Container(attributes={"bed_offset_mm": z, "frame_start_s": t, "duration_s": 180.0})
    ...         for z, t in ((100.0, 3600.0), (-100.0, 3785.0))]
    >>> study = WholeBodyStudy(beds)
    >>> study.bed_offsets_mm().tolist(), study.frame_starts_s().tolist()
    ([100.0, -100.0], [3600.0, 3785.0])
    """

    beds: list[Container]
    volumes: dict[str, Volume] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def _values(self, key: str) -> np.ndarray:
        return np.array([bed_value(bed, key, f"bed {i}") for i, bed in enumerate(self.beds)], np.float64)

    def bed_offsets_mm(self) -> np.ndarray:
        """Table position of each bed (mm), acquisition order."""
        return self._values("bed_offset_mm")

    def frame_starts_s(self) -> np.ndarray:
        """Start of each bed (s after the reference time)."""
        return self._values("frame_start_s")

    def durations_s(self) -> np.ndarray:
        """Acquisition time of each bed (s)."""
        return self._values("duration_s")

    def overlaps_mm(self) -> np.ndarray:
        """Axial overlap (mm) of each pair of axially neighbouring beds (negative: a gap), in z order."""
        half_fov_mm = np.array([bed.layout.scanner.axial_fov_mm / 2.0 for bed in self.beds])
        offsets = self.bed_offsets_mm()
        order = np.argsort(offsets)
        top = offsets[order] + half_fov_mm[order]
        bottom = offsets[order] - half_fov_mm[order]
        return top[:-1] - bottom[1:]


def whole_body_grid(bed_grid: ImageGrid, offsets_mm) -> ImageGrid:
    """The bed grid extended along z over every bed (same voxels; planes aligned with the lowest bed's, the last
    plane inside the top bed).

    Examples
    --------
    >>> grid = whole_body_grid(ImageGrid.centred((4, 4, 10), (2.0, 2.0, 2.0)), [15.0, 0.0])
    >>> grid.shape, grid.origin_mm[2]
    ((4, 4, 17), -9.0)
    """
    offsets = np.asarray(offsets_mm, np.float64)
    dz = bed_grid.voxel_size_mm[2]
    bottom = bed_grid.origin_mm[2] + offsets.min()
    top = bed_grid.origin_mm[2] + dz * (bed_grid.shape[2] - 1) + offsets.max()
    n_planes = int(np.floor((top - bottom) / dz + 1e-6)) + 1
    return ImageGrid((*bed_grid.shape[:2], n_planes), bed_grid.voxel_size_mm,
                     (*bed_grid.origin_mm[:2], bottom))


def bed_value(container: Container, key: str, where: str) -> float:
    """A bed attribute as a float; a missing or non-numeric one is a FormatError naming ``where`` and ``key``.

    Examples
    --------
    >>> bed_value(Container(attributes={"bed_offset_mm": -12.5}), "bed_offset_mm", "bed 0")
    -12.5
    """
    value = container.attributes.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise FormatError(where, key, f"must be a number (per-bed attribute of a whole-body study), got {value!r}")
    return float(value)


def bed_file_name(main: Path, index: int) -> str:
    """``study.h5`` -> ``study.bed0.h5``.

    Examples
    --------
    >>> bed_file_name(Path("/data/wb.h5"), 2)
    'wb.bed2.h5'
    """
    return f"{main.stem}.bed{index}{main.suffix or '.h5'}"


def write_whole_body(path: str | os.PathLike, study: WholeBodyStudy, *, overwrite: bool = False) -> list[Path]:
    """Write the bed containers and then the main file (each atomically); returns the paths, main file first.

    Raises
    ------
    FormatError
        If a bed lacks a bed attribute, or an output exists without ``overwrite``.

    Examples
    --------
    >>> import tempfile
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> beds = [Container({"prompts": np.zeros(layout.shape, np.float32)}, layout=layout,
    ...                   attributes={"bed_offset_mm": z, "frame_start_s": 0.0, "duration_s": 60.0})
    ...         for z in (0.0, 24.0)]
    >>> paths = write_whole_body(Path(tempfile.mkdtemp()) / "wb.h5", WholeBodyStudy(beds))
    >>> [p.name for p in paths], read_whole_body(paths[0]).bed_offsets_mm().tolist()
    (['wb.h5', 'wb.bed0.h5', 'wb.bed1.h5'], [0.0, 24.0])
    """
    main = Path(path)
    if not study.beds:
        raise FormatError(main, "beds", "a whole-body study needs at least one bed")
    records = [{key: bed_value(bed, key, f"bed {i}") for key in BED_KEYS} for i, bed in enumerate(study.beds)]
    paths = [main.with_name(bed_file_name(main, i)) for i in range(len(study.beds))]
    for output in [main, *paths]:
        if output.exists() and not overwrite:
            raise FormatError(output, "file", EXISTS)
    for record, bed, bed_path in zip(records, study.beds, paths):
        write_container(bed_path, bed, overwrite=overwrite)
        record.update(file=bed_path.name, size_bytes=bed_path.stat().st_size, sha256=sha256_file(bed_path))
    attributes = {**study.attributes, WHOLE_BODY_KEY: {"beds": records}}
    write_container(main, Container(volumes=study.volumes, attributes=attributes, provenance=study.provenance),
                    overwrite=overwrite)
    return [main, *paths]


def is_whole_body(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the main file of a whole-body study (a container with the ``whole_body`` attribute)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attributes = json.loads(f.attrs.get("attributes", "{}"))
    except (OSError, TypeError, json.JSONDecodeError):
        return False
    return isinstance(attributes, dict) and WHOLE_BODY_KEY in attributes


def read_whole_body(path: str | os.PathLike) -> WholeBodyStudy:
    """Read a study written by :func:`write_whole_body` (bed files resolved next to the main file).

    Raises
    ------
    FormatError
        If the main file is no whole-body study, a bed file is missing, leaves the
        folder, has another size than recorded, or lacks a bed attribute.
    """
    main = Path(path)
    container = read_container(main)
    record = container.attributes.pop(WHOLE_BODY_KEY, None)
    if not isinstance(record, dict) or not isinstance(record.get("beds"), list) or not record["beds"]:
        raise FormatError(main, WHOLE_BODY_KEY, "is missing or lists no beds: not a whole-body study")
    beds = []
    for i, entry in enumerate(record["beds"]):
        where = f"{WHOLE_BODY_KEY}.beds[{i}].file"
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or PurePosixPath(name).name != name or name in ("", ".", ".."):
            raise FormatError(main, where, f"must be a file name in the main file's folder, got {name!r}")
        bed_path = main.with_name(name)
        if not bed_path.is_file():
            raise FormatError(main, where, f"{name} does not exist next to the main file")
        if bed_path.stat().st_size != entry.get("size_bytes"):
            raise FormatError(bed_path, "size", f"is {bed_path.stat().st_size} bytes, the main file "
                                                f"recorded {entry.get('size_bytes')}")
        bed = read_container(bed_path)
        for key in BED_KEYS:
            bed_value(bed, key, str(bed_path))
        beds.append(bed)
    return WholeBodyStudy(beds, container.volumes, container.attributes, container.provenance)
