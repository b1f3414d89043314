"""Known scanners and their default sinogram layouts.

Values are from reference/scanners.md, which cites STIR ``Scanner.cxx``,
STIR ``examples/Siemens-mMR/template_span11.hs``, NiftyPET ``resources.py``,
OMEGA ``Biograph_mCT_main.m`` and CASToR-style geometry files.

Unverified defaults (documented choices a user can override by building a
:class:`~petrecon.geometry.sinogram.SinogramLayout` directly):

* Biograph 64 TruePoint ("b64", "b64-truev"): the reference gives no segment
  table; petrecon uses span 11 with maximum ring difference 38 (41 rings) and
  49 (55 rings), i.e. whole segments. The reference's "336 views" cannot be
  produced by 624 crystals with interleaved bins (624 / 2 = 312 views), so the
  layout has 336 radial bins x 312 views. The effective radius 427.6 mm is the
  TrueV geometry-file value, used for both.
* mCT radius: 427.6 mm = OMEGA diameter 855.2 mm / 2 (STIR: 421 mm inner
  radius plus depth of interaction).
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
    radius_mm=328.0 + 7.0,
    ring_spacing_mm=4.0625,
    virtual_ring_positions=(),
    energy_window_kev=(430.0, 610.0),
    coincidence_window_ns=5.859,
    tof=None,
    default_image_shape=(344, 344, 127),
    default_voxel_size_mm=(2.08626, 2.08626, 2.03125),
    radial_bin_size_mm=2.08626,
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
    n_crystals_per_ring=624,
    crystals_per_block=13,
    gap_crystals_per_block=0,
    radius_mm=427.6,
    ring_spacing_mm=4.0,
    virtual_ring_positions=(13, 27),
    energy_window_kev=(425.0, 650.0),
    coincidence_window_ns=4.5,
    tof=None,
    default_image_shape=(336, 336, 81),
    default_voxel_size_mm=(2.036, 2.036, 2.0),
    radial_bin_size_mm=2.005,
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
    "b64-truev": _LayoutDefaults(span=11, max_ring_difference=49, n_radial_bins=336, view_mashing=1),
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
