"""Known scanners and their default sinogram layouts.

Values are from reference/scanners.md, which cites STIR ``Scanner.cxx``,
STIR ``examples/Siemens-mMR/template_span11.hs``, NiftyPET ``resources.py``
and ``mmraux.py``, OMEGA ``Biograph_mCT_main.m``, CASToR's Siemens geometry
(``oScanner.cc``, scanner "biograph") and CASToR-style geometry files.

Checked against sources (tests in ``tests/test_geometry_scanner_facts.py``):

* Biograph mMR: crystal numbering, gap crystals (``c % 9 == 8``), the
  (view, bin) -> crystal pairs, the span-1 ring pairs and their storage
  order, span-11 grouping and the block-face crystal positions (radius
  32.8 cm + 0.67 cm depth of interaction, blocks of 8 crystals over 32.09 mm,
  rotated by -0.001 rad in NiftyPET's y-up frame, i.e. +0.001 rad here)
  follow NiftyPET ``mmraux.transaxial_lut``/``axial_lut`` and ``resources.py``.
* Biograph 64 TruePoint + TrueV: 48 blocks of 13 crystals plus one gap
  crystal (672 per ring), 336 bins x 336 views, span 11 with maximum ring
  difference 38 over 55 rings (52 + 3 virtual): 559 sinograms (CASToR
  "biograph").

Unverified defaults (documented choices a user can override by building a
:class:`~petrecon.geometry.sinogram.SinogramLayout` directly):

* mCT and Biograph 64: the crystal-0 position, the block-face pitch (the
  nominal 4.0 mm crystal) and the (view, bin) -> crystal formula are taken
  to be the mMR's Siemens e7 convention; no public source states them.
* Biograph 64 without TrueV (41 rings incl. 2 virtual): the reference gives
  no segment table; petrecon uses span 11 with maximum ring difference 38,
  as with TrueV.
* mCT and Biograph 64 effective radius 427.6 mm (OMEGA mCT diameter 855.2 mm;
  STIR 421 mm + 7 mm mean depth of interaction = 428 mm; the 2.005 mm
  radial bin gives pi R / 672 = 1.999 mm). CASToR's TrueV file adds 9.6 mm
  depth of interaction to 427.6 mm; that reading is not used.
* mCT TOF: the sign of the TOF bin index along the LOR (petrecon: from
  ``xstart`` on ``c_a`` towards ``xend``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from petrecon.errors import GeometryError
from petrecon.geometry.scanner import ScannerGeometry, TofSpec
from petrecon.geometry.sinogram import SinogramLayout


@dataclass(frozen=True)
class _LayoutDefaults:
    span: int
    max_ring_difference: int
    n_radial_bins: int
    view_mashing: int


_MMR = ScannerGeometry(
    name="mmr",
    description="Siemens Biograph mMR (PET/MR)",
    n_rings=64,
    n_crystals_per_ring=504,
    crystals_per_block=9,
    gap_crystals_per_block=1,
    radius_mm=328.0 + 6.7,
    ring_spacing_mm=4.0625,
    virtual_ring_positions=(),
    energy_window_kev=(430.0, 610.0),
    coincidence_window_ns=5.859,
    tof=None,
    default_image_shape=(344, 344, 127),
    default_voxel_size_mm=(2.08626, 2.08626, 2.03125),
    radial_bin_size_mm=2.08626,
    crystal_pitch_mm=32.09 / 8,
    angular_offset_rad=0.001,
)

_MCT = ScannerGeometry(
    name="mct",
    description="Siemens Biograph mCT, non-TOF sinograms (52 rings + 3 virtual)",
    n_rings=55,
    n_crystals_per_ring=672,
    crystals_per_block=14,
    gap_crystals_per_block=1,
    radius_mm=427.6,
    ring_spacing_mm=4.054,
    virtual_ring_positions=(13, 27, 41),
    energy_window_kev=(435.0, 650.0),
    coincidence_window_ns=4.1,
    tof=None,
    default_image_shape=(200, 200, 109),
    default_voxel_size_mm=(4.07, 4.07, 2.027),
    radial_bin_size_mm=2.005,
    crystal_pitch_mm=4.0,
)

_MCT_TOF = replace(
    _MCT,
    name="mct-tof",
    description="Siemens Biograph mCT with TOF (13 bins of 312 ps)",
    tof=TofSpec(n_bins=13, bin_width_ps=312.0, fwhm_ps=555.0),
)

_B64 = ScannerGeometry(
    name="b64",
    description="Siemens Biograph 64 TruePoint without TrueV (39 rings + 2 virtual)",
    n_rings=41,
    n_crystals_per_ring=672,
    crystals_per_block=14,
    gap_crystals_per_block=1,
    radius_mm=427.6,
    ring_spacing_mm=4.0,
    virtual_ring_positions=(13, 27),
    energy_window_kev=(425.0, 650.0),
    coincidence_window_ns=4.5,
    tof=None,
    default_image_shape=(336, 336, 81),
    default_voxel_size_mm=(2.036, 2.036, 2.0),
    radial_bin_size_mm=2.005,
    crystal_pitch_mm=4.0,
)

_B64_TRUEV = replace(
    _B64,
    name="b64-truev",
    description="Siemens Biograph 64 TruePoint with TrueV (52 rings + 3 virtual)",
    n_rings=55,
    ring_spacing_mm=4.054,
    virtual_ring_positions=(13, 27, 41),
    default_image_shape=(336, 336, 109),
    default_voxel_size_mm=(2.036, 2.036, 2.027),
)

_TEST = ScannerGeometry(
    name="test",
    description="Small synthetic test scanner (8 rings, 14 blocks of 7 + 1 gap crystals)",
    n_rings=8,
    n_crystals_per_ring=112,
    crystals_per_block=8,
    gap_crystals_per_block=1,
    radius_mm=120.0,
    ring_spacing_mm=4.0,
    virtual_ring_positions=(),
    energy_window_kev=(430.0, 610.0),
    coincidence_window_ns=5.0,
    tof=None,
    default_image_shape=(64, 64, 15),
    default_voxel_size_mm=(3.0, 3.0, 2.0),
)

SCANNERS: dict[str, ScannerGeometry] = {
    scanner.name: scanner for scanner in (_MMR, _MCT, _MCT_TOF, _B64, _B64_TRUEV, _TEST)
}

_DEFAULTS: dict[str, _LayoutDefaults] = {
    "mmr": _LayoutDefaults(span=11, max_ring_difference=60, n_radial_bins=344, view_mashing=1),
    "mct": _LayoutDefaults(span=11, max_ring_difference=49, n_radial_bins=400, view_mashing=2),
    "mct-tof": _LayoutDefaults(span=11, max_ring_difference=49, n_radial_bins=400, view_mashing=2),
    "b64": _LayoutDefaults(span=11, max_ring_difference=38, n_radial_bins=336, view_mashing=1),
    "b64-truev": _LayoutDefaults(span=11, max_ring_difference=38, n_radial_bins=336, view_mashing=1),
    "test": _LayoutDefaults(span=3, max_ring_difference=7, n_radial_bins=64, view_mashing=1),
}


def get_scanner(name: str) -> ScannerGeometry:
    """Return the registered scanner ``name`` (case-insensitive).

    Raises
    ------
    GeometryError
        If the name is unknown; the message lists the known names.
    """
    key = str(name).strip().lower()
    if key not in SCANNERS:
        raise GeometryError(f"unknown scanner {name!r}; known scanners: {', '.join(sorted(SCANNERS))}")
    return SCANNERS[key]


def default_layout(name: str, span: int | None = None, tof: bool | None = None) -> SinogramLayout:
    """Default sinogram layout of a registered scanner.

    Parameters
    ----------
    name : str
        Scanner name (case-insensitive), see :data:`SCANNERS`.
    span : int, optional
        Axial compression replacing the default (odd); the default maximum
        ring difference is kept (mMR span 1: 4084 sinograms).
    tof : bool, optional
        Whether to keep the TOF axis; None means "if the scanner has TOF".

    Raises
    ------
    GeometryError
        Unknown scanner, invalid span, or TOF asked of a non-TOF scanner.
    """
    scanner = get_scanner(name)
    defaults = _DEFAULTS[scanner.name]
    use_tof = scanner.tof is not None if tof is None else bool(tof)
    if use_tof and scanner.tof is None:
        tof_names = sorted(key for key, value in SCANNERS.items() if value.tof is not None)
        raise GeometryError(f"scanner {scanner.name!r} has no TOF; TOF scanners: {', '.join(tof_names)}")
    return SinogramLayout(
        scanner=scanner,
        span=defaults.span if span is None else span,
        max_ring_difference=defaults.max_ring_difference,
        n_radial_bins=defaults.n_radial_bins,
        view_mashing=defaults.view_mashing,
        use_tof=use_tof,
    )
