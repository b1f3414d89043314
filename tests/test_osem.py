"""OSEM/MLEM properties on a small dense system with a view structure.

A dense random system keeps these tests independent of the projector (tested
in test_joseph.py and test_sinogram_projector.py); the properties checked
are those of the EM algorithm itself (Shepp & Vardi 1982; Hudson & Larkin 1994).
"""

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.operators import LinearOperator
from petrecon.recon import OsemProtocol, osem, poisson_log_likelihood

N_VIEWS, N_BINS = 16, 24
IMAGE_SHAPE = (6, 6, 2)


class DenseViewOperator(LinearOperator):
    """y[view, bin] = sum_j M[view, bin, j] x[j] for a subset of views."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.in_shape = IMAGE_SHAPE
        self.out_shape = matrix.shape[:2]

    def _forward(self, x):
        return (self.matrix.reshape(-1, x.size) @ x.ravel()).reshape(self.out_shape).astype(np.float32)

    def _adjoint(self, y):
        return (self.matrix.reshape(-1, int(np.prod(IMAGE_SHAPE))).T @ y.ravel()).reshape(IMAGE_SHAPE).astype(np.float32)


class DenseProjector:
    view_axis = 0
    voxel_size_mm = (2.0, 2.0, 2.0)

    def __init__(self, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.matrix = (rng.random((N_VIEWS, N_BINS, int(np.prod(IMAGE_SHAPE)))) ** 4).astype(np.float32)
        self.in_shape = IMAGE_SHAPE
        self.out_shape = (N_VIEWS, N_BINS)

    def subset_operator(self, views):
        return DenseViewOperator(self.matrix[views])


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    projector = DenseProjector()
    truth = rng.random(IMAGE_SHAPE).astype(np.float32) * 10
    full = projector.subset_operator(np.arange(N_VIEWS))
    multiplicative = (0.5 + rng.random((N_VIEWS, N_BINS))).astype(np.float32)
    noiseless = multiplicative * full.forward(truth)
    return projector, full, truth, multiplicative, noiseless


def _mlem_history(projector, full, counts, multiplicative, additive, n_iterations):
    history = []

    def record(iteration, subset, image):
        expected = multiplicative * full.forward(image) + (0.0 if additive is None else additive)
        history.append((image.copy(), expected))

    osem(counts, projector, multiplicative=multiplicative, additive=additive,
         protocol=OsemProtocol(n_iterations, 1, 0.0), callback=record)
    return history


@pytest.mark.parametrize("with_additive", [False, True])
def test_mlem_likelihood_increases_every_iteration(problem, with_additive):
    projector, full, truth, multiplicative, noiseless = problem
    rng = np.random.default_rng(3)
    additive = np.full(noiseless.shape, noiseless.mean() * 0.3, np.float32) if with_additive else None
    counts = rng.poisson(noiseless + (0 if additive is None else additive)).astype(np.float32)
    history = _mlem_history(projector, full, counts, multiplicative, additive, 20)
    likelihoods = [poisson_log_likelihood(counts, expected) for _, expected in history]
    # EM is monotone in exact arithmetic; float32 images allow a relative slack of ~1e-6.
    steps = np.diff(likelihoods)
    assert np.all(steps >= -1e-6 * np.abs(likelihoods[1:])), steps


def test_mlem_preserves_expected_counts_without_additive_term(problem):
    projector, full, truth, multiplicative, noiseless = problem
    counts = np.random.default_rng(4).poisson(noiseless).astype(np.float32)
    for _, expected in _mlem_history(projector, full, counts, multiplicative, None, 10):
        # sum(m A x) == sum(y) after each MLEM step is an identity of the update;
        # float32 sums over 384 bins keep it to ~1e-5 relative.
        assert expected.sum() == pytest.approx(counts.sum(), rel=1e-5)


def test_error_to_truth_decreases_on_noise_free_data(problem):
    projector, full, truth, multiplicative, noiseless = problem
    history = _mlem_history(projector, full, noiseless, multiplicative, None, 5)
    errors = [np.linalg.norm(image - truth) / np.linalg.norm(truth) for image, _ in history]
    assert np.all(np.diff(errors) < 0), errors


def test_osem_one_iteration_matches_mlem_of_as_many_iterations_as_subsets(problem):
    projector, full, truth, multiplicative, noiseless = problem
    counts = np.random.default_rng(5).poisson(noiseless * 50).astype(np.float32)
    osem_image = osem(counts, projector, multiplicative=multiplicative, protocol=OsemProtocol(1, 8, 0.0))
    mlem_image = osem(counts, projector, multiplicative=multiplicative, protocol=OsemProtocol(8, 1, 0.0))
    mlem_one = osem(counts, projector, multiplicative=multiplicative, protocol=OsemProtocol(1, 1, 0.0))
    likelihood = {name: poisson_log_likelihood(counts, multiplicative * full.forward(img))
                  for name, img in [("osem", osem_image), ("mlem8", mlem_image), ("mlem1", mlem_one)]}
    # OSEM accelerates EM by about the number of subsets: its 1-iteration likelihood
    # closes at least 90 % of the gap between MLEM after 1 and after 8 iterations.
    gap = likelihood["mlem8"] - likelihood["mlem1"]
    assert likelihood["osem"] >= likelihood["mlem1"] + 0.9 * gap, likelihood


def test_zero_count_bins_and_zero_sensitivity_voxels_stay_finite(problem):
    projector, full, truth, multiplicative, noiseless = problem
    projector.matrix[:, :, 0] = 0.0  # voxel 0 is seen by no LOR
    counts = np.zeros(noiseless.shape, np.float32)
    counts[3, 5] = 7.0
    image = osem(counts, projector, multiplicative=multiplicative, protocol=OsemProtocol(2, 4, 0.0))
    assert np.all(np.isfinite(image)) and np.all(image >= 0)
    assert image.ravel()[0] == 0.0


def test_voxel_unseen_by_one_subset_keeps_its_value_there(problem):
    projector, full, truth, multiplicative, noiseless = problem
    subsets = [np.arange(k, N_VIEWS, 4) for k in range(4)]
    projector.matrix[subsets[0], :, 1] = 0.0  # voxel 1 is invisible to the first subset only
    noiseless = multiplicative * projector.subset_operator(np.arange(N_VIEWS)).forward(truth)
    image = osem(noiseless, projector, multiplicative=multiplicative, protocol=OsemProtocol(80, 4, 0.0))
    # the other subsets still see it: noise-free OSEM converges to the truth there as elsewhere (measured
    # 2 % after 80 iterations; zeroing it in the first subset would be permanent under the multiplicative update)
    assert image.ravel()[1] == pytest.approx(truth.ravel()[1], rel=0.05)


def test_osem_is_deterministic(problem):
    projector, full, truth, multiplicative, noiseless = problem
    first = osem(noiseless, projector, protocol=OsemProtocol(2, 4, 0.0))
    second = osem(noiseless, projector, protocol=OsemProtocol(2, 4, 0.0))
    assert np.array_equal(first, second)


@pytest.mark.parametrize("kwargs", [dict(n_iterations=0), dict(n_subsets=0), dict(post_filter_fwhm_mm=-1.0),
                                    dict(n_iterations=2.5)])
def test_absurd_protocol_is_rejected(kwargs):
    with pytest.raises(ParameterError):
        OsemProtocol(**kwargs)


def test_negative_counts_and_mismatched_terms_are_rejected(problem):
    projector, *_ = problem
    with pytest.raises(ParameterError, match="non-negative"):
        osem(-np.ones(projector.out_shape, np.float32), projector)
    with pytest.raises(ParameterError, match="additive term"):
        osem(np.ones(projector.out_shape, np.float32), projector, additive=np.ones((3, 3), np.float32))
    with pytest.raises(ParameterError, match="subsets"):
        osem(np.ones(projector.out_shape, np.float32), projector, protocol=OsemProtocol(1, N_VIEWS + 1))
