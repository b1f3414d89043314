"""Siemens raw-data exports: DICOM objects wrapping an Interfile header, payload in a sibling ``.bf`` file.

Facts (reference/formats.md, after NiftyPET/NIPET ``mmraux.py``): list-mode,
sinograms and normalisation leave the scanner as DICOM objects (``.dcm``);
the Interfile header text sits in the private element (0029,1010) (older
software, e.g. syngo MR B18P: (0029,1110)); SoftwareVersions (0018,1020)
names the software line; the payload is the sibling file with the same stem
and the extension ``.bf``. ``.IMA`` exports embed the payload in an element
the reference does not name: they are refused with a clear error.

Classification (petrecon's rule, from the Interfile header; the DICOM
ImageType is not used because the reference does not give its values):

- list-mode: the header names a ``.l`` data file, or has a key containing
  ``listmode`` / ``lm event``;
- normalisation: the header names a ``.n`` data file, or a key or the
  ``%data format`` value contains ``norm``;
- sinogram: a header with ``%segment table`` and ``matrix size[3]``;
- anything else is ``other`` (listed, not read).

DICOM files of an export whose private elements hold no Interfile header
(images: the mu-map series, whose (0029,1010) is a CSA image header) are
not raw-data objects and are left out. A list-mode object's CSA header
((0029,1020), else (0029,1120)) gives ``TablePositionOrigin``, which places
the hardware mu-maps (:mod:`petrecon.io.hardware_mumap`, NiftyPET
``get_hmupos``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petrecon.errors import FormatError
from petrecon.io.interfile import InterfileHeader, InterfileSinograms, parse_interfile, read_interfile_sinograms

HEADER_TAGS = ((0x0029, 0x1010), (0x0029, 0x1110))
#: Raw Data Storage, the SOP class petrecon writes its wrappers with (the scanner's own class is not in the reference).
RAW_DATA_STORAGE = "1.2.840.10008.5.1.4.1.1.66"
KINDS = ("listmode", "sinogram", "norm", "other")


@dataclass
class RawObject:
    """One exported raw-data object.

    Attributes
    ----------
    kind : str
        ``listmode``, ``sinogram``, ``norm`` or ``other``.
    dicom_path, payload_path : Path
        The DICOM wrapper and its ``.bf`` payload.
    header : InterfileHeader
        The Interfile header found in the wrapper (errors name the wrapper).
    software_version : str
        SoftwareVersions (0018,1020), empty if absent.
    header_tag : tuple of int
        The element that held the header.
    table_position_origin_mm : tuple of float or None
        ``TablePositionOrigin`` (x, y, z) of the object's CSA header, None when absent.
    """

    kind: str
    dicom_path: Path
    payload_path: Path
    header: InterfileHeader
    software_version: str
    header_tag: tuple[int, int]
    table_position_origin_mm: tuple[float, float, float] | None = None

    def read_sinograms(self, scanner: str | None = None) -> InterfileSinograms:
        """Read a sinogram or normalisation object (geometry checked against the registry)."""
        if self.kind not in ("sinogram", "norm"):
            raise FormatError(self.dicom_path, "kind", f"is {self.kind}, not a sinogram or normalisation")
        return read_interfile_sinograms(self.dicom_path, scanner=scanner, data_path=self.payload_path,
                                        header=self.header)


@dataclass
class SiemensExport:
    """The raw-data objects of an export folder, by kind (each list sorted by file name)."""

    folder: Path
    listmode: list[RawObject] = field(default_factory=list)
    sinogram: list[RawObject] = field(default_factory=list)
    norm: list[RawObject] = field(default_factory=list)
    other: list[RawObject] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """One line per object: kind, wrapper file, payload size."""
        lines = []
        for kind in KINDS:
            for item in getattr(self, kind):
                lines.append(f"{kind:9s} {item.dicom_path.name}  ({item.payload_path.stat().st_size} bytes payload, "
                             f"{item.software_version or 'unknown software'})")
        return lines


def header_from_dataset(dataset: Any, path: str | os.PathLike) -> tuple[InterfileHeader, tuple[int, int]]:
    """The Interfile header text of a wrapper: (0029,1010), else (0029,1110); bytes may be padded.

    Raises
    ------
    FormatError
        If neither element holds an Interfile header.
    """
    found = _interfile_text(dataset)
    if found is None:
        raise FormatError(path, "(0029,1010)", "no Interfile header in (0029,1010) or (0029,1110)")
    return parse_interfile(found[0], path), found[1]


def _interfile_text(dataset: Any) -> tuple[str, tuple[int, int]] | None:
    """The Interfile header text of (0029,1010), else (0029,1110), and its tag; None when neither holds one."""
    for tag in HEADER_TAGS:
        if tag not in dataset:
            continue
        value = dataset[tag].value
        text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
        text = text.replace("\x00", "").strip()
        if text.upper().lstrip("!").startswith("INTERFILE"):
            return text, tag
    return None


def classify(header: InterfileHeader) -> str:
    """``listmode``, ``norm``, ``sinogram`` or ``other`` (rules in the module docstring).

    Examples
    --------
    >>> classify(parse_interfile("!INTERFILE:=\\nname of data file:=x.l\\n", "h"))
    'listmode'
    """
    data_file = header.text("name of data file", "").strip().lower()
    keys = " ".join(header.values) + " " + " ".join(header.vectors)
    if data_file.endswith(".l") or "listmode" in keys or "lm event" in keys:
        return "listmode"
    if data_file.endswith(".n") or "norm" in keys or "norm" in header.text("data format", "").lower():
        return "norm"
    if header.has("segment table") and 3 in header.vectors.get("matrix size", {}):
        return "sinogram"
    return "other"


def read_wrapper(path: str | os.PathLike) -> RawObject:
    """Read one DICOM raw-data wrapper (header only; the payload stays on disk).

    Raises
    ------
    FormatError
        Not DICOM, no Interfile header, an ``.IMA`` export, or a missing ``.bf`` payload.
    """
    import pydicom

    path = Path(path)
    if path.suffix.lower() == ".ima":
        raise FormatError(path, "payload", ".IMA exports embed the payload in an element petrecon does not know; "
                                           "export as .dcm + .bf")
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, NotImplementedError, OverflowError, UnicodeDecodeError) as error:
        raise FormatError(path, "file", f"is not a readable DICOM file ({error})") from None
    from petrecon.io.siemens_csa import csa_vector

    header, tag = header_from_dataset(dataset, path)
    payload = path.with_suffix(".bf")
    if not payload.is_file():
        raise FormatError(path, "payload", f"the sibling {payload.name} does not exist")
    origin = csa_vector(dataset, path, "TablePositionOrigin")
    return RawObject(classify(header), path, payload, header, str(dataset.get("SoftwareVersions", "")), tag,
                     None if origin is None else tuple(float(v) for v in origin))


def open_export(folder: str | os.PathLike) -> SiemensExport:
    """Find and classify the raw-data wrappers (``*.dcm`` with a ``.bf`` sibling) in an export folder.

    Files that are not raw-data wrappers (images, other DICOM, anything
    else) are ignored; a wrapper whose ``.bf`` is missing is an error.

    Examples
    --------
    >>> import tempfile
    >>> open_export(tempfile.mkdtemp()).summary_lines()
    []
    """
    import pydicom

    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "folder", "does not exist")
    export = SiemensExport(folder)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in (".dcm", ".ima"):
            continue
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
        except (pydicom.errors.InvalidDicomError, EOFError, OSError, ValueError, TypeError, AttributeError,
                KeyError, IndexError, NotImplementedError, OverflowError, UnicodeDecodeError):
            continue
        if _interfile_text(dataset) is None:
            continue  # an image (its private elements are CSA headers) or another DICOM object
        item = read_wrapper(path)
        getattr(export, item.kind).append(item)
    return export



def write_wrapper(path: str | os.PathLike, header_text: str, payload: bytes, *, csa: bytes | None = None,
                  software_version: str = "syngo MR E11", overwrite: bool = False) -> Path:
    """Write a raw-data object as the scanner exports one: ``path`` (.dcm) with its sibling ``.bf`` payload.

    The Interfile header goes into (0029,1010), ``csa`` (a CSA2 header,
    :func:`petrecon.io.siemens_csa.write_csa`) into (0029,1020); both files are
    written atomically. What :func:`read_wrapper` reads back.
    """
    from petrecon.io.atomic import atomic_output
    from petrecon.io.dicom import new_dataset

    path = Path(path)
    dataset = new_dataset(RAW_DATA_STORAGE, "PT")
    dataset.SoftwareVersions = software_version
    dataset.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA NON-IMAGE")
    dataset.add_new((0x0029, 0x1010), "OB", header_text.encode("latin-1") + b"\x00" * (len(header_text) % 2))
    if csa is not None:
        dataset.add_new((0x0029, 0x1020), "OB", csa)
    with atomic_output(path.with_suffix(".bf"), overwrite=overwrite) as temporary_payload, \
            atomic_output(path, overwrite=overwrite) as temporary:
        temporary_payload.write_bytes(payload)
        dataset.save_as(temporary, enforce_file_format=True)
    return path
