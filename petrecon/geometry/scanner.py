"""Cylindrical PET scanner geometry (crystals, rings, time of flight).

Conventions
-----------
* Coordinates are in mm, scanner centre at the origin, z along the scanner
  axis.
* Crystal ``c`` (0 .. ``n_crystals_per_ring - 1``, gap crystals included) has
  its centre at angle ``alpha(c) = -pi/2 + 2*pi*c/n_crystals_per_ring``
  (counter-clockwise from +x), at the effective radius ``radius_mm``
  (detector radius plus mean depth of interaction). Crystal 0 is therefore at
  ``(0, -radius_mm)``. This is a petrecon convention; the Siemens crystal-0
  position is not given by reference/scanners.md.
* Transaxial gap crystals are the *last* crystal of each block:
  ``c % crystals_per_block >= crystals_per_block - gap_crystals_per_block``.
* Ring ``r`` sits at ``z = (r - (n_rings - 1) / 2) * ring_spacing_mm``; rings
  listed in ``virtual_ring_positions`` model the axial gaps between blocks and
  have zero sensitivity (reference/scanners.md, after STIR ``Scanner.cxx``).
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

    def crystal_angles_rad(self) -> np.ndarray:
        """Angle of each crystal centre, ``-pi/2 + 2*pi*c/n``, shape ``(n_crystals_per_ring,)``."""
        return -np.pi / 2 + 2 * np.pi * np.arange(self.n_crystals_per_ring) / self.n_crystals_per_ring

    def crystal_xy_mm(self) -> np.ndarray:
        """Transaxial crystal centres, shape ``(n_crystals_per_ring, 2)``, float64, mm.

        Crystal 0 is at ``(0, -radius_mm)``; the index increases
        counter-clockwise (towards +x first).
        """
        angles = self.crystal_angles_rad()
        return self.radius_mm * np.stack([np.cos(angles), np.sin(angles)], axis=-1)

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
