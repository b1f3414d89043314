"""The CUDA backend: CuPy wrappers around the kernels in ``kernels/*.cu``.

Modules: :mod:`~petrecon.cuda.modules` (loading and compiling the shipped
sources), :mod:`~petrecon.cuda.joseph` (projection along LOR endpoint
arrays), :mod:`~petrecon.cuda.sinogram` (the sinogram front end computing
LOR endpoints on the GPU), :mod:`~petrecon.cuda.histogram` (PETLINK list-mode
histogramming) and :mod:`~petrecon.cuda.roofline` (the performance floor of
those kernels on a given GPU). CuPy is reached only through
:mod:`petrecon.backend`; importing this package needs neither CuPy nor a GPU.
"""
