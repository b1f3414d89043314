"""Run the CUDA kernel sources on the CPU, for tests and debugging on machines without a GPU.

The ``.cu`` files are plain C++ apart from a few CUDA names. With those
defined for the host (``__ldg`` a load, ``atomicAdd`` an add, ``__shared__``
a static, ``blockIdx``/``threadIdx`` globals that a loop over the launch
grid sets) g++ compiles the very text CuPy compiles, and the threads run one
after the other. That checks arithmetic, edge handling and indexing; it
cannot check concurrency: the warp shuffles are the identity, so kernels
that cooperate within a block (kernels/histogram.cu) must be run with one
thread per block.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from petrecon.cuda.modules import kernel_source
from petrecon.errors import PetreconError

HOST_PRELUDE = r"""
#include <math.h>
#include <algorithm>
using std::max;
using std::min;
struct dim { unsigned x, y, z; };
static dim blockIdx, threadIdx, blockDim;
#define __global__
#define __device__
#define __shared__ static
#define __ldg(pointer) (*(pointer))
#define __syncthreads()
#define __shfl_up_sync(mask, value, offset) (value)
template <class T> static T atomicAdd(T* address, T value) { T old = *address; *address += value; return old; }
template <class T> static T atomicMax(T* address, T value) { T old = *address; *address = max(old, value); return old; }
template <class Kernel> static void launch(unsigned grid_x, unsigned grid_y, unsigned block, Kernel kernel) {
    blockDim = {block, 1, 1};
    for (unsigned y = 0; y < grid_y; ++y)
        for (unsigned x = 0; x < grid_x; ++x)
            for (unsigned t = 0; t < block; ++t) {
                blockIdx = {x, y, 0};
                threadIdx = {t, 0, 0};
                kernel();
            }
}
"""


_KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')


def host_wrappers(source: str) -> str:
    """C++ ``host_<kernel>(<kernel parameters>, unsigned grid_x, unsigned grid_y, unsigned block)`` per kernel.

    Each wrapper runs every thread of the launch grid in turn.

    Examples
    --------
    >>> print(host_wrappers('extern "C" __global__ void scale(float* x, int n) {}').strip())
    extern "C" void host_scale(float* x, int n, unsigned grid_x, unsigned grid_y, unsigned block) { launch(grid_x, grid_y, block, [&] { scale(x, n); }); }
    """
    wrappers = []
    for name, parameters in _KERNEL.findall(source):
        names = ", ".join(re.findall(r"(\w+)\s*$", part)[0] for part in parameters.split(","))
        wrappers.append(f'extern "C" void host_{name}({" ".join(parameters.split())}, unsigned grid_x, '
                        f"unsigned grid_y, unsigned block) "
                        f"{{ launch(grid_x, grid_y, block, [&] {{ {name}({names}); }}); }}")
    return "\n".join(wrappers) + "\n"


class HostKernels:
    """The kernels of some ``.cu`` files compiled for the host.

    ``kernels.launch(name, grid, block, *args)`` runs kernel ``name`` like a
    CUDA launch ``name<<<grid, block>>>(args)``: numpy arrays are passed as
    pointers (they must be C-contiguous), None as a null pointer,
    ``np.float32`` as float, ``np.int64`` / ``np.uint64`` as 64-bit integers,
    ``np.uint32`` as unsigned, anything else as int.
    """

    def __init__(self, library: ctypes.CDLL) -> None:
        self.library = library

    def launch(self, name: str, grid: tuple[int, ...], block: int, *args) -> None:
        converted = []
        for arg in args:
            if arg is None:
                converted.append(ctypes.c_void_p(None))
            elif isinstance(arg, np.ndarray):
                if not arg.flags.c_contiguous:
                    raise PetreconError(f"{name}: array arguments must be C-contiguous")
                converted.append(arg.ctypes.data_as(ctypes.c_void_p))
            elif isinstance(arg, np.float32):
                converted.append(ctypes.c_float(arg))
            elif isinstance(arg, (np.int64, np.uint64)):
                converted.append(ctypes.c_longlong(int(arg)))
            elif isinstance(arg, np.uint32):
                converted.append(ctypes.c_uint(int(arg)))
            else:
                converted.append(ctypes.c_int(int(arg)))
        grid_x, grid_y = (tuple(grid) + (1,))[:2]
        getattr(self.library, f"host_{name}")(*converted, ctypes.c_uint(grid_x), ctypes.c_uint(grid_y),
                                              ctypes.c_uint(block))


def compile_for_host(sources: list[str], folder: Path) -> HostKernels:
    """Compile the kernels of ``kernels/<sources>`` for the host, with a wrapper per kernel.

    Raises
    ------
    PetreconError
        If g++ is missing or the compilation fails (with its messages).
    """
    compiler = shutil.which("g++")
    if compiler is None:
        raise PetreconError("g++ is needed to run the CUDA kernels on the host")
    text = "".join(kernel_source(name) for name in sources)
    source = Path(folder) / "kernels.cpp"
    # Local headers are inlined by kernel_source; their include guards keep repeated copies out.
    source.write_text(HOST_PRELUDE + text + host_wrappers(text))
    library = Path(folder) / "kernels.so"
    command = [compiler, "-O2", "-std=c++14", "-shared", "-fPIC", str(source), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PetreconError(f"host compilation of {', '.join(sources)} failed:\n{result.stderr}")
    return HostKernels(ctypes.CDLL(str(library)))
