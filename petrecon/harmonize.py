"""Harmonisation: the protocol, or the extra image filter, that puts a scanner's NEMA recovery inside the EARL bands.

EARL practice (Kaalep et al., EJNMMI 45:1344, 2018; EANM guideline 2015;
reference/quantification.md): reconstruct the NEMA IEC phantom (10:1) with
the site's protocol and sweep a Gaussian filter (and the iterations if
needed) until every sphere's RC max and RC A50-mean lie in the bands of
EARL1 or EARL2. Two ways, on the scanner's simulated phantom or on an image:

* :func:`harmonise` (raw data kept: a *reconstruction protocol*):

  1. simulate ``nema-iec`` at 10:1 on the scanner (:func:`simulate_iec`);
  2. reconstruct once by AW-OSEM with no post-filter, keeping the image
     after each iteration (``max(iterations)`` in all);
  3. for each candidate iteration count (the clinical 4 first), filter with
     every FWHM of ``fwhm_grid_mm`` (:func:`search_filter`, the phantom found
     once); the FWHMs where every sphere passes form an interval: its middle
     is chosen (the most room on both sides);
  4. if none passes, repeat 2-3 with the next PSF model of ``psf_fwhm_mm``
     (EARL2's RC max bands above 1 for the large spheres need the edge
     overshoot of a PSF reconstruction, as on the scanners EARL2 accredits);
  5. return the protocol (PSF, iterations, subsets, FWHM pinned; no image
     grid and no calibration: those of the study it is applied to) and the RCs.

* :func:`find_image_filter` (retrospective cohorts: images only, an
  :class:`~petrecon.quant.image_harmonisation.ImageHarmonisation`): the same
  sweep of an *extra* Gaussian over an IEC image reconstructed with the
  clinical protocol (a site's phantom series, or :func:`image_filter_for_scanner`'s
  simulation).

The simulated phantom is the expected (noise-free) data with neither
scatter nor randoms: what ideal scatter and randoms corrections restore.
Recovery is a matter of resolution (the scanner's detector blur and the
isotope's positron range, both simulated), and the corrections' own accuracy
is tested elsewhere (petrecon.recon.study); leaving them out makes the run
three times cheaper. Recovery depends only on ratios, so the images need no
calibration here. Filtering and analysis of one FWHM take a fraction of a
second; the reconstruction dominates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.operators import gaussian_post_filter
from petrecon.quant.earl import EARL_BANDS
from petrecon.quant.image_harmonisation import ImageHarmonisation
from petrecon.quant.nema import NemaResult, PhantomGeometry, analyse_nema, find_phantom
from petrecon.recon.osem import OsemProtocol
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.volume import ImageGrid, Volume

EARL_ACTIVITY_RATIO = 10.0
#: Filter FWHMs swept (mm): 0 to 12 mm in 0.25 mm steps.
DEFAULT_FWHM_GRID_MM = tuple(float(f) for f in np.round(np.arange(0.0, 12.01, 0.25), 2))
#: Iteration counts tried, in order of preference (the clinical 4 first).
DEFAULT_ITERATIONS = (4, 3, 5, 2, 6)
#: Image-space PSF models tried in turn (0: none; 4 mm: about the Biograph detector resolution, 4 mm crystals,
#: reference/scanners.md).
DEFAULT_PSF_FWHM_MM = (0.0, 4.0)
#: Points of the coarse first pass of :func:`search_filter`.
COARSE_POINTS = 12


@dataclass
class FilterSearch:
    """One sweep of a Gaussian filter over one image.

    Attributes
    ----------
    passing_fwhm_mm : list of float
        The FWHMs where every sphere's RC max and RC A50-mean lie in the bands.
    chosen_fwhm_mm : float or None
        The passing FWHM nearest the middle of the passing ones (None: none passes).
    nema : NemaResult
        Analysis at ``chosen_fwhm_mm``, else at the first FWHM of the sweep (for the error message).
    """

    passing_fwhm_mm: list[float]
    chosen_fwhm_mm: float | None
    nema: NemaResult


@dataclass
class HarmonisationResult:
    """The harmonised protocol and the recovery it gives.

    Attributes
    ----------
    protocol : ReconstructionProtocol
        Iterations, subsets, PSF and post-filter pinned; no image grid, no calibration.
    standard : str
        ``earl1`` or ``earl2``.
    nema : NemaResult
        Analysis of the phantom reconstructed with ``protocol``.
    passing_fwhm_mm : dict of int to list of float
        Per iteration count tried, the FWHMs where every sphere passed.
    isotope : str
        The phantom's isotope.
    """

    protocol: ReconstructionProtocol
    standard: str
    nema: NemaResult
    passing_fwhm_mm: dict[int, list[float]] = field(default_factory=dict)
    isotope: str = "F18"

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the command line."""
        osem = self.protocol.osem
        passing = _interval_text(self.passing_fwhm_mm.get(osem.n_iterations, []))
        return [f"{self.standard.upper()} ({self.isotope}): {osem.n_iterations} iterations x {osem.n_subsets} "
                f"subsets, {osem.post_filter_fwhm_mm:g} mm Gaussian (passing FWHMs at {osem.n_iterations} "
                f"iterations: {passing})"] + rc_lines(self.nema)


@dataclass
class ImageFilterResult:
    """The extra image filter and the recovery it gives.

    Attributes
    ----------
    harmonisation : ImageHarmonisation
        The filter (its ``fwhm_mm`` the middle of the passing interval).
    nema : NemaResult
        Analysis of the phantom image smoothed by it.
    passing_fwhm_mm : list of float
        The extra FWHMs where every sphere passed.
    activity_ratio : float
        Sphere : background ratio the RCs use.
    """

    harmonisation: ImageHarmonisation
    nema: NemaResult
    passing_fwhm_mm: list[float]
    activity_ratio: float

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the command line."""
        h = self.harmonisation
        made_for = ", ".join(f"{key} {value}" for key, value in (("scanner", h.scanner), ("isotope", h.isotope))
                             if value)
        return [f"{h.standard.upper()} image filter{f' ({made_for})' if made_for else ''}: extra {h.fwhm_mm:g} mm "
                f"Gaussian (passing: {_interval_text(self.passing_fwhm_mm)}; spheres {self.activity_ratio:g}:1)"
                ] + rc_lines(self.nema)


def rc_lines(nema: NemaResult) -> list[str]:
    """A table of every sphere's RC max and RC A50-mean."""
    return ["d_mm  RCmax  RCa50"] + [f"{s.diameter_mm:<5g} {s.rc_max:.3f}  {s.rc_mean_a50:.3f}" for s in nema.spheres]


def search_filter(volume: Volume, standard: str, *, fwhm_grid_mm: tuple[float, ...] | None = None,
                  activity_ratio: float = EARL_ACTIVITY_RATIO, sphere_activity: float | None = None,
                  geometry: PhantomGeometry | None = None) -> FilterSearch:
    """Sweep a Gaussian over an IEC image and keep the FWHMs of ``fwhm_grid_mm`` that pass ``standard``.

    Recovery falls monotonically as the filter widens (every RC of a blurred
    hot sphere does), so the passing FWHMs form one interval: the sweep
    analyses about :data:`COARSE_POINTS` evenly spaced FWHMs first, then
    widens the passing ones point by point to the interval's edges on the
    fine grid (about 20 analyses instead of 49 for the default grid); where
    no coarse point passes it analyses every point.

    Parameters
    ----------
    volume : Volume
        The IEC phantom image (any linear unit).
    standard : str
        ``"earl1"`` or ``"earl2"``.
    fwhm_grid_mm : tuple of float, optional
        FWHMs to try (default :data:`DEFAULT_FWHM_GRID_MM`; 0 = the image as it is).
    activity_ratio, sphere_activity : float
        Truth for :func:`petrecon.quant.nema.analyse_nema`.
    geometry : PhantomGeometry, optional
        The phantom found earlier (default: found once on ``volume``).
    """
    standard = _check_standard(standard)
    fwhm_grid_mm = DEFAULT_FWHM_GRID_MM if fwhm_grid_mm is None else tuple(fwhm_grid_mm)
    geometry = geometry or find_phantom(volume)

    def analyse(fwhm_mm: float) -> NemaResult:
        smoothed = Volume(gaussian_post_filter(volume.data, fwhm_mm, volume.grid.voxel_size_mm), volume.grid)
        return analyse_nema(smoothed, activity_ratio=activity_ratio, sphere_activity=sphere_activity,
                            geometry=geometry)

    grid = sorted({float(f) for f in fwhm_grid_mm})
    results: dict[float, NemaResult] = {}

    def passes(index: int) -> bool:
        if grid[index] not in results:
            results[grid[index]] = analyse(grid[index])
        return results[grid[index]].earl[standard]["passes"]

    step = max(1, len(grid) // COARSE_POINTS)
    coarse = [i for i in range(0, len(grid), step) if passes(i)]
    if coarse:  # widen the coarse interval to the fine grid's edges
        low, high = min(coarse), max(coarse)
        while low > 0 and passes(low - 1):
            low -= 1
        while high < len(grid) - 1 and passes(high + 1):
            high += 1
        passing = grid[low:high + 1]
    else:  # an interval narrower than the coarse step, or none: every point
        passing = [grid[i] for i in range(len(grid)) if passes(i)]
    if not passing:
        return FilterSearch([], None, results[grid[0]])
    middle_mm = float(np.median(passing))
    chosen_mm = min(passing, key=lambda f: abs(f - middle_mm))
    if chosen_mm not in results:
        results[chosen_mm] = analyse(chosen_mm)
    return FilterSearch(passing, chosen_mm, results[chosen_mm])


def simulate_iec(layout: SinogramLayout, *, grid: ImageGrid | None = None, isotope: str = "F18",
                 progress: bool = True):
    """The IEC phantom at EARL's 10:1, noise-free, without scatter or randoms, on ``layout`` (a Container).

    ``grid`` (default: the layout scanner's default image, which a reduced
    sampling records) only sizes the unused truth volumes.
    """
    from petrecon.simulate.acquisition import simulate_study

    grid = grid or ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    return simulate_study("nema-iec", scanner=layout, isotope=isotope, parameters={"ratio": EARL_ACTIVITY_RATIO},
                          noise=False, scatter=False, randoms=False, grid=grid, supersampling=1,
                          progress=progress).container


def harmonise(scanner: str | SinogramLayout, standard: str, *, grid: ImageGrid | None = None,
              base: ReconstructionProtocol = ReconstructionProtocol(), iterations: tuple[int, ...] | None = None,
              fwhm_grid_mm: tuple[float, ...] | None = None, psf_fwhm_mm: tuple[float, ...] | None = None,
              isotope: str = "F18", progress: bool = True) -> HarmonisationResult:
    """Find the post-filter (and iterations) that put every NEMA sphere in the ``standard``'s bands.

    Parameters
    ----------
    scanner : str or SinogramLayout
        Registry name (its default layout), or a layout, e.g. a
        :func:`petrecon.geometry.reduced.reduced_sampling`'s.
    standard : str
        ``"earl1"`` or ``"earl2"``.
    grid : ImageGrid, optional
        Reconstruction grid of the phantom (default: the layout scanner's
        default image). The protocol returned pins no grid either way.
    base : ReconstructionProtocol
        Everything but iterations, post-filter and PSF (subsets, corrections).
    iterations : tuple of int, optional
        Iteration counts to try, in order of preference (default :data:`DEFAULT_ITERATIONS`).
    fwhm_grid_mm : tuple of float, optional
        Post-filter FWHMs to try (default :data:`DEFAULT_FWHM_GRID_MM`).
    psf_fwhm_mm : tuple of float, optional
        Image-space PSF models to try in turn (default :data:`DEFAULT_PSF_FWHM_MM`).
    isotope : str
        Isotope of the phantom (EARL's is 18F; 68Ga's positron range lowers recovery).
    progress : bool
        Progress bars.

    Raises
    ------
    ParameterError
        Unknown standard, or no iteration count and FWHM put every sphere in the bands.
    """
    from petrecon.isotopes import get_isotope

    standard = _check_standard(standard)
    isotope = get_isotope(isotope).name
    iterations = iterations or DEFAULT_ITERATIONS
    psf_fwhm_mm = DEFAULT_PSF_FWHM_MM if psf_fwhm_mm is None else psf_fwhm_mm
    layout = default_layout(scanner) if isinstance(scanner, str) else scanner
    name = layout.scanner.name
    study = simulate_iec(layout, grid=grid, isotope=isotope, progress=progress)
    passing: dict[int, list[float]] = {}
    for psf_mm in psf_fwhm_mm:
        model = _phantom_model(dataclasses.replace(base, psf_fwhm_mm=psf_mm), grid)
        images = _images_per_iteration(study, model, max(iterations), progress)
        geometry = find_phantom(images[max(iterations)].smoothed(5.0))
        for n_iterations in iterations:
            search = search_filter(images[n_iterations].volume, standard, fwhm_grid_mm=fwhm_grid_mm,
                                   geometry=geometry)
            passing[n_iterations] = search.passing_fwhm_mm
            if search.chosen_fwhm_mm is not None:
                protocol = dataclasses.replace(
                    base, name=f"{standard}-{name}-{isotope.lower()}", scanner=name, psf_fwhm_mm=psf_mm,
                    image_shape=None, voxel_size_mm=None, calibration_bq_per_ml_per_unit=None,
                    description=f"{standard.upper()}-harmonised AW-OSEM for {name}, {isotope}: {n_iterations} "
                                f"iterations x {base.osem.n_subsets} subsets, {search.chosen_fwhm_mm:g} mm Gaussian"
                                + (f", {psf_mm:g} mm PSF" if psf_mm else "")
                                + "; image grid and calibration from the study",
                    osem=OsemProtocol(n_iterations, base.osem.n_subsets, search.chosen_fwhm_mm))
                return HarmonisationResult(protocol, standard, search.nema, passing, isotope)
    raise ParameterError(f"no PSF model in {psf_fwhm_mm} mm, iteration count in {iterations} and post-filter in "
                         f"{min(fwhm_grid_mm or DEFAULT_FWHM_GRID_MM)}-{max(fwhm_grid_mm or DEFAULT_FWHM_GRID_MM)}"
                         f" mm puts every sphere in the {standard.upper()} bands on {name} ({isotope})")


def find_image_filter(nema_volume: Volume, standard: str, **options) -> ImageHarmonisation:
    """The extra Gaussian that puts an IEC phantom image's recovery in ``standard``'s bands.

    Shorthand for ``image_filter_search(nema_volume, standard, **options).harmonisation``
    (:func:`image_filter_search`).
    """
    return image_filter_search(nema_volume, standard, **options).harmonisation


def image_filter_search(nema_volume: Volume, standard: str, *, activity_ratio: float | None = None,
                        fwhm_grid_mm: tuple[float, ...] | None = None, name: str | None = None,
                        scanner: str | None = None, isotope: str | None = None,
                        source: str | None = None) -> ImageFilterResult:
    """Sweep an extra Gaussian over a reconstructed IEC phantom image (EARL image-based harmonisation).

    Parameters
    ----------
    nema_volume : Volume
        The IEC phantom reconstructed with the clinical protocol.
    standard : str
        ``"earl1"`` or ``"earl2"``.
    activity_ratio : float, optional
        True sphere : background ratio. Default: the volume's ``nema_truth``
        (as ``petrecon nema`` reads it), else EARL's 10:1 filling.
    fwhm_grid_mm : tuple of float, optional
        Extra FWHMs to try (default :data:`DEFAULT_FWHM_GRID_MM`).
    name, scanner, isotope, source : str, optional
        Recorded in the file (``name`` default: the standard).

    Raises
    ------
    ParameterError
        No FWHM passes: names the standard and lists the RCs of the image as given.
    """
    standard = _check_standard(standard)
    truth = nema_volume.metadata.get("nema_truth") or nema_volume.metadata.get("provenance", {}).get("nema_truth", {})
    sphere_activity = None if activity_ratio is not None else truth.get("sphere_activity")
    activity_ratio = activity_ratio or truth.get("activity_ratio") or EARL_ACTIVITY_RATIO
    search = search_filter(nema_volume, standard, fwhm_grid_mm=fwhm_grid_mm, activity_ratio=activity_ratio,
                           sphere_activity=sphere_activity)
    if search.chosen_fwhm_mm is None:
        grid_mm = fwhm_grid_mm or DEFAULT_FWHM_GRID_MM
        raise ParameterError(
            f"no extra Gaussian of {min(grid_mm):g}-{max(grid_mm):g} mm puts every sphere in the {standard.upper()}"
            f" bands; at {grid_mm[0]:g} mm (d_mm: RCmax/RCa50) "
            + ", ".join(f"{s.diameter_mm:g}: {s.rc_max:.2f}/{s.rc_mean_a50:.2f}" for s in search.nema.spheres)
            + " (a sharper reconstruction, e.g. PSF, is needed where they are below the bands)")
    harmonisation = ImageHarmonisation(name=name or standard, standard=standard, fwhm_mm=search.chosen_fwhm_mm,
                                       scanner=scanner, isotope=isotope, source=source)
    return ImageFilterResult(harmonisation, search.nema, search.passing_fwhm_mm, float(activity_ratio))


def image_filter_for_scanner(scanner: str | SinogramLayout, standard: str, *,
                             base: ReconstructionProtocol = ReconstructionProtocol(), isotope: str = "F18",
                             fwhm_grid_mm: tuple[float, ...] | None = None, progress: bool = True
                             ) -> ImageFilterResult:
    """Simulate the IEC phantom on ``scanner``, reconstruct it once with ``base`` and search the extra filter.

    Parameters
    ----------
    scanner : str or SinogramLayout
        Registry name (its default layout), or a layout (a reduced sampling's:
        its image grid is the scanner's default).
    standard : str
        ``"earl1"`` or ``"earl2"``.
    base : ReconstructionProtocol
        The clinical protocol the patients were reconstructed with (default
        AW-OSEM 4 x 8 + 5 mm).
    isotope : str
        The phantom's isotope.
    fwhm_grid_mm : tuple of float, optional
        Extra FWHMs to try.
    progress : bool
        Progress bars.
    """
    from petrecon.isotopes import get_isotope
    from petrecon.recon.study import reconstruct_study

    standard = _check_standard(standard)
    isotope = get_isotope(isotope).name
    layout = default_layout(scanner) if isinstance(scanner, str) else scanner
    study = simulate_iec(layout, isotope=isotope, progress=progress)
    volume = reconstruct_study(study, _phantom_model(base, None), progress=progress).volume
    return image_filter_search(volume, standard, activity_ratio=EARL_ACTIVITY_RATIO, fwhm_grid_mm=fwhm_grid_mm,
                               scanner=layout.scanner.name, isotope=isotope,
                               source=f"simulated nema-iec on {layout.scanner.name}, {base.name} "
                                      f"({base.dicom_method()})")


@dataclass
class _Image:
    """One unfiltered OSEM image on its grid."""

    data: np.ndarray
    grid: ImageGrid

    @property
    def volume(self) -> Volume:
        return Volume(self.data, self.grid)

    def smoothed(self, fwhm_mm: float) -> Volume:
        return Volume(gaussian_post_filter(self.data, fwhm_mm, self.grid.voxel_size_mm), self.grid)


def _phantom_model(protocol: ReconstructionProtocol, grid: ImageGrid | None) -> ReconstructionProtocol:
    """``protocol`` for the simulated phantom: no scatter, randoms or dead time to correct (:func:`simulate_iec`), the
    phantom's own calibration, on ``grid`` if given (else the layout's default image)."""
    corrections = dataclasses.replace(protocol.corrections, scatter=False, randoms=False, dead_time=False)
    return dataclasses.replace(protocol, corrections=corrections, calibration_bq_per_ml_per_unit=None,
                               image_shape=grid.shape if grid else None,
                               voxel_size_mm=grid.voxel_size_mm if grid else None)


def _images_per_iteration(study, protocol: ReconstructionProtocol, n_iterations: int,
                          progress: bool) -> dict[int, _Image]:
    """Unfiltered AW-OSEM images after each of ``n_iterations`` iterations.

    OSEM zeroes the voxels no line of response reaches (the corners of a
    square grid wider than the ring, e.g. the Biograph's own 344 x 344 image
    of 717 mm) only in the image it returns: the images its callback sees
    still hold the start value 1 there, far above any activity in the
    uncalibrated unit (~0.005 for the phantom's background), which the
    phantom search would take for the body. Those voxels are zero in the
    final image, and EM's multiplicative update keeps a voxel at zero from
    its first update on wherever the data are zero, so the final image's
    zeros are zeroed in every iteration's image.
    """
    from petrecon.recon.study import image_grid, reconstruct_study

    arrays: dict[int, np.ndarray] = {}

    def keep(iteration: int, subset: int, image: np.ndarray) -> None:
        if subset == protocol.osem.n_subsets - 1:
            arrays[iteration] = np.array(image, copy=True)

    unfiltered = dataclasses.replace(protocol, osem=OsemProtocol(n_iterations, protocol.osem.n_subsets, 0.0))
    unseen = reconstruct_study(study, unfiltered, progress=progress, callback=keep).volume.data == 0
    grid = image_grid(unfiltered, study.layout)
    return {iteration: _Image(np.where(unseen, np.float32(0.0), array), grid) for iteration, array in arrays.items()}


def _check_standard(standard: str) -> str:
    standard = str(standard).lower()
    if standard not in EARL_BANDS:
        raise ParameterError(f"standard must be one of {', '.join(EARL_BANDS)}, got {standard!r}")
    return standard


def _interval_text(values: list[float]) -> str:
    return "none" if not values else f"{min(values):g}-{max(values):g} mm"
