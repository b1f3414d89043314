"""Siemens Interfile: headers (``.mhdr``, ``.hdr``), sinograms (``.s``), normalisation sinograms and images (``.v``).

Facts from reference/formats.md (after STIR ``InterfileHeaderSiemens`` and
``convertSiemensInterfileToSTIR.sh``).

Parsing
-------
Lines are ``key := value``; keys are compared after dropping leading ``!``
and ``%``, lower-casing and collapsing spaces, so ``%Axial compression :=``
and ``axial compression:=`` are one key. ``[i]`` makes a vector entry
(``data offset in bytes[2]``); ``{a,b,c}`` is a list. CRLF line endings and
``;`` comment lines are accepted. Both spellings ``image data byte order`` /
``imagedata byte order`` and ``scale factor (mm/pixel)`` /
``scaling factor (mm/pixel)`` are read. A key given twice with different
values, a line without ``:=`` (other than ``!INTERFILE``), a header that does
not start with ``!INTERFILE``, a data file whose size differs from what the
header describes, and a ``name of data file`` that leaves the header's folder
(absolute, ``..``) are :class:`~petrecon.errors.FormatError` naming the file
and the key. Unknown keys are kept (``InterfileHeader.values``) and ignored.

Sinograms
---------
Storage order ``[TOF bin,] segment, axial position, view, radial bin``: the
order of :class:`~petrecon.geometry.SinogramLayout` (segments 0, +1, -1, ...).
The header's geometry (radial bins, views, span, maximum ring difference,
segment table, TOF bins) is checked against a registry scanner: the one
named by ``%scanner name`` or the caller, else the unique registry scanner
whose layout matches.

Keys written (sinogram header): ``!INTERFILE``, ``%scanner name`` (petrecon
registry key), ``name of data file``, ``!originating system``,
``imagedata byte order``, ``number format``, ``number of bytes per pixel``,
``number of dimensions``, ``matrix size[1..3]`` (bins, views, sinograms;
``matrix size[4]`` and ``%number of TOF time bins`` with TOF),
``matrix axis label[i]``, ``%axial compression``,
``%maximum ring difference``, ``%number of segments``, ``%segment table``,
``%total number of sinograms``, ``%view mashing factor`` (petrecon key; Siemens
headers imply it), ``%tof mashing factor``, ``number of scan data types``,
``scan data type description[i]``, ``data offset in bytes[i]``,
``image duration (sec)``, ``image relative start time (sec)``, ``!END OF
INTERFILE``, and ``%start horizontal bed position (mm)`` when a bed offset
is given (read back by :func:`bed_position_mm`). Image headers: ``matrix size[1..3]`` (x fastest), ``scale factor
(mm/pixel) [1..3]``, ``first pixel offset (mm) [1..3]`` (centre of voxel 0,
STIR's key), ``number format``, ``number of bytes per pixel``,
``imagedata byte order``, ``quantification units``.
A ``.mhdr`` main header lists its data sets as
``%data set [i] := {type,header file,data file}``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from petrecon.errors import FormatError, GeometryError, PetreconError
from petrecon.geometry import SCANNERS, SinogramLayout, default_layout, get_scanner
from petrecon.io.atomic import atomic_output
from petrecon.volume import ImageGrid, Volume

ALIASES = {
    "image data byte order": "imagedata byte order",
    "scaling factor (mm/pixel)": "scale factor (mm/pixel)",
}
_REPEATABLE = ("comment", "end of interfile", "general data", "general image data", "data description",
               "image data description", "study", "interfile")
_VECTOR = re.compile(r"^(.*?)\s*\[\s*(\d+)\s*\]$")
_NUMBER_TYPES = {
    ("signed integer", 2): "i2", ("unsigned integer", 2): "u2", ("signed integer", 4): "i4",
    ("unsigned integer", 4): "u4", ("float", 4): "f4", ("short float", 4): "f4", ("long float", 8): "f8",
    ("float", 8): "f8", ("unsigned integer", 1): "u1",
}
_NUMBER_NAMES = {"i2": ("signed integer", 2), "u2": ("unsigned integer", 2), "i4": ("signed integer", 4),
                 "u4": ("unsigned integer", 4), "f4": ("float", 4), "f8": ("long float", 8), "u1": ("unsigned integer", 1)}


def normalise_key(key: str) -> str:
    """Canonical form of an Interfile key (no ``!``/``%``, lower case, single spaces, aliases resolved).

    Examples
    --------
    >>> normalise_key("%Image  Data Byte Order")
    'imagedata byte order'
    """
    key = re.sub(r"\s+", " ", key.strip().lstrip("!%").strip().lower())
    return ALIASES.get(key, key)


@dataclass
class InterfileHeader:
    """A parsed header: scalar ``values`` and ``vectors`` (``key -> {index: value}``), keys normalised.

    ``path`` names the header in errors; ``source`` names the file that held
    the text (a DICOM wrapper, for example) when it differs.
    """

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    vectors: dict[str, dict[int, str]] = field(default_factory=dict)

    def has(self, key: str) -> bool:
        """Whether the scalar key is present."""
        return normalise_key(key) in self.values

    def text(self, key: str, default: str | None = None) -> str:
        """The raw value of a scalar key; missing without default is an error."""
        key = normalise_key(key)
        if key in self.values:
            return self.values[key]
        if default is not None:
            return default
        raise FormatError(self.path, key, "is missing")

    def vector(self, key: str, index: int, default: str | None = None) -> str:
        """The raw value of ``key[index]`` (1-based); a scalar ``key`` stands for index 1."""
        key = normalise_key(key)
        entries = self.vectors.get(key, {})
        if index in entries:
            return entries[index]
        if index == 1 and key in self.values:
            return self.values[key]
        if default is not None:
            return default
        raise FormatError(self.path, f"{key}[{index}]", "is missing")

    def integer(self, key: str, index: int | None = None, default: int | None = None) -> int:
        """An integer value (``index`` for vector keys)."""
        raw = self._raw(key, index, None if default is None else str(default))
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not value.is_integer():
            raise FormatError(self.path, _label(key, index), f"is not an integer: {raw!r}")
        return int(value)

    def number(self, key: str, index: int | None = None, default: float | None = None) -> float:
        """A finite float value."""
        raw = self._raw(key, index, None if default is None else repr(default))
        try:
            value = float(raw)
        except ValueError:
            raise FormatError(self.path, _label(key, index), f"is not a number: {raw!r}") from None
        if not np.isfinite(value):
            raise FormatError(self.path, _label(key, index), f"is not finite: {raw!r}")
        return value

    def integer_list(self, key: str) -> list[int]:
        """A ``{a,b,c}`` list of integers."""
        raw = self.text(key).strip()
        if not (raw.startswith("{") and raw.endswith("}")):
            raise FormatError(self.path, normalise_key(key), f"is not a {{...}} list: {raw!r}")
        try:
            return [int(item) for item in raw[1:-1].split(",") if item.strip()]
        except ValueError:
            raise FormatError(self.path, normalise_key(key), f"holds a non-integer: {raw!r}") from None

    def _raw(self, key: str, index: int | None, default: str | None) -> str:
        return self.text(key, default) if index is None else self.vector(key, index, default)


def _label(key: str, index: int | None) -> str:
    return normalise_key(key) if index is None else f"{normalise_key(key)}[{index}]"


def parse_interfile(text: str, path: str | os.PathLike) -> InterfileHeader:
    """Parse header text (``path`` names it in errors).

    Examples
    --------
    >>> header = parse_interfile("!INTERFILE :=\\r\\n%Segment table:={3,2}\\r\\nmatrix size [2] := 7\\r\\n", "a.hdr")
    >>> header.integer_list("segment table"), header.integer("matrix size", 2)
    ([3, 2], 7)
    """
    header = InterfileHeader(Path(path))
    lines = text.replace("\x00", "").splitlines()
    content = [(number, line.strip()) for number, line in enumerate(lines, 1)
               if line.strip() and not line.strip().startswith(";")]
    if not content or normalise_key(content[0][1].split(":=")[0]) != "interfile":
        raise FormatError(path, "!INTERFILE", "the header does not start with !INTERFILE")
    for number, line in content:
        if ":=" not in line:
            if normalise_key(line) in ("interfile", "end of interfile"):
                continue
            raise FormatError(path, f"line {number}", f"has no ':=': {line[:60]!r}")
        raw_key, value = (part.strip() for part in line.split(":=", 1))
        key = normalise_key(raw_key)
        if not key:
            raise FormatError(path, f"line {number}", "has an empty key")
        match = _VECTOR.match(key)
        if match:
            name, index = normalise_key(match.group(1)), int(match.group(2))
            previous = header.vectors.setdefault(name, {}).get(index)
            if previous is not None and previous != value:
                raise FormatError(path, f"{name}[{index}]", f"contradictory values {previous!r} and {value!r}")
            header.vectors[name][index] = value
            continue
        previous = header.values.get(key)
        if previous is not None and previous != value and not key.startswith(_REPEATABLE):
            raise FormatError(path, key, f"contradictory values {previous!r} and {value!r}")
        header.values[key] = value
    return header


def read_header(path: str | os.PathLike) -> InterfileHeader:
    """Read and parse a header file."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    raw = path.read_bytes()
    try:  # petrecon writes UTF-8; older headers are latin-1
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_interfile(text, path)


def format_interfile(items: list[tuple[str, object]]) -> str:
    """Header text from ``(key, value)`` pairs; ``!INTERFILE`` and ``!END OF INTERFILE`` added.

    Examples
    --------
    >>> print(format_interfile([("%axial compression", 11)]), end="")
    !INTERFILE :=
    %axial compression := 11
    !END OF INTERFILE :=
    """
    lines = ["!INTERFILE :="]
    lines += [f"{key} := {_format_value(value)}" for key, value in items]
    lines.append("!END OF INTERFILE :=")
    return "\n".join(lines) + "\n"


def _format_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(str(v) for v in value) + "}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ------------------------------------------------------------------------------------------ data files
def resolve_data_file(header: InterfileHeader) -> Path:
    """``name of data file`` resolved inside the header's folder (anything leaving it is refused)."""
    name = header.text("name of data file").strip().strip('"')
    if not name:
        raise FormatError(header.path, "name of data file", "is empty")
    if PureWindowsPath(name).drive or name.startswith(("/", "\\")):
        raise FormatError(header.path, "name of data file", f"{name!r} is absolute; petrecon reads data files "
                                                            "only from the header's folder")
    folder = header.path.parent.resolve()
    candidate = (folder / name.replace("\\", "/")).resolve()
    if not candidate.is_relative_to(folder):
        raise FormatError(header.path, "name of data file", f"{name!r} leaves the header's folder {folder}")
    return candidate


def data_dtype(header: InterfileHeader) -> np.dtype:
    """numpy dtype from ``number format``, ``number of bytes per pixel`` and ``imagedata byte order``."""
    number_format = re.sub(r"\s+", " ", header.text("number format").strip().lower())
    n_bytes = header.integer("number of bytes per pixel")
    code = _NUMBER_TYPES.get((number_format, n_bytes))
    if code is None:
        raise FormatError(header.path, "number format", f"{number_format!r} with {n_bytes} bytes per pixel is "
                                                        "not supported")
    order = header.text("imagedata byte order", "LITTLEENDIAN").strip().upper().replace(" ", "").replace("_", "")
    if order not in ("LITTLEENDIAN", "BIGENDIAN"):
        raise FormatError(header.path, "imagedata byte order", f"must be LITTLEENDIAN or BIGENDIAN, got {order!r}")
    return np.dtype(("<" if order == "LITTLEENDIAN" else ">") + code)


def _read_blocks(header: InterfileHeader, data_path: Path, dtype: np.dtype, count: int,
                 offsets: list[int]) -> list[np.ndarray]:
    """Read ``len(offsets)`` blocks of ``count`` values; the file size must match exactly."""
    if not data_path.is_file():
        raise FormatError(header.path, "name of data file", f"{data_path.name} does not exist")
    size = data_path.stat().st_size
    n_bytes = count * dtype.itemsize
    expected = max(offsets) + n_bytes
    if any(offset < 0 for offset in offsets):
        raise FormatError(header.path, "data offset in bytes", "is negative")
    if size != expected:
        raise FormatError(data_path, "size", f"{size} bytes, the header {header.path.name} describes {expected} "
                                             f"({len(offsets)} x {count} values of {dtype.itemsize} bytes)")
    return [np.fromfile(data_path, dtype=dtype, count=count, offset=offset).astype(dtype.newbyteorder("="))
            for offset in offsets]


# ------------------------------------------------------------------------------------------ sinograms
@dataclass
class InterfileSinograms:
    """Sinograms read from one header: ``data[name]`` in ``layout.shape``, plus the header."""

    data: dict[str, np.ndarray]
    layout: SinogramLayout
    header: InterfileHeader


BED_POSITION_KEY = "start horizontal bed position (mm)"
PATIENT_ORIENTATION_KEY = "patient orientation"
_STIR_ORIENTATIONS = {("head_in", "supine"): "HFS", ("head_in", "prone"): "HFP",
                      ("feet_in", "supine"): "FFS", ("feet_in", "prone"): "FFP"}


def patient_position(header: InterfileHeader) -> str | None:
    """The patient position a header records, None when it does not.

    Siemens headers write ``%patient orientation := HFS`` (HFS, HFP, FFS,
    FFP); STIR's Interfile writes ``patient orientation := head_in|feet_in``
    with ``patient rotation := supine|prone``. Other values are refused.

    Examples
    --------
    >>> patient_position(parse_interfile("!INTERFILE:=\\n%patient orientation:=FFS\\n", "h.hdr"))
    'FFS'
    >>> patient_position(parse_interfile("!INTERFILE:=\\npatient orientation:=head_in\\n"
    ...                                  "patient rotation:=prone\\n", "h.hdr"))
    'HFP'
    """
    if not header.has(PATIENT_ORIENTATION_KEY):
        return None
    value = header.text(PATIENT_ORIENTATION_KEY).strip()
    rotation = header.text("patient rotation", "supine").strip().lower() if header.has("patient rotation") else "supine"
    position = _STIR_ORIENTATIONS.get((value.lower(), rotation), value.upper())
    if position not in ("HFS", "HFP", "FFS", "FFP"):
        raise FormatError(header.path, PATIENT_ORIENTATION_KEY, f"{value!r} is not HFS, HFP, FFS or FFP "
                          "(or head_in/feet_in with a supine/prone patient rotation)")
    return position


def bed_position_mm(header: InterfileHeader) -> float | None:
    """Table position of the data set (``%start horizontal bed position (mm)``), None when the key is absent.

    The Siemens value as written, the ``h`` of
    :mod:`petrecon.geometry.patient` (a head-first patient's S coordinate of
    the gantry centre; NiftyPET reads the same key from mMR list-mode
    headers, ``mmraux.vh_bedpos``). Whole-body studies use its negative as
    the bed's ``bed_offset_mm`` (:mod:`petrecon.io.multibed`).

    Examples
    --------
    >>> text = "!INTERFILE :=\\n%start horizontal bed position (mm) := -1200.5\\n"
    >>> bed_position_mm(parse_interfile(text, "h.hdr"))
    -1200.5
    """
    return header.number(BED_POSITION_KEY) if header.has(BED_POSITION_KEY) else None


def layout_from_header(header: InterfileHeader, scanner: str | None = None) -> SinogramLayout:
    """Check the header's sinogram geometry against the registry and return the matching layout.

    Raises
    ------
    FormatError
        If the named scanner does not match, or no registry scanner does (names the key that differs).
    """
    n_bins = header.integer("matrix size", 1)
    n_views = header.integer("matrix size", 2)
    span = header.integer("axial compression")
    max_ring_difference = header.integer("maximum ring difference")
    segment_table = header.integer_list("segment table")
    n_tof = header.integer("number of tof time bins", default=1) if header.has("number of tof time bins") else 1
    tof_mashing = header.integer("tof mashing factor", default=1)
    if header.has("number of segments") and header.integer("number of segments") != len(segment_table):
        raise FormatError(header.path, "number of segments", f"says {header.integer('number of segments')}, "
                                                             f"the segment table has {len(segment_table)} entries")
    n_sinograms = header.integer("matrix size", 3)
    if sum(segment_table) != n_sinograms:
        raise FormatError(header.path, "segment table", f"sums to {sum(segment_table)} sinograms, "
                                                        f"matrix size[3] says {n_sinograms}")
    if header.has("total number of sinograms") and header.integer("total number of sinograms") != n_sinograms:
        raise FormatError(header.path, "total number of sinograms", f"says {header.integer('total number of sinograms')}"
                                                                    f", matrix size[3] says {n_sinograms}")
    named = scanner or header.text("scanner name", "").strip() or None
    candidates = [get_scanner(named)] if named else list(SCANNERS.values())
    problems = []
    for candidate in candidates:
        half = candidate.n_crystals_per_ring // 2
        registry_bins = default_layout(candidate.name, tof=False).n_radial_bins
        if n_bins != registry_bins:
            problems.append(f"{candidate.name}: {registry_bins} radial bins")
            continue
        if n_views < 1 or half % n_views:
            problems.append(f"{candidate.name}: {n_views} views do not divide {half}")
            continue
        use_tof = n_tof > 1 or (candidate.tof is not None and header.has("number of tof time bins"))
        try:
            layout = SinogramLayout(candidate, span, max_ring_difference, n_bins, half // n_views,
                                    use_tof=use_tof, tof_mashing=tof_mashing)
        except GeometryError as error:
            problems.append(str(error))
            continue
        if list(layout.segment_table) != segment_table:
            problems.append(f"{candidate.name}: segment table {list(layout.segment_table)}")
            continue
        if layout.n_tof_bins != n_tof:
            problems.append(f"{candidate.name}: {layout.n_tof_bins} TOF bins, header {n_tof}")
            continue
        return layout
    raise FormatError(header.path, "segment table" if named else "geometry",
                      f"{n_bins} bins x {n_views} views, span {span}, max ring difference {max_ring_difference}, "
                      f"segments {segment_table} match no registry scanner ({'; '.join(problems)})")


def is_component_normalisation(header: InterfileHeader) -> bool:
    """Whether ``header`` describes a Siemens component-based normalisation (``%number of normalization components``:
    geometric effects, crystal interference, crystal efficiencies, axial effects, dead-time parameters; the mMR's
    file has 8, the Biograph 64's 7) rather than a normalisation sinogram. Keys: STIR ``InterfileHeaderSiemens``.

    Examples
    --------
    >>> is_component_normalisation(parse_interfile("!INTERFILE:=\\n%number of normalization components:=8\\n", "n"))
    True
    """
    return header.has("number of normalization components")


def read_interfile_sinograms(header_path: str | os.PathLike, *, scanner: str | None = None,
                             data_path: str | os.PathLike | None = None,
                             header: InterfileHeader | None = None) -> InterfileSinograms:
    """Read every scan data type (prompts, randoms, normalisation, ...) of a sinogram header.

    Parameters
    ----------
    header_path : path-like
        The ``.s.hdr`` / ``.n.hdr`` header.
    scanner : str, optional
        Registry name to check the geometry against (default: the header's
        ``%scanner name``, else the unique matching registry scanner).
    data_path : path-like, optional
        Payload to read instead of ``name of data file`` (DICOM ``.bf``).
    header : InterfileHeader, optional
        Already parsed header (DICOM wrappers).

    Returns
    -------
    InterfileSinograms
        Arrays in native byte order, shape ``layout.shape``, dtype of the file.
    """
    header = header or read_header(header_path)
    if is_component_normalisation(header):
        raise FormatError(header.path, "number of normalization components",
                          f"{header.integer('number of normalization components')} components: a Siemens "
                          "component-based normalisation (.n), not a sinogram; give it with --norm (expanded "
                          "by petrecon.io.siemens_norm), or switch normalisation off (--no normalisation)")
    compression = header.text("compression", "off").strip().lower()
    if compression not in ("off", "none", "no", ""):
        raise FormatError(header.path, "compression", f"is {compression!r}; petrecon reads uncompressed sinograms only")
    layout = layout_from_header(header, scanner)
    dtype = data_dtype(header)
    n_types = header.integer("number of scan data types", default=1)
    if n_types < 1:
        raise FormatError(header.path, "number of scan data types", f"must be >= 1, got {n_types}")
    count = int(np.prod(layout.shape))
    offsets = [header.integer("data offset in bytes", i, default=0 if n_types == 1 else None)
               for i in range(1, n_types + 1)]
    names = [header.vector("scan data type description", i, default=f"data{i}").strip().lower()
             for i in range(1, n_types + 1)]
    if len(set(names)) != len(names):
        raise FormatError(header.path, "scan data type description", f"repeats a name: {names}")
    path = Path(data_path) if data_path is not None else resolve_data_file(header)
    blocks = _read_blocks(header, path, dtype, count, offsets)
    return InterfileSinograms({name: block.reshape(layout.shape) for name, block in zip(names, blocks)}, layout,
                              header)


def write_interfile_sinograms(header_path: str | os.PathLike, sinograms: dict[str, np.ndarray],
                              layout: SinogramLayout, *, start_s: float = 0.0, duration_s: float | None = None,
                              bed_position_mm: float | None = None, overwrite: bool = False) -> Path:
    """Write sinograms (one data file, one block per name) with a Siemens-style header.

    All arrays must share ``layout.shape`` and one dtype of int16, int32,
    uint16, uint32 or float32; the data file is ``<header stem>.s`` (the
    header name minus ``.hdr``). Both files are written atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.s.hdr"
    >>> prompts = np.ones(layout.shape, np.int16)
    >>> _ = write_interfile_sinograms(path, {"prompts": prompts}, layout)
    >>> bool(read_interfile_sinograms(path).data["prompts"].sum() == prompts.sum())
    True
    """
    header_path = Path(header_path)
    if not sinograms:
        raise PetreconError("write_interfile_sinograms: no sinograms given")
    dtypes = {np.asarray(a).dtype for a in sinograms.values()}
    if len(dtypes) != 1:
        raise PetreconError(f"write_interfile_sinograms: sinograms must share one dtype, got {dtypes}")
    dtype = dtypes.pop()
    code = dtype.kind + str(dtype.itemsize)
    if code not in _NUMBER_NAMES:
        raise PetreconError(f"write_interfile_sinograms: dtype {dtype} is not supported")
    for name, array in sinograms.items():
        if tuple(np.shape(array)) != layout.shape:
            raise PetreconError(f"write_interfile_sinograms: {name} has shape {np.shape(array)}, "
                                f"the layout needs {layout.shape}")
    data_path = _data_path_for(header_path, ".s")
    number_format, n_bytes = _NUMBER_NAMES[code]
    block = int(np.prod(layout.shape)) * dtype.itemsize
    items: list[tuple[str, object]] = [
        ("%scanner name", layout.scanner.name),
        ("!originating system", layout.scanner.description),
        ("%SMS-MI header name space", "sinogram subheader"),
        ("name of data file", data_path.name),
        ("imagedata byte order", "LITTLEENDIAN"),
        ("number format", number_format),
        ("number of bytes per pixel", n_bytes),
        ("number of dimensions", 4 if layout.use_tof else 3),
        ("matrix size[1]", layout.n_radial_bins), ("matrix axis label[1]", "sinogram projections"),
        ("matrix size[2]", layout.n_views), ("matrix axis label[2]", "sinogram views"),
        ("matrix size[3]", layout.n_sinograms), ("matrix axis label[3]", "number of sinograms"),
    ]
    if layout.use_tof:
        items += [("matrix size[4]", layout.n_tof_bins), ("matrix axis label[4]", "TOF bins"),
                  ("%number of TOF time bins", layout.n_tof_bins), ("%TOF mashing factor", layout.tof_mashing)]
    items += [
        ("%axial compression", layout.span),
        ("%maximum ring difference", layout.max_ring_difference),
        ("%number of segments", len(layout.segment_table)),
        ("%segment table", list(layout.segment_table)),
        ("%total number of sinograms", layout.n_sinograms),
        ("%view mashing factor", layout.view_mashing),
        ("number of scan data types", len(sinograms)),
    ]
    for i, name in enumerate(sinograms, 1):
        items += [(f"scan data type description[{i}]", name), (f"data offset in bytes[{i}]", (i - 1) * block)]
    items.append(("image relative start time (sec)", float(start_s)))
    if duration_s is not None:
        items.append(("image duration (sec)", float(duration_s)))
    if bed_position_mm is not None:
        items.append((f"%{BED_POSITION_KEY}", float(bed_position_mm)))
    with atomic_output(data_path, overwrite=overwrite) as temporary_data, \
            atomic_output(header_path, overwrite=overwrite) as temporary_header:
        with open(temporary_data, "wb") as f:
            for array in sinograms.values():
                np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tofile(f)
        temporary_header.write_text(format_interfile(items), encoding="utf-8")
    return header_path


def _data_path_for(header_path: Path, suffix: str) -> Path:
    """``scan.s.hdr`` -> ``scan.s``; ``scan.hdr`` -> ``scan.s`` (``suffix`` = ``.s`` or ``.v``)."""
    base = header_path.name.removesuffix(".hdr")
    return header_path.with_name(base if base.endswith(suffix) else base + suffix)


# ------------------------------------------------------------------------------------------ images
def read_interfile_image(header_path: str | os.PathLike, *, data_path: str | os.PathLike | None = None) -> Volume:
    """Read a ``.v`` image (x fastest in the file) into a Volume with axes (x, y, z).

    The grid origin is ``first pixel offset (mm) [i]`` if given, else the
    grid is centred on the scanner (Siemens images are). Metadata: ``units``
    from ``quantification units`` if present, ``interfile`` = the scalar keys.
    """
    header = read_header(header_path)
    if header.integer("number of dimensions", default=3) != 3:
        raise FormatError(header.path, "number of dimensions", "images must have 3 dimensions")
    shape = tuple(header.integer("matrix size", i) for i in (1, 2, 3))
    if min(shape) < 1:
        raise FormatError(header.path, "matrix size", f"must be positive, got {shape}")
    voxel = tuple(header.number("scale factor (mm/pixel)", i) for i in (1, 2, 3))
    if min(voxel) <= 0:
        raise FormatError(header.path, "scale factor (mm/pixel)", f"must be positive, got {voxel}")
    dtype = data_dtype(header)
    path = Path(data_path) if data_path is not None else resolve_data_file(header)
    block = _read_blocks(header, path, dtype, int(np.prod(shape)),
                         [header.integer("data offset in bytes", 1, default=0)])[0]
    data = np.ascontiguousarray(block.reshape(shape[::-1]).transpose(2, 1, 0))
    if all(header.vectors.get("first pixel offset (mm)", {}).get(i) is not None for i in (1, 2, 3)):
        grid = ImageGrid(shape, voxel, tuple(header.number("first pixel offset (mm)", i) for i in (1, 2, 3)))
    else:
        grid = ImageGrid.centred(shape, voxel)
    metadata = {"interfile": dict(header.values)}
    if header.has("quantification units"):
        metadata["units"] = header.text("quantification units")
    return Volume(data, grid, metadata)


def write_interfile_image(header_path: str | os.PathLike, volume: Volume, *, overwrite: bool = False) -> Path:
    """Write a Volume as ``<name>.v`` (float32, little-endian, x fastest) with its header ``<name>.v.hdr``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> grid = ImageGrid((3, 2, 2), (1.0, 2.0, 3.0), (0.0, 1.0, 2.0))
    >>> volume = Volume(np.arange(12, dtype=np.float32).reshape(3, 2, 2), grid, {"units": "Bq/ml"})
    >>> path = write_interfile_image(pathlib.Path(tempfile.mkdtemp()) / "x.v.hdr", volume)
    >>> back = read_interfile_image(path)
    >>> bool(np.array_equal(back.data, volume.data)), back.grid == grid
    (True, True)
    """
    header_path = Path(header_path)
    data_path = _data_path_for(header_path, ".v")
    grid = volume.grid
    items: list[tuple[str, object]] = [
        ("name of data file", data_path.name), ("!type of data", "PET"),
        ("imagedata byte order", "LITTLEENDIAN"), ("number format", "float"), ("number of bytes per pixel", 4),
        ("number of dimensions", 3)]
    for i, axis in enumerate("xyz", 1):
        items += [(f"matrix size[{i}]", grid.shape[i - 1]), (f"matrix axis label[{i}]", axis),
                  (f"scale factor (mm/pixel) [{i}]", grid.voxel_size_mm[i - 1]),
                  (f"first pixel offset (mm) [{i}]", grid.origin_mm[i - 1])]
    items.append(("data offset in bytes[1]", 0))
    if "units" in volume.metadata:
        items.append(("quantification units", volume.metadata["units"]))
    return write_image_files(header_path, volume.data, items, overwrite=overwrite)


def write_image_files(header_path: str | os.PathLike, data: np.ndarray, items: list[tuple[str, object]], *,
                      overwrite: bool = False) -> Path:
    """Write ``data`` (x, y, z) as ``<name>.v`` (float32, little-endian, x fastest) and ``items`` as its header.

    ``items`` must name the data file (``name of data file``, the header name
    minus ``.hdr``); both files are written atomically.
    """
    header_path = Path(header_path)
    data_path = _data_path_for(header_path, ".v")
    with atomic_output(data_path, overwrite=overwrite) as temporary_data, \
            atomic_output(header_path, overwrite=overwrite) as temporary_header:
        np.ascontiguousarray(np.asarray(data, dtype="<f4").transpose(2, 1, 0)).tofile(temporary_data)
        temporary_header.write_text(format_interfile(items), encoding="utf-8")
    return header_path


# ------------------------------------------------------------------------------------------ main headers
def read_main_header(path: str | os.PathLike) -> list[tuple[str, Path]]:
    """The data sets a ``.mhdr`` lists: ``(type, header path)`` in order, paths checked to stay in its folder."""
    header = read_header(path)
    count = header.integer("number of data sets")
    entries = []
    for i in range(1, count + 1):
        raw = header.vector("data set", i).strip()
        items = [item.strip() for item in raw.strip("{}").split(",")]
        if len(items) < 2 or not items[1]:
            raise FormatError(header.path, f"data set[{i}]", f"expected {{type,header,data}}, got {raw!r}")
        member = InterfileHeader(header.path, {"name of data file": items[1]})
        entries.append((items[0], resolve_data_file(member)))
    return entries


def write_main_header(path: str | os.PathLike, data_sets: list[tuple[str, str | os.PathLike]], *,
                      overwrite: bool = False) -> Path:
    """Write a ``.mhdr`` listing ``(type, header file)`` data sets (header files relative to its folder)."""
    path = Path(path)
    items: list[tuple[str, object]] = [("%number of data sets", len(data_sets))]
    for i, (kind, header) in enumerate(data_sets, 1):
        name = Path(header).name
        items.append((f"%data set [{i}]", "{" + f"{kind},{name},{name.removesuffix('.hdr')}" + "}"))
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(format_interfile(items), encoding="utf-8")
    return path
