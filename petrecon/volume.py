"""Image grids and volumes: arrays that carry their geometry (ARCHITECTURE contract 2).

Axes are (x, y, z) with z the scanner axis; ``origin_mm`` is the centre of
voxel [0, 0, 0] in scanner coordinates (mm, scanner centre at 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import GeometryError


@dataclass(frozen=True)
class ImageGrid:
    """A regular voxel grid in scanner coordinates.

    Parameters
    ----------
    shape : tuple of int
        Number of voxels along (x, y, z).
    voxel_size_mm : tuple of float
        Voxel size along (x, y, z) in mm.
    origin_mm : tuple of float
        Centre of voxel [0, 0, 0] in mm.

    Examples
    --------
    >>> grid = ImageGrid.centred((4, 4, 2), (2.0, 2.0, 3.0))
    >>> grid.origin_mm
    (-3.0, -3.0, -1.5)
    """

    shape: tuple[int, int, int]
    voxel_size_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise GeometryError(f"image shape must be 3 positive integers, got {self.shape}")
        if len(self.voxel_size_mm) != 3 or any(not float(v) > 0 for v in self.voxel_size_mm):
            raise GeometryError(f"voxel_size_mm must be 3 positive numbers, got {self.voxel_size_mm}")
        if len(self.origin_mm) != 3:
            raise GeometryError(f"origin_mm must have 3 components, got {self.origin_mm}")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "voxel_size_mm", tuple(float(v) for v in self.voxel_size_mm))
        object.__setattr__(self, "origin_mm", tuple(float(v) for v in self.origin_mm))

    @classmethod
    def centred(cls, shape: tuple[int, int, int], voxel_size_mm: tuple[float, float, float]) -> "ImageGrid":
        """Grid whose centre is the scanner centre (0, 0, 0)."""
        origin = tuple(-(n - 1) / 2.0 * float(v) for n, v in zip(shape, voxel_size_mm))
        return cls(tuple(shape), tuple(voxel_size_mm), origin)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in ml (1 ml = 1000 mm^3)."""
        return float(np.prod(self.voxel_size_mm)) / 1000.0

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 matrix mapping voxel indices (i, j, k, 1) to mm (x, y, z, 1)."""
        matrix = np.diag([*self.voxel_size_mm, 1.0])
        matrix[:3, 3] = self.origin_mm
        return matrix

    def voxel_centres_mm(self, axis: int) -> np.ndarray:
        """Coordinates in mm of the voxel centres along one axis (0 = x, 1 = y, 2 = z)."""
        return self.origin_mm[axis] + self.voxel_size_mm[axis] * np.arange(self.shape[axis])


@dataclass
class Volume:
    """An image array together with its grid and free-form metadata.

    ``data`` has the grid's shape; ``metadata`` holds units and provenance
    (for a reconstruction: ``units``, the protocol parameters, the scanner).
    """

    data: np.ndarray
    grid: ImageGrid
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tuple(self.data.shape) != self.grid.shape:
            raise GeometryError(f"volume data has shape {tuple(self.data.shape)}, its grid says {self.grid.shape}")
