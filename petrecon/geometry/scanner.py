"""Cylindrical PET scanner geometry (crystals, rings, time of flight).

Conventions (the gantry frame)
------------------------------
* Coordinates are in mm, scanner centre at the origin, in STIR's gantry
  frame: x runs left to right as one faces the gantry from the bed, y from
  the top of the gantry to the bottom, z along the axis from deep inside the
  gantry out towards the bed (STIR ``DiscretisedDensity.inl``,
  ``swap_axes_based_on_orientation``). How this frame maps to the patient's
  DICOM LPS coordinates is :mod:`petrecon.geometry.patient`.
* Crystal indices are the **scanner's own** (Siemens) crystal numbers, gap
  crystals included: for the Biograph mMR crystal ``c`` of block
  ``c // 9`` with the gap (zero-sensitivity) crystal last in each block,
  ``c % 9 == 8`` (NiftyPET ``mmraux.transaxial_lut``: ``OFFGAP = 1``,
  ``TGAP = 9``; a component normalisation file indexes crystals the same
  way). Seen in the (x, y) plane, crystal 0 sits near the top of the gantry
  (-y) and indices increase towards +x.
* Crystals sit on the flat front faces of their blocks (NiftyPET's model of
  the mMR): block ``b`` has its face centre at radius ``radius_mm`` (detector
  radius plus the mean depth of interaction) and angle
  ``theta_b = -pi/2 + 2 pi (b + 1/2) / n_blocks + angular_offset_rad``
  (measured from +x towards +y); its active crystals are spaced
  ``crystal_pitch_mm`` along the face, centred on it, in increasing angle.
  Gap crystals are placed on the circle at the block boundary (they detect
  nothing; their position only keeps the index arithmetic of bins regular).
  A scanner without a ``crystal_pitch_mm`` (the synthetic ``test`` scanner,
  PETSIRD rings) has every crystal on the circle, ``2 pi / n`` apart.
* Ring ``r`` sits at ``z = (r - (n_rings - 1) / 2) * ring_spacing_mm``: ring 0
  is the deepest ring in the gantry (NiftyPET ``axial_lut`` ring z
  increasing with the ring number; its images have S = -z for a head-first
  patient). Rings listed in ``virtual_ring_positions`` model the axial gaps
  between blocks and have zero sensitivity (reference/scanners.md, after
  STIR ``Scanner.cxx``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import GeometryError

SPEED_OF_LIGHT_MM_PER_PS = 0.299792458


@dataclass(frozen=True)
class TofSpec:
    """Time-of-flight binning of a scanner.

    Parameters
    ----------
    n_bins : int
        Number of TOF bins (before any TOF mashing).
    bin_width_ps : float
        Width of one TOF bin in coincidence time difference (ps).
    fwhm_ps : float
        Coincidence timing resolution, full width at half maximum (ps).

    Notes
    -----
    Times convert to positions along the LOR with ``dx = dt * c / 2``.
    """

    n_bins: int
    bin_width_ps: float
    fwhm_ps: float

    def __post_init__(self) -> None:
        if self.n_bins < 1:
            raise GeometryError(f"TOF n_bins must be >= 1, got {self.n_bins}")
        if self.bin_width_ps <= 0 or self.fwhm_ps <= 0:
            raise GeometryError(
                f"TOF bin width and FWHM must be > 0 ps, got {self.bin_width_ps}, {self.fwhm_ps}"
            )

    @property
    def bin_width_mm(self) -> float:
        """Width of one TOF bin along the LOR (mm)."""
        return self.bin_width_ps * SPEED_OF_LIGHT_MM_PER_PS / 2.0

    @property
    def fwhm_mm(self) -> float:
        """Timing resolution as a FWHM along the LOR (mm)."""
        return self.fwhm_ps * SPEED_OF_LIGHT_MM_PER_PS / 2.0

    @property
    def bin_edges_mm(self) -> np.ndarray:
        """TOF bin edges, shape ``(n_bins + 1,)``, mm.

        Signed distance from the LOR midpoint towards ``xend``; the bins are
        centred on 0 (bin ``n_bins // 2`` contains the midpoint for odd
        ``n_bins``).
        """
        return (np.arange(self.n_bins + 1) - self.n_bins / 2.0) * self.bin_width_mm


@dataclass(frozen=True)
class ScannerGeometry:
    """A cylindrical scanner made of rings of crystals.

    Parameters
    ----------
    name, description : str
        Short registry key and human-readable description.
    n_rings : int
        Rings, virtual gap rings included.
    n_crystals_per_ring : int
        Crystals per ring, transaxial gap crystals included.
    crystals_per_block : int
        Transaxial crystals per block, gap crystal included.
    gap_crystals_per_block : int
        Gap (zero-sensitivity) crystals at the end of each block, 0 if none.
    radius_mm : float
        Effective ring radius including the mean depth of interaction.
    ring_spacing_mm : float
        Axial distance between neighbouring rings.
    virtual_ring_positions : tuple of int
        Indices of virtual (zero-sensitivity) rings.
    energy_window_kev : tuple of float
        Lower and upper energy thresholds (keV).
    coincidence_window_ns : float
        Coincidence timing window (ns).
    tof : TofSpec or None
        TOF binning, None for non-TOF scanners.
    default_image_shape : tuple of int
        Default reconstruction grid ``(nx, ny, nz)``.
    default_voxel_size_mm : tuple of float
        Default voxel size ``(dx, dy, dz)`` (mm).
    radial_bin_size_mm : float or None
        Nominal radial bin size of the (non arc-corrected) sinogram; None
        means ``pi * radius_mm / n_crystals_per_ring`` (half the crystal pitch).
    crystal_pitch_mm : float or None
        Transaxial distance between neighbouring crystal centres on a block
        face; None: no block faces, every crystal on the circle at equal
        angles (the ring model of a generic scanner).
    angular_offset_rad : float
        Rotation of the whole detector ring from the nominal block angles
        (module docstring), towards increasing angle.

    Notes
    -----
    See the module docstring for the coordinate conventions; values come from
    reference/scanners.md (STIR ``Scanner.cxx`` and the sources listed there).
    """

    name: str
    description: str
    n_rings: int
    n_crystals_per_ring: int
    crystals_per_block: int
    gap_crystals_per_block: int
    radius_mm: float
    ring_spacing_mm: float
    virtual_ring_positions: tuple[int, ...]
    energy_window_kev: tuple[float, float]
    coincidence_window_ns: float
    tof: TofSpec | None
    default_image_shape: tuple[int, int, int]
    default_voxel_size_mm: tuple[float, float, float]
    radial_bin_size_mm: float | None = field(default=None)
    crystal_pitch_mm: float | None = field(default=None)
    angular_offset_rad: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(self.name, n_rings=self.n_rings, n_crystals_per_ring=self.n_crystals_per_ring,
                        crystals_per_block=self.crystals_per_block, radius_mm=self.radius_mm,
                        ring_spacing_mm=self.ring_spacing_mm)
        if self.n_crystals_per_ring % 2:
            raise GeometryError(f"{self.name}: n_crystals_per_ring must be even, got {self.n_crystals_per_ring}")
        if self.n_crystals_per_ring % self.crystals_per_block:
            raise GeometryError(
                f"{self.name}: n_crystals_per_ring ({self.n_crystals_per_ring}) is not a multiple of "
                f"crystals_per_block ({self.crystals_per_block})"
            )
        if not 0 <= self.gap_crystals_per_block < self.crystals_per_block:
            raise GeometryError(
                f"{self.name}: gap_crystals_per_block must be in [0, {self.crystals_per_block - 1}], "
                f"got {self.gap_crystals_per_block}"
            )
        if self.crystal_pitch_mm is not None and not self.crystal_pitch_mm > 0:
            raise GeometryError(f"{self.name}: crystal_pitch_mm must be > 0, got {self.crystal_pitch_mm}")
        bad = [r for r in self.virtual_ring_positions if not 0 <= r < self.n_rings]
        if bad:
            raise GeometryError(f"{self.name}: virtual ring positions {bad} outside [0, {self.n_rings - 1}]")

    @property
    def axial_fov_mm(self) -> float:
        """Axial extent covered by the rings, ``n_rings * ring_spacing_mm``."""
        return self.n_rings * self.ring_spacing_mm

    @property
    def nominal_radial_bin_size_mm(self) -> float:
        """Radial bin size at the centre: registry value or half the crystal pitch."""
        if self.radial_bin_size_mm is not None:
            return self.radial_bin_size_mm
        return float(np.pi * self.radius_mm / self.n_crystals_per_ring)

    @property
    def n_blocks(self) -> int:
        """Transaxial blocks per ring."""
        return self.n_crystals_per_ring // self.crystals_per_block

    def block_angles_rad(self) -> np.ndarray:
        """Angle of each block's face centre, shape ``(n_blocks,)`` (module docstring)."""
        return (-np.pi / 2 + 2 * np.pi * (np.arange(self.n_blocks) + 0.5) / self.n_blocks
                + self.angular_offset_rad)

    def crystal_angles_rad(self) -> np.ndarray:
        """Angle of each crystal centre seen from the axis, shape ``(n_crystals_per_ring,)``."""
        xy = self.crystal_xy_mm()
        return np.arctan2(xy[:, 1], xy[:, 0])

    def crystal_xy_mm(self) -> np.ndarray:
        """Transaxial crystal centres, shape ``(n_crystals_per_ring, 2)``, float64, mm.

        Active crystals on the flat block faces, gap crystals on the circle
        at the block boundaries (module docstring).

        Examples
        --------
        >>> from petrecon.geometry import get_scanner
        >>> xy = get_scanner("mmr").crystal_xy_mm()
        >>> radius = np.hypot(xy[:, 0], xy[:, 1])
        >>> round(float(radius[:8].min()), 1), round(float(radius[:8].max()), 1)
        (334.7, 335.0)
        """
        n_active = self.crystals_per_block - self.gap_crystals_per_block
        position = np.arange(self.n_crystals_per_ring) % self.crystals_per_block
        block_angle = self.block_angles_rad()[np.arange(self.n_crystals_per_ring) // self.crystals_per_block]
        offset = position - (n_active - 1) / 2.0        # in crystals from the block centre
        circle_angle = block_angle + offset * 2 * np.pi / self.n_crystals_per_ring
        on_circle = self.radius_mm * np.stack([np.cos(circle_angle), np.sin(circle_angle)], axis=-1)
        if self.crystal_pitch_mm is None:
            return on_circle
        radial = np.stack([np.cos(block_angle), np.sin(block_angle)], axis=-1)
        tangent = np.stack([-np.sin(block_angle), np.cos(block_angle)], axis=-1)
        on_face = self.radius_mm * radial + (offset * self.crystal_pitch_mm)[:, None] * tangent
        return np.where(self.is_gap_crystal()[:, None], on_circle, on_face)

    def ring_z_mm(self) -> np.ndarray:
        """Axial ring centres, shape ``(n_rings,)``, increasing and centred on z = 0."""
        return (np.arange(self.n_rings) - (self.n_rings - 1) / 2.0) * self.ring_spacing_mm

    def is_gap_crystal(self) -> np.ndarray:
        """Boolean mask of transaxial gap crystals, shape ``(n_crystals_per_ring,)``."""
        position_in_block = np.arange(self.n_crystals_per_ring) % self.crystals_per_block
        return position_in_block >= self.crystals_per_block - self.gap_crystals_per_block

    def is_virtual_ring(self) -> np.ndarray:
        """Boolean mask of virtual rings, shape ``(n_rings,)``."""
        mask = np.zeros(self.n_rings, dtype=bool)
        mask[list(self.virtual_ring_positions)] = True
        return mask

    def crystal_pair_endpoints_mm(
        self,
        ring1: np.ndarray | int,
        crystal1: np.ndarray | int,
        ring2: np.ndarray | int,
        crystal2: np.ndarray | int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Endpoints of the LORs joining ``(ring1, crystal1)`` to ``(ring2, crystal2)``.

        Parameters
        ----------
        ring1, crystal1, ring2, crystal2 : array_like of int
            Broadcastable ring and crystal indices.

        Returns
        -------
        xstart, xend : numpy.ndarray
            float32, shape ``broadcast_shape + (3,)``, mm.
        """
        ring1, crystal1, ring2, crystal2 = np.broadcast_arrays(
            *(np.asarray(a) for a in (ring1, crystal1, ring2, crystal2))
        )
        self._check_indices(ring1, self.n_rings, "ring1")
        self._check_indices(ring2, self.n_rings, "ring2")
        self._check_indices(crystal1, self.n_crystals_per_ring, "crystal1")
        self._check_indices(crystal2, self.n_crystals_per_ring, "crystal2")
        xy = self.crystal_xy_mm()
        z = self.ring_z_mm()
        xstart = np.concatenate([xy[crystal1], z[ring1][..., None]], axis=-1)
        xend = np.concatenate([xy[crystal2], z[ring2][..., None]], axis=-1)
        return xstart.astype(np.float32), xend.astype(np.float32)

    def _check_indices(self, index: np.ndarray, size: int, what: str) -> None:
        if not np.issubdtype(index.dtype, np.integer):
            raise GeometryError(f"{self.name}: {what} must be integer indices, got dtype {index.dtype}")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise GeometryError(
                f"{self.name}: {what} out of range [0, {size - 1}] (got {index.min()}..{index.max()})"
            )


def _check_positive(name: str, **values: float) -> None:
    """Raise GeometryError naming the first value that is not > 0."""
    for key, value in values.items():
        if not value > 0:
            raise GeometryError(f"{name}: {key} must be > 0, got {value}")
