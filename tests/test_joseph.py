"""Tests of the Joseph projectors (non-TOF and TOF) in petrecon.projectors."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import GeometryError
from petrecon.projectors import adjoint_lors, adjoint_lors_tof, forward_lors, forward_lors_tof

SHAPE = (32, 32, 16)
VOXEL_MM = np.array([2.0, 2.0, 2.5])
ORIGIN_MM = -(np.array(SHAPE) - 1) / 2 * VOXEL_MM
HALF_BOX_MM = np.array(SHAPE) * VOXEL_MM / 2
MCT_BIN_MM = 312 * 0.1499
MCT_EDGES_MM = (np.arange(14) - 6.5) * MCT_BIN_MM
MCT_FWHM_MM = 555 * 0.1499
WIDE_FWHM_MM = 30.0


def _random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _mixed_lors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random, near-axial, exactly axis-aligned, image-missing and zero-length LORs."""
    n = 300
    centres = rng.uniform(-HALF_BOX_MM, HALF_BOX_MM, size=(n, 3))
    d = _random_directions(rng, n)
    d[:50, :2] *= 0.05  # near-axial: z dominant
    d[:50] /= np.linalg.norm(d[:50], axis=1, keepdims=True)
    d[50:80] = np.eye(3)[rng.integers(0, 3, 30)]  # exactly along an axis
    centres[50:65] = ORIGIN_MM + rng.integers(0, 16, (15, 3)) * VOXEL_MM  # through voxel centres
    centres[80:100] += 500.0  # miss the image
    xs = centres - 80.0 * d
    xe = centres + 80.0 * d
    xe[100:105] = xs[100:105]  # zero length
    return xs.astype(np.float32), xe.astype(np.float32)


def _relative_dot_mismatch(a_x: np.ndarray, y: np.ndarray, x: np.ndarray, at_y: np.ndarray) -> float:
    lhs = np.dot(a_x.ravel().astype(np.float64), y.ravel().astype(np.float64))
    rhs = np.dot(x.ravel().astype(np.float64), at_y.ravel().astype(np.float64))
    return abs(lhs - rhs) / abs(lhs)


def test_adjointness_non_tof() -> None:
    rng = np.random.default_rng(1)
    xs, xe = _mixed_lors(rng)
    x = rng.random(SHAPE, dtype=np.float32)
    y = rng.random(xs.shape[0]).astype(np.float32)
    a_x = forward_lors(x, xs, xe, ORIGIN_MM, VOXEL_MM)
    at_y = adjoint_lors(y, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    # Identical float64 weights both ways; the mismatch is float32 rounding of
    # the projections and of the back-projected voxels (~1e-7 each, summed
    # over ~1e4 terms of equal sign): well below 1e-5.
    assert _relative_dot_mismatch(a_x, y, x, at_y) < 1e-5


def test_adjointness_tof() -> None:
    rng = np.random.default_rng(2)
    xs, xe = _mixed_lors(rng)
    edges_mm = np.linspace(-60.0, 60.0, 7)
    offsets_mm = rng.uniform(-10, 10, xs.shape[0])
    x = rng.random(SHAPE, dtype=np.float32)
    y = rng.random((xs.shape[0], 6)).astype(np.float32)
    a_x = forward_lors_tof(x, xs, xe, ORIGIN_MM, VOXEL_MM, edges_mm, WIDE_FWHM_MM, offsets_mm)
    at_y = adjoint_lors_tof(y, xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM, edges_mm, WIDE_FWHM_MM,
                            offsets_mm)
    # Same reasoning as the non-TOF case: only float32 rounding differs.
    assert _relative_dot_mismatch(a_x, y, x, at_y) < 1e-5


FINE_SHAPE = (64, 64, 48)
FINE_VOXEL_MM = np.array([1.0, 1.0, 1.25])
FINE_ORIGIN_MM = -(np.array(FINE_SHAPE) - 1) / 2 * FINE_VOXEL_MM


def _supersampled(inside, shape=FINE_SHAPE, voxel_mm=FINE_VOXEL_MM, n_sub: int = 4) -> np.ndarray:
    """Partial-volume voxelisation: fraction of n_sub**3 subsamples where inside(x, y, z)."""
    origin_mm = -(np.array(shape) - 1) / 2 * voxel_mm
    offsets = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    grids = [origin_mm[ax] + (np.arange(shape[ax])[:, None] + offsets[None, :]) * voxel_mm[ax]
             for ax in range(3)]
    x = grids[0].reshape(-1)[:, None, None]
    y = grids[1].reshape(-1)[None, :, None]
    z = grids[2].reshape(-1)[None, None, :]
    fine = inside(x, y, z).astype(np.float32)
    return fine.reshape(shape[0], n_sub, shape[1], n_sub, shape[2], n_sub).mean(axis=(1, 3, 5))


def test_cylinder_chords() -> None:
    radius_mm = 24.0
    image = _supersampled(lambda x, y, z: x**2 + y**2 + 0 * z < radius_mm**2)
    rng = np.random.default_rng(3)
    n = 200
    phi = rng.uniform(0, np.pi, n)
    dist_mm = rng.uniform(-15, 15, n)
    tilt = rng.uniform(-0.1, 0.1, n)  # small axial tilt keeps the chord inside z
    u = np.stack([np.cos(phi), np.sin(phi), tilt], axis=1)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    mid = np.stack([-np.sin(phi) * dist_mm, np.cos(phi) * dist_mm, np.zeros(n)], axis=1)
    proj = forward_lors(image, mid - 100 * u, mid + 100 * u, FINE_ORIGIN_MM, FINE_VOXEL_MM)
    chord_mm = 2 * np.sqrt(radius_mm**2 - dist_mm**2) / np.sqrt(1 - u[:, 2] ** 2)
    # Voxelisation and interpolation blur the edges by ~1 voxel, which
    # averages out to well below 1 % of a >= 36 mm chord.
    np.testing.assert_allclose(proj, chord_mm, rtol=0.01)


def test_sphere_chords() -> None:
    radius_mm = 20.0
    image = _supersampled(lambda x, y, z: x**2 + y**2 + z**2 < radius_mm**2)
    rng = np.random.default_rng(4)
    n = 200
    u = _random_directions(rng, n)
    perp = np.cross(u, _random_directions(rng, n))
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    dist_mm = rng.uniform(0, 7, n)
    mid = perp * dist_mm[:, None]
    proj = forward_lors(image, mid - 100 * u, mid + 100 * u, FINE_ORIGIN_MM, FINE_VOXEL_MM)
    chord_mm = 2 * np.sqrt(radius_mm**2 - dist_mm**2)
    # As for the cylinder; the curved surface adds a little bias: 1 % of a
    # >= 37 mm chord (a 14 mm sphere already reaches ~1 %).
    np.testing.assert_allclose(proj, chord_mm, rtol=0.01)


def test_constant_image_gives_box_length() -> None:
    rng = np.random.default_rng(5)
    n = 100
    image = np.ones(SHAPE, dtype=np.float32)
    # x-dominant LORs whose y, z stay between the outer voxel centres, so
    # they leave the box through its x faces and interpolation never sees
    # the zero outside: integral = x extent / cos.
    inner_mm = (np.array(SHAPE) - 1) / 2 * VOXEL_MM
    y0, y1 = rng.uniform(-inner_mm[1], inner_mm[1], (2, n))
    z0, z1 = rng.uniform(-inner_mm[2], inner_mm[2], (2, n))
    half_x_mm = HALF_BOX_MM[0]
    xs = np.stack([np.full(n, -half_x_mm), y0, z0], axis=1)
    xe = np.stack([np.full(n, half_x_mm), y1, z1], axis=1)
    length_mm = np.linalg.norm(xe - xs, axis=1)
    # Extend beyond the box on both sides: only the box part counts.
    u = (xe - xs) / length_mm[:, None]
    proj = forward_lors(image, xs - 30 * u, xe + 30 * u, ORIGIN_MM, VOXEL_MM)
    # Exact up to float32 rounding of endpoints and result.
    np.testing.assert_allclose(proj, length_mm, rtol=1e-5)


def test_tof_bins_sum_to_non_tof_with_wide_edges() -> None:
    rng = np.random.default_rng(6)
    xs, xe = _mixed_lors(rng)
    image = rng.random(SHAPE, dtype=np.float32)
    sigma_mm = WIDE_FWHM_MM / 2.3548
    half_mm = 80.0 + 5 * sigma_mm  # LOR half length + 5 sigma
    edges_mm = np.linspace(-half_mm, half_mm, 12)
    non_tof = forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    tof = forward_lors_tof(image, xs, xe, ORIGIN_MM, VOXEL_MM, edges_mm, WIDE_FWHM_MM)
    # Bins cover every kernel to 5 sigma (lost tail <= 3e-7), the rest is
    # float32 rounding.
    np.testing.assert_allclose(tof.sum(axis=1), non_tof, rtol=1e-5, atol=1e-5)


def test_tof_mct_bins_truncate_only_outside_window() -> None:
    rng = np.random.default_rng(7)
    n = 100
    image = _supersampled(lambda x, y, z: x**2 + y**2 + z**2 < 14.0**2, SHAPE, VOXEL_MM)
    u = _random_directions(rng, n)
    mid = rng.uniform(-5, 5, (n, 3))
    # Object within 20 mm of the LOR midpoint, window +-304 mm, 5 sigma = 177 mm.
    xs, xe = mid - 330 * u, mid + 330 * u
    non_tof = forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    tof = forward_lors_tof(image, xs, xe, ORIGIN_MM, VOXEL_MM, MCT_EDGES_MM, MCT_FWHM_MM)
    assert tof.shape == (n, 13)
    np.testing.assert_allclose(tof.sum(axis=1), non_tof, rtol=1e-4)
    # Shift the LOR so the object sits near the last edge (+304 mm): the
    # truncated kernel tail is lost and the TOF sum drops well below.
    shifted = forward_lors_tof(image, xs - 300 * u, xe - 300 * u, ORIGIN_MM, VOXEL_MM,
                               MCT_EDGES_MM, MCT_FWHM_MM)
    assert (shifted.sum(axis=1) < 0.7 * non_tof).all()
    assert (tof.sum(axis=1) <= non_tof * (1 + 1e-6)).all()


def test_missing_and_zero_length_lors_project_to_zero() -> None:
    image = np.ones(SHAPE, dtype=np.float32)
    xs = np.array([[-200, 500, 0], [0, 0, 300], [1, 2, 3], [0, 0, 0]], dtype=np.float32)
    xe = np.array([[200, 500, 0], [50, 20, 300], [1, 2, 3], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM), 0.0)
    back = adjoint_lors(np.ones(4), xs, xe, SHAPE, ORIGIN_MM, VOXEL_MM)
    np.testing.assert_array_equal(back, 0.0)
    tof = forward_lors_tof(image, xs, xe, ORIGIN_MM, VOXEL_MM, MCT_EDGES_MM, MCT_FWHM_MM)
    np.testing.assert_array_equal(tof, 0.0)


def test_batch_shape_and_out() -> None:
    rng = np.random.default_rng(8)
    xs, xe = _mixed_lors(rng)
    image = rng.random(SHAPE, dtype=np.float32)
    flat = forward_lors(image, xs, xe, ORIGIN_MM, VOXEL_MM)
    out = np.empty((100, 3), dtype=np.float32)
    batched = forward_lors(image, xs.reshape(100, 3, 3), xe.reshape(100, 3, 3), ORIGIN_MM,
                           VOXEL_MM, out=out)
    assert batched is out
    np.testing.assert_array_equal(batched.ravel(), flat)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"xstart": np.zeros((4, 2))}, "shape"),
        ({"voxel_size_mm": [2.0, -2.0, 2.0]}, "positive"),
        ({"image": np.zeros((4, 4))}, "3D"),
    ],
)
def test_invalid_inputs_raise(kwargs: dict, match: str) -> None:
    args = {"image": np.zeros(SHAPE), "xstart": np.zeros((4, 3)), "xend": np.ones((4, 3)),
            "origin_mm": ORIGIN_MM, "voxel_size_mm": VOXEL_MM}
    args.update(kwargs)
    if "xstart" in kwargs:
        args["xend"] = kwargs["xstart"]
    with pytest.raises(GeometryError, match=match):
        forward_lors(args.pop("image"), args.pop("xstart"), args.pop("xend"), **args)


@pytest.mark.parametrize("offset_voxels", [-1.0, 16.0, -0.5, 15.5])
def test_lor_on_the_outer_interpolation_edge_reads_nothing_outside_the_image(offset_voxels):
    # An LOR along x at y = origin + offset * voxel: at -1 and n it touches only
    # neighbours outside the image (projection 0); at -0.5 and n - 0.5 half a voxel.
    shape, voxel = (16, 16, 4), np.array([2.0, 2.0, 2.0])
    origin = np.zeros(3)
    image = np.ones(shape, np.float32)
    y = origin[1] + offset_voxels * voxel[1]
    xstart = np.array([[-50.0, y, 2.0]], np.float32)
    xend = np.array([[80.0, y, 2.0]], np.float32)
    value = forward_lors(image, xstart, xend, origin, voxel)[0]
    inside_weight = 0.0 if offset_voxels in (-1.0, 16.0) else 0.5
    # Box length along x: 16 voxels x 2 mm sampled at voxel centres = 32 mm.
    assert value == pytest.approx(inside_weight * 32.0, abs=1e-4)
