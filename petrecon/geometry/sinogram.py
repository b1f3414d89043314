"""Siemens-style non arc-corrected, interleaved sinogram layouts.

Transaxial convention (view ``v``, radial bin ``b``)
-----------------------------------------------------
These are the scanner's own sinograms (Siemens e7 / NiftyPET), not arc
corrected. With ``N = n_crystals_per_ring`` (gap crystals included), the
uncompressed view ``u`` (``0 .. N/2 - 1``) and the signed radial offset
``t = b - n_radial_bins // 2``, the bin joins the Siemens-numbered crystals::

    c_a = (u - ceil(t / 2) + N / 2 - 1) mod N
    c_b = (u + floor(t / 2) - 1) mod N

For the Biograph mMR (N = 504, 344 bins) this is NiftyPET's
``mmraux.transaxial_lut`` table ``s2cF``: ``c0 = floor((u + (N - 2 + 172 -
b) / 2) mod N)``, ``c1 = floor((u + (2N - 2 - 172 + b) / 2) mod N)``; e.g.
view 0, bin 172 joins crystals 251 and 503. ``c_b - c_a = t - N/2 (mod
N)``, so successive bins alternate between two crystal-pair families half a
crystal pitch apart (interleaved bins). The same formula is used for the mCT
and the Biograph 64 (same Siemens e7 sinogram convention); for those two it
is *unverified* against a public source.

With crystal 0 near the top of the gantry (:mod:`petrecon.geometry.scanner`)
the LOR of ``(u, t)`` has normal angle ``phi(u) ~ pi * u / (N/2)`` and
signed distance ``s ~ R * sin(pi * t / N)`` from the centre along that
normal: a point ``(x0, y0)`` is seen at ``s(phi) = x0 cos(phi) + y0
sin(phi)``, and the radial bin increases with ``s``. A view of a mashed
layout (mashing ``m``) combines the uncompressed views ``v*m .. v*m + m - 1``.

Axial convention
----------------
The LOR of a sinogram's ring pair ``(ring_a, ring_b)`` joins crystal ``c_a``
of ring ``ring_a`` (``xstart``) to crystal ``c_b`` of ring ``ring_b``
(``xend``), as NiftyPET pairs its span-1 sinogram ``(r0, r1) = sn1_rno[si]``
with ``s2cF[., 0]`` on ``r0`` and ``s2cF[., 1]`` on ``r1`` (the list-mode,
fan-sum and normalisation convention of the mMR; reference/scanners.md).
The ring difference is ``d = ring_b - ring_a``. With span ``S`` (odd),
segment 0 holds ``|d| <= (S-1)/2`` and segment ``+k`` (``-k``) the next
``S`` positive (negative) ring differences. Segments are stored 0, +1, -1,
+2, -2, ...: span-1 sinogram 64 of the mMR is ``(ring_a, ring_b) = (0, 1)``
(NiftyPET ``axial_lut``), and span 11 stores ``d`` in [6, 16] right after
segment 0 (NiftyPET's ``minrd``/``maxrd`` give this segment as -16..-6 in its
own sign, ``r0 - r1``). Within a segment sinograms are ordered by the ring
sum ``ring_a + ring_b`` (the axial position; ``2 * n_rings - 1`` positions
in segment 0 for S > 1). Storage order of the data is ``[TOF bin,]
sinogram, view, radial bin`` (reference/formats.md).

Before petrecon 0.2 the roles of the two crystals were swapped (each oblique
segment +k held the scanner's -k) and crystals were numbered one higher
than the scanner's, so the gap bins were off by one crystal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from petrecon.errors import GeometryError
from petrecon.geometry.scanner import ScannerGeometry, TofSpec


@dataclass(frozen=True)
class _AxialTable:
    """Per-sinogram axial bookkeeping (small: one row per sinogram)."""

    segment_ring_differences: tuple[tuple[int, int], ...]
    segment_sizes: tuple[int, ...]
    ring_pairs: tuple[np.ndarray, ...]
    ring_pair_to_sinogram: np.ndarray


@dataclass(frozen=True)
class SinogramLayout:
    """Shape and geometry of a (possibly TOF, spanned, mashed) sinogram.

    Parameters
    ----------
    scanner : ScannerGeometry
        The scanner.
    span : int
        Axial compression (odd, >= 1).
    max_ring_difference : int
        Largest absolute ring difference stored.
    n_radial_bins : int
        Radial bins per view (< ``n_crystals_per_ring``).
    view_mashing : int
        Uncompressed views combined per view; divides ``n_crystals_per_ring / 2``.
    use_tof : bool
        Whether the sinogram has a TOF axis (needs ``scanner.tof``).
    tof_mashing : int
        TOF bins combined per stored TOF bin; 1 without TOF.

    Notes
    -----
    Conventions are in the module docstring.
    """

    scanner: ScannerGeometry
    span: int
    max_ring_difference: int
    n_radial_bins: int
    view_mashing: int
    use_tof: bool = False
    tof_mashing: int = 1

    def __post_init__(self) -> None:
        name = self.scanner.name
        n_crystals = self.scanner.n_crystals_per_ring
        if self.span < 1 or self.span % 2 == 0:
            raise GeometryError(f"{name}: span must be an odd integer >= 1, got {self.span}")
        if not (self.span - 1) // 2 <= self.max_ring_difference <= self.scanner.n_rings - 1:
            raise GeometryError(
                f"{name}: max_ring_difference must be in [{(self.span - 1) // 2}, "
                f"{self.scanner.n_rings - 1}] for span {self.span}, got {self.max_ring_difference}"
            )
        if not 1 <= self.n_radial_bins < n_crystals:
            raise GeometryError(
                f"{name}: n_radial_bins must be in [1, {n_crystals - 1}], got {self.n_radial_bins}"
            )
        if self.view_mashing < 1 or (n_crystals // 2) % self.view_mashing:
            raise GeometryError(
                f"{name}: view_mashing must divide {n_crystals // 2} (crystals per ring / 2), "
                f"got {self.view_mashing}"
            )
        self._check_tof()

    def _check_tof(self) -> None:
        name = self.scanner.name
        if self.use_tof and self.scanner.tof is None:
            raise GeometryError(f"{name}: use_tof=True but the scanner has no TOF specification")
        n_tof = self.scanner.tof.n_bins if self.use_tof else 1
        if self.tof_mashing < 1 or n_tof % self.tof_mashing:
            raise GeometryError(
                f"{name}: tof_mashing must divide the number of TOF bins ({n_tof}), got {self.tof_mashing}"
            )

    # ----- sizes -------------------------------------------------------------
    @property
    def n_views(self) -> int:
        """Stored views, ``n_crystals_per_ring // 2 // view_mashing``."""
        return self.scanner.n_crystals_per_ring // 2 // self.view_mashing

    @property
    def n_tof_bins(self) -> int:
        """Stored TOF bins (1 without TOF)."""
        return self.scanner.tof.n_bins // self.tof_mashing if self.use_tof else 1

    @property
    def tof_bin_edges_mm(self) -> np.ndarray:
        """Edges of the stored (mashed) TOF bins along the LOR, shape ``(n_tof_bins + 1,)``, mm."""
        if not self.use_tof:
            raise GeometryError(f"{self.scanner.name}: layout has no TOF axis")
        return self.scanner.tof.bin_edges_mm[:: self.tof_mashing]

    @property
    def segment_table(self) -> tuple[int, ...]:
        """Sinograms per segment, storage order 0, +1, -1, +2, -2, ..."""
        return self._axial.segment_sizes

    @property
    def n_sinograms(self) -> int:
        """Total sinograms (all segments and axial positions)."""
        return int(sum(self.segment_table))

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_sinograms, n_views, n_radial_bins)``, with a leading TOF axis if ``use_tof``."""
        shape = (self.n_sinograms, self.n_views, self.n_radial_bins)
        return (self.n_tof_bins,) + shape if self.use_tof else shape

    @property
    def radial_bin_size_mm(self) -> float:
        """Nominal radial bin size at the centre (bins are not arc-corrected)."""
        return self.scanner.nominal_radial_bin_size_mm

    # ----- axial ------------------------------------------------------------
    def segment_ring_differences(self) -> list[tuple[int, int]]:
        """``(min_rd, max_rd)`` of each segment in storage order (``rd = ring_b - ring_a``)."""
        return list(self._axial.segment_ring_differences)

    def ring_pairs(self) -> np.ndarray | list[np.ndarray]:
        """Ring pairs ``(ring_a, ring_b)`` combined in each sinogram.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            Span 1: an int array ``(n_sinograms, 2)``. Span > 1: a list of
            ``n_sinograms`` int arrays of shape ``(k, 2)``, sorted by ring
            difference.
        """
        if self.span == 1:
            return np.concatenate(self._axial.ring_pairs, axis=0)
        return [pairs.copy() for pairs in self._axial.ring_pairs]

    def ring_pair_to_sinogram(self) -> np.ndarray:
        """Sinogram index of each ring pair, int array ``(n_rings, n_rings)``, -1 if not stored.

        Indexed ``[ring_a, ring_b]``.
        """
        return self._axial.ring_pair_to_sinogram.copy()

    def sinogram_axial_info(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean axial coordinates of the two LOR ends of each sinogram.

        Returns
        -------
        z1_mm, z2_mm : numpy.ndarray
            float64, shape ``(n_sinograms,)``: mean ``z`` of ``ring_a`` (the
            ``xstart`` end) and of ``ring_b`` over the ring pairs combined in
            the sinogram.
        """
        ring_z = self.scanner.ring_z_mm()
        z1 = np.array([ring_z[pairs[:, 0]].mean() for pairs in self._axial.ring_pairs])
        z2 = np.array([ring_z[pairs[:, 1]].mean() for pairs in self._axial.ring_pairs])
        return z1, z2

    def listmode_layout(self) -> "SinogramLayout":
        """The uncompressed layout that list-mode bin addresses index.

        PETLINK event words address the *span-1*, unmashed, non-TOF sinogram
        with this layout's maximum ring difference and radial bins
        (reference/formats.md: ``address = sinogram * n_views * n_bins +
        view * n_bins + bin``; mMR: 4084 x 252 x 344).
        """
        return SinogramLayout(self.scanner, 1, self.max_ring_difference, self.n_radial_bins, 1)

    def span1_sinogram_map(self) -> np.ndarray:
        """This layout's sinogram index for each sinogram of :meth:`listmode_layout`.

        Returns
        -------
        numpy.ndarray
            int64, shape ``(listmode_layout().n_sinograms,)``; ``-1`` where
            the ring pair is not stored in this layout. A list-mode view
            ``u`` lands in view ``u // view_mashing``.

        Examples
        --------
        >>> from petrecon.geometry import default_layout
        >>> table = default_layout("mmr").span1_sinogram_map()
        >>> table.shape, int(table.max()) + 1
        ((4084,), 837)
        """
        span1_pairs = self.listmode_layout().ring_pairs()
        lookup = self._axial.ring_pair_to_sinogram
        return lookup[span1_pairs[:, 0], span1_pairs[:, 1]].astype(np.int64)

    @cached_property
    def _axial(self) -> _AxialTable:
        return _build_axial_table(self.scanner.n_rings, self.span, self.max_ring_difference)

    # ----- transaxial -------------------------------------------------------
    def view_crystals(self, views: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Crystal pairs ``(c_a, c_b)`` of the radial bins of the selected views.

        ``c_a`` sits on ``ring_a`` (the ``xstart`` end) and ``c_b`` on
        ``ring_b`` of each sinogram's ring pairs (module docstring).

        Parameters
        ----------
        views : array_like of int, optional
            Stored view indices; all views if None.

        Returns
        -------
        c_a, c_b : numpy.ndarray
            int64, shape ``(n_views_sel, view_mashing, n_radial_bins)``.

        Examples
        --------
        >>> from petrecon.geometry import default_layout
        >>> c_a, c_b = default_layout("mmr").view_crystals(np.array([0]))
        >>> int(c_a[0, 0, 172]), int(c_b[0, 0, 172])
        (251, 503)
        """
        views = self._select(views, self.n_views, "views")
        n_crystals = self.scanner.n_crystals_per_ring
        uncompressed = views[:, None] * self.view_mashing + np.arange(self.view_mashing)[None, :]
        t = np.arange(self.n_radial_bins) - self.n_radial_bins // 2
        c_a = (uncompressed[..., None] - np.floor_divide(t + 1, 2) + n_crystals // 2 - 1) % n_crystals
        c_b = (uncompressed[..., None] + np.floor_divide(t, 2) - 1) % n_crystals
        return c_a, c_b

    def gap_bin_mask(self, views: np.ndarray | None = None) -> np.ndarray:
        """True where any crystal pair of a bin uses a gap crystal.

        Returns
        -------
        numpy.ndarray
            bool, shape ``(n_views_sel, n_radial_bins)``.
        """
        c1, c2 = self.view_crystals(views)
        gap = self.scanner.is_gap_crystal()
        return (gap[c1] | gap[c2]).any(axis=1)

    def lor_endpoints_mm(
        self, views: np.ndarray | None = None, sinograms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Endpoints of the representative LOR of each selected bin.

        Mashed views use the mean transaxial position of the mashed crystals;
        span > 1 uses the mean axial position of the combined ring pairs.

        Parameters
        ----------
        views, sinograms : array_like of int, optional
            Selected stored views and sinograms; all if None.

        Returns
        -------
        xstart, xend : numpy.ndarray
            float32, shape ``(n_sino_sel, n_views_sel, n_radial_bins, 3)``, mm.
        """
        sinograms = self._select(sinograms, self.n_sinograms, "sinograms")
        c1, c2 = self.view_crystals(views)
        xy = self.scanner.crystal_xy_mm()
        xy1 = xy[c1].mean(axis=1)
        xy2 = xy[c2].mean(axis=1)
        z1, z2 = (z[sinograms] for z in self.sinogram_axial_info())
        return _assemble(xy1, z1), _assemble(xy2, z2)

    def _select(self, index: np.ndarray | None, size: int, what: str) -> np.ndarray:
        if index is None:
            return np.arange(size)
        index = np.atleast_1d(np.asarray(index))
        if not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
            raise GeometryError(f"{self.scanner.name}: {what} must be a 1-D array of integers")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise GeometryError(f"{self.scanner.name}: {what} out of range [0, {size - 1}]")
        return index

    def to_dict(self) -> dict:
        """JSON-serialisable summary: scanner fields, layout parameters and shape."""
        return {
            "scanner": asdict(self.scanner),
            "span": self.span,
            "max_ring_difference": self.max_ring_difference,
            "n_radial_bins": self.n_radial_bins,
            "n_views": self.n_views,
            "view_mashing": self.view_mashing,
            "use_tof": self.use_tof,
            "tof_mashing": self.tof_mashing,
            "n_tof_bins": self.n_tof_bins,
            "segment_table": list(self.segment_table),
            "segment_ring_differences": [list(rd) for rd in self.segment_ring_differences()],
            "n_sinograms": self.n_sinograms,
            "radial_bin_size_mm": self.radial_bin_size_mm,
            "shape": list(self.shape),
        }


def layout_from_dict(summary: dict) -> SinogramLayout:
    """Rebuild a layout from :meth:`SinogramLayout.to_dict` (the inverse; derived fields are checked).

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("mmr")
    >>> layout_from_dict(layout.to_dict()) == layout
    True
    """
    try:
        scanner_fields = dict(summary["scanner"])
        tof = scanner_fields.pop("tof")
        scanner = ScannerGeometry(
            **{key: tuple(value) if isinstance(value, list) else value for key, value in scanner_fields.items()},
            tof=None if tof is None else TofSpec(**tof),
        )
        layout = SinogramLayout(scanner, int(summary["span"]), int(summary["max_ring_difference"]),
                                int(summary["n_radial_bins"]), int(summary["view_mashing"]),
                                bool(summary["use_tof"]), int(summary["tof_mashing"]))
    except (KeyError, TypeError) as error:
        raise GeometryError(f"sinogram layout description is incomplete or malformed: {error}") from None
    if list(layout.shape) != list(summary.get("shape", layout.shape)):
        raise GeometryError(f"sinogram layout description says shape {summary['shape']}, "
                            f"its parameters give {list(layout.shape)}")
    return layout


def _assemble(xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Combine per-view ``(nv, nb, 2)`` xy and per-sinogram ``(ns,)`` z into ``(ns, nv, nb, 3)`` float32."""
    out = np.empty((z.size,) + xy.shape[:2] + (3,), dtype=np.float32)
    out[..., :2] = xy[None]
    out[..., 2] = z[:, None, None]
    return out


def _segment_ring_differences(span: int, max_ring_difference: int) -> list[tuple[int, int]]:
    """Ring-difference ranges of the segments in Siemens order 0, +1, -1, ..."""
    half = (span - 1) // 2
    ranges = [(-half, half)]
    low = half + 1
    while low <= max_ring_difference:
        high = min(low + span - 1, max_ring_difference)
        ranges += [(low, high), (-high, -low)]
        low = high + 1
    return ranges


def _build_axial_table(n_rings: int, span: int, max_ring_difference: int) -> _AxialTable:
    """Group ring pairs into sinograms: by segment, then by ring sum."""
    ring1, ring2 = (a.ravel() for a in np.meshgrid(np.arange(n_rings), np.arange(n_rings), indexing="ij"))
    difference, ring_sum = ring2 - ring1, ring1 + ring2
    lookup = np.full((n_rings, n_rings), -1, dtype=np.int64)
    ranges = _segment_ring_differences(span, max_ring_difference)
    sizes, groups = [], []
    for low, high in ranges:
        in_segment = (difference >= low) & (difference <= high)
        sums = np.unique(ring_sum[in_segment])
        sizes.append(int(sums.size))
        for value in sums:
            chosen = np.flatnonzero(in_segment & (ring_sum == value))
            chosen = chosen[np.argsort(difference[chosen])]
            lookup[ring1[chosen], ring2[chosen]] = len(groups)
            groups.append(np.stack([ring1[chosen], ring2[chosen]], axis=1))
    return _AxialTable(tuple(ranges), tuple(sizes), tuple(groups), lookup)
