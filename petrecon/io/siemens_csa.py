"""Siemens CSA headers (the private elements (0029,1010/1020) of images, (0029,1020/1120) of raw data).

The binary layout ("CSA2", starting ``SV10``; nibabel ``nicom/csareader.py``,
after the SPM specification): ``SV10``, 4 unused bytes, uint32 number of
elements, uint32 (77); then per element a 64-byte null-terminated name,
int32 value multiplicity, a 4-byte VR, int32 SyngoDT, int32 number of items,
int32 (77 or 205); then per item four int32 (the second is the item's length
in bytes), the item's bytes (a null-terminated string), padded to a multiple
of 4 bytes. Little-endian throughout.

petrecon reads two of its elements, as NiftyPET/NIPET ``img/mmrimg.py``
``get_hmupos`` does to place the hardware mu-maps: ``TablePositionOrigin``
(mm, x y z) in the list-mode object's CSA and ``GantryTableHomeOffset`` (mm,
x y z) in the mu-map series' CSA series header (0029,1020). NiftyPET finds
them by searching the raw bytes; petrecon parses the structure and refuses
one that does not hold together (:class:`~petrecon.errors.FormatError`
naming the file and the element). The older CSA1 layout (no ``SV10``) is not
read.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Mapping, Sequence

import numpy as np

from petrecon.errors import FormatError

_MAGIC = b"SV10"
_DELIMITER = 77
#: Largest number of elements or items per element a real header holds (nibabel's bound).
MAX_CSA_ITEMS = 1000
#: The private elements that hold a CSA header, in the order petrecon looks at them.
CSA_TAGS = ((0x0029, 0x1020), (0x0029, 0x1120), (0x0029, 0x1010))


def read_csa(blob: bytes, source: str | os.PathLike, tag: str = "(0029,1020)") -> dict[str, list[str]]:
    """The elements of a CSA2 header: name -> its non-empty item strings.

    Raises
    ------
    FormatError
        Not ``SV10``, an element or item count beyond :data:`MAX_CSA_ITEMS`,
        or an item running past the end; names ``source`` and ``tag``.

    Examples
    --------
    >>> read_csa(write_csa({"TablePositionOrigin": ["0", "0", "-1250.5"]}), "lm.dcm")
    {'TablePositionOrigin': ['0', '0', '-1250.5']}
    """
    blob = bytes(blob)
    if blob[:4] != _MAGIC:
        raise FormatError(source, tag, "is not a CSA2 header (no 'SV10'); the CSA1 layout is not read")
    try:
        n_elements = struct.unpack_from("<I", blob, 8)[0]
        if n_elements > MAX_CSA_ITEMS:
            raise FormatError(source, tag, f"claims {n_elements} elements (at most {MAX_CSA_ITEMS})")
        position, elements = 16, {}
        for _ in range(n_elements):
            name_bytes, _vm, _vr, _syngo, n_items, _check = struct.unpack_from("<64si4s3i", blob, position)
            position += 84
            name = name_bytes.split(b"\x00")[0].decode("latin-1")
            if not 0 <= n_items <= MAX_CSA_ITEMS:
                raise FormatError(source, f"{tag} {name}", f"claims {n_items} items (0 to {MAX_CSA_ITEMS})")
            items = []
            for _ in range(n_items):
                length = struct.unpack_from("<4i", blob, position)[1]
                position += 16
                if length < 0 or position + length > len(blob):
                    raise FormatError(source, f"{tag} {name}", f"an item of {length} bytes runs past the "
                                                               f"header's {len(blob)} bytes")
                text = blob[position:position + length].split(b"\x00")[0].decode("latin-1").strip()
                position += length + (-length) % 4
                if text:
                    items.append(text)
            elements[name] = items
    except struct.error:
        raise FormatError(source, tag, f"ends inside an element ({len(blob)} bytes)") from None
    return elements


def write_csa(elements: Mapping[str, Sequence[str]]) -> bytes:
    """A CSA2 header holding ``elements`` (name -> item strings, VR ``DS``), in the layout :func:`read_csa` reads."""
    parts = [_MAGIC, b"\x04\x03\x02\x01", struct.pack("<2I", len(elements), _DELIMITER)]
    for name, items in elements.items():
        parts.append(struct.pack("<64si4s3i", name.encode("latin-1"), len(items), b"DS\x00\x00", 3, len(items),
                                 _DELIMITER))
        for item in items:
            data = str(item).encode("latin-1") + b"\x00"
            parts.append(struct.pack("<4i", len(data), len(data), _DELIMITER, len(data)))
            parts.append(data + b"\x00" * ((-len(data)) % 4))
    return b"".join(parts)


def csa_vector(dataset: Any, path: str | os.PathLike, name: str, size: int = 3) -> np.ndarray | None:
    """The numbers of CSA element ``name`` in the first of :data:`CSA_TAGS` that holds it; None when none does.

    Raises
    ------
    FormatError
        If the element holds other than ``size`` finite numbers, or a CSA element cannot be parsed.
    """
    for group, element in CSA_TAGS:
        if (group, element) not in dataset:
            continue
        value = dataset[group, element].value
        if not isinstance(value, (bytes, bytearray)) or bytes(value[:4]) != _MAGIC:
            continue  # an Interfile header or another private payload
        label = f"({group:04X},{element:04X})"
        items = read_csa(value, path, label).get(name)
        if items is None:
            continue
        try:
            numbers = np.array([float(item) for item in items], dtype=np.float64)
        except ValueError:
            raise FormatError(path, f"{label} {name}", f"holds {items!r}, not numbers") from None
        if numbers.shape != (size,) or not np.all(np.isfinite(numbers)):
            raise FormatError(path, f"{label} {name}", f"needs {size} finite numbers, holds {items!r}")
        return numbers
    return None
