"""Siemens component-based normalisation files: the scanner's ``.n.hdr`` + ``.n`` (e7 tools / ECAT8).

A Biograph mMR, mCT or Biograph 64 stores its normalisation as a few
float32 *components* rather than one efficiency per bin. The header lists
them (keys after STIR ``InterfileNormHeaderSiemens``; a real mMR header is
quoted in M. Belzunce's ``readmMrComponentBasedNormalization.m``)::

    %number of normalization components:=8
    %normalization component [1]:=geometric effects
    %normalization component [2]:=crystal interference
    %normalization component [3]:=crystal efficiencies
    %normalization component [4]:=axial effects
    %normalization component [5]:=paralyzing ring DT parameters
    %normalization component [6]:=non-paralyzing ring DT parameters
    %normalization component [7]:=TX crystal DT parameter
    %normalization component [8]:=additional axial effects
    data offset in bytes [i]:=...      number of dimensions [i]:=...
    %matrix size [1]:={344,127}        (fastest axis first)
    %matrix size [2]:={9,344}
    %matrix size [3]:={504,64}
    %matrix size [4]:={837}
    %matrix size [5]:={64}   %matrix size [6]:={64}   %matrix size [7]:={9}   %matrix size [8]:={837}
    %axial compression:=11   %maximum ring difference:=60
    %scanner quantification factor (Bq*s/ECAT counts):=...

The same order and sizes are read by NiftyPET ``mmrnorm.get_components``
(geometric effects ``(127, 344)``, crystal interference ``(344, 9)``,
crystal efficiencies ``(64, 504)``, axial effects 837, ring dead-time
parameters 64 + 64, TX crystal dead time 9, additional axial effects 837)
and by STIR ``BinNormalisationFromECAT8::read_norm_data``. A Biograph 64
TruePoint file has the first 7 with sizes ``{336,109}``, ``{14,336}``,
``{672,55}``, ``{559}``, ``{55}``, ``{55}``, ``{14}`` (a public reader,
``read_normalization.m``).

In numpy (C order) a component of ``%matrix size {a,b}`` has shape
``(b, a)``. With ``R`` rings (virtual rings included), ``C`` crystals per
ring (gap crystals included), ``B`` radial bins and ``K`` crystals per block,
petrecon requires: geometric effects ``(2R-1, B)``, crystal interference
``(B, K)``, crystal efficiencies ``(R, C)``, axial effects one per sinogram of
the file's own span and maximum ring difference (the *native* layout), ring
dead-time parameters ``(R,)``; the TX crystal dead-time parameter ``(K,)``
and the additional axial effects (one per native sinogram) are checked when
present but not used (neither NiftyPET ``norm.cu`` nor STIR uses them). The
scanner is the registry scanner with these ``R``, ``C``, ``B`` and ``K``
(or the one the caller names, which must agree). Crystals are numbered as
the scanner does (petrecon's numbering; the mMR's gap crystal is
``c % 9 == 8``): STIR shifts the mMR efficiencies by one crystal only because
its own numbering differs.

The file is read from an Interfile header (``name of data file`` resolved
inside the header's folder) or from a Siemens DICOM raw-data wrapper
(:mod:`petrecon.io.siemens`: header in (0029,1010), payload the ``.bf``
sibling). Every fault (a missing component or key, a size that is not the
scanner's, overlapping or out-of-file offsets, a data file of the wrong
length, non-finite values, a scanner other than the one asked for) is a
:class:`~petrecon.errors.FormatError` naming the file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError, GeometryError
from petrecon.geometry import SCANNERS, ScannerGeometry, SinogramLayout, default_layout, get_scanner
from petrecon.io.atomic import atomic_output
from petrecon.io.interfile import (InterfileHeader, data_dtype, format_interfile, is_component_normalisation,
                                   read_header, resolve_data_file)

#: Interfile key of the calibration (STIR ``InterfileNormHeaderSiemens``; NiftyPET ``mmrnorm`` reads the same line).
QUANTIFICATION_KEY = "%scanner quantification factor (Bq*s/ECAT counts)"

#: petrecon component name -> (words identifying it in ``%normalization component [i]``, required).
#: Checked in this order ("non-paralyzing" before "paralyzing", "additional axial" before "axial").
_COMPONENTS = {
    "geometric_effects": (("geometric",), True),
    "crystal_interference": (("interference",), True),
    "crystal_efficiencies": (("efficienc",), True),
    "additional_axial_effects": (("additional axial",), False),
    "axial_effects": (("axial effect",), True),
    "non_paralysable_dead_time": (("non-paralyzing", "non paralyzing", "non-paralysing"), True),
    "paralysable_dead_time": (("paralyzing", "paralysing"), True),
    "tx_crystal_dead_time": (("tx crystal",), False),
}

#: The header's wording of each component, in the scanner's file order (used when writing).
_HEADER_NAMES = {
    "geometric_effects": "geometric effects",
    "crystal_interference": "crystal interference",
    "crystal_efficiencies": "crystal efficiencies",
    "axial_effects": "axial effects",
    "paralysable_dead_time": "paralyzing ring DT parameters",
    "non_paralysable_dead_time": "non-paralyzing ring DT parameters",
    "tx_crystal_dead_time": "TX crystal DT parameter",
    "additional_axial_effects": "additional axial effects",
}


@dataclass(frozen=True)
class ComponentNormalisation:
    """The components of one Siemens normalisation file (shapes in the module docstring).

    Attributes
    ----------
    path : Path
        The header (or DICOM wrapper) read; errors name it.
    scanner : ScannerGeometry
        The registry scanner the file belongs to.
    native_span, native_max_ring_difference : int
        ``%axial compression`` and ``%maximum ring difference``: the layout the axial effects index.
    components : dict of str to numpy.ndarray
        float32 arrays by petrecon name (keys of :data:`_COMPONENTS` present in the file).
    quantification_factor : float or None
        ``%scanner quantification factor (Bq*s/ECAT counts)``, None when the header has none.
    header : InterfileHeader
        The parsed header.
    """

    path: Path
    scanner: ScannerGeometry
    native_span: int
    native_max_ring_difference: int
    components: dict[str, np.ndarray] = field(repr=False)
    quantification_factor: float | None
    header: InterfileHeader = field(repr=False)

    def native_layout(self) -> SinogramLayout:
        """The (unmashed) layout whose sinograms the axial effects index."""
        return SinogramLayout(self.scanner, self.native_span, self.native_max_ring_difference,
                              self.components["crystal_interference"].shape[0], 1)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.components[name]


def expected_shapes(scanner: ScannerGeometry, n_radial_bins: int, native_span: int,
                    native_max_ring_difference: int) -> dict[str, tuple[int, ...]]:
    """numpy shape of every component for ``scanner`` (module docstring).

    Examples
    --------
    >>> shapes = expected_shapes(get_scanner("mmr"), 344, 11, 60)
    >>> shapes["geometric_effects"], shapes["crystal_interference"], shapes["axial_effects"]
    ((127, 344), (344, 9), (837,))
    """
    rings, crystals, block = scanner.n_rings, scanner.n_crystals_per_ring, scanner.crystals_per_block
    try:
        n_native = SinogramLayout(scanner, native_span, native_max_ring_difference, n_radial_bins, 1).n_sinograms
    except GeometryError as error:
        raise GeometryError(f"{scanner.name}: the file's span {native_span} / maximum ring difference "
                            f"{native_max_ring_difference} / {n_radial_bins} bins: {error}") from None
    return {"geometric_effects": (2 * rings - 1, n_radial_bins), "crystal_interference": (n_radial_bins, block),
            "crystal_efficiencies": (rings, crystals), "axial_effects": (n_native,),
            "paralysable_dead_time": (rings,), "non_paralysable_dead_time": (rings,),
            "tx_crystal_dead_time": (block,), "additional_axial_effects": (n_native,)}


def read_component_normalisation(path: str | os.PathLike, scanner: str | None = None) -> ComponentNormalisation:
    """Read and validate a component-based normalisation (``.n.hdr`` or its DICOM wrapper).

    Parameters
    ----------
    path : path-like
        Interfile header (``.n.hdr``) or Siemens DICOM wrapper (``.dcm``, payload ``.bf``).
    scanner : str, optional
        Registry scanner the file must belong to; default: the unique scanner whose sizes it has.

    Raises
    ------
    FormatError
        Any fault listed in the module docstring, naming the file and the key.
    """
    path = Path(path)
    header, data_path = _header_and_payload(path)
    if not is_component_normalisation(header):
        raise FormatError(path, "number of normalization components", "is missing: not a component-based "
                                                                      "normalisation")
    names = _component_order(header)
    sizes = {name: tuple(reversed(_matrix_size(header, index))) for index, name in enumerate(names, 1)}
    for required, (_, needed) in _COMPONENTS.items():
        if needed and required not in names:
            raise FormatError(path, "normalization component", f"{_HEADER_NAMES[required]!r} is missing "
                                                                f"(the file lists {len(names)}: {', '.join(names)})")
    found = _scanner_for(path, sizes, scanner, f"matrix size[{names.index('crystal_efficiencies') + 1}]")
    span = header.integer("axial compression")
    max_rd = header.integer("maximum ring difference")
    try:
        shapes = expected_shapes(found, sizes["crystal_interference"][0], span, max_rd)
    except GeometryError as error:
        raise FormatError(path, "axial compression", str(error)) from None
    for index, name in enumerate(names, 1):
        if sizes[name] != shapes[name]:
            raise FormatError(path, f"matrix size[{index}]", f"{_HEADER_NAMES[name]} has numpy shape {sizes[name]}, "
                                                               f"{found.name} needs {shapes[name]}")
    components = _read_payload(header, data_path, names, sizes)
    if float(components["crystal_efficiencies"].min()) < 0:
        raise FormatError(path, "crystal efficiencies", "holds negative values")
    factor = header.number(QUANTIFICATION_KEY) if header.has(QUANTIFICATION_KEY) else None
    if factor is not None and not factor > 0:
        raise FormatError(path, QUANTIFICATION_KEY, f"must be > 0, got {factor}")
    return ComponentNormalisation(path, found, span, max_rd, components, factor, header)


def write_component_normalisation(header_path: str | os.PathLike, components: dict[str, np.ndarray],
                                  scanner: ScannerGeometry, *, native_span: int, native_max_ring_difference: int,
                                  quantification_factor: float | None = None,
                                  overwrite: bool = False) -> Path:
    """Write ``components`` as the scanner writes them: ``header_path`` (``.n.hdr``) and its ``.n`` data file.

    Components are written in the mMR order of the module docstring (those
    absent are skipped), float32 little-endian, contiguous, with the keys of
    the scanner's header. Used by the simulator and the tests.

    Raises
    ------
    FormatError
        If a required component is missing or has the wrong shape (named as the reader would).
    """
    header_path = Path(header_path)
    data_path = header_path.with_name(header_path.name.removesuffix(".hdr"))
    if data_path == header_path:
        data_path = header_path.with_suffix(".n")
    n_bins = np.asarray(components["geometric_effects"]).shape[-1]
    shapes = expected_shapes(scanner, n_bins, native_span, native_max_ring_difference)
    names = [name for name in _HEADER_NAMES if name in components]
    items: list[tuple[str, object]] = [("%scanner name", scanner.name), ("name of data file", data_path.name),
                                       ("number format", "float"), ("number of bytes per pixel", 4),
                                       ("imagedata byte order", "LITTLEENDIAN"),
                                       ("%NORMALIZATION COMPONENTS DESCRIPTION", ""),
                                       ("%number of normalization components", len(names))]
    items += [(f"%normalization component [{i}]", _HEADER_NAMES[name]) for i, name in enumerate(names, 1)]
    offset, payload = 0, []
    for index, name in enumerate(names, 1):
        array = np.ascontiguousarray(components[name], dtype="<f4")
        if array.shape != shapes[name]:
            raise FormatError(header_path, f"matrix size[{index}]", f"{_HEADER_NAMES[name]} has shape "
                                                                      f"{array.shape}, {scanner.name} needs "
                                                                      f"{shapes[name]}")
        items += [(f"data offset in bytes [{index}]", offset), (f"number of dimensions [{index}]", array.ndim),
                  (f"%matrix size [{index}]", list(reversed(array.shape)))]
        offset += array.nbytes
        payload.append(array)
    items += [("%axial compression", native_span), ("%maximum ring difference", native_max_ring_difference),
              ("number of rings", scanner.n_rings)]
    if quantification_factor is not None:
        items.append((QUANTIFICATION_KEY, f"{quantification_factor:.10e}"))
    with atomic_output(data_path, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as f:
            for array in payload:
                f.write(array.tobytes())
    with atomic_output(header_path, overwrite=overwrite) as temporary:
        Path(temporary).write_text(format_interfile(items))
    return header_path


def _header_and_payload(path: Path) -> tuple[InterfileHeader, Path]:
    """The Interfile header and data file of a ``.n.hdr`` or of a DICOM wrapper."""
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    with open(path, "rb") as f:
        head = f.read(132)
    if path.suffix.lower() in (".dcm", ".ima") or head[128:132] == b"DICM":
        from petrecon.io.siemens import read_wrapper

        wrapper = read_wrapper(path)
        return wrapper.header, wrapper.payload_path
    header = read_header(path)
    return header, resolve_data_file(header)


def _component_order(header: InterfileHeader) -> list[str]:
    """petrecon names of the components, in file order; unknown or repeated components are errors."""
    count = header.integer("number of normalization components")
    if not 1 <= count <= 32:
        raise FormatError(header.path, "number of normalization components", f"must be in [1, 32], got {count}")
    names: list[str] = []
    for index in range(1, count + 1):
        text = header.vector("normalization component", index).strip().lower()
        name = next((key for key, (words, _) in _COMPONENTS.items() if any(word in text for word in words)), None)
        if name is None:
            raise FormatError(header.path, f"normalization component[{index}]", f"{text!r} is not a component "
                                                                                 "petrecon knows")
        if name in names:
            raise FormatError(header.path, f"normalization component[{index}]", f"{text!r} is listed twice")
        names.append(name)
    return names


def _matrix_size(header: InterfileHeader, index: int) -> list[int]:
    key = f"matrix size[{index}]"
    raw = header.vector("matrix size", index).strip()
    try:
        size = [int(item) for item in raw.strip("{}").split(",") if item.strip()]
    except ValueError:
        raise FormatError(header.path, key, f"holds a non-integer: {raw!r}") from None
    if not size or min(size) < 1 or not (raw.startswith("{") and raw.endswith("}")):
        raise FormatError(header.path, key, f"must be a {{...}} list of positive sizes, got {raw!r}")
    dimensions = header.integer("number of dimensions", index, default=len(size))
    if dimensions != len(size):
        raise FormatError(header.path, f"number of dimensions[{index}]", f"is {dimensions}, {key} has {len(size)}")
    return size


def _scanner_for(path: Path, sizes: dict[str, tuple[int, ...]], scanner: str | None, key: str) -> ScannerGeometry:
    """The registry scanner with the file's rings, crystals, radial bins and crystals per block."""
    rings, crystals = sizes["crystal_efficiencies"]
    n_bins, block = sizes["crystal_interference"]
    fits = [candidate for candidate in SCANNERS.values()
            if (candidate.n_rings, candidate.n_crystals_per_ring, candidate.crystals_per_block) == (rings, crystals, block)
            and candidate.tof is None]
    if scanner is not None:
        wanted = get_scanner(scanner)
        if wanted.tof is not None:
            wanted = get_scanner(wanted.name.removesuffix("-tof"))
        if wanted not in fits:
            raise FormatError(path, key, f"crystal efficiencies: {rings} rings x {crystals} crystals (blocks of {block}) "
                                                            f"is not the {wanted.name} ({wanted.n_rings} x "
                                                            f"{wanted.n_crystals_per_ring}, blocks of "
                                                            f"{wanted.crystals_per_block}): wrong scanner")
        return wanted
    by_bins = [candidate for candidate in fits if default_layout(candidate.name, tof=False).n_radial_bins == n_bins]
    if len(by_bins) != 1:
        raise FormatError(path, key, f"crystal efficiencies: {rings} rings x {crystals} crystals, {n_bins} bins match "
                                                        f"{len(by_bins)} registry scanners; name the scanner")
    return by_bins[0]


def _read_payload(header: InterfileHeader, data_path: Path, names: list[str],
                  sizes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Each component from its offset; offsets inside the file, not overlapping, covering it exactly."""
    dtype = data_dtype(header)
    if dtype.kind != "f" or dtype.itemsize != 4:
        raise FormatError(header.path, "number format", f"components are float32, the header says {dtype}")
    if not data_path.is_file():
        raise FormatError(header.path, "name of data file", f"{data_path.name} does not exist")
    file_size = data_path.stat().st_size
    spans = []
    for index, name in enumerate(names, 1):
        offset = header.integer("data offset in bytes", index)
        n_bytes = int(np.prod(sizes[name])) * 4
        if offset < 0 or offset + n_bytes > file_size:
            raise FormatError(header.path, f"data offset in bytes[{index}]", f"{_HEADER_NAMES[name]} needs bytes "
                                                                              f"{offset}..{offset + n_bytes}, "
                                                                              f"{data_path.name} has {file_size}")
        spans.append((offset, offset + n_bytes, index))
    spans.sort()
    for (_, end, _), (start, _, index) in zip(spans, spans[1:]):
        if start < end:
            raise FormatError(header.path, f"data offset in bytes[{index}]", "overlaps the previous component")
    if spans[-1][1] != file_size:
        raise FormatError(data_path, "size", f"{file_size} bytes, the components of {header.path.name} end at "
                                             f"{spans[-1][1]}")
    components = {}
    for index, name in enumerate(names, 1):
        offset = header.integer("data offset in bytes", index)
        values = np.fromfile(data_path, dtype=dtype, count=int(np.prod(sizes[name])), offset=offset)
        if not np.isfinite(values).all():
            raise FormatError(header.path, f"normalization component[{index}]", f"{_HEADER_NAMES[name]} holds "
                                                                                 "non-finite values")
        components[name] = values.astype(np.float32).reshape(sizes[name])
    return components
