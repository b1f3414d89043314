"""Reduced sampling: an axially short, radially cropped, view-mashed copy of a scanner for CPU runs.

A full Biograph study (mMR: 837 x 252 x 344 span-11 sinograms, a 344 x 344 x
127 image) takes about ten minutes per reconstruction on two CPU cores. The
reduced sampling keeps what sets quantitative recovery in the transaxial
plane (the ring radius, crystal pitch, radial bin size, in-plane voxel size
and span) and cuts what only costs time:

* ``n_rings`` rings around the axial centre (the axial field of view shrinks
  to ``n_rings x ring spacing``; slices of half the ring spacing, as the
  scanners' own images);
* radial bins and image columns cropped to a transaxial field of view
  (``field_of_view_mm``, default 400 mm: a 360 mm wide torso with margin);
* views mashed by ``view_mashing`` (the angular sampling stays finer than
  the in-plane resolution: 252 / 2 = 126 views over 180 degrees on the mMR).

The reduced scanner keeps the registry name (its crystal numbering and block
structure are the same), drops the virtual (gap) rings, and records the
reduced image grid as its default, so a container simulated with it is
reconstructed on that grid by ``petrecon recon`` and ``petrecon batch``
without further options. Its scanner fields travel in the container's
``/layout`` (petrecon.io.container): the reduction is never guessed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from petrecon.errors import ParameterError
from petrecon.geometry.registry import default_layout
from petrecon.geometry.sinogram import SinogramLayout
from petrecon.volume import ImageGrid

DEFAULT_RINGS = 28
DEFAULT_FIELD_OF_VIEW_MM = 400.0
DEFAULT_VIEW_MASHING = 2


@dataclass(frozen=True)
class Sampling:
    """A sinogram layout, the image grid reconstructed from it, and a sentence that says what they are."""

    layout: SinogramLayout
    grid: ImageGrid
    description: str
    reduced: bool


def full_sampling(scanner: str) -> Sampling:
    """The scanner's default layout and image grid.

    Examples
    --------
    >>> full_sampling("mmr").grid.shape
    (344, 344, 127)
    """
    layout = default_layout(scanner)
    geometry = layout.scanner
    grid = ImageGrid.centred(geometry.default_image_shape, geometry.default_voxel_size_mm)
    description = (f"full {geometry.name} sampling: {geometry.n_rings} rings, span {layout.span}, "
                   f"{layout.n_radial_bins} bins x {layout.n_views} views x {layout.shape[0]} sinograms, image "
                   f"{grid.shape[0]} x {grid.shape[1]} x {grid.shape[2]}")
    return Sampling(layout, grid, description, False)


def reduced_sampling(scanner: str, *, n_rings: int = DEFAULT_RINGS,
                     field_of_view_mm: float = DEFAULT_FIELD_OF_VIEW_MM, view_mashing: int = DEFAULT_VIEW_MASHING,
                     n_radial_bins: int | None = None, image_size: int | None = None) -> Sampling:
    """An axially short, radially cropped, view-mashed copy of ``scanner`` (module docstring).

    Parameters
    ----------
    scanner : str
        Registry name (``mmr``, ``b64``, ``mct``, ...).
    n_rings : int
        Rings kept around the axial centre.
    field_of_view_mm : float
        Transaxial diameter covered by the radial bins and the image.
    view_mashing : int
        Views mashed together (1 keeps the scanner's views).
    n_radial_bins, image_size : int, optional
        Explicit radial bins and image columns (default: ``field_of_view_mm``
        over the bin and voxel size, rounded up to even).

    Raises
    ------
    ParameterError
        A ring count, field of view or mashing the scanner cannot take.

    Examples
    --------
    >>> sampling = reduced_sampling("mmr")
    >>> sampling.layout.shape, sampling.grid.shape
    ((183, 126, 192), (192, 192, 55))
    >>> reduced_sampling("b64", n_rings=20).layout.scanner.default_image_shape
    (198, 198, 39)
    """
    full = default_layout(scanner)
    base = full.scanner
    if not (isinstance(n_rings, int) and 2 <= n_rings <= base.n_rings):
        raise ParameterError(f"the reduced {base.name} needs 2 to {base.n_rings} rings, got {n_rings!r}")
    if not (isinstance(view_mashing, int) and view_mashing >= 1 and (base.n_crystals_per_ring // 2) % view_mashing == 0):
        raise ParameterError(f"view mashing must divide the {base.name}'s {base.n_crystals_per_ring // 2} views, "
                             f"got {view_mashing!r}")
    diameter_mm = 2.0 * base.radius_mm
    if not 50.0 <= field_of_view_mm <= diameter_mm:
        raise ParameterError(f"the transaxial field of view must be 50 to {diameter_mm:.0f} mm (the ring), "
                             f"got {field_of_view_mm!r}")
    n_radial_bins = n_radial_bins or min(_even_ceil(field_of_view_mm / base.radial_bin_size_mm), full.n_radial_bins)
    image_size = image_size or min(_even_ceil(field_of_view_mm / base.default_voxel_size_mm[0]),
                                   base.default_image_shape[0])
    voxel_size_mm = (*base.default_voxel_size_mm[:2], base.ring_spacing_mm / 2)
    shape = (image_size, image_size, 2 * n_rings - 1)
    short = dataclasses.replace(base, n_rings=n_rings, virtual_ring_positions=(), default_image_shape=shape,
                                default_voxel_size_mm=voxel_size_mm)
    layout = SinogramLayout(short, full.span, min(full.max_ring_difference, n_rings - 1), n_radial_bins, view_mashing)
    grid = ImageGrid.centred(shape, voxel_size_mm)
    description = (f"reduced {base.name} sampling: {n_rings} of {base.n_rings} rings around the axial centre "
                   f"({n_rings * base.ring_spacing_mm:.1f} mm axial), span {full.span}, {n_radial_bins} of "
                   f"{full.n_radial_bins} radial bins, views mashed by {view_mashing} ({layout.n_views} views), "
                   f"image {shape[0]} x {shape[1]} x {shape[2]} of {voxel_size_mm[0]:.3f} x {voxel_size_mm[1]:.3f} x "
                   f"{voxel_size_mm[2]:.3f} mm")
    return Sampling(layout, grid, description, True)


def _even_ceil(value: float) -> int:
    return 2 * math.ceil(value / 2.0)
