"""Locate the data shipped with petrecon: CUDA sources and phantom definitions.

In an installed wheel the top-level ``kernels/`` and ``phantoms/`` folders are
the data packages ``petrecon.kernels`` and ``petrecon.phantoms`` (see
``setup.py``); in a source checkout they sit next to the ``petrecon`` package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from petrecon.errors import PetreconError

_FOLDERS = ("kernels", "phantoms")


def resource_dir(name: str) -> Path:
    """Folder of the shipped resource ``name`` (``"kernels"`` or ``"phantoms"``).

    Examples
    --------
    >>> resource_dir("kernels").name in {"kernels"}
    True
    """
    if name not in _FOLDERS:
        raise PetreconError(f"unknown resource folder {name!r}; known: {', '.join(_FOLDERS)}")
    spec = importlib.util.find_spec(f"petrecon.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    source_checkout = Path(__file__).resolve().parent.parent / name
    if source_checkout.is_dir():
        return source_checkout
    raise PetreconError(f"petrecon resource folder {name!r} is missing from this installation")
