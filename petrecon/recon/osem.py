"""Ordered-subsets expectation maximisation, written once over operators.

The system model is ``y_bar = m * (A x) + a`` (ARCHITECTURE contract 5):
``A`` a projector split into view subsets, ``m`` the multiplicative term
(normalisation x attenuation factors x live time: with attenuation factors in
``m`` this is AW-OSEM) and ``a`` the additive term (randoms + scatter). The
update of subset ``S`` (Hudson & Larkin 1994, IEEE TMI 13:601) is

    x <- x / (A_S^T m_S) * A_S^T ( m_S * y_S / (m_S A_S x + a_S) )

Bins with zero counts contribute nothing to the back-projected ratio; bins
whose expectation is zero while holding counts (data outside the model's
support) are left out rather than dividing by zero; a voxel that no LOR of a
subset sees keeps its value in that sub-iteration (the subset holds no
information on it: zeroing it would be permanent under the multiplicative
update, a hole in the image), and voxels that no subset sees (outside the
field of view) end at zero. The defaults are the clinical protocol
(reference/clinical-protocol.md): 4 iterations, 8 subsets, 5 mm FWHM
Gaussian post-filter.

The loop is written against the array module of the prompts
(:func:`petrecon.backend.array_module`): with CuPy prompts and a CUDA
projector every subset, the EM update and the post-filter run on the GPU,
with no copy to the host between subsets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from petrecon.backend import array_module
from petrecon.checks import check_parameter
from petrecon.errors import ParameterError
from petrecon.operators import LinearOperator, gaussian_post_filter
from petrecon.recon.subsets import view_subsets


class SubsetProjector(Protocol):
    """What OSEM needs of a projector: shapes, the view axis, subsets by view."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    view_axis: int
    voxel_size_mm: tuple[float, float, float]

    def subset_operator(self, views: np.ndarray) -> LinearOperator:
        """Operator from the image to the data of the given views only."""


@dataclass(frozen=True)
class OsemProtocol:
    """Reconstruction parameters; the defaults are the clinical protocol.

    Examples
    --------
    >>> OsemProtocol()
    OsemProtocol(n_iterations=4, n_subsets=8, post_filter_fwhm_mm=5.0)
    """

    n_iterations: int = 4
    n_subsets: int = 8
    post_filter_fwhm_mm: float = 5.0

    def __post_init__(self) -> None:
        for name, value, limit in (("n_iterations", self.n_iterations, "iterations"),
                                   ("n_subsets", self.n_subsets, "subsets")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ParameterError(f"{name} must be an integer, got {value!r}")
            check_parameter(limit, value, label=name)
        check_parameter("fwhm_mm", self.post_filter_fwhm_mm, label="post_filter_fwhm_mm")

    def to_dict(self) -> dict:
        """Plain dict for provenance records."""
        return asdict(self)


SubIterationCallback = Callable[[int, int, np.ndarray], None]


def poisson_log_likelihood(counts: np.ndarray, expected: np.ndarray) -> float:
    """Poisson log-likelihood ``sum(y log y_bar - y_bar)`` without the constant ``log y!``.

    Bins with ``y_bar = 0`` and ``y = 0`` contribute 0; a bin with ``y_bar = 0``
    and ``y > 0`` makes the likelihood minus infinity.

    Examples
    --------
    >>> round(poisson_log_likelihood(np.array([2.0, 0.0]), np.array([2.0, 1.0])), 4)
    -1.6137
    """
    counts = np.asarray(counts, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if np.any((expected <= 0) & (counts > 0)):
        return -np.inf
    positive = counts > 0
    return float(np.sum(counts[positive] * np.log(expected[positive])) - np.sum(expected))


def _subset_term(term, views, axis: int, default: float):
    """The part of a broadcastable correction term that belongs to the given views."""
    if term is None:
        return default
    if term.ndim == 0 or term.shape[axis] == 1:
        return term
    return array_module(term).take(term, views, axis=axis)


def _checked_term(name: str, term, data_shape: tuple[int, ...], xp):
    """``term`` as a float32 array of module ``xp`` (None stays None), checked against the data."""
    if term is None:
        return None
    term = xp.asarray(term, dtype=xp.float32)
    try:
        np.broadcast_shapes(term.shape, data_shape)
    except ValueError:
        raise ParameterError(f"{name} has shape {term.shape}, which does not broadcast to the data shape {data_shape}") from None
    if not bool(xp.all(xp.isfinite(term))) or bool(xp.any(term < 0)):
        raise ParameterError(f"{name} must be finite and non-negative")
    return term


def em_update(image: np.ndarray, operator: LinearOperator, counts: np.ndarray, multiplicative, additive,
              sensitivity: np.ndarray) -> None:
    """One EM step of one subset, in place: ``x <- x / s * A^T (m y / (m A x + a))``.

    Parameters
    ----------
    image : ndarray
        Current estimate, updated in place.
    operator : LinearOperator
        The subset's projector ``A_S``.
    counts, multiplicative, additive : ndarray or float
        ``y_S``, ``m_S`` and ``a_S`` (broadcastable to the subset's data).
    sensitivity : ndarray
        ``A_S^T m_S``; voxels where it is 0 keep their value.

    Notes
    -----
    numpy or CuPy arrays alike (all of one module); the masked divisions
    are written with ``where`` selections, which both modules provide.
    """
    xp = array_module(image)
    expected = multiplicative * operator.forward(image) + additive
    counted = (expected > 0) & (counts > 0)
    ratio = xp.where(counted, counts / xp.where(counted, expected, 1), 0).astype(counts.dtype, copy=False)
    correction = operator.adjoint((multiplicative * ratio).astype(xp.float32, copy=False))
    seen = sensitivity > 0
    image[...] = xp.where(seen, image * correction / xp.where(seen, sensitivity, 1), image)


def osem(
    prompts: np.ndarray,
    projector: SubsetProjector,
    *,
    multiplicative: np.ndarray | None = None,
    additive: np.ndarray | None = None,
    protocol: OsemProtocol = OsemProtocol(),
    initial: np.ndarray | None = None,
    callback: SubIterationCallback | None = None,
) -> np.ndarray:
    """Reconstruct an image by (AW-)OSEM.

    Parameters
    ----------
    prompts : ndarray
        Measured counts, shape ``projector.out_shape``; non-negative. numpy
        or CuPy: the reconstruction runs on the prompts' device, and the
        correction terms and ``initial`` are moved there.
    projector : SubsetProjector
        The geometric projector ``A`` (e.g. a sinogram projector), split into
        subsets along ``projector.view_axis``.
    multiplicative : ndarray, optional
        ``m``: normalisation x attenuation factors (x live time); broadcasts to
        the data. Default 1.
    additive : ndarray, optional
        ``a``: expected randoms + scatter in counts; broadcasts to the data.
        Default 0.
    protocol : OsemProtocol
        Iterations, subsets and post-filter FWHM (mm).
    initial : ndarray, optional
        Start image (positive); default a uniform image of ones.
    callback : callable, optional
        Called as ``callback(iteration, subset, image)`` after every
        sub-iteration (1-based iteration, 0-based subset), before the
        post-filter: for progress bars and convergence studies.

    Returns
    -------
    ndarray
        float32 image of shape ``projector.in_shape``, post-filtered, of the
        prompts' array module.

    Examples
    --------
    One-bin toy problem, MLEM with one subset converges to ``y / (m A)``:

    >>> from petrecon.operators import Multiply
    >>> class Toy:
    ...     in_shape = out_shape = (1, 1, 1); view_axis = 1; voxel_size_mm = (1.0, 1.0, 1.0)
    ...     def subset_operator(self, views): return Multiply(np.full((1, 1, 1), 2.0, np.float32))
    >>> image = osem(np.full((1, 1, 1), 8.0, np.float32), Toy(), protocol=OsemProtocol(1, 1, 0.0))
    >>> float(image[0, 0, 0])
    4.0
    """
    xp = array_module(prompts)
    prompts = xp.asarray(prompts, dtype=xp.float32)
    data_shape = tuple(projector.out_shape)
    if prompts.shape != data_shape:
        raise ParameterError(f"prompts have shape {prompts.shape}, the projector expects {data_shape}")
    if not bool(xp.all(xp.isfinite(prompts))) or bool(xp.any(prompts < 0)):
        raise ParameterError("prompts must be finite and non-negative counts")
    multiplicative = _checked_term("multiplicative term", multiplicative, data_shape, xp)
    additive = _checked_term("additive term", additive, data_shape, xp)
    axis = projector.view_axis % len(data_shape)
    subsets = view_subsets(data_shape[axis], protocol.n_subsets)
    device_subsets = [xp.asarray(views) for views in subsets]

    image = xp.ones(projector.in_shape, xp.float32) if initial is None else xp.array(initial, dtype=xp.float32)
    if image.shape != tuple(projector.in_shape) or bool(xp.any(image < 0)):
        raise ParameterError(f"initial image must be non-negative with shape {tuple(projector.in_shape)}")
    operators = [projector.subset_operator(views) for views in subsets]
    sensitivities: list[np.ndarray | None] = [None] * len(subsets)

    for iteration in range(1, protocol.n_iterations + 1):
        for k, (views, operator) in enumerate(zip(device_subsets, operators)):
            m = _subset_term(multiplicative, views, axis, 1.0)
            a = _subset_term(additive, views, axis, 0.0)
            y = xp.take(prompts, views, axis=axis)
            if sensitivities[k] is None:
                sensitivities[k] = operator.adjoint(xp.broadcast_to(xp.asarray(m, dtype=xp.float32), y.shape)
                                                    .astype(xp.float32))
            em_update(image, operator, y, m, a, sensitivities[k])
            if callback is not None:
                callback(iteration, k, image)

    seen_by_any = sensitivities[0] > 0
    for sensitivity in sensitivities[1:]:
        seen_by_any |= sensitivity > 0
    image[~seen_by_any] = 0.0
    return gaussian_post_filter(image, protocol.post_filter_fwhm_mm, projector.voxel_size_mm).astype(xp.float32,
                                                                                                     copy=False)
