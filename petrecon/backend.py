"""Choice of the compute device, made once per process.

``auto`` picks CUDA when CuPy is installed and sees a GPU, else the CPU
(numba). The process-wide choice comes from the environment variable
``PETRECON_BACKEND`` (``auto`` | ``cpu`` | ``cuda``, default ``auto``) and is
fixed by the first call of :func:`default_backend`; code that wants another
device for one object passes ``backend=`` explicitly (e.g.
``SinogramProjector(layout, grid, backend="cpu")``).

This is the only module that imports CuPy (and ``cupyx``), and it does so
lazily, so ``import petrecon`` never needs a GPU (ARCHITECTURE contract 1).
Everything else asks :func:`cupy` or :func:`array_module`.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType

import numpy as np

from petrecon.errors import ParameterError

BACKENDS = ("auto", "cpu", "cuda")
ENV_VARIABLE = "PETRECON_BACKEND"


@functools.cache
def _cupy_or_none() -> ModuleType | None:
    """CuPy if it imports and sees at least one CUDA device, else None (probed once)."""
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


def gpu_available() -> bool:
    """Whether CuPy is installed and sees a CUDA GPU.

    Examples
    --------
    >>> isinstance(gpu_available(), bool)
    True
    """
    return _cupy_or_none() is not None


def resolve_backend(name: str | None = None) -> str:
    """Name of the backend to use: ``"cpu"`` or ``"cuda"``.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda"} or None
        None reads the environment variable ``PETRECON_BACKEND`` (default
        ``auto``).

    Raises
    ------
    ParameterError
        For an unknown name, or ``cuda`` without CuPy or without a GPU.

    Examples
    --------
    >>> resolve_backend("cpu")
    'cpu'
    """
    chosen = (name or os.environ.get(ENV_VARIABLE, "auto")).strip().lower()
    if chosen not in BACKENDS:
        source = f"{ENV_VARIABLE}={chosen!r}" if name is None else f"backend {chosen!r}"
        raise ParameterError(f"{source} is unknown; choose one of {', '.join(BACKENDS)}")
    if chosen == "cpu":
        return "cpu"
    has_gpu = gpu_available()
    if chosen == "cuda" and not has_gpu:
        raise ParameterError("backend 'cuda' asked for, but CuPy is not installed or sees no GPU "
                             "(install petrecon[gpu] on a machine with an NVIDIA driver, or choose 'cpu')")
    return "cuda" if has_gpu else "cpu"


@functools.cache
def default_backend() -> str:
    """The process-wide backend: :func:`resolve_backend` of ``PETRECON_BACKEND``, decided on first use.

    Examples
    --------
    >>> default_backend() in ("cpu", "cuda")
    True
    """
    return resolve_backend(None)


def backend_or_default(name: str | None) -> str:
    """``resolve_backend(name)`` for an explicit name, else :func:`default_backend`."""
    return default_backend() if name is None else resolve_backend(name)


def cupy() -> ModuleType:
    """The CuPy module; ParameterError if it is missing or sees no GPU."""
    module = _cupy_or_none()
    if module is None:
        resolve_backend("cuda")  # raises the explanatory ParameterError
    return module


def is_cupy_array(array) -> bool:
    """True for a CuPy array (checked without importing CuPy).

    Examples
    --------
    >>> is_cupy_array(np.zeros(2))
    False
    """
    return type(array).__module__.startswith("cupy")


def array_module(array) -> ModuleType:
    """numpy or cupy, whichever module ``array`` belongs to (numpy in, numpy out).

    Examples
    --------
    >>> array_module(np.zeros(3)).__name__
    'numpy'
    """
    if is_cupy_array(array):
        return _cupy_or_none() or np
    return np


def ndimage_module(array) -> ModuleType:
    """``scipy.ndimage`` for numpy arrays, ``cupyx.scipy.ndimage`` for CuPy arrays.

    Examples
    --------
    >>> ndimage_module(np.zeros(3)).__name__
    'scipy.ndimage'
    """
    if is_cupy_array(array):
        import cupyx.scipy.ndimage

        return cupyx.scipy.ndimage
    import scipy.ndimage

    return scipy.ndimage


def to_numpy(array) -> np.ndarray:
    """A numpy copy of a CuPy array; numpy arrays and array-likes go through ``np.asarray``.

    Examples
    --------
    >>> to_numpy([1, 2]).tolist()
    [1, 2]
    """
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)
