"""The petrecon HDF5 container: sinograms, volumes with their affine, layout and provenance.

Layout of a file (all groups optional)::

    /                      attrs: format = "petrecon-container", format_version,
                                  attributes (JSON), provenance (JSON)
    /layout                attrs: json = SinogramLayout.to_dict() as JSON
    /sinograms/<name>      datasets in the layout's shape, chunked per sinogram, gzip
    /volumes/<name>        datasets (x, y, z); attrs: voxel_size_mm, origin_mm,
                           affine (4x4, mm), metadata (JSON)

Names are free (``prompts``, ``delays``, ``randoms``, ``scatter``,
``normalisation``, ``attenuation_factors`` for sinograms; ``activity_bq_per_ml``,
``mu_per_cm``, ... for volumes). Arrays round-trip exactly (same dtype and
values). Writes are atomic (ARCHITECTURE contract 7) and provenance is stored
with every file (contract 8).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petrecon.errors import FormatError, GeometryError
from petrecon.geometry import SinogramLayout, layout_from_dict
from petrecon.io.atomic import atomic_output
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
    import h5py

    path = Path(path)
    _check_sinograms(path, container)
    with atomic_output(path, overwrite=overwrite) as temporary, h5py.File(temporary, "w") as f:
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
    return path


def read_container(path: str | os.PathLike) -> Container:
    """Read a container written by :func:`write_container`.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, not a petrecon container, or a field is malformed.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise FormatError(path, "file", f"is not a readable HDF5 file ({error})") from None
    with f:
        if f.attrs.get("format") != FORMAT_NAME:
            raise FormatError(path, "format", f"is {f.attrs.get('format')!r}, expected {FORMAT_NAME!r}")
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
        for name, dataset in f.get("sinograms", {}).items():
            container.sinograms[name] = dataset[()]
        for name, dataset in f.get("volumes", {}).items():
            grid = ImageGrid(dataset.shape, tuple(dataset.attrs["voxel_size_mm"]), tuple(dataset.attrs["origin_mm"]))
            container.volumes[name] = Volume(dataset[()], grid, _json_attr(path, dataset.attrs, "metadata"))
    _check_sinograms(path, container)
    return container


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
