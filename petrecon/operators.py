"""Linear operators that compose (the model of parallelproj's operator layer).

Every operator has ``in_shape``, ``out_shape``, ``forward`` and ``adjoint``;
``A @ B`` is their composition, so the system model of a reconstruction,
``Multiply(norm * acf) @ projector @ GaussianFilter(...)``, is itself an
operator and OSEM never learns what is inside it. Arrays keep their module:
numpy in, numpy out.
"""

from __future__ import annotations

import math

import numpy as np

from petrecon.backend import ndimage_module
from petrecon.errors import ParameterError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


class LinearOperator:
    """Base class: subclasses set ``in_shape``/``out_shape`` and implement
    ``_forward`` and ``_adjoint`` on arrays of exactly those shapes."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def forward(self, x):
        """Apply the operator to ``x`` (shape ``in_shape``)."""
        _check_shape(x, self.in_shape, type(self).__name__, "forward")
        return self._forward(x)

    def adjoint(self, y):
        """Apply the adjoint (transpose) to ``y`` (shape ``out_shape``)."""
        _check_shape(y, self.out_shape, type(self).__name__, "adjoint")
        return self._adjoint(y)

    def _forward(self, x):
        raise NotImplementedError  # abstractmethod: every concrete operator overrides it

    def _adjoint(self, y):
        raise NotImplementedError  # abstractmethod: every concrete operator overrides it

    def __matmul__(self, other: "LinearOperator") -> "Composition":
        return Composition(self, other)


def _check_shape(array, expected: tuple[int, ...], name: str, direction: str) -> None:
    if tuple(array.shape) != tuple(expected):
        raise ParameterError(f"{name}.{direction}: input has shape {tuple(array.shape)}, expected {tuple(expected)}")


class Composition(LinearOperator):
    """``outer @ inner``: forward applies ``inner`` then ``outer``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if tuple(outer.in_shape) != tuple(inner.out_shape):
            raise ParameterError(
                f"cannot compose {type(outer).__name__} (input {outer.in_shape}) "
                f"after {type(inner).__name__} (output {inner.out_shape})"
            )
        self.outer, self.inner = outer, inner
        self.in_shape, self.out_shape = tuple(inner.in_shape), tuple(outer.out_shape)

    def _forward(self, x):
        return self.outer.forward(self.inner.forward(x))

    def _adjoint(self, y):
        return self.inner.adjoint(self.outer.adjoint(y))


class Multiply(LinearOperator):
    """Element-wise multiplication by a fixed array (a diagonal operator, self-adjoint)."""

    def __init__(self, factors) -> None:
        self.factors = factors
        self.in_shape = self.out_shape = tuple(factors.shape)

    def _forward(self, x):
        return self.factors * x

    def _adjoint(self, y):
        return self.factors * y


class GaussianFilter(LinearOperator):
    """Isotropic Gaussian blur of given FWHM on a voxel grid.

    With a symmetric kernel and zero padding outside the image
    (``mode="constant"``) the filter matrix is symmetric, so the operator is
    its own adjoint. numpy arrays are filtered with ``scipy.ndimage``, CuPy
    arrays on the GPU with ``cupyx.scipy.ndimage`` (same call and
    parameters). Used as the image-space resolution model (PSF) of the
    system model; the post-filter (:func:`gaussian_post_filter`) replicates
    the edges instead.

    Parameters
    ----------
    shape : tuple of int
        Image shape (x, y, z).
    fwhm_mm : float
        Full width at half maximum in mm; 0 makes the identity.
    voxel_size_mm : tuple of float
        Voxel size along (x, y, z) in mm.
    """

    def __init__(self, shape: tuple[int, int, int], fwhm_mm: float, voxel_size_mm: tuple[float, float, float]) -> None:
        if not fwhm_mm >= 0 or not math.isfinite(fwhm_mm):
            raise ParameterError(f"Gaussian FWHM must be a finite number >= 0 mm, got {fwhm_mm}")
        self.in_shape = self.out_shape = tuple(shape)
        self.sigma_voxels = tuple(fwhm_mm / FWHM_PER_SIGMA / float(v) for v in voxel_size_mm)

    def _forward(self, x):
        if not any(self.sigma_voxels):
            return x.copy()
        return ndimage_module(x).gaussian_filter(x, self.sigma_voxels, mode="constant", cval=0.0, truncate=4.0)

    def _adjoint(self, y):
        return self._forward(y)


def gaussian_post_filter(image, fwhm_mm: float, voxel_size_mm: tuple[float, float, float]):
    """Gaussian smoothing of a reconstructed image, with the edge planes replicated beyond the image.

    Unlike :class:`GaussianFilter` (zero padding, needed for a self-adjoint
    system-model operator), the post-filter extends the image by its edge
    values (``mode="nearest"``): zero padding would pull the first and last
    transverse planes towards zero (by 7 % two planes in from the end of a
    30 mm image at 5 mm FWHM), a bias no scanner shows in its end planes.
    numpy or CuPy arrays, as for :class:`GaussianFilter`.

    Examples
    --------
    >>> image = np.ones((4, 4, 3), np.float32)
    >>> float(gaussian_post_filter(image, 5.0, (2.0, 2.0, 2.0)).min())
    1.0
    """
    if not fwhm_mm >= 0 or not math.isfinite(fwhm_mm):
        raise ParameterError(f"Gaussian FWHM must be a finite number >= 0 mm, got {fwhm_mm}")
    if fwhm_mm == 0:
        return image.copy()
    sigma_voxels = tuple(fwhm_mm / FWHM_PER_SIGMA / float(v) for v in voxel_size_mm)
    return ndimage_module(image).gaussian_filter(image, sigma_voxels, mode="nearest", truncate=4.0)


def adjointness_error(operator: LinearOperator, seed: int = 0) -> float:
    """Relative difference between ``<A x, y>`` and ``<x, A^T y>`` for random x, y.

    The one check every operator and composition passes in the tests
    (ARCHITECTURE contract 3). Inner products are accumulated in float64.

    Examples
    --------
    >>> adjointness_error(Multiply(np.arange(1.0, 5.0))) < 1e-12
    True
    """
    rng = np.random.default_rng(seed)
    x = rng.random(operator.in_shape, dtype=np.float64).astype(np.float32)
    y = rng.random(operator.out_shape, dtype=np.float64).astype(np.float32)
    lhs = float(np.vdot(operator.forward(x).astype(np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), operator.adjoint(y).astype(np.float64)))
    return abs(lhs - rhs) / max(abs(lhs), abs(rhs), np.finfo(np.float64).tiny)
