"""Load the shipped CUDA sources and compile them once per process.

The ``.cu`` files live in ``kernels/`` (in a checkout) or in the package
``petrecon.kernels`` (in the installed wheel), found by
:func:`petrecon.resources.resource_dir`. They are written for NVRTC: no host
headers, ``extern "C"`` kernels, local ``#include "x.cuh"`` headers only.
Those includes are inlined here before compiling, so CuPy's on-disk kernel
cache (keyed on the source text and options) sees a changed header as a
changed source; within a process :func:`load_module` caches the compiled
``cupy.RawModule``.
"""

from __future__ import annotations

import functools
import re

from petrecon.backend import cupy
from petrecon.errors import PetreconError
from petrecon.resources import resource_dir

COMPILE_OPTIONS = ("--std=c++14",)
"""NVRTC options: IEEE float32 division, square root and erff (no fast math), as the CPU kernels."""

_INCLUDE = re.compile(r'^#include\s+"([^"]+)"\s*$', re.MULTILINE)


def kernel_source(filename: str) -> str:
    """Source text of ``kernels/<filename>`` with its local ``#include "..."`` headers inlined.

    Examples
    --------
    >>> source = kernel_source("joseph_lors.cu")
    >>> "#include" in source, 'extern "C" __global__ void joseph_forward_lors' in source
    (False, True)
    """
    folder = resource_dir("kernels")
    path = folder / filename
    if not path.is_file():
        raise PetreconError(f"CUDA source {filename!r} is missing from {folder}")

    def inline(match: re.Match) -> str:
        return kernel_source(match.group(1))

    return _INCLUDE.sub(inline, path.read_text())


@functools.lru_cache(maxsize=None)
def load_module(filename: str):
    """The compiled ``cupy.RawModule`` of ``kernels/<filename>`` (compiled on first use)."""
    return cupy().RawModule(code=kernel_source(filename), options=COMPILE_OPTIONS)


def get_kernel(filename: str, name: str):
    """The ``extern "C"`` kernel ``name`` of ``kernels/<filename>``."""
    return load_module(filename).get_function(name)


def launch(kernel, n_threads: int, args: tuple, *, block: int = 256, grid_y: int = 1) -> None:
    """Launch ``kernel`` with one thread per item: ``ceil(n_threads / block) x grid_y`` blocks."""
    if n_threads <= 0:
        return
    kernel(((n_threads + block - 1) // block, grid_y), (block,), args)
