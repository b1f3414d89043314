"""The registry's scanners against the facts of implementations used on real Siemens data.

Every expected value here is computed from a published convention, written
out in the test from the source's arithmetic, never from petrecon's own
geometry code:

* Biograph mMR: NiftyPET/NIPET ``niftypet/nipet/mmraux.py``
  (``transaxial_lut``: the (view, bin) -> crystal table ``s2cF``, the gap
  rule ``(c + OFFGAP) % TGAP``, the block-face crystal model; ``axial_lut``:
  the span-1 ring pairs ``sn1_rno`` and the span-1 -> span-11 table
  ``sn1_sn11``) with the constants of NiftyPET ``resources.py`` (``R = 32.8``
  cm, ``RE = R + 0.67``, ``minrd``/``maxrd``); reference/scanners.md.
* Biograph 64 TruePoint + TrueV: CASToR's Siemens geometry (scanner
  "biograph"): 48 blocks of 13 crystals with one gap crystal, 336 bins x
  336 views x 559 sinograms (span 11, maximum ring difference 38, 55 rings).
* mCT: STIR ``Scanner.cxx`` / reference/scanners.md sizes and segments.
* DICOM LPS: STIR ``DiscretisedDensity.inl`` ``swap_axes_based_on_orientation``
  and NiftyPET's S = -z + hbed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from petrecon.geometry import default_layout, get_scanner
from petrecon.geometry.patient import gantry_to_patient

SCAN_TIME = __import__("datetime").datetime(2026, 1, 5, 12, 0)

# NiftyPET resources.py constants of the mMR
NCRS, NSBINS, NSANGLES, NRNG, MRD = 504, 344, 252, 64, 60
TGAP, OFFGAP = 9, 1
MINRD = [-5, -16, 6, -27, 17, -38, 28, -49, 39, -60, 50]
MAXRD = [5, -6, 16, -17, 27, -28, 38, -39, 49, -50, 60]


def _niftypet_s2cF(view: int, radial_bin: int) -> tuple[int, int]:
    """NiftyPET transaxial_lut: (c0, c1) of angle index ``view`` and bin index ``radial_bin`` (float arithmetic)."""
    c0 = int(math.floor((view + 0.5 * (NCRS - 2 + NSBINS / 2 - radial_bin)) % NCRS))
    c1 = int(math.floor((view + 0.5 * (2 * NCRS - 2 - NSBINS / 2 + radial_bin)) % NCRS))
    return c0, c1


def _niftypet_sn1_rno() -> np.ndarray:
    """NiftyPET axial_lut: (r0, r1) of every span-1 sinogram, walking the Michelogram diagonals as it does."""
    rows = []
    for ro in range(NRNG):
        for m in range(1 if ro == 0 else 2):
            for li in range(NRNG * ro, NRNG * NRNG, NRNG + 1):
                first, second = divmod(li, NRNG)           # li = first * NRNG + second
                r1, r0 = (first, second) if m == 0 else (second, first)
                if abs(r1 - r0) <= MRD:
                    rows.append((r0, r1))
    return np.array(rows)


def _niftypet_sn1_sn11(sn1_rno: np.ndarray) -> np.ndarray:
    """NiftyPET axial_lut: span-11 sinogram of each span-1 sinogram (Msn[r0, r1], segments by minrd/maxrd)."""
    segment = -np.ones((NRNG, NRNG), int)                  # Mseg[r1, r0] = segment of rd = r1 - r0
    ring_sum = -np.ones((NRNG, NRNG), int)
    for r1 in range(NRNG):
        for r0 in range(NRNG):
            rd = r1 - r0
            if abs(rd) <= MRD:
                segment[r1, r0] = next(i for i in range(11) if MINRD[i] <= rd <= MAXRD[i])
                ring_sum[r1, r0] = r0 + r1
    sinogram = -np.ones((NRNG, NRNG), int)
    index = 0
    for iseg in range(11):
        for value in np.unique(ring_sum[segment == iseg]):
            sinogram[(segment == iseg) & (ring_sum == value)] = index
            index += 1
    assert index == 837
    return sinogram[sn1_rno[:, 0], sn1_rno[:, 1]]


def _niftypet_crystal_centres_mm() -> np.ndarray:
    """NiftyPET's flat-block crystal centres (mm) in its own (x, y-up) frame; NaN for gap crystals."""
    block_width_cm, alpha, radius_cm = 3.209, 0.1122, 32.8 + 0.67
    centres = np.full((NCRS, 2), np.nan)
    phi = 0.5 * math.pi - alpha / 2 - 0.001
    for block in range(56):
        x, y = radius_cm * math.cos(phi), radius_cm * math.sin(phi)
        face = np.array([-y, x]) / math.hypot(x, y)
        for n in range(1, 9):                               # crystal edges at bw/2 - (n-1) bw/8 .. bw/2 - n bw/8
            middle = block_width_cm / 2 - (n - 0.5) * block_width_cm / 8
            centres[block * 9 + n - 1] = 10.0 * (np.array([x, y]) + middle * face)
        phi -= alpha
    return centres


# ------------------------------------------------------------------------------------------------- mMR
def test_mmr_bins_join_the_crystals_of_niftypet_s2cf():
    c_a, c_b = default_layout("mmr").view_crystals()
    expected = np.array([[_niftypet_s2cF(v, b) for b in range(NSBINS)] for v in range(NSANGLES)])
    np.testing.assert_array_equal(c_a[:, 0, :], expected[..., 0])
    np.testing.assert_array_equal(c_b[:, 0, :], expected[..., 1])
    # reference/scanners.md: view 0, bin 172 joins crystals 251 and 503
    assert (int(c_a[0, 0, 172]), int(c_b[0, 0, 172])) == (251, 503)


def test_mmr_gap_bins_are_niftypets():
    mask = default_layout("mmr").gap_bin_mask()
    expected = np.zeros((NSANGLES, NSBINS), bool)
    for v in range(NSANGLES):
        for b in range(NSBINS):
            c0, c1 = _niftypet_s2cF(v, b)
            expected[v, b] = ((c0 + OFFGAP) % TGAP) * ((c1 + OFFGAP) % TGAP) == 0
    np.testing.assert_array_equal(mask, expected)
    gap = get_scanner("mmr").is_gap_crystal()
    assert np.array_equal(np.flatnonzero(gap), np.arange(8, NCRS, 9))   # Siemens: the last of each block of 9


def test_mmr_span1_ring_pairs_and_storage_order_are_niftypets():
    sn1_rno = _niftypet_sn1_rno()
    assert sn1_rno.shape == (4084, 2)
    np.testing.assert_array_equal(default_layout("mmr", span=1).ring_pairs(), sn1_rno)
    # reference/scanners.md: sinogram 64 holds rings 0 and 1, its LOR (view 0, bin 172) runs
    # from (ring 0, crystal 251) to (ring 1, crystal 503)
    assert tuple(sn1_rno[64]) == (0, 1)
    layout = default_layout("mmr", span=1)
    xstart, xend = layout.lor_endpoints_mm(views=np.array([0]), sinograms=np.array([64]))
    scanner = layout.scanner
    expected_start, expected_end = scanner.crystal_pair_endpoints_mm(0, 251, 1, 503)
    np.testing.assert_allclose(xstart[0, 0, 172], expected_start, atol=1e-4)
    np.testing.assert_allclose(xend[0, 0, 172], expected_end, atol=1e-4)


def test_mmr_span11_groups_span1_sinograms_as_niftypet():
    sn1_sn11 = _niftypet_sn1_sn11(_niftypet_sn1_rno())
    np.testing.assert_array_equal(default_layout("mmr").span1_sinogram_map(), sn1_sn11)


def test_mmr_crystal_positions_agree_with_niftypet_within_a_millimetre():
    niftypet = _niftypet_crystal_centres_mm()
    ours = get_scanner("mmr").crystal_xy_mm()
    active = ~np.isnan(niftypet[:, 0])
    # NiftyPET's y points up (image rows run downwards); petrecon's gantry y points down
    in_gantry_frame = niftypet[active] * [1.0, -1.0]
    # issue's criterion: 1 mm; float arithmetic and alpha = 0.1122 vs 2 pi / 56 differ by ~1e-3 mm
    assert np.abs(ours[active] - in_gantry_frame).max() < 0.01
    radius = np.hypot(*ours[active].T)
    assert 334.69 < radius.min() and radius.max() < 335.01   # reference/scanners.md: centres 334.7-335.0 mm


# ----------------------------------------------------------------------------------------- Biograph 64
def test_biograph64_truev_sinograms_are_castors():
    layout = default_layout("b64-truev")
    assert layout.shape == (559, 336, 336)
    assert layout.segment_table == (109, 97, 97, 75, 75, 53, 53)
    assert layout.max_ring_difference == 38 and layout.scanner.n_rings == 55
    scanner = layout.scanner
    assert (scanner.n_crystals_per_ring, scanner.crystals_per_block, scanner.gap_crystals_per_block) == (672, 14, 1)
    assert scanner.virtual_ring_positions == (13, 27, 41)
    assert default_layout("b64").shape[1:] == (336, 336)


def test_mct_sinograms_are_the_scanners():
    layout = default_layout("mct")
    assert layout.shape == (621, 168, 400)
    assert layout.segment_table == (109, 97, 97, 75, 75, 53, 53, 31, 31)
    assert get_scanner("mct").is_gap_crystal().sum() == 48


# -------------------------------------------------------------------------------------------- patient
@pytest.mark.parametrize(("position", "expected"), [
    ("HFS", (10.0, 20.0, -30.0)), ("HFP", (-10.0, -20.0, -30.0)),
    ("FFS", (-10.0, 20.0, 30.0)), ("FFP", (10.0, -20.0, 30.0))])
def test_gantry_to_lps_is_stirs_swap_axes_based_on_orientation(position, expected):
    np.testing.assert_allclose(gantry_to_patient([10.0, 20.0, 30.0], position), expected)


def test_head_first_gantry_centre_is_at_the_bed_position_as_niftypet_writes_it():
    # NiftyPET: S = -z + hbed for the mMR (head first supine)
    np.testing.assert_allclose(gantry_to_patient([0.0, 0.0, 0.0], "HFS", -1235.5), [0.0, 0.0, -1235.5])
    np.testing.assert_allclose(gantry_to_patient([0.0, 0.0, 40.0], "HFS", 100.0), [0.0, 0.0, 60.0])


# ------------------------------------------------- a point source in scanner-addressed mMR list-mode
def _niftypet_pair_to_bin() -> dict[tuple[int, int], tuple[int, int]]:
    """(c0, c1) -> (view, bin) of every transaxial bin (the inverse of s2cF)."""
    return {_niftypet_s2cF(v, b): (v, b) for v in range(NSANGLES) for b in range(NSBINS)}


def _point_source_addresses(point_mm, n_events: int, seed: int = 0) -> np.ndarray:
    """Span-1 list-mode addresses of ``n_events`` coincidences from a point at gantry ``point_mm``.

    Built from NiftyPET's facts alone: isotropic lines through the point hit
    the nearest crystal of NiftyPET's block model (in its y-up frame) on the
    ring whose centre is nearest (NiftyPET ``axial_lut``: ring z = -32 x
    4.0625 mm + r x 4.0625 mm + half a ring), and the crystal pair is
    addressed through ``s2cF``, ``sn1_rno`` (``sinogram x 252 x 344 + view x
    344 + bin``, reference/scanners.md).
    """
    rng = np.random.default_rng(seed)
    centres = _niftypet_crystal_centres_mm()
    active = np.flatnonzero(~np.isnan(centres[:, 0]))
    angles = np.arctan2(centres[active, 1], centres[active, 0])
    pair_to_bin = _niftypet_pair_to_bin()
    sinogram_of = {tuple(pair): index for index, pair in enumerate(_niftypet_sn1_rno())}
    point = np.array([point_mm[0], -point_mm[1], point_mm[2]])   # NiftyPET's transaxial frame: y up
    radius, pitch = 334.7, 4.0625
    addresses = []
    while len(addresses) < n_events:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        # the two intersections with the detector cylinder
        a = direction[0] ** 2 + direction[1] ** 2
        b = 2 * (point[0] * direction[0] + point[1] * direction[1])
        c = point[0] ** 2 + point[1] ** 2 - radius**2
        ends = []
        for sign in (-1, 1):
            hit = point + direction * (-b + sign * math.sqrt(b * b - 4 * a * c)) / (2 * a)
            ring = int(math.floor(hit[2] / pitch + NRNG / 2))
            difference = np.angle(np.exp(1j * (angles - math.atan2(hit[1], hit[0]))))
            ends.append((ring, int(active[np.argmin(np.abs(difference))])))
        (ring_a, crystal_a), (ring_b, crystal_b) = ends
        if not (0 <= ring_a < NRNG and 0 <= ring_b < NRNG):
            continue
        if (crystal_a, crystal_b) in pair_to_bin:
            view, radial_bin = pair_to_bin[(crystal_a, crystal_b)]
            r0, r1 = ring_a, ring_b
        elif (crystal_b, crystal_a) in pair_to_bin:
            view, radial_bin = pair_to_bin[(crystal_b, crystal_a)]
            r0, r1 = ring_b, ring_a
        else:
            continue
        if (r0, r1) in sinogram_of:
            addresses.append((sinogram_of[(r0, r1)] * NSANGLES + view) * NSBINS + radial_bin)
    return np.array(addresses, np.int64)


def _fwhm_mm(profile: np.ndarray, step_mm: float) -> float:
    """FWHM of a peaked 1-D profile by linear interpolation of the half-maximum crossings."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2.0
    left = peak - np.argmax(profile[peak::-1] < half)
    right = peak + np.argmax(profile[peak:] < half)
    left_x = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    right_x = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float((right_x - left_x) * step_mm)


def test_point_source_in_mmr_listmode_lands_at_its_lps_position_in_the_dicom_output(tmp_path):
    """Scanner-addressed list-mode -> ``petrecon recon --dicom`` -> the point at its true LPS position.

    The point sits off-centre in all three axes (an oblique-segment or
    head-feet error moves or blurs it axially by tens of mm); the bed
    position comes from the list-mode header as on the scanner. The
    reconstruction runs once (head first supine, through the command line);
    the feet-first series is the same volume written by the same writer with
    the FFS patient frame.
    """
    from petrecon.cli import main
    from petrecon.io import petlink, read_container
    from petrecon.io.dicom import read_pet_series, write_pet_series

    point_gantry_mm = np.array([42.0, -63.0, 55.0])
    bed_position_mm = -812.5
    addresses = _point_source_addresses(point_gantry_mm, 3000, seed=1)
    times_ms = np.sort(np.random.default_rng(2).integers(0, 10_000, addresses.size))
    words = petlink.interleave_time_tags(petlink.encode_event_words(addresses, np.ones(addresses.size, bool)),
                                         times_ms, 10_000)
    (tmp_path / "point.l").write_bytes(words.tobytes())
    (tmp_path / "point.l.hdr").write_text(
        "!INTERFILE:=\nname of data file:=point.l\n%LM event and tag words format:=32\n"
        f"%start horizontal bed position (mm):={bed_position_mm}\n")
    protocol = tmp_path / "point.toml"
    protocol.write_text('name = "point"\ndescription = "small grid around the point"\n'
                        "[osem]\nn_iterations = 2\nn_subsets = 1\npost_filter_fwhm_mm = 0.0\n"
                        "[corrections]\nnormalisation = false\nattenuation = false\nrandoms = false\n"
                        "scatter = false\ndead_time = false\ndecay = false\n"
                        "[image]\nshape = [48, 48, 48]\nvoxel_size_mm = [3.0, 3.0, 3.0]\n"
                        "[calibration]\nbq_per_ml_per_unit = 1.0\n")
    assert main(["recon", str(tmp_path / "point.l"), "--scanner", "mmr", "--protocol", str(protocol),
                 "--isotope", "F18", "--injected-mbq", "1", "--quiet", "--out", str(tmp_path / "point.h5"),
                 "--dicom", str(tmp_path / "HFS")]) == 0
    reconstructed = read_container(tmp_path / "point.h5").volumes["activity_bq_per_ml"]
    write_pet_series(reconstructed, tmp_path / "FFS", patient_position="FFS", injected_dose_bq=1e6,
                     injection_datetime=SCAN_TIME, series_datetime=SCAN_TIME, frame_duration_s=10.0)
    for position in ("HFS", "FFS"):
        assert read_pet_series(tmp_path / position).metadata["patient_position"] == position   # the code sequences
        # the voxel grid read back as HFS at bed 0, whatever the series says: LPS = (x, y, -z) of it
        volume = read_pet_series(tmp_path / position, patient_position="HFS", bed_position_mm=0.0)
        peak = np.unravel_index(np.argmax(volume.data), volume.data.shape)
        peak_lps = gantry_to_patient([volume.grid.voxel_centres_mm(a)[peak[a]] for a in range(3)], "HFS")
        expected_lps = gantry_to_patient(point_gantry_mm, position, bed_position_mm)
        # half a 3 mm voxel per axis from the voxel grid (2.6 mm at most): within the 3 mm
        assert np.linalg.norm(peak_lps - expected_lps) <= 3.0, (position, peak_lps, expected_lps)
    data = reconstructed.data
    peak = np.unravel_index(np.argmax(data), data.shape)
    # axial resolution no worse than transaxial: the oblique LORs meet where the direct ones do
    # (5 % for the interpolation of the half-maximum crossings between 3 mm voxels)
    assert _fwhm_mm(data[peak[0], peak[1], :], 3.0) <= _fwhm_mm(data[:, peak[1], peak[2]], 3.0) * 1.05


@pytest.mark.parametrize("position", ["HFS", "FFS"])
def test_a_ct_marker_attenuates_the_mmr_lors_that_pass_through_it(write_dicom_series, tmp_path, position):
    """A dense CT marker at a known LPS position, read for an acquisition at bed position -812.5 mm, attenuates the
    direct LORs of the rings it physically sits in, and not those of the mirrored rings (a head-feet flip)."""
    from petrecon.attenuation.mumap import mu_map_from_ct_series
    from petrecon.geometry.patient import patient_to_gantry
    from petrecon.projectors.joseph import forward_lors

    bed_position_mm, ring = -812.5, 17
    scanner = get_scanner("mmr")
    ring_z = scanner.ring_z_mm()
    marker_gantry = np.array([30.0, -20.0, ring_z[ring]])
    marker_lps = gantry_to_patient(marker_gantry, position, bed_position_mm)
    # a 12 mm cube of 1500 HU in air, on 3 mm CT voxels around the marker (axial slices, LPS rows and columns)
    offsets = np.arange(-30.0, 31.0, 3.0)
    planes = np.full((offsets.size, 64, 64), -1000, np.int16)
    columns = rows = (np.arange(64) - 31.5) * 3.0
    inside = (np.abs(columns[None, :] - marker_lps[0]) < 6) & (np.abs(rows[:, None] - marker_lps[1]) < 6)
    for k, ds in enumerate(offsets):
        if abs(ds) < 6:
            planes[k][inside] = 1500
    positions = [(columns[0], rows[0], marker_lps[2] + ds) for ds in offsets]
    write_dicom_series(tmp_path / "ct", "CT", planes, positions, (1, 0, 0, 0, 1, 0), (3.0, 3.0), slope=1.0,
                       intercept=0.0, extra={"KVP": "120", "PatientPosition": position})
    mu = mu_map_from_ct_series(tmp_path / "ct", patient_position=position, bed_position_mm=bed_position_mm)
    # a direct LOR through the marker's transaxial position in every ring: the (view 0) bin nearest to it
    layout = default_layout("mmr", span=1)
    c_a, c_b = layout.view_crystals(np.array([0]))
    xy = scanner.crystal_xy_mm()
    a, b = xy[c_a[0, 0]], xy[c_b[0, 0]]
    direction = (b - a) / np.linalg.norm(b - a, axis=1, keepdims=True)
    to_marker = marker_gantry[:2] - a
    miss_mm = np.abs(direction[:, 0] * to_marker[:, 1] - direction[:, 1] * to_marker[:, 0])
    best = int(np.argmin(miss_mm))
    assert miss_mm[best] < 2.0
    rings = np.arange(scanner.n_rings)
    xstart, xend = scanner.crystal_pair_endpoints_mm(rings, c_a[0, 0, best], rings, c_b[0, 0, best])
    line_integral = forward_lors(np.ascontiguousarray(mu.data / 10.0, np.float32), xstart, xend,
                                 mu.grid.origin_mm, mu.grid.voxel_size_mm)
    through = np.abs(ring_z - marker_gantry[2]) < 6
    mirrored = np.abs(ring_z + marker_gantry[2]) < 6 + scanner.ring_spacing_mm
    # bone-like mu ~0.17 /cm over ~12 mm: ~0.2; the 4 mm CT smoothing keeps more than half of it at the centre
    assert np.all(line_integral[through] > 0.1), line_integral[through]
    assert np.all(line_integral[mirrored] == 0.0)
    assert set(np.flatnonzero(through)) >= {16, 17, 18}
