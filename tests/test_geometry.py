"""Tests of petrecon.geometry: sizes, ring pairs, LOR geometry, registry errors.

Reference numbers are from reference/scanners.md (STIR Scanner.cxx,
template_span11.hs, OMEGA).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from petrecon.errors import GeometryError
from petrecon.geometry import SinogramLayout, TofSpec, default_layout, get_scanner


@pytest.mark.parametrize(
    ("name", "span", "shape", "segments"),
    [
        ("mmr", None, (837, 252, 344), (127, 115, 115, 93, 93, 71, 71, 49, 49, 27, 27)),
        ("mct", None, (621, 168, 400), (109, 97, 97, 75, 75, 53, 53, 31, 31)),
        ("mct-tof", None, (13, 621, 168, 400), (109, 97, 97, 75, 75, 53, 53, 31, 31)),
        ("test", None, (47, 56, 64), (15, 11, 11, 5, 5)),
    ],
)
def test_default_sizes(name, span, shape, segments):
    layout = default_layout(name, span=span)
    assert layout.shape == shape
    assert layout.segment_table == segments


def test_mmr_span1_size_and_segment_order():
    layout = default_layout("mmr", span=1)
    assert layout.n_sinograms == 4084
    assert layout.segment_table[:3] == (64, 63, 63)
    assert layout.segment_ring_differences()[:5] == [(0, 0), (1, 1), (-1, -1), (2, 2), (-2, -2)]


def test_segment_ring_differences_span11():
    rd = default_layout("mmr").segment_ring_differences()
    assert rd[:3] == [(-5, 5), (6, 16), (-16, -6)]
    assert rd[-2:] == [(50, 60), (-60, -50)]


@pytest.mark.parametrize(("name", "span"), [("test", 1), ("test", 3), ("test", 5), ("mmr", 1), ("mmr", 11)])
def test_ring_pairs_cover_michelogram_once(name, span):
    layout = default_layout(name, span=span)
    pairs = layout.ring_pairs()
    groups = list(pairs) if span > 1 else [row[None] for row in pairs]
    assert len(groups) == layout.n_sinograms
    flat = np.concatenate(groups)
    assert np.abs(flat[:, 1] - flat[:, 0]).max() <= layout.max_ring_difference
    counts = Counter(map(tuple, flat.tolist()))
    n_rings, mrd = layout.scanner.n_rings, layout.max_ring_difference
    expected = {(a, b) for a in range(n_rings) for b in range(n_rings) if abs(a - b) <= mrd}
    assert set(counts) == expected
    assert max(counts.values()) == 1
    lookup = layout.ring_pair_to_sinogram()
    for index, group in enumerate(groups):
        assert np.all(lookup[group[:, 0], group[:, 1]] == index)


def test_ring_pairs_in_one_sinogram_share_segment_and_axial_position():
    layout = default_layout("test", span=3)
    ranges = layout.segment_ring_differences()
    start = 0
    for (low, high), size in zip(ranges, layout.segment_table):
        for group in layout.ring_pairs()[start : start + size]:
            difference = group[:, 1] - group[:, 0]
            assert np.all((difference >= low) & (difference <= high))
            assert len(set(group.sum(axis=1).tolist())) == 1
        start += size


@pytest.mark.parametrize("name", ["test", "mmr", "b64"])
def test_unmashed_endpoints_on_the_block_faces(name):
    layout = default_layout(name)
    scanner = layout.scanner
    xstart, xend = layout.lor_endpoints_mm(sinograms=np.array([0, layout.n_sinograms - 1]))
    # crystals on flat block faces: between the face radius and the radius of the outermost crystal centre
    n_active = scanner.crystals_per_block - scanner.gap_crystals_per_block
    corner = np.hypot(scanner.radius_mm, (n_active - 1) / 2 * (scanner.crystal_pitch_mm or 0.0))
    for end in (xstart, xend):
        radius = np.hypot(end[..., 0], end[..., 1])
        # float32 coordinates of ~400 mm: rounding ~5e-5 mm, well inside 1e-3 mm.
        assert radius.min() >= scanner.radius_mm - 1e-3 and radius.max() <= corner + 1e-3


def test_axial_positions_span1_and_span11():
    layout = default_layout("test", span=1)
    z = layout.scanner.ring_z_mm()
    assert np.allclose(z, (np.arange(8) - 3.5) * 4.0)
    z1, z2 = layout.sinogram_axial_info()
    pairs = layout.ring_pairs()
    assert np.allclose(z1, z[pairs[:, 0]]) and np.allclose(z2, z[pairs[:, 1]])
    layout11 = default_layout("mmr")
    z1, z2 = layout11.sinogram_axial_info()
    # segment 0, axial position p: mean ring is p / 2, both ends at the same mean z
    ring_z = layout11.scanner.ring_z_mm()
    assert np.allclose(z1[:127], z2[:127])
    assert np.allclose(z1[:127], ring_z[0] + np.arange(127) * 4.0625 / 2)


@pytest.mark.parametrize(("name", "point"), [("test", (50.0, -30.0)), ("mmr", (50.0, -30.0)), ("mmr", (-120.0, 80.0))])
def test_point_source_sinusoid(name, point):
    layout = default_layout(name)
    x0, y0 = point
    xstart, xend = layout.lor_endpoints_mm(sinograms=np.array([0]))
    a, b = xstart[0, ..., :2].astype(float), xend[0, ..., :2].astype(float)
    direction = b - a
    cross = direction[..., 0] * (y0 - a[..., 1]) - direction[..., 1] * (x0 - a[..., 0])
    distance = np.abs(cross) / np.linalg.norm(direction, axis=-1)
    closest = distance.argmin(axis=1)
    n_views, n_crystals = layout.n_views, layout.scanner.n_crystals_per_ring
    phi = np.pi * np.arange(n_views) / n_views
    s = x0 * np.cos(phi) + y0 * np.sin(phi)
    expected = n_crystals / np.pi * np.arcsin(s / layout.scanner.radius_mm) + layout.n_radial_bins // 2
    # tolerance one bin: odd bins sit half a view step away from phi(v)
    assert np.all(np.abs(closest - expected) <= 1.0)
    # neighbouring LORs near the point are about one radial bin apart
    assert distance.min(axis=1).max() < layout.radial_bin_size_mm


def test_interleaving_alternates_families_and_mashing_averages():
    layout = default_layout("test")
    c_a, c_b = layout.view_crystals(np.array([3]))
    n = layout.scanner.n_crystals_per_ring
    sums = (c_a[0, 0] + c_b[0, 0]) % n
    t = np.arange(layout.n_radial_bins) - layout.n_radial_bins // 2
    # the two pair families of interleaved bins: c_a + c_b = 2u + N/2 - 2 - (t mod 2)
    assert np.all(sums == (2 * 3 + n // 2 - 2 - (t % 2)) % n)
    assert np.all((c_b[0, 0] - c_a[0, 0]) % n == (t - n // 2) % n)
    scanner = layout.scanner
    mashed = SinogramLayout(scanner, span=3, max_ring_difference=7, n_radial_bins=64, view_mashing=2)
    assert mashed.n_views == 28
    xs_mashed, _ = mashed.lor_endpoints_mm(views=np.array([5]), sinograms=np.array([0]))
    xs, _ = layout.lor_endpoints_mm(views=np.array([10, 11]), sinograms=np.array([0]))
    # float32 rounding only
    assert np.allclose(xs_mashed[0, 0], xs[0].mean(axis=0), atol=1e-4)


def test_gap_bins_flagged():
    layout = default_layout("test")
    gap = layout.scanner.is_gap_crystal()
    assert gap.sum() == 14 and gap[7] and not gap[0]
    mask = layout.gap_bin_mask()
    c1, c2 = layout.view_crystals()
    assert np.array_equal(mask, gap[c1[:, 0]] | gap[c2[:, 0]])
    assert 0 < mask.mean() < 0.5
    assert get_scanner("b64").is_gap_crystal().sum() == 48   # one gap crystal per block of 13 + 1
    assert default_layout("mmr").gap_bin_mask(np.array([0, 100])).shape == (2, 344)


def test_crystal_pair_endpoints_match_bins():
    layout = default_layout("mmr", span=1)
    rng = np.random.default_rng(1)
    views = rng.integers(0, layout.n_views, 20)
    bins = rng.integers(0, layout.n_radial_bins, 20)
    sinos = rng.integers(0, layout.n_sinograms, 20)
    c1, c2 = layout.view_crystals(views)
    pairs = layout.ring_pairs()[sinos]
    xs, xe = layout.scanner.crystal_pair_endpoints_mm(pairs[:, 0], c1[:, 0][np.arange(20), bins],
                                                      pairs[:, 1], c2[:, 0][np.arange(20), bins])
    for i in range(20):
        ys, ye = layout.lor_endpoints_mm(views=views[i : i + 1], sinograms=sinos[i : i + 1])
        # identical float64 arithmetic before the float32 cast
        assert np.allclose(ys[0, 0, bins[i]], xs[i], atol=1e-4)
        assert np.allclose(ye[0, 0, bins[i]], xe[i], atol=1e-4)
    assert xs.dtype == np.float32 and xs.shape == (20, 3)


def test_tof_spec():
    tof = get_scanner("mct-tof").tof
    assert tof.bin_width_mm == pytest.approx(312 * 0.299792458 / 2)
    assert tof.fwhm_mm == pytest.approx(555 * 0.299792458 / 2)
    edges = tof.bin_edges_mm
    assert edges.shape == (14,) and edges[0] == pytest.approx(-edges[-1])
    with pytest.raises(GeometryError):
        TofSpec(n_bins=0, bin_width_ps=312.0, fwhm_ps=555.0)


def test_registry_errors_are_clear():
    assert get_scanner("MMR") is get_scanner("mmr")
    with pytest.raises(GeometryError, match="known scanners: .*mct.*mmr"):
        get_scanner("hrplus")
    with pytest.raises(GeometryError, match="odd"):
        default_layout("mmr", span=4)
    with pytest.raises(GeometryError, match="no TOF"):
        default_layout("mmr", tof=True)
    with pytest.raises(GeometryError, match="view_mashing"):
        SinogramLayout(get_scanner("test"), span=3, max_ring_difference=7, n_radial_bins=64, view_mashing=5)
    with pytest.raises(GeometryError, match="crystal1 out of range"):
        get_scanner("test").crystal_pair_endpoints_mm(0, 112, 0, 0)
    assert default_layout("mct-tof", tof=False).shape == (621, 168, 400)


def test_to_dict_is_json():
    summary = json.loads(json.dumps(default_layout("mct-tof").to_dict()))
    assert summary["shape"] == [13, 621, 168, 400]
    assert summary["scanner"]["tof"]["n_bins"] == 13


def test_span1_map_sends_every_ring_pair_to_the_sinogram_that_stores_it():
    layout = default_layout("test")
    span1 = layout.listmode_layout()
    table = layout.span1_sinogram_map()
    stored = layout.ring_pair_to_sinogram()
    for index, (ring1, ring2) in enumerate(span1.ring_pairs()):
        assert table[index] == stored[ring1, ring2]
    # every sinogram of the compressed layout receives at least one ring pair
    assert set(table[table >= 0]) == set(range(layout.n_sinograms))


def test_listmode_layout_is_span1_unmashed_with_the_same_ring_difference():
    layout = default_layout("mct")
    span1 = layout.listmode_layout()
    assert (span1.span, span1.view_mashing, span1.use_tof) == (1, 1, False)
    assert span1.max_ring_difference == layout.max_ring_difference
    assert span1.n_views == layout.n_views * layout.view_mashing
