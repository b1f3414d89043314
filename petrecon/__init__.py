"""petrecon: quantitative PET reconstruction for Siemens Biograph scanners.

Importing the package needs no GPU and compiles nothing: the numba kernels
compile lazily on first use and CuPy is imported only by
:mod:`petrecon.backend` when a CUDA device is asked for.
"""

__version__ = "0.2.0"
