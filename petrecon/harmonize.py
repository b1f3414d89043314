"""Harmonisation: the reconstruction protocol that puts a scanner's NEMA recovery inside the EARL bands.

EARL practice (Kaalep et al., EJNMMI 45:1344, 2018; EANM guideline 2015;
reference/quantification.md): reconstruct the NEMA IEC phantom (10:1) with
the site's protocol and sweep the Gaussian post-filter (and the iterations
if needed) until every sphere's RC max and RC A50-mean lie in the bands of
EARL1 or EARL2. :func:`harmonise` does this on the scanner's simulated
phantom (noise-free: the bands are checked on the expected image, without
the upward bias noise gives RC max):

1. simulate ``nema-iec`` at 10:1 on the scanner (analytic, with its
   resolution, the isotope's positron range, attenuation, scatter, randoms);
2. reconstruct once by AW-OSEM with all corrections and no post-filter,
   keeping the image after each iteration (``max(iterations)`` in all);
3. for each candidate iteration count (the clinical 4 first), filter with
   every FWHM of ``fwhm_grid_mm`` and analyse (the phantom found once);
   the FWHMs where every sphere passes form an interval: its middle is
   chosen (the most room on both sides);
4. if none passes, repeat 2-3 with the next PSF model of ``psf_fwhm_mm``
   (EARL2's RC max bands above 1 for the large spheres need the edge
   overshoot of a PSF reconstruction, as on the scanners EARL2 accredits);
5. return the protocol (PSF, iterations, subsets, FWHM pinned) and the RCs.

Recovery depends only on ratios, so the images need no calibration here.
The sweep costs one reconstruction: filtering and analysis take seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.operators import gaussian_post_filter
from petrecon.quant.earl import EARL_BANDS
from petrecon.quant.nema import NemaResult, analyse_nema, find_phantom
from petrecon.recon.osem import OsemProtocol
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.volume import ImageGrid, Volume

EARL_ACTIVITY_RATIO = 10.0
DEFAULT_FWHM_GRID_MM = tuple(np.round(np.arange(0.0, 12.01, 0.25), 2))


@dataclass
class HarmonisationResult:
    """The harmonised protocol and the recovery it gives.

    Attributes
    ----------
    protocol : ReconstructionProtocol
        Iterations, subsets and post-filter pinned.
    standard : str
        ``earl1`` or ``earl2``.
    nema : NemaResult
        Analysis of the phantom reconstructed with ``protocol``.
    passing_fwhm_mm : dict of int to list of float
        Per iteration count tried, the FWHMs where every sphere passed.
    """

    protocol: ReconstructionProtocol
    standard: str
    nema: NemaResult
    passing_fwhm_mm: dict[int, list[float]] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the command line."""
        osem = self.protocol.osem
        lines = [f"{self.standard.upper()}: {osem.n_iterations} iterations x {osem.n_subsets} subsets, "
                 f"{osem.post_filter_fwhm_mm:g} mm Gaussian (passing FWHMs at {osem.n_iterations} iterations: "
                 f"{_interval_text(self.passing_fwhm_mm.get(osem.n_iterations, []))})",
                 "d_mm  RCmax  RCa50"]
        lines += [f"{s.diameter_mm:<5g} {s.rc_max:.3f}  {s.rc_mean_a50:.3f}" for s in self.nema.spheres]
        return lines


def harmonise(scanner: str | SinogramLayout, standard: str, *, grid: ImageGrid | None = None,
              base: ReconstructionProtocol = ReconstructionProtocol(), iterations: tuple[int, ...] = (4, 3, 5, 2, 6),
              fwhm_grid_mm: tuple[float, ...] = DEFAULT_FWHM_GRID_MM, psf_fwhm_mm: tuple[float, ...] = (0.0, 4.0),
              isotope: str = "F18", progress: bool = True) -> HarmonisationResult:
    """Find the post-filter (and iterations) that put every NEMA sphere in the ``standard``'s bands.

    Parameters
    ----------
    scanner : str or SinogramLayout
        Registry name (its default layout and image grid), or a layout.
    standard : str
        ``"earl1"`` or ``"earl2"``.
    grid : ImageGrid, optional
        Reconstruction grid (default: the scanner's default image).
    base : ReconstructionProtocol
        Everything but iterations and post-filter (subsets, corrections, PSF).
    iterations : tuple of int
        Iteration counts to try, in order of preference.
    fwhm_grid_mm : tuple of float
        Post-filter FWHMs to try.
    psf_fwhm_mm : tuple of float
        Image-space PSF models to try in turn (0: none; 4 mm: about the
        Biograph detector resolution, 4 mm crystals, reference/scanners.md).
    isotope : str
        Isotope of the phantom (EARL's is 18F).
    progress : bool
        Progress bars.

    Raises
    ------
    ParameterError
        Unknown standard, or no iteration count and FWHM put every sphere in the bands.
    """
    from petrecon.simulate.acquisition import simulate_study

    standard = standard.lower()
    if standard not in EARL_BANDS:
        raise ParameterError(f"standard must be one of {', '.join(EARL_BANDS)}, got {standard!r}")
    layout = default_layout(scanner) if isinstance(scanner, str) else scanner
    grid = grid or ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    study = simulate_study("nema-iec", scanner=layout, isotope=isotope, parameters={"ratio": EARL_ACTIVITY_RATIO},
                           noise=False, grid=grid, progress=progress).container
    passing: dict[int, list[float]] = {}
    for psf_mm in psf_fwhm_mm:
        model = dataclasses.replace(base, psf_fwhm_mm=psf_mm, image_shape=grid.shape, voxel_size_mm=grid.voxel_size_mm)
        images = _images_per_iteration(study, model, max(iterations), progress)
        geometry = find_phantom(Volume(gaussian_post_filter(images[max(iterations)], 5.0, grid.voxel_size_mm), grid))
        for n_iterations in iterations:
            passing = {n_iterations: [float(f) for f in fwhm_grid_mm
                                      if _nema(images[n_iterations], f, grid, geometry).earl[standard]["passes"]]}
            if passing[n_iterations]:
                middle_mm = float(np.median(passing[n_iterations]))
                chosen_mm = min(passing[n_iterations], key=lambda f: abs(f - middle_mm))
                protocol = dataclasses.replace(
                    model, name=f"{standard}-{layout.scanner.name}", scanner=layout.scanner.name,
                    description=f"{standard.upper()}-harmonised AW-OSEM for {layout.scanner.name}: {n_iterations} "
                                f"iterations x {base.osem.n_subsets} subsets, {chosen_mm:g} mm Gaussian"
                                + (f", {psf_mm:g} mm PSF" if psf_mm else ""),
                    osem=OsemProtocol(n_iterations, base.osem.n_subsets, chosen_mm))
                return HarmonisationResult(protocol, standard, _nema(images[n_iterations], chosen_mm, grid, geometry),
                                           passing)
    raise ParameterError(f"no PSF model in {psf_fwhm_mm} mm, iteration count in {iterations} and post-filter in "
                         f"{fwhm_grid_mm[0]}-{fwhm_grid_mm[-1]} mm puts every sphere in the {standard.upper()} bands "
                         f"on {layout.scanner.name}")


def _images_per_iteration(study, protocol: ReconstructionProtocol, n_iterations: int,
                          progress: bool) -> dict[int, np.ndarray]:
    """Unfiltered AW-OSEM images after each of ``n_iterations`` iterations."""
    from petrecon.recon.study import reconstruct_study

    images: dict[int, np.ndarray] = {}

    def keep(iteration: int, subset: int, image: np.ndarray) -> None:
        if subset == protocol.osem.n_subsets - 1:
            images[iteration] = np.array(image, copy=True)

    unfiltered = dataclasses.replace(protocol, osem=OsemProtocol(n_iterations, protocol.osem.n_subsets, 0.0))
    reconstruct_study(study, unfiltered, progress=progress, callback=keep)
    return images


def _nema(image: np.ndarray, fwhm_mm: float, grid: ImageGrid, geometry) -> NemaResult:
    volume = Volume(gaussian_post_filter(image, fwhm_mm, grid.voxel_size_mm), grid)
    return analyse_nema(volume, activity_ratio=EARL_ACTIVITY_RATIO, geometry=geometry)


def _interval_text(values: list[float]) -> str:
    return "none" if not values else f"{min(values):g}-{max(values):g} mm"
