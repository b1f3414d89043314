"""Choice of the compute device, made once per process.

``auto`` picks CUDA when CuPy is installed and sees a GPU, else the CPU
(numba). This is the only module that imports CuPy, and it does so lazily,
so ``import petrecon`` never needs a GPU (ARCHITECTURE contract 1).
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

from petrecon.errors import ParameterError

BACKENDS = ("auto", "cpu", "cuda")


def _cupy_or_none() -> ModuleType | None:
    """CuPy if it imports and sees at least one CUDA device, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # CuPy raises its own CUDARuntimeError when no driver is present
        return None
    return cupy


def resolve_backend(name: str | None = None) -> str:
    """Name of the backend to use: ``"cpu"`` or ``"cuda"``.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda"} or None
        None reads the environment variable ``PETRECON_BACKEND`` (default
        ``auto``).

    Examples
    --------
    >>> resolve_backend("cpu")
    'cpu'
    """
    chosen = (name or os.environ.get("PETRECON_BACKEND", "auto")).lower()
    if chosen not in BACKENDS:
        raise ParameterError(f"backend {chosen!r} is unknown; choose one of {', '.join(BACKENDS)}")
    if chosen == "cpu":
        return "cpu"
    has_gpu = _cupy_or_none() is not None
    if chosen == "cuda" and not has_gpu:
        raise ParameterError("backend 'cuda' asked for, but CuPy is not installed or sees no GPU")
    return "cuda" if has_gpu else "cpu"


def array_module(array) -> ModuleType:
    """numpy or cupy, whichever module ``array`` belongs to (numpy in, numpy out).

    Examples
    --------
    >>> array_module(np.zeros(3)).__name__
    'numpy'
    """
    if type(array).__module__.startswith("cupy"):
        return _cupy_or_none() or np
    return np
