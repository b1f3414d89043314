"""Sinogram front end: a Joseph projector from an image grid to a Siemens sinogram.

The LOR endpoints of a view are computed from the layout for the views being
projected, a few views at a time, so the whole endpoint table of a span-1
sinogram (mMR: 354 M bins) is never held at once. Subsets are views
(``view_axis`` is the second-last axis of the sinogram, reference/formats.md
storage order: [TOF bin,] segment, axial position, view, radial bin).

The LORs are handed to the kernels in the order (view, radial bin,
sinogram): consecutive LORs then differ only in their axial position, and
since z is the fastest image axis they read and write neighbouring memory.
On the mMR this order projects 2.5-3.5x faster than the storage order
(benchmarks/RESULTS.md).

Backends: ``backend="cpu"`` runs the numba kernels on numpy arrays;
``backend="cuda"`` runs :class:`petrecon.cuda.sinogram.CudaSinogramKernels`,
which computes the endpoints on the GPU from per-(view, bin) and
per-sinogram tables, takes and returns CuPy arrays (numpy in, numpy out:
numpy inputs are copied to the device and the result back). The default is
the process-wide choice of :func:`petrecon.backend.default_backend`.
"""

from __future__ import annotations

import numpy as np

from petrecon.backend import backend_or_default, is_cupy_array
from petrecon.geometry import SinogramLayout
from petrecon.operators import LinearOperator
from petrecon.projectors import adjoint_lors, adjoint_lors_tof, forward_lors, forward_lors_tof
from petrecon.volume import ImageGrid

ENDPOINT_CHUNK_BYTES = 256 * 2**20


class SinogramProjector(LinearOperator):
    """Joseph forward/back projection between ``grid`` and (some views of) ``layout``.

    Parameters
    ----------
    layout : SinogramLayout
        Scanner sinogram layout; TOF when ``layout.use_tof``.
    grid : ImageGrid
        The image grid (axes x, y, z; z the scanner axis).
    views : ndarray of int, optional
        The views this operator projects to (default: all). OSEM makes one
        operator per subset through :meth:`subset_operator`.
    backend : {"auto", "cpu", "cuda"}, optional
        Device of the kernels; default :func:`petrecon.backend.default_backend`.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    >>> SinogramProjector(layout, grid).out_shape == layout.shape
    True
    """

    view_axis = -2

    def __init__(self, layout: SinogramLayout, grid: ImageGrid, views: np.ndarray | None = None,
                 backend: str | None = None) -> None:
        self.layout, self.grid = layout, grid
        self.views = np.arange(layout.n_views) if views is None else np.asarray(views, dtype=np.int64)
        self.backend = backend_or_default(backend)
        self.in_shape = grid.shape
        shape = list(layout.shape)
        shape[self.view_axis] = len(self.views)
        self.out_shape = tuple(shape)
        self.voxel_size_mm = grid.voxel_size_mm
        bytes_per_view = 2 * 3 * 4 * layout.n_sinograms * layout.n_radial_bins
        self._views_per_chunk = max(1, ENDPOINT_CHUNK_BYTES // bytes_per_view)
        self._cuda = None
        if self.backend == "cuda":
            from petrecon.cuda.sinogram import CudaSinogramKernels

            self._cuda = CudaSinogramKernels(layout, grid, self.views)

    def subset_operator(self, views: np.ndarray) -> "SinogramProjector":
        """The projector restricted to ``views`` (indices into this operator's views), same backend."""
        return SinogramProjector(self.layout, self.grid, self.views[np.asarray(views)], backend=self.backend)

    def _view_chunks(self):
        """Per chunk of views: the slice, and LOR endpoints ordered (view, bin, sinogram, 3)."""
        for first in range(0, len(self.views), self._views_per_chunk):
            chunk = slice(first, first + self._views_per_chunk)
            xstart, xend = self.layout.lor_endpoints_mm(views=self.views[chunk])
            yield chunk, _kernel_order(xstart), _kernel_order(xend)

    def _tof_args(self) -> tuple:
        tof = self.layout.scanner.tof
        return np.asarray(self.layout.tof_bin_edges_mm, np.float32), float(tof.fwhm_mm)

    def _forward(self, x):
        if self._cuda is not None:
            return _like_input(self._cuda.forward(x), x)
        image = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(self.out_shape, np.float32)
        for chunk, xstart, xend in self._view_chunks():
            if self.layout.use_tof:
                values = forward_lors_tof(image, xstart, xend, self.grid.origin_mm, self.grid.voxel_size_mm, *self._tof_args())
                out[..., chunk, :] = values.transpose(3, 2, 0, 1)  # (view, bin, sino, tof) -> (tof, sino, view, bin)
            else:
                values = forward_lors(image, xstart, xend, self.grid.origin_mm, self.grid.voxel_size_mm)
                out[:, chunk, :] = values.transpose(2, 0, 1)  # (view, bin, sino) -> (sino, view, bin)
        return out

    def _adjoint(self, y):
        if self._cuda is not None:
            return _like_input(self._cuda.adjoint(y), y)
        sinogram = np.asarray(y, dtype=np.float32)
        image = np.zeros(self.in_shape, np.float32)
        for chunk, xstart, xend in self._view_chunks():
            if self.layout.use_tof:
                values = np.ascontiguousarray(sinogram[..., chunk, :].transpose(2, 3, 1, 0))
                image += adjoint_lors_tof(values, xstart, xend, self.in_shape, self.grid.origin_mm,
                                          self.grid.voxel_size_mm, *self._tof_args())
            else:
                values = np.ascontiguousarray(sinogram[:, chunk, :].transpose(1, 2, 0))
                image += adjoint_lors(values, xstart, xend, self.in_shape, self.grid.origin_mm, self.grid.voxel_size_mm)
        return image


def _like_input(result, given):
    """A CuPy ``result`` as CuPy for CuPy input, copied to numpy for numpy input."""
    return result if is_cupy_array(given) else result.get()


def _kernel_order(endpoints: np.ndarray) -> np.ndarray:
    """(sinogram, view, bin, 3) -> contiguous (view, bin, sinogram, 3), the kernels' fast order."""
    return np.ascontiguousarray(endpoints.transpose(1, 2, 0, 3))
