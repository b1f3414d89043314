"""The sinogram front end on the GPU (kernels/joseph_sinogram.cu).

:class:`petrecon.projectors.sinogram.SinogramProjector` with
``backend="cuda"`` delegates here. The LOR endpoints are computed on the GPU
from two small tables, never from a per-bin endpoint table (the mMR span-1
sinogram has 354 M bins, 8.5 GB of float32 endpoint pairs):

* transaxial: ``xy1``, ``xy2`` of shape ``(n_views_sel, n_bins, 2)``, the
  xy of ``xstart`` and ``xend`` of every (view, bin) with view mashing
  applied (mMR, all views: 1.4 MB);
* axial: ``z1``, ``z2`` of shape ``(n_sinograms,)``, from
  :meth:`~petrecon.geometry.SinogramLayout.sinogram_axial_info`.

Both are cast to float32 from the same float64 values as
:meth:`~petrecon.geometry.SinogramLayout.lor_endpoints_mm` uses, so every LOR
the kernel assembles is bit-for-bit the endpoint pair the CPU front end
projects (tested in tests/test_cuda_sinogram.py).
"""

from __future__ import annotations

import numpy as np

from petrecon.backend import cupy
from petrecon.cuda.joseph import DeviceGrid, DeviceTof, device_image
from petrecon.cuda.modules import get_kernel, launch
from petrecon.errors import GeometryError
from petrecon.geometry import SinogramLayout
from petrecon.volume import ImageGrid

SOURCE = "joseph_sinogram.cu"


def transaxial_table(layout: SinogramLayout, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(n_views_sel, n_bins, 2)`` xy of the two LOR ends, as in ``lor_endpoints_mm``.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> xy1, xy2 = transaxial_table(default_layout("test"), np.arange(3))
    >>> xy1.shape, xy1.dtype.name
    ((3, 64, 2), 'float32')
    """
    xstart, xend = layout.lor_endpoints_mm(views=views, sinograms=np.array([0]))
    return np.ascontiguousarray(xstart[0, ..., :2]), np.ascontiguousarray(xend[0, ..., :2])


def axial_table(layout: SinogramLayout) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(n_sinograms,)`` z of the two LOR ends of every sinogram, as in ``lor_endpoints_mm``."""
    z1, z2 = layout.sinogram_axial_info()
    return z1.astype(np.float32), z2.astype(np.float32)


class CudaSinogramKernels:
    """Forward and adjoint projection between ``grid`` and the ``views`` of ``layout`` on the GPU.

    Arrays are CuPy float32, shapes as for
    :class:`~petrecon.projectors.sinogram.SinogramProjector`: image
    ``grid.shape``; sinogram ``([n_tof,] n_sinograms, len(views), n_bins)``.
    """

    def __init__(self, layout: SinogramLayout, grid: ImageGrid, views: np.ndarray) -> None:
        cp = cupy()
        self.layout = layout
        self.n_views = len(views)
        xy1, xy2 = transaxial_table(layout, views)
        z1, z2 = axial_table(layout)
        self._tables = tuple(cp.asarray(t) for t in (xy1, xy2, z1, z2))
        self._grid = DeviceGrid.create(grid.shape, grid.origin_mm, grid.voxel_size_mm)
        self._tof = (DeviceTof.create(layout.tof_bin_edges_mm, layout.scanner.tof.fwhm_mm)
                     if layout.use_tof else None)
        self.n_lors = layout.n_sinograms * self.n_views * layout.n_radial_bins
        shape = (layout.n_sinograms, self.n_views, layout.n_radial_bins)
        self.out_shape = (self._tof.n_bins,) + shape if self._tof else shape

    def _geometry_args(self) -> tuple:
        layout = self.layout
        return (*self._tables, np.int32(layout.n_sinograms), np.int32(self.n_views),
                np.int32(layout.n_radial_bins), *self._grid.args())

    def forward(self, image):
        """Sinogram of ``image`` (CuPy, float32)."""
        cp = cupy()
        img = device_image(image)
        if img.shape != self._grid.shape:
            raise GeometryError(f"image has shape {img.shape}, the projector's grid is {self._grid.shape}")
        out = cp.empty(self.out_shape, dtype=cp.float32)
        if self._tof is None:
            launch(get_kernel(SOURCE, "joseph_forward_sinogram"), self.n_lors, (img, *self._geometry_args(), out))
        else:
            launch(get_kernel(SOURCE, "joseph_forward_tof_sinogram"), self.n_lors,
                   (img, *self._geometry_args(), *self._tof.args(), out), grid_y=self._tof.n_bins)
        return out

    def adjoint(self, sinogram):
        """Back projection of ``sinogram`` (CuPy, float32) into a new image."""
        cp = cupy()
        values = cp.ascontiguousarray(cp.asarray(sinogram, dtype=cp.float32))
        if values.shape != self.out_shape:
            raise GeometryError(f"sinogram has shape {values.shape}, the projector expects {self.out_shape}")
        image = cp.zeros(self._grid.shape, dtype=cp.float32)
        if self._tof is None:
            launch(get_kernel(SOURCE, "joseph_adjoint_sinogram"), self.n_lors,
                   (values, *self._geometry_args(), image))
        else:
            launch(get_kernel(SOURCE, "joseph_adjoint_tof_sinogram"), self.n_lors,
                   (values, *self._geometry_args(), *self._tof.args(), image))
        return image
