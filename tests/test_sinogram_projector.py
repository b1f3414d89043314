"""The sinogram front end: adjointness, the sinogram convention, OSEM on a real geometry."""

import numpy as np
import pytest

from petrecon.geometry import default_layout
from petrecon.operators import GaussianFilter, Multiply, adjointness_error
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon import OsemProtocol, osem, poisson_log_likelihood
from petrecon.volume import ImageGrid


@pytest.fixture(scope="module")
def layout():
    return default_layout("test")


@pytest.fixture(scope="module")
def grid(layout):
    return ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)


def test_sinogram_projector_is_adjoint(layout, grid):
    # float32 line integrals summed over ~1e5 LORs: relative rounding ~1e-6.
    assert adjointness_error(SinogramProjector(layout, grid)) < 1e-5


def test_subset_projector_is_adjoint_and_matches_full_views(layout, grid):
    projector = SinogramProjector(layout, grid)
    views = np.arange(3, layout.n_views, 8)
    subset = projector.subset_operator(views)
    assert subset.out_shape == (layout.n_sinograms, len(views), layout.n_radial_bins)
    assert adjointness_error(subset) < 1e-5
    image = np.random.default_rng(0).random(grid.shape, dtype=np.float32)
    np.testing.assert_array_equal(subset.forward(image), projector.forward(image)[:, views, :])


def test_composed_system_model_is_adjoint(layout, grid):
    projector = SinogramProjector(layout, grid)
    factors = np.random.default_rng(1).random(projector.out_shape, dtype=np.float32)
    system = Multiply(factors) @ projector @ GaussianFilter(grid.shape, 6.0, grid.voxel_size_mm)
    assert adjointness_error(system) < 1e-5  # as for the projector alone


@pytest.mark.parametrize("point_mm", [(40.0, -25.0), (-30.0, 50.0)])
def test_off_centre_point_traces_the_documented_sinusoid(layout, grid, point_mm):
    x0, y0 = point_mm
    image = np.zeros(grid.shape, np.float32)
    i = int(round((x0 - grid.origin_mm[0]) / grid.voxel_size_mm[0]))
    j = int(round((y0 - grid.origin_mm[1]) / grid.voxel_size_mm[1]))
    k = grid.shape[2] // 2
    image[i, j, k] = 1.0
    x0, y0 = grid.voxel_centres_mm(0)[i], grid.voxel_centres_mm(1)[j]
    sinogram = SinogramProjector(layout, grid).forward(image)
    segment0 = sinogram[: layout.segment_table[0]].sum(axis=0)  # (views, bins)
    phi = np.pi * np.arange(layout.n_views) / layout.n_views
    expected_s = x0 * np.cos(phi) + y0 * np.sin(phi)
    # Centre of mass of each view's profile, in mm from the centre bin.
    xstart, xend = layout.lor_endpoints_mm(sinograms=np.array([0]))
    midpoints = 0.5 * (xstart[0] + xend[0])[..., :2]
    normals = np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    s_bins = np.einsum("vbk,vk->vb", midpoints, normals)
    measured_s = (segment0 * s_bins).sum(axis=1) / segment0.sum(axis=1)
    # Interleaved bins are ~half a crystal pitch (3.4 mm here) apart and the point is
    # a 3 mm voxel: the profile's centre agrees within one bin.
    bin_mm = layout.radial_bin_size_mm
    assert np.max(np.abs(measured_s - expected_s)) < bin_mm
    # Amplitude and phase of the fitted sinusoid: within a bin and a view step.
    fit = np.linalg.lstsq(np.stack([np.cos(phi), np.sin(phi)], 1), measured_s, rcond=None)[0]
    assert np.hypot(*fit) == pytest.approx(np.hypot(x0, y0), abs=bin_mm / 2)
    assert np.arctan2(fit[1], fit[0]) == pytest.approx(np.arctan2(y0, x0), abs=np.pi / layout.n_views)


def test_osem_one_iteration_of_eight_subsets_reaches_mlem_of_eight(layout, grid):
    projector = SinogramProjector(layout, grid)
    x, y, z = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    truth = ((np.hypot(x, y) < 60) * 1.0 + (np.hypot(x - 25, y) < 12) * 3.0).astype(np.float32)
    counts = np.random.default_rng(2).poisson(projector.forward(truth) * 0.5).astype(np.float32)
    likelihood = {}
    for name, protocol in [("osem", OsemProtocol(1, 8, 0.0)), ("mlem1", OsemProtocol(1, 1, 0.0)),
                           ("mlem8", OsemProtocol(8, 1, 0.0))]:
        image = osem(counts, projector, protocol=protocol)
        likelihood[name] = poisson_log_likelihood(counts, projector.forward(image))
    # "about the likelihood of MLEM after 8": OSEM closes >= 90 % of the gap MLEM 1 -> 8.
    gap = likelihood["mlem8"] - likelihood["mlem1"]
    assert gap > 0
    assert likelihood["osem"] >= likelihood["mlem1"] + 0.9 * gap, likelihood


@pytest.fixture(scope="module")
def tof_layout():
    """The test scanner with an mCT-like TOF axis (9 bins of 312 ps, 555 ps FWHM)."""
    import dataclasses

    from petrecon.geometry import SinogramLayout, TofSpec, get_scanner

    scanner = dataclasses.replace(get_scanner("test"), tof=TofSpec(n_bins=9, bin_width_ps=312.0, fwhm_ps=555.0))
    plain = default_layout("test")
    return SinogramLayout(scanner, plain.span, plain.max_ring_difference, plain.n_radial_bins,
                          plain.view_mashing, use_tof=True)


def test_tof_sinogram_projector_is_adjoint(tof_layout, grid):
    projector = SinogramProjector(tof_layout, grid)
    assert projector.out_shape == (9, *default_layout("test").shape)
    assert adjointness_error(projector) < 1e-5  # float32 rounding, as for non-TOF


def test_tof_bins_of_the_sinogram_sum_to_the_non_tof_sinogram(tof_layout, grid):
    # 9 bins of 46.8 mm span +-210 mm around the LOR midpoint; the object (within 50 mm
    # of the centre, so of every LOR midpoint) lies >= 160 mm = 4.5 sigma (sigma = 35.3 mm)
    # inside the outer edges: the Gaussian tail cut off is < 1e-5.
    x, y, z = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    image = (np.hypot(x - 10, y) < 40).astype(np.float32)
    tof = SinogramProjector(tof_layout, grid).forward(image)
    plain = SinogramProjector(default_layout("test"), grid).forward(image)
    np.testing.assert_allclose(tof.sum(axis=0), plain, rtol=1e-4, atol=1e-3 * plain.max())
