"""The petrecon HDF5 container: sinograms, volumes with their affine, layout and provenance.

Layout of a file (all groups optional)::

    /                      attrs: format = "petrecon-container", format_version,
                                  attributes (JSON), provenance (JSON)
    /layout                attrs: json = SinogramLayout.to_dict() as JSON
    /sinograms/<name>      datasets in the layout's shape, chunked per sinogram, gzip
    /volumes/<name>        datasets (x, y, z); attrs: voxel_size_mm, origin_mm,
                           affine (4x4, mm), metadata (JSON)

Provenance (ARCHITECTURE contract 8): :func:`make_provenance` records the
protocol, the scanner, each input file's SHA-256 and size, and the software
versions; pass it as ``Container.provenance``. :func:`write_nifti` exports a
volume as NIfTI-1 (optional extra ``nifti``: nibabel).

Names are free (``prompts``, ``delays``, ``randoms``, ``scatter``,
``normalisation``, ``attenuation_factors`` for sinograms; ``activity_bq_per_ml``,
``mu_per_cm``, ... for volumes). Arrays round-trip exactly (same dtype and
values). Writes are atomic (ARCHITECTURE contract 7) and provenance is stored
with every file (contract 8).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petrecon import __version__
from petrecon.errors import FormatError, GeometryError, PetreconError
from petrecon.geometry import SinogramLayout, layout_from_dict
from petrecon.io.atomic import atomic_output
from petrecon.logs import recorded_warnings
from petrecon.volume import ImageGrid, Volume

FORMAT_NAME = "petrecon-container"
FORMAT_VERSION = 1


@dataclass
class Container:
    """Everything one container file holds.

    Attributes
    ----------
    sinograms : dict of str to numpy.ndarray
        Sinograms in ``layout``'s shape.
    volumes : dict of str to Volume
        Images with their grids.
    layout : SinogramLayout or None
        Layout of the sinograms (required when there are sinograms).
    attributes : dict
        JSON-serialisable study facts (isotope, times, units, ...).
    provenance : dict
        JSON-serialisable provenance (protocol, inputs' hashes, software version).
    """

    sinograms: dict[str, np.ndarray] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    layout: SinogramLayout | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def write_container(path: str | os.PathLike, container: Container, *, overwrite: bool = False) -> Path:
    """Write ``container`` to ``path`` atomically.

    Raises
    ------
    FormatError
        If a sinogram does not have the layout's shape, or sinograms come without a layout.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "study.h5"
    >>> _ = write_container(path, Container({"prompts": np.zeros(layout.shape, np.float32)}, layout=layout))
    >>> read_container(path).sinograms["prompts"].shape == layout.shape
    True
    """
    path = Path(path)
    _check_sinograms(path, container)
    arrays = [(f"/sinograms/{k}", v) for k, v in container.sinograms.items()]
    arrays += [(f"/volumes/{k}", v.data) for k, v in container.volumes.items()]
    for where, array in arrays:
        if np.asarray(array).dtype.kind not in "biuf":
            raise FormatError(path, where, f"has dtype {np.asarray(array).dtype}; real numbers only")
    for key in ("attributes", "provenance"):
        try:
            json.dumps(getattr(container, key))
        except (TypeError, ValueError) as error:
            raise FormatError(path, key, f"is not JSON-serialisable ({error})") from None

    def fill(f) -> None:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["attributes"] = json.dumps(container.attributes)
        f.attrs["provenance"] = json.dumps(container.provenance)
        if container.layout is not None:
            f.create_group("layout").attrs["json"] = json.dumps(container.layout.to_dict())
        sinograms = f.create_group("sinograms")
        for name, data in container.sinograms.items():
            chunks = (1,) * (data.ndim - 2) + data.shape[-2:]
            sinograms.create_dataset(name, data=data, chunks=chunks, compression="gzip", compression_opts=4,
                                     shuffle=True)
        volumes = f.create_group("volumes")
        for name, volume in container.volumes.items():
            dataset = volumes.create_dataset(name, data=volume.data, compression="gzip", shuffle=True)
            dataset.attrs["voxel_size_mm"] = volume.grid.voxel_size_mm
            dataset.attrs["origin_mm"] = volume.grid.origin_mm
            dataset.attrs["affine"] = volume.grid.affine
            dataset.attrs["metadata"] = json.dumps(volume.metadata)

    return write_hdf5_atomically(path, fill, overwrite=overwrite)


def write_hdf5_atomically(path: str | os.PathLike, fill, *, overwrite: bool = False) -> Path:
    """Build an HDF5 file in memory with ``fill(h5py.File)``, then write its bytes to ``path`` atomically.

    libhdf5 cannot recover from a failed write to disk (a full disk, a file
    size limit): the error it raises is followed by a crash when the file is
    closed. Building the file in memory and writing its image with ordinary
    file I/O turns such a failure into one clean error that names ``path``,
    and nothing is left under the final name.

    Raises
    ------
    PetreconError
        When the bytes cannot be written (names ``path`` and the reason).
    """
    import h5py

    path = Path(path)
    with h5py.File(f"petrecon-{id(fill)}.h5", "w", driver="core", backing_store=False) as f:
        fill(f)
        f.flush()
        image = f.id.get_file_image()
    try:
        with atomic_output(path, overwrite=overwrite) as temporary:
            with open(temporary, "wb") as stream:
                stream.write(image)
    except OSError as error:
        raise PetreconError(f"{path}: could not be written ({error.strerror or error})") from None
    return path


def read_container(path: str | os.PathLike) -> Container:
    """Read a container written by :func:`write_container`.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, not a petrecon container, or a field is malformed.
    """
    path = Path(path)
    with open_petrecon_hdf5(path, FORMAT_NAME) as f:
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise FormatError(path, "format_version", f"is {version}; this petrecon reads up to {FORMAT_VERSION}")
        container = Container(attributes=_json_attr(path, f.attrs, "attributes"),
                              provenance=_json_attr(path, f.attrs, "provenance"))
        if "layout" in f:
            try:
                container.layout = layout_from_dict(_json_attr(path, f["layout"].attrs, "json"))
            except GeometryError as error:
                raise FormatError(path, "/layout", str(error)) from None
        try:
            for name, dataset in f.get("sinograms", {}).items():
                container.sinograms[name] = dataset[()]
            for name, dataset in f.get("volumes", {}).items():
                container.volumes[name] = _read_volume(path, name, dataset)
        except (OSError, KeyError, ValueError, TypeError) as error:
            if isinstance(error, FormatError):
                raise
            raise FormatError(path, "datasets", f"cannot be read ({error})") from None
    _check_sinograms(path, container)
    return container


@contextlib.contextmanager
def open_petrecon_hdf5(path: Path, format_name: str) -> Iterator[Any]:
    """Open one of petrecon's HDF5 files for reading, checking its ``format`` attribute.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, or of another format.
    """
    import h5py

    if not path.is_file():
        raise FormatError(path, "file", "is a folder; an HDF5 file is expected" if path.is_dir() else "does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise FormatError(path, "file", f"is not a readable HDF5 file{_what_it_is(path)} ({error})") from None
    with f:
        try:
            if f.attrs.get("format") != format_name:
                raise FormatError(path, "format", f"is {f.attrs.get('format')!r}, expected {format_name!r}")
            yield f
        except (OSError, KeyError, RuntimeError, AttributeError, TypeError, ValueError) as error:
            if isinstance(error, PetreconError):
                raise
            # h5py raises these for damaged object headers, attributes and B-trees
            raise FormatError(path, "HDF5 structure", f"is damaged ({' '.join(str(error).split())})") from None


def _what_it_is(path: Path) -> str:
    """``: it is a DICOM file`` (or another kind recognised by its first bytes), else empty."""
    with open(path, "rb") as f:
        start = f.read(132)
    if start[128:132] == b"DICM":
        return ": it is a DICOM file"
    if start.lstrip().startswith(b"!INTERFILE"):
        return ": it is an Interfile header"
    return ""


def _read_volume(path: Path, name: str, dataset: Any) -> Volume:
    where = f"/volumes/{name}"
    try:
        voxel_size = tuple(float(v) for v in dataset.attrs["voxel_size_mm"])
        origin = tuple(float(v) for v in dataset.attrs["origin_mm"])
        grid = ImageGrid(dataset.shape, voxel_size, origin)
    except KeyError as error:
        raise FormatError(path, where, f"lacks the attribute {error}") from None
    except GeometryError as error:
        raise FormatError(path, where, str(error)) from None
    if "affine" in dataset.attrs and not np.allclose(dataset.attrs["affine"], grid.affine):
        raise FormatError(path, f"{where}/affine", "contradicts voxel_size_mm and origin_mm")
    return Volume(dataset[()], grid, _json_attr(path, dataset.attrs, "metadata"))


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks (list-mode files are GBs).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_file(path)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk_bytes):
                digest.update(block)
    except OSError as error:
        raise FormatError(path, "file", f"cannot be read for hashing ({error.strerror})") from None
    return digest.hexdigest()


def make_provenance(*, protocol: Any = None, scanner: str | None = None,
                    input_files: Iterable[str | os.PathLike] = (), **extra: Any) -> dict:
    """The provenance record of an output (ARCHITECTURE contract 8), JSON-serialisable.

    Parameters
    ----------
    protocol : dataclass or dict, optional
        All processing parameters (an ``OsemProtocol``, a histogram frame, ...).
    scanner : str, optional
        Registry name of the scanner.
    input_files : iterable of path-like
        Files the output was computed from; each is hashed (SHA-256).
    **extra
        Further JSON-serialisable facts (``command``, ``frame_s``, ...). The
        warnings logged so far (:func:`petrecon.logs.recorded_warnings`) are
        recorded as ``warnings``.

    Examples
    --------
    >>> record = make_provenance(protocol={"span": 11}, scanner="mmr")
    >>> record["software"], record["scanner"], record["protocol"]
    ('petrecon', 'mmr', {'span': 11})
    """
    if dataclasses.is_dataclass(protocol) and not isinstance(protocol, type):
        protocol = dataclasses.asdict(protocol)
    inputs = [{"path": str(Path(p)), "sha256": sha256_file(p), "size_bytes": Path(p).stat().st_size}
              for p in input_files]
    record = {"software": "petrecon", "software_version": __version__, "python": platform.python_version(),
              "numpy": np.__version__, "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "protocol": protocol, "scanner": scanner, "inputs": inputs}
    warnings = recorded_warnings()
    if warnings:
        record["warnings"] = warnings  # everything this run warned of (petrecon.logs.RECORDER)
    record.update(extra)
    json.dumps(record)  # fail here, not at write time, if something is not serialisable
    return record


def write_nifti(path: str | os.PathLike, volume: Volume, *, patient_position: str | None = None,
                bed_position_mm: float | None = None, overwrite: bool = False) -> Path:
    """Export a volume as NIfTI-1 (``.nii`` or ``.nii.gz``), float32, sform in RAS+ mm (needs nibabel).

    Gantry (x, y, z) go to DICOM LPS with the patient and bed position
    (``patient_position``/``bed_position_mm``, else the volume's metadata,
    else HFS and 0: :mod:`petrecon.geometry.patient`), then to RAS = (-L, -P, S).
    """
    try:
        import nibabel
    except ImportError:
        raise PetreconError("NIfTI export needs nibabel: pip install 'petrecon[nifti]'") from None
    from petrecon.geometry.patient import check_bed_position_mm, gantry_to_patient_affine, volume_patient_frame

    recorded_position, recorded_bed_mm = volume_patient_frame(volume.metadata)
    bed_mm = check_bed_position_mm(recorded_bed_mm if bed_position_mm is None else bed_position_mm)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine = lps_to_ras @ gantry_to_patient_affine(patient_position or recorded_position, bed_mm) @ volume.grid.affine
    image = nibabel.Nifti1Image(np.asarray(volume.data, dtype=np.float32), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
    with atomic_output(path, overwrite=overwrite) as temporary:
        partial = temporary.with_name(temporary.name + suffix)
        try:
            nibabel.save(image, partial)
            os.replace(partial, temporary)
        finally:
            partial.unlink(missing_ok=True)
    return path


def _check_sinograms(path: Path, container: Container) -> None:
    if container.sinograms and container.layout is None:
        raise FormatError(path, "/layout", "sinograms need a layout")
    for name, data in container.sinograms.items():
        if tuple(data.shape) != container.layout.shape:
            raise FormatError(path, f"/sinograms/{name}",
                              f"has shape {tuple(data.shape)}, the layout needs {container.layout.shape}")


def _json_attr(path: Path, attrs: Any, key: str) -> dict:
    try:
        return json.loads(attrs.get(key, "{}"))
    except (TypeError, json.JSONDecodeError):
        raise FormatError(path, key, "is not valid JSON") from None
