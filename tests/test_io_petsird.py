"""PETSIRD: scanner description to petrecon geometry, events to LORs and list-mode addresses."""

from __future__ import annotations

import math

import numpy as np
import petsird
import pytest
from petsird.helpers.generator import CylindricalBlocksInfo, get_scanner_info

from petrecon.errors import FormatError
from petrecon.geometry import default_layout
from petrecon.io.listmode import histogram_listmode
from petrecon.io.petsird_io import crystal_pairs_to_listmode_address, read_petsird


# the generator puts a crystal's box corner (not its centre) on the module axis: centre at (120, 2) mm
ON_GRID = math.atan2(2.0, 120.0)


def _test_scanner_in_petsird(start_angle=ON_GRID):
    """The registry's 'test' scanner (8 rings x 112 crystals, radius 120 mm, rings 4 mm apart) as PETSIRD."""
    module = CylindricalBlocksInfo(
        crystal_length=(20.0, 4.0, 4.0), num_crystals_per_module=(1, 1, 8), num_modules_along_ring=112,
        num_modules_along_axis=1, radius=110.0, arc=2 * math.pi, start_angle=start_angle,
        module_spacing_along_axis=0.0, number_of_tof_bins=1, tof_resolution=100.0, LLD=430.0, ULD=610.0,
        number_of_event_energy_bins=1, energy_resolution=0.1, material_id=1)
    return get_scanner_info([module])


def _element_of(centres, point):
    return int(np.argmin(np.linalg.norm(centres - point, axis=1)))


def _write(path, scanner, prompt_pairs, delayed_pairs, block_ms):
    with petsird.BinaryPETSIRDWriter(str(path)) as writer:
        writer.write_header(petsird.Header(scanner=scanner))
        blocks = []
        for start in sorted(set(block_ms.tolist())):
            def events(pairs, chosen):
                return [[[petsird.CoincidenceEvent(detection_bins=[int(a), int(b)], tof_idx=0)
                          for a, b in pairs[chosen]]]]
            blocks.append(petsird.TimeBlock.EventTimeBlock(petsird.EventTimeBlock(
                time_interval=petsird.TimeInterval(start=int(start), stop=int(start) + 1),
                prompt_events=events(prompt_pairs, block_ms[: len(prompt_pairs)] == start),
                delayed_events=events(delayed_pairs, block_ms[len(prompt_pairs):] == start))))
        writer.write_time_blocks(blocks)


def test_petsird_events_map_to_the_span1_addresses_they_came_from(tmp_path):
    layout = default_layout("test", span=1)
    scanner_info = _test_scanner_in_petsird()
    rng = np.random.default_rng(4)
    n_address = layout.n_sinograms * layout.n_views * layout.n_radial_bins
    address = rng.integers(0, n_address, 400)
    sinogram, view, radial = (address // (layout.n_views * layout.n_radial_bins),
                              (address // layout.n_radial_bins) % layout.n_views, address % layout.n_radial_bins)
    rings = layout.ring_pairs()[sinogram]
    c1, c2 = layout.view_crystals(view)
    c1, c2 = c1[np.arange(400), 0, radial], c2[np.arange(400), 0, radial]
    # element of each crystal, found geometrically from the PETSIRD description (independent of the reader)
    from petrecon.io.petsird_io import scanner_from_petsird

    _, centres, _, _, offset = scanner_from_petsird(scanner_info)
    assert offset == pytest.approx(0.0, abs=1e-6)  # on petrecon's crystal grid
    xy, z = layout.scanner.crystal_xy_mm(), layout.scanner.ring_z_mm()
    centres = centres - [0.0, 0.0, centres[:, 2].mean()]   # the generator's rings are not centred on z = 0
    first = np.array([_element_of(centres, np.r_[xy[c], z[r]]) for c, r in zip(c1, rings[:, 0])])
    second = np.array([_element_of(centres, np.r_[xy[c], z[r]]) for c, r in zip(c2, rings[:, 1])])
    swap = rng.random(400) < 0.5                       # PETSIRD orders the two detections its own way
    pairs = np.where(swap[:, None], np.c_[second, first], np.c_[first, second])
    prompt = rng.random(400) < 0.75
    times = rng.integers(0, 5, 400)
    order = np.r_[np.flatnonzero(prompt), np.flatnonzero(~prompt)]
    _write(tmp_path / "scan.petsird", scanner_info, pairs[prompt], pairs[~prompt], times[order])

    scan = read_petsird(tmp_path / "scan.petsird")
    assert (scan.scanner.n_rings, scan.scanner.n_crystals_per_ring) == (8, 112)
    assert scan.scanner.radius_mm == pytest.approx(math.hypot(120.0, 2.0), abs=1e-3)  # box centres
    assert scan.scanner.ring_spacing_mm == pytest.approx(4.0, abs=1e-4)
    np.testing.assert_array_equal(np.sort(scan.listmode_addresses(layout)), np.sort(address))
    xstart, xend = scan.lor_endpoints_mm()
    assert np.all(np.abs(np.hypot(xstart[:, 0], xstart[:, 1]) - math.hypot(120.0, 2.0)) < 1e-3)
    histogram = histogram_listmode(scan.listmode_words(layout), layout, progress=False)
    assert histogram.n_prompts == prompt.sum() and histogram.n_delays == (~prompt).sum()
    expected = np.bincount(address[prompt], minlength=n_address).reshape(layout.shape)
    np.testing.assert_array_equal(histogram.prompts, expected)


def test_a_rotated_ring_is_read_and_its_rotation_reported():
    from petrecon.io.petsird_io import scanner_from_petsird

    pitch = 2 * math.pi / 112
    scanner, _, ring, crystal, offset = scanner_from_petsird(_test_scanner_in_petsird(start_angle=ON_GRID + 0.3 * pitch))
    assert offset == pytest.approx(-0.3 * pitch, abs=1e-5)   # PETSIRD modules turn by -angle
    assert np.unique(ring * 112 + crystal).size == 8 * 112


def test_crystal_pair_order_does_not_change_the_address():
    layout = default_layout("test", span=1)
    rng = np.random.default_rng(0)
    r1, r2 = rng.integers(0, 8, 200), rng.integers(0, 8, 200)
    c1, c2 = rng.integers(0, 112, 200), rng.integers(0, 112, 200)
    forward = crystal_pairs_to_listmode_address(layout, r1, c1, r2, c2)
    np.testing.assert_array_equal(forward, crystal_pairs_to_listmode_address(layout, r2, c2, r1, c1))
    assert np.any(forward >= 0) and np.any(forward < 0)    # some pairs fall outside the 64 radial bins


def test_damaged_or_non_cylindrical_petsird_is_refused(tmp_path):
    path = tmp_path / "bad.petsird"
    path.write_bytes(b"not a petsird stream at all")
    with pytest.raises(FormatError, match="bad.petsird"):
        read_petsird(path)
    flat = get_scanner_info([CylindricalBlocksInfo(
        crystal_length=(20.0, 4.0, 4.0), num_crystals_per_module=(1, 5, 2), num_modules_along_ring=10,
        num_modules_along_axis=1, radius=200.0, arc=2 * math.pi, start_angle=0.0, module_spacing_along_axis=0.0,
        number_of_tof_bins=1, tof_resolution=100.0, LLD=430.0, ULD=610.0, number_of_event_energy_bins=1,
        energy_resolution=0.1, material_id=1)])
    _write(tmp_path / "flat.petsird", flat, np.zeros((0, 2), int), np.zeros((0, 2), int), np.zeros(0, int))
    with pytest.raises(FormatError, match="scanner_geometry"):
        read_petsird(tmp_path / "flat.petsird")
