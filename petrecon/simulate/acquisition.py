"""Simulate a PET acquisition of a declarative phantom: :func:`simulate_study`.

Model of the expected counts of a bin ``i`` (units: counts in the frame)::

    trues_i   = K x n_i x a_i x (G * p)_i
    K         = kappa x T x P_beta x (1 - exp(-lambda T)) / (lambda T)
    scatter_i = single-scatter integral (petrecon.simulate.scatter), scaled so scatter / (trues + scatter) = SF
    randoms_i = 2 tau x T x (1 - exp(-2 lambda T)) / (2 lambda T) x sum over pairs s1 s2
    prompts   = Poisson(trues + scatter) + Poisson(randoms),  delays = Poisson(randoms)

with ``p_i`` the exact line integral (Bq/ml x mm) of the activity at the
frame start along the bin's LOR, ``G`` the resolution model
(:mod:`petrecon.simulate.resolution`), ``a_i = exp(-int mu dl)`` from the
phantom's materials, ``n_i`` the normalisation (:mod:`petrecon.simulate.detection`),
``T`` the frame duration, ``lambda`` the decay constant, ``P_beta`` the
positron fraction, ``s`` the crystals' singles rates at the frame start and
``kappa`` the sensitivity scale (cps per Bq/ml x mm): set so that a 700 mm
line source (radius 10 mm) on the axis, in air, gives the scanner's NEMA
sensitivity per kBq of 18F (:mod:`petrecon.simulate.performance`), without
the resolution model (which only moves counts between bins: those moved into
gap bins, of normalisation 0, are lost as in a real scanner; 0.2 % of a line
source on the ``test`` scanner).

The reconstruction model is therefore ``y_bar = m (A x) + a`` with
``m = K x normalisation x attenuation_factors`` (:func:`multiplicative_sinogram`,
``K`` stored as the attribute ``multiplicative_scale``) and
``a = randoms + scatter`` (:func:`additive_sinogram`): AW-OSEM with these
returns Bq/ml at the frame start (the calibration test of the chain).

Container contents (:mod:`petrecon.io.container`)
--------------------------------------------------
Sinograms: ``prompts``, ``delays`` (counts; float32 expectations with
``noise=False``), ``normalisation``, ``attenuation_factors``, ``randoms``,
``scatter``, ``trues_expected`` (noise-free). Volumes on the scanner's
default grid (or ``grid``): ``activity_bq_per_ml`` (at the frame start),
``mu_per_cm``, ``ct_hu``, ``dixon_water``, ``dixon_fat``. Attributes:
``phantom``, ``phantom_parameters``, ``scanner``, ``isotope``,
``half_life_s``, ``positron_fraction``, ``injected_activity_bq``,
``duration_s``, ``frame_start_s``, ``sensitivity_cps_per_kbq``,
``sensitivity_cps_per_bq_per_ml_mm`` (kappa), ``multiplicative_scale`` (K),
``decay_factor_frame_start``, ``scatter_fraction``, ``single_scatter_fraction`` (physical, before
scaling to ``scatter_fraction``), ``system_fwhm_mm``,
``detector_fwhm_mm``, ``positron_range_fwhm_mm``, ``seed``, ``noise``,
``counts`` (totals), ``listmode_file`` (when written).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from petrecon import __version__
from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.geometry.patient import bed_attributes, check_patient_position
from petrecon.io.atomic import EXISTS
from petrecon.io.container import Container
from petrecon.isotopes import get_isotope
from petrecon.simulate import detection
from petrecon.simulate.listmode import EventSource, listmode_words
from petrecon.simulate.performance import get_performance
from petrecon.simulate.phantom import Phantom, load_phantom, phantom_from_dict
from petrecon.simulate.placement import place_phantom
from petrecon.simulate.projection import project_phantom
from petrecon.simulate.resolution import blur_sinogram, detector_fwhm_mm, positron_range_fwhm_mm, system_fwhm_mm
from petrecon.simulate.scatter import SimulatedScatter, scatter_sinogram
from petrecon.simulate.voxelise import axial_activity_profile, total_activity_bq, voxelise
from petrecon.volume import ImageGrid

LINE_SOURCE_RADIUS_MM = 10.0
LINE_SOURCE_LENGTH_MM = 700.0
F18_POSITRON_FRACTION = get_isotope("F18").positron_fraction


@dataclass
class SimulatedStudy:
    """A simulation's container and, when asked for, its PETLINK list-mode words."""

    container: Container
    listmode_words: np.ndarray | None = None


class _StageBar:
    """A progress bar over the stages of a simulation (a no-op when disabled)."""

    def __init__(self, enabled: bool, names: list[str]) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(names), desc="simulate", unit="stage")

    def __call__(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} done")
            self.bar.update(1)
            if self.bar.n == self.bar.total:
                self.bar.close()


def decay_average(decay_constant_per_s: float, duration_s: float) -> float:
    """Mean of ``exp(-lambda t)`` over ``[0, T)``: ``(1 - exp(-lambda T)) / (lambda T)``.

    Examples
    --------
    >>> round(decay_average(math.log(2) / 4069.8, 180.0), 6)
    0.984827
    """
    x = decay_constant_per_s * duration_s
    return 1.0 if x < 1e-12 else -math.expm1(-x) / x


def sensitivity_scale(layout: SinogramLayout, normalisation: np.ndarray, sensitivity_cps_per_kbq: float) -> float:
    """kappa (cps per Bq/ml x mm): the line-source calibration of the module docstring.

    Examples
    --------
    >>> layout = default_layout("test")
    >>> kappa = sensitivity_scale(layout, np.ones(layout.shape, np.float32), 5.0)
    >>> 0 < kappa < 1
    True
    """
    source = phantom_from_dict({"regions": [{"activity": 1.0, "material": "air", "shapes": [
        {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": LINE_SOURCE_RADIUS_MM,
         "length_mm": LINE_SOURCE_LENGTH_MM}]}]})
    half_width = int(math.ceil(LINE_SOURCE_RADIUS_MM / layout.radial_bin_size_mm)) + 2
    centre = layout.n_radial_bins // 2
    bins = slice(max(0, centre - half_width), min(layout.n_radial_bins, centre + half_width + 1))
    chords = project_phantom(layout, source.packed(), np.ones((1, 1)), radial_bins=bins)[..., 0]
    counted = float(np.sum(normalisation[..., bins] * chords[..., bins], dtype=np.float64))
    activity_bq = math.pi * LINE_SOURCE_RADIUS_MM**2 * LINE_SOURCE_LENGTH_MM / 1000.0
    return sensitivity_cps_per_kbq / 1000.0 * activity_bq / (F18_POSITRON_FRACTION * counted)


def region_concentrations_bq_per_ml(phantom: Phantom, injected_activity_bq: float | None) -> tuple[np.ndarray, float]:
    """Per-region concentrations at the reference time (Bq/ml) and the injected activity (Bq) they imply.

    SUV phantoms: ``SUV x injected / (weight_kg x 1000 g)``. Bq/ml phantoms:
    as given, scaled so that the phantom's total equals ``injected_activity_bq``
    when one is given.
    """
    values = phantom.region_values("activity")
    if phantom.activity_unit == "SUV":
        injected = phantom.injected_activity_bq if injected_activity_bq is None else float(injected_activity_bq)
        return values * injected / (phantom.weight_kg * 1000.0), injected
    total = total_activity_bq(phantom)
    if injected_activity_bq is None:
        return values, total
    if total <= 0:
        raise ParameterError(f"phantom {phantom.name!r} holds no activity to scale")
    return values * (float(injected_activity_bq) / total), float(injected_activity_bq)


def simulate_study(
    phantom: Phantom | str,
    *,
    scanner: str | SinogramLayout = "mmr",
    span: int | None = None,
    isotope: str | None = None,
    injected_activity_bq: float | None = None,
    duration_s: float | None = None,
    frame_start_s: float | None = None,
    parameters: dict | None = None,
    seed: int = 0,
    noise: bool = True,
    randoms: bool = True,
    scatter: bool = True,
    resolution: bool = True,
    sensitivity_cps_per_kbq: float | None = None,
    scatter_fraction: float | None = None,
    efficiency_spread: float = detection.EFFICIENCY_SPREAD,
    grid: ImageGrid | None = None,
    supersampling: int = 3,
    listmode: bool = False,
    progress: bool = True,
    patient_position: str | None = "HFS",
    bed_position_mm: float = 0.0,
) -> SimulatedStudy:
    """Simulate one frame of ``phantom`` on ``scanner`` (model in the module docstring).

    Parameters
    ----------
    phantom : Phantom or str
        A phantom, a shipped phantom's name or a TOML path.
    scanner, span : str or SinogramLayout, int
        Registry scanner and axial compression (default: the scanner's), or a
        (non-TOF) layout to simulate directly (then ``span`` must be None).
    isotope, injected_activity_bq, duration_s, frame_start_s : optional
        Default to the phantom's values (``frame_start_s`` counts from injection).
    parameters : dict, optional
        Phantom parameter overrides (e.g. ``{"ratio": 10}``).
    seed : int
        Seed of every random draw (efficiencies, noise, list-mode): same seed, same study.
    noise, randoms, scatter, resolution : bool
        Switch the parts of the model.
    sensitivity_cps_per_kbq, scatter_fraction : float, optional
        Override the scanner's NEMA figures.
    efficiency_spread : float
        Relative spread of the crystal efficiencies (0: all 1, gaps still 0).
    grid : ImageGrid, optional
        Grid of the ground-truth volumes (default: the scanner's reconstruction grid).
    supersampling : int
        Sub-samples per voxel and axis of the ground truth.
    listmode : bool
        Also return the PETLINK list-mode words (needs ``noise``).
    progress : bool
        Progress bars.
    patient_position, bed_position_mm : str or None, float
        Where the phantom (defined in patient coordinates, LPS) lies in the
        gantry (:func:`petrecon.simulate.placement.place_phantom`); recorded
        in the attributes as a real acquisition's header records them. None:
        the phantom is already in gantry coordinates (whole-body beds).

    Examples
    --------
    >>> study = simulate_study("uniform-cylinder", scanner="test", duration_s=10.0, progress=False,
    ...                        grid=ImageGrid.centred((8, 8, 4), (30.0, 30.0, 8.0)))
    >>> sorted(study.container.sinograms)[:3], study.container.attributes["isotope"]
    (['attenuation_factors', 'delays', 'normalisation'], 'F18')
    """
    if not isinstance(phantom, Phantom):
        phantom = load_phantom(phantom, parameters)
    elif parameters:
        raise ParameterError("parameters apply when loading a phantom; pass its name or path")
    if listmode and not noise:
        raise ParameterError("list-mode needs noisy counts (noise=True)")
    if patient_position is not None:
        phantom = place_phantom(phantom, patient_position, bed_position_mm)
    if isinstance(scanner, SinogramLayout):
        if span is not None or scanner.use_tof:
            raise ParameterError("with a layout, pass no span; TOF layouts are not simulated")
        layout = scanner
    else:
        layout = default_layout(scanner, span=span, tof=False)
    nuclide = get_isotope(isotope or phantom.isotope)
    duration_s = phantom.duration_s if duration_s is None else float(duration_s)
    frame_start_s = phantom.frame_start_s if frame_start_s is None else float(frame_start_s)
    if not duration_s > 0 or not frame_start_s >= 0:
        raise ParameterError(f"duration must be > 0 and frame start >= 0 s, got {duration_s}, {frame_start_s}")
    if injected_activity_bq is not None and not injected_activity_bq > 0:
        raise ParameterError(f"injected activity must be > 0 Bq, got {injected_activity_bq}")
    figures = get_performance(layout.scanner.name) if None in (sensitivity_cps_per_kbq, scatter_fraction) else None
    sensitivity_cps_per_kbq = figures.sensitivity_cps_per_kbq if sensitivity_cps_per_kbq is None else sensitivity_cps_per_kbq
    scatter_fraction = (figures.scatter_fraction if scatter_fraction is None else scatter_fraction) if scatter else 0.0
    rng = np.random.default_rng(seed)
    stage = _StageBar(progress, ["normalisation", "projection", "resolution", "scatter", "randoms", "noise",
                                 "ground truth"])

    concentration_0, injected = region_concentrations_bq_per_ml(phantom, injected_activity_bq)
    decay_to_start = nuclide.decay_factor(frame_start_s)
    concentration = concentration_0 * decay_to_start
    mapping = detection.span1_map(layout)
    efficiencies = detection.crystal_efficiencies(layout.scanner, rng, efficiency_spread)
    normalisation = detection.normalisation_sinogram(layout, efficiencies, mapping)
    stage("normalisation")
    mu_per_mm = np.array([r.material.mu_per_cm / 10.0 for r in phantom.regions])
    projections = project_phantom(layout, phantom.packed(), np.stack([concentration, mu_per_mm], axis=1),
                                  progress=progress)
    attenuation_factors = np.exp(-projections[..., 1])
    emission = projections[..., 0]
    del projections
    stage("projection")
    fwhm_mm = system_fwhm_mm(layout.scanner, nuclide) if resolution else 0.0
    emission = blur_sinogram(emission, layout, fwhm_mm, fwhm_mm)
    stage("resolution")

    kappa = sensitivity_scale(layout, normalisation, sensitivity_cps_per_kbq)
    scale = kappa * duration_s * nuclide.positron_fraction * decay_average(nuclide.decay_constant_per_s, duration_s)
    attenuated = attenuation_factors * emission
    del emission
    trues = (scale * normalisation * attenuated).astype(np.float32)
    del attenuated
    simulated_scatter = (scatter_sinogram(layout, phantom.packed(), concentration, mu_per_mm, normalisation, scale,
                                          float(trues.sum(dtype=np.float64)), scatter_fraction) if scatter
                         else SimulatedScatter(np.zeros(layout.shape, np.float32), 0.0))
    scatter_expected = simulated_scatter.sinogram
    stage("scatter")
    singles = np.zeros_like(efficiencies)
    randoms_expected = np.zeros(layout.shape, np.float32)
    if randoms:
        z_mm, slab_bq = axial_activity_profile(phantom, concentration)
        singles = detection.crystal_singles_cps(layout.scanner, efficiencies, z_mm, slab_bq, nuclide.positron_fraction)
        randoms_expected = _randoms_expected(layout, singles, mapping, duration_s, nuclide.decay_constant_per_s)
    stage("randoms")
    words = None
    if noise:
        prompts, delays, words = _draw_counts(layout, trues + scatter_expected, randoms_expected, rng, listmode,
                                              efficiencies, singles, mapping, duration_s,
                                              nuclide.decay_constant_per_s)
    else:
        prompts = trues + scatter_expected + randoms_expected
        delays = randoms_expected.copy()
    stage("noise")

    grid = grid or ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    volumes = voxelise(phantom, grid, activity_bq_per_ml=concentration, supersampling=supersampling,
                       progress=progress)
    stage("ground truth")
    attributes = {
        "phantom": phantom.name, "phantom_parameters": phantom.parameters, "scanner": layout.scanner.name,
        "isotope": nuclide.name, "half_life_s": nuclide.half_life_s, "positron_fraction": nuclide.positron_fraction,
        "injected_activity_bq": injected, "duration_s": duration_s, "frame_start_s": frame_start_s,
        "decay_factor_frame_start": decay_to_start,
        "sensitivity_cps_per_kbq": sensitivity_cps_per_kbq, "sensitivity_cps_per_bq_per_ml_mm": kappa,
        "multiplicative_scale": scale, "scatter_fraction": scatter_fraction,
        "single_scatter_fraction": simulated_scatter.single_scatter_fraction,
        "system_fwhm_mm": fwhm_mm, "detector_fwhm_mm": detector_fwhm_mm(layout.scanner) if resolution else 0.0,
        "positron_range_fwhm_mm": positron_range_fwhm_mm(nuclide) if resolution else 0.0,
        "efficiency_spread": efficiency_spread, "seed": seed, "noise": noise, "supersampling": supersampling,
        "counts": {"trues": float(trues.sum(dtype=np.float64)),
                   "scatter": float(scatter_expected.sum(dtype=np.float64)),
                   "randoms": float(randoms_expected.sum(dtype=np.float64)),
                   "prompts": float(prompts.sum(dtype=np.float64)), "delays": float(delays.sum(dtype=np.float64))},
        "units": {"prompts": "counts", "randoms": "counts (expected)", "scatter": "counts (expected)",
                  "trues_expected": "counts (expected)", "activity_bq_per_ml": "Bq/ml at frame start"},
    }
    if patient_position is not None:
        attributes.update(patient_position=check_patient_position(patient_position), **bed_attributes(bed_position_mm))
    container = Container(
        sinograms={"prompts": prompts, "delays": delays, "normalisation": normalisation,
                   "attenuation_factors": attenuation_factors.astype(np.float32), "randoms": randoms_expected,
                   "scatter": scatter_expected, "trues_expected": trues},
        volumes=volumes, layout=layout, attributes=attributes,
        provenance={"software": f"petrecon {__version__}", "generator": "petrecon.simulate.simulate_study"},
    )
    return SimulatedStudy(container, words)


def _randoms_expected(layout: SinogramLayout, singles_cps: np.ndarray, mapping: detection.Span1Map,
                      duration_s: float, decay_constant_per_s: float) -> np.ndarray:
    """``2 tau x int_0^T s1(t) s2(t) dt`` per bin (singles at the frame start decaying with lambda)."""
    window_s = layout.scanner.coincidence_window_ns * 1e-9
    effective_s = duration_s * decay_average(2.0 * decay_constant_per_s, duration_s)
    return (window_s * effective_s * detection.pair_sum_sinogram(layout, singles_cps, mapping)).astype(np.float32)


def _draw_counts(layout: SinogramLayout, trues_and_scatter: np.ndarray, randoms_expected: np.ndarray,
                 rng: np.random.Generator, listmode: bool, efficiencies: np.ndarray, singles_cps: np.ndarray,
                 mapping: detection.Span1Map, duration_s: float, decay_constant_per_s: float):
    """Poisson prompts (trues + scatter, plus randoms) and delays, and the list-mode words when asked."""
    true_scatter_counts = rng.poisson(trues_and_scatter).astype(np.int32)
    prompt_randoms = rng.poisson(randoms_expected).astype(np.int32)
    delays = rng.poisson(randoms_expected).astype(np.int32)
    words = None
    if listmode:
        sources = [EventSource(true_scatter_counts, efficiencies, decay_constant_per_s, True),
                   EventSource(prompt_randoms, singles_cps, 2.0 * decay_constant_per_s, True),
                   EventSource(delays, singles_cps, 2.0 * decay_constant_per_s, False)]
        words = listmode_words(layout, sources, duration_s, rng, mapping)
    return true_scatter_counts + prompt_randoms, delays, words


def multiplicative_sinogram(container: Container) -> np.ndarray:
    """``m = multiplicative_scale x normalisation x attenuation_factors``: AW-OSEM with it gives Bq/ml at frame start."""
    return (np.float32(container.attributes["multiplicative_scale"]) * container.sinograms["normalisation"]
            * container.sinograms["attenuation_factors"]).astype(np.float32)


def additive_sinogram(container: Container) -> np.ndarray:
    """``a = randoms + scatter`` (expected counts)."""
    return (container.sinograms["randoms"] + container.sinograms["scatter"]).astype(np.float32)


def simulate_to_file(path, phantom: Phantom | str, *, overwrite: bool = False, **settings) -> tuple[SimulatedStudy, list]:
    """Simulate (:func:`simulate_study` with ``settings``) and write the container to ``path``.

    With ``listmode=True`` the PETLINK words go to a raw little-endian uint32
    file next to it (``study.h5`` -> ``study.l``), whose name is recorded in
    the container attribute ``listmode_file``, with a Siemens-style Interfile
    header beside it (``study.l.hdr``: scanner, word format, the span-1
    sinogram the words address, duration, isotope, patient orientation and
    ``%start horizontal bed position (mm)``), as the scanner writes one, so ``petrecon recon study.l`` reads
    the acquisition's frame from it. Existing outputs are refused
    before any work unless ``overwrite``; writes are atomic.

    Returns
    -------
    study, paths
        The simulated study and the written files.
    """
    from pathlib import Path

    from petrecon.io.container import write_container
    from petrecon.simulate.listmode import write_listmode, write_listmode_header

    path = Path(path)
    outputs = [path] + ([path.with_suffix(".l"), path.with_suffix(".l.hdr")] if settings.get("listmode") else [])
    for output in outputs:
        if output.exists() and not overwrite:
            raise ParameterError(f"{output}: {EXISTS}")
        if not output.parent.is_dir():
            raise ParameterError(f"{output}: folder {output.parent} does not exist")
    study = simulate_study(phantom, **settings)
    if study.listmode_words is not None:
        write_listmode(outputs[1], study.listmode_words, overwrite=overwrite)
        write_listmode_header(outputs[2], outputs[1].name, study.container.attributes, study.container.layout,
                              overwrite=overwrite)
        study.container.attributes["listmode_file"] = outputs[1].name
        study.container.attributes["listmode_words"] = int(study.listmode_words.size)
    write_container(path, study.container, overwrite=overwrite)
    return study, outputs
