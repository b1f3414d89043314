"""``petrecon demo``: the product's main job on a simulated NEMA IEC phantom, end to end.

1. **Simulate** the shipped ``nema-iec`` phantom filled with 68Ga at 10:1
   (EARL's ratio; background 5.3 kBq/ml, NEMA NU 2-2012) on the Biograph mMR
   with :func:`petrecon.simulate.acquisition.simulate_study`: exact line
   integrals (no inverse crime), the scanner's resolution and 68Ga's positron
   range, attenuation of the phantom's materials, crystal normalisation,
   scatter (NEMA scatter fraction), randoms from singles, Poisson noise.
2. **Reconstruct** with the shipped ``clinical`` protocol (AW-OSEM 4 x 8,
   5 mm FWHM Gaussian, every correction the study supports) by
   :func:`petrecon.recon.study.reconstruct_study`: Bq/ml at the scan start.
   Randoms and scatter are the simulator's expected sinograms, or, with
   ``estimate_corrections`` (``--estimate-corrections``), estimated from the
   data as for a real scan: randoms from the delays, scatter by single-scatter
   simulation with tail fitting in the protocol's 2 rounds (three
   reconstructions: about 3 times the reconstruction time).
3. **Analyse** by NEMA NU 2 (:func:`petrecon.quant.nema.analyse_nema`) against
   the true sphere concentration, with the EARL1 / EARL2 verdicts.
4. **Write** into the output folder: ``dicom/`` (PET series, SUV-ready),
   ``demo.h5`` (reconstruction, truth, protocol, provenance), ``report.html``
   (self-contained) and ``figures/*.png``.

Sampling
--------
The full mMR (344 bins x 252 views x 837 sinograms, 344 x 344 x 127 voxels)
takes about 10 minutes of AW-OSEM on two CPU cores, so without a GPU the demo
uses :func:`reduced_mmr_sampling` unless told ``full=True``: an axially short
mMR of 28 rings (113.75 mm) around the sphere plane, span 11, 200 of the 344
radial bins (the central 417 mm, the phantom is 294 mm wide), views mashed by 2
(126 views) and a 160 x 160 x 55 image at the mMR's pixel size (2.086 mm,
334 mm field of view) and 2.03 mm slices. In-plane resolution, the sampling of
each view and the voxel size are the scanner's, so the recovery coefficients
are the mMR's; the axial extent covers the sphere plane and the NU 2 background
slices (+-20 mm). With the GPU backend (:mod:`petrecon.backend`) the full
geometry is the default. The short scanner's sensitivity is calibrated like the
full one's (a 700 mm line source gives the mMR's 15 cps/kBq), so a 10-minute
frame holds more counts per LOR than the full scanner's would: the image is a
little less noisy than a real mMR scan.

The phantom has no patient weight; the DICOM series carries the mass of its
water (the fillable volume, 9.36 kg at 1 g/ml) as PatientWeight, so SUVbw of
a uniform fill would be 1 and the background reads just under 1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petrecon import __version__
from petrecon.errors import ParameterError
from petrecon.geometry.reduced import Sampling, full_sampling, reduced_sampling
from petrecon.quant.nema import NemaResult
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.volume import Volume

PHANTOM = "nema-iec"
SCANNER = "mmr"
ISOTOPE = "Ga68"
RADIOPHARMACEUTICAL = "68Ga (phantom fill)"
ACTIVITY_RATIO = 10.0  # EARL: spheres 10:1 against the background (reference/quantification.md)
DEFAULT_DURATION_S = 600.0  # the phantom's frame (NU 2 image-quality scans last minutes per bed)
LARGEST_SPHERE = "sphere_37"

#: What :func:`run_demo` writes into its output folder.
OUTPUTS = {"dicom": "dicom", "container": "demo.h5", "report": "report.html", "figures": "figures"}
FIGURES = {"mip": "mip.png", "slice": "sphere-plane.png", "recovery": "recovery.png", "rois": "nema-rois.png"}


DemoSampling = Sampling
"""The demo's sampling (:class:`petrecon.geometry.reduced.Sampling`)."""


def reduced_mmr_sampling(n_rings: int = 28, n_radial_bins: int = 200, view_mashing: int = 2,
                         image_size: int = 160) -> Sampling:
    """An axially short mMR around the sphere plane (module docstring): the CPU default.

    Examples
    --------
    >>> sampling = reduced_mmr_sampling()
    >>> sampling.layout.shape, sampling.grid.shape
    ((183, 126, 200), (160, 160, 55))
    """
    return reduced_sampling(SCANNER, n_rings=n_rings, view_mashing=view_mashing, n_radial_bins=n_radial_bins,
                            image_size=image_size)


def full_mmr_sampling() -> Sampling:
    """The Biograph mMR's default span-11 sinogram and 344 x 344 x 127 image (the GPU default).

    Examples
    --------
    >>> full_mmr_sampling().layout.shape
    (837, 252, 344)
    """
    return full_sampling(SCANNER)


def default_is_full() -> bool:
    """Whether the full geometry is the default: yes when the backend is CUDA (:mod:`petrecon.backend`)."""
    from petrecon.backend import default_backend

    return default_backend() == "cuda"


def clinical_protocol(n_iterations: int = 4, n_subsets: int = 8, post_filter_fwhm_mm: float = 5.0
                      ) -> ReconstructionProtocol:
    """The shipped ``clinical`` protocol with its OSEM parameters replaced (defaults: its own)."""
    from petrecon.recon.osem import OsemProtocol

    protocol = ReconstructionProtocol.load("clinical")
    return dataclasses.replace(protocol, osem=OsemProtocol(n_iterations, n_subsets, post_filter_fwhm_mm))


@dataclass
class DemoResult:
    """What a demo run measured and wrote.

    Attributes
    ----------
    output_dir : Path
    paths : dict of str to Path
        ``dicom``, ``container``, ``report`` and one per figure.
    nema : NemaResult
        Analysis of the reconstruction against the true sphere concentration.
    sampling : DemoSampling
    protocol : ReconstructionProtocol
        As run (image grid pinned).
    counts : dict of str to float
        Simulated totals: trues, scatter, randoms (expected), prompts, delays.
    corrected : tuple of str
        DICOM CorrectedImage codes of the corrections applied.
    truth_background_bq_per_ml : float
        True background concentration at the scan start.
    timings_s : dict of str to float
        Wall time of simulate, reconstruct, analyse, write.
    roi_example : str
        ``sphere:x,y,z,r`` of the 37 mm sphere in DICOM patient coordinates (for ``petrecon suv``).
    randoms_and_scatter : str
        Where the randoms and scatter sinograms came from: the simulator's, or estimated from the data.
    """

    output_dir: Path
    paths: dict[str, Path]
    nema: NemaResult
    sampling: DemoSampling
    protocol: ReconstructionProtocol
    counts: dict[str, float]
    corrected: tuple[str, ...]
    truth_background_bq_per_ml: float
    timings_s: dict[str, float] = field(default_factory=dict)
    roi_example: str = ""
    randoms_and_scatter: str = "the simulator's"

    def summary_lines(self) -> list[str]:
        """The console summary: sampling, counts, figures, verdicts, paths."""
        n = self.nema
        osem = self.protocol.osem
        lines = [f"sampling          {self.sampling.description}",
                 f"simulated         {PHANTOM} {ACTIVITY_RATIO:g}:1, {ISOTOPE}, {self.counts['prompts']:.3g} prompts "
                 f"({self.counts['trues']:.3g} trues, {self.counts['scatter']:.3g} scatter, "
                 f"{self.counts['randoms']:.3g} randoms)",
                 f"reconstructed     AW-OSEM {osem.n_iterations} x {osem.n_subsets}, {osem.post_filter_fwhm_mm:g} mm "
                 f"Gaussian; corrections {' '.join(self.corrected)}; randoms and scatter "
                 f"{self.randoms_and_scatter}",
                 f"background        {n.background_mean:.1f} Bq/ml (truth {self.truth_background_bq_per_ml:.1f}, "
                 f"ratio {n.background_mean / self.truth_background_bq_per_ml:.3f}); lung residual "
                 f"{n.lung_residual_percent:.1f} %",
                 "sphere (mm)       " + "  ".join(f"{s.diameter_mm:>5g}" for s in n.spheres),
                 "RCmax             " + "  ".join(f"{s.rc_max:5.2f}" for s in n.spheres),
                 "RCmean (A50)      " + "  ".join(f"{s.rc_mean_a50:5.2f}" for s in n.spheres),
                 "RCpeak            " + "  ".join(f"{s.rc_peak:5.2f}" for s in n.spheres),
                 "EARL              " + ", ".join(f"{k.upper()} {'passes' if v['passes'] else 'fails'}"
                                                  for k, v in n.earl.items()),
                 "timings           " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings_s.items())]
        lines += [f"written           {self.paths[key]}" for key in ("report", "dicom", "container")]
        lines.append(f"SUV of the 37 mm sphere: petrecon suv {self.paths['dicom']} --roi {self.roi_example} --json")
        return lines


def _check_writable_folder(folder: Path) -> None:
    """Refuse, before minutes of work, a folder that is a file or that cannot be created or written."""
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"{folder}: is a file, not a folder for the demo outputs")
    existing = next(parent for parent in (folder, *folder.absolute().parents) if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(f"{folder}: cannot write there ({existing} is not a writable folder)")


def run_demo(output_dir: str | Path = "petrecon-demo", *, full: bool | None = None,
             sampling: DemoSampling | None = None, protocol: ReconstructionProtocol | None = None,
             activity_mbq: float | None = None, duration_s: float = DEFAULT_DURATION_S, seed: int = 0,
             estimate_corrections: bool = False, overwrite: bool = False, progress: bool = True) -> DemoResult:
    """Simulate, reconstruct, analyse and write the demo (module docstring).

    Parameters
    ----------
    output_dir : path-like
        Folder of the outputs (created).
    full : bool, optional
        Full mMR sampling; default :func:`default_is_full` (the GPU backend).
    sampling : DemoSampling, optional
        An explicit layout and grid (overrides ``full``), e.g. a smaller one for tests.
    protocol : ReconstructionProtocol, optional
        Default :func:`clinical_protocol`; its image grid is set to the sampling's.
    activity_mbq : float, optional
        Total activity in the phantom at the scan start (MBq); default the
        phantom's concentrations (background 5.3 kBq/ml, 51.9 MBq in all).
    duration_s : float
        Frame duration.
    seed : int
        Seed of the simulation's random draws.
    estimate_corrections : bool
        Estimate randoms (delays) and scatter (single scatter + tail fit) from
        the data instead of using the simulator's sinograms.
    overwrite : bool
        Replace the outputs of an earlier run.
    progress : bool
        Progress bars.

    Raises
    ------
    ParameterError
        Outputs exist without ``overwrite``, or a parameter is out of range.
    """
    from petrecon.recon.study import reconstruct_study
    from petrecon.simulate.acquisition import simulate_study

    if activity_mbq is not None and not 0.01 <= activity_mbq <= 1e4:
        raise ParameterError(f"activity must be between 0.01 and 10000 MBq, got {activity_mbq:g}")
    if not 1.0 <= duration_s <= 86400.0:
        raise ParameterError(f"duration must be between 1 s and 24 h, got {duration_s:g} s")
    output_dir = Path(output_dir)
    paths = {key: output_dir / name for key, name in OUTPUTS.items() if key != "figures"}
    paths.update({key: output_dir / OUTPUTS["figures"] / name for key, name in FIGURES.items()})
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise ParameterError(f"{output_dir} already holds demo outputs ({', '.join(existing)}); "
                             "pass --overwrite to replace them")
    _check_writable_folder(output_dir)
    sampling = sampling or (full_mmr_sampling() if (default_is_full() if full is None else full)
                            else reduced_mmr_sampling())
    protocol = dataclasses.replace(protocol or clinical_protocol(), image_shape=sampling.grid.shape,
                                   voxel_size_mm=sampling.grid.voxel_size_mm, scanner=SCANNER)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    study = simulate_study(PHANTOM, scanner=sampling.layout, isotope=ISOTOPE, parameters={"ratio": ACTIVITY_RATIO},
                           injected_activity_bq=None if activity_mbq is None else activity_mbq * 1e6,
                           duration_s=duration_s, seed=seed, grid=sampling.grid, progress=progress).container
    timings["simulate"] = time.perf_counter() - start
    known = {k: v for k, v in study.sinograms.items() if not (estimate_corrections and k in ("randoms", "scatter"))}

    start = time.perf_counter()
    reconstruction = reconstruct_study(dataclasses.replace(study, sinograms=known), protocol, progress=progress, callback=_osem_bar(protocol, progress))
    timings["reconstruct"] = time.perf_counter() - start

    start = time.perf_counter()
    truth = _truth(study, scaled=activity_mbq is not None)
    volume = reconstruction.volume
    volume.metadata["nema_truth"] = {"activity_ratio": ACTIVITY_RATIO, "sphere_activity": truth["sphere_bq_per_ml"]}
    nema = _analyse(volume, truth, progress)
    timings["analyse"] = time.perf_counter() - start

    roi = "sphere:" + ",".join(f"{v:g}" for v in (*truth["sphere_37_centre_mm"], truth["sphere_37_radius_mm"]))
    result = DemoResult(output_dir, paths, nema, sampling, protocol, dict(study.attributes["counts"]),
                        reconstruction.corrected, truth["background_bq_per_ml"], timings, roi,
                        "estimated (delays; single scatter + tail fit)" if estimate_corrections else "the simulator's")
    _write_outputs(result, study, volume, truth, overwrite=overwrite, progress=progress)
    return result


def _osem_bar(protocol: ReconstructionProtocol, progress: bool):
    """A sub-iteration callback that advances a tqdm bar (None without progress)."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=protocol.osem.n_iterations * protocol.osem.n_subsets, desc="reconstruct (AW-OSEM)",
               unit="subset")

    def advance(iteration: int, subset: int, image) -> None:
        bar.update(1)
        if bar.n == bar.total:
            bar.close()

    return advance


def _truth(study, scaled: bool) -> dict:
    """True concentrations at the scan start, the phantom's water mass and its 37 mm sphere.

    The water mass (the SUV weight, 1 g/ml) follows from the total activity the
    simulation integrated: ``total = c_B V_B + c_S V_S`` with the spheres' volume
    ``V_S`` exact (4/3 pi r^3 each), so ``V_B + V_S = (total - c_S V_S) / c_B + V_S``.
    ``scaled``: the run set the total activity, so the phantom's concentrations
    were scaled to it (integrated again here); otherwise they are as written.
    """
    from petrecon.simulate.acquisition import region_concentrations_bq_per_ml
    from petrecon.simulate.phantom import load_phantom

    attributes = study.attributes
    phantom = load_phantom(PHANTOM, attributes["phantom_parameters"])
    total_bq = float(attributes["injected_activity_bq"])
    concentration = (region_concentrations_bq_per_ml(phantom, total_bq)[0] if scaled
                     else phantom.region_values("activity"))
    names = [region.name for region in phantom.regions]
    background, sphere = (concentration[names.index(name)] for name in ("background", LARGEST_SPHERE))
    radii_mm = [region.parts[0][0].half_extent_mm[0] for region in phantom.regions if region.name.startswith("sphere_")]
    spheres_ml = sum(4.0 / 3.0 * np.pi * r**3 for r in radii_mm) / 1000.0
    largest = phantom.regions[names.index(LARGEST_SPHERE)].parts[0][0]
    decay = attributes["decay_factor_frame_start"]
    return {"background_bq_per_ml": float(background * decay), "sphere_bq_per_ml": float(sphere * decay),
            "water_mass_kg": float((total_bq - sphere * spheres_ml) / background + spheres_ml) / 1000.0,
            "sphere_37_centre_mm": tuple(float(c) for c in largest.centre_mm),
            "sphere_37_radius_mm": float(largest.half_extent_mm[0])}


def _analyse(volume: Volume, truth: dict, progress: bool) -> NemaResult:
    from tqdm.auto import tqdm

    from petrecon.quant.nema import analyse_nema, find_phantom

    with tqdm(total=2, desc="analyse (NEMA NU 2)", unit="step", disable=not progress) as bar:
        geometry = find_phantom(volume)
        bar.update(1)
        result = analyse_nema(volume, activity_ratio=ACTIVITY_RATIO, sphere_activity=truth["sphere_bq_per_ml"],
                              geometry=geometry)
        bar.update(1)
    return result


def _write_outputs(result: DemoResult, study, volume: Volume, truth: dict, *, overwrite: bool,
                   progress: bool) -> None:
    """DICOM series, HDF5 container, figures and the HTML report (timed as ``write``, the report last)."""
    from tqdm.auto import tqdm

    from petrecon.io.container import Container, make_provenance, write_container
    from petrecon.io.dicom import read_pet_series, write_pet_series
    from petrecon.quant.plot import plot_recovery, plot_rois
    from petrecon.report.figures import mip_png, transverse_slices_png

    start = time.perf_counter()
    paths = result.paths
    attributes = study.attributes
    truth_volume = Volume(study.volumes["activity_bq_per_ml"].data, study.volumes["activity_bq_per_ml"].grid,
                          {"units": "Bq/ml", "description": "true activity concentration at the scan start"})
    provenance = make_provenance(protocol=result.protocol.to_dict(), scanner=SCANNER,
                                 generator="petrecon.demo.run_demo", sampling=result.sampling.description,
                                 reduced_sampling=result.sampling.reduced, phantom=PHANTOM,
                                 phantom_parameters=attributes["phantom_parameters"], isotope=ISOTOPE,
                                 seed=attributes["seed"], corrected_image=list(result.corrected),
                                 nema_truth=volume.metadata["nema_truth"])
    paths["figures"] = paths["mip"].parent
    paths["figures"].mkdir(parents=True, exist_ok=True)
    with tqdm(total=5, desc="write outputs", unit="file", disable=not progress) as bar:
        scan = dt.datetime.now().replace(microsecond=0)
        write_pet_series(volume, paths["dicom"], injected_dose_bq=attributes["injected_activity_bq"],
                         injection_datetime=scan - dt.timedelta(seconds=attributes["frame_start_s"]),
                         series_datetime=scan, frame_duration_s=attributes["duration_s"], isotope=ISOTOPE,
                         radiopharmaceutical=RADIOPHARMACEUTICAL, patient_weight_kg=truth["water_mass_kg"],
                         patient_name="NEMA^IEC body phantom", patient_id="petrecon-demo",
                         corrected_image=result.corrected, half_life_s=attributes["half_life_s"],
                         series_description=f"petrecon demo {result.protocol.name} AW-OSEM",
                         reconstruction_method=_method(result.protocol), manufacturer_model_name="Biograph mMR "
                         + ("(simulated)" if not result.sampling.reduced else "(simulated, reduced sampling)"),
                         provenance=provenance, overwrite=overwrite)
        written = read_pet_series(paths["dicom"]).metadata  # the header SUV needs, for the container's volume
        volume.metadata.update({key: written[key] for key in ("dicom_header", "suv_inputs", "patient_position")})
        bar.update(1)
        write_container(paths["container"], Container(
            volumes={"activity_bq_per_ml": volume, "truth_bq_per_ml": truth_volume},
            attributes={**attributes, "primary_volume": "activity_bq_per_ml", "protocol": result.protocol.to_dict(),
                        "nema": result.nema.to_dict(), "timings_s": result.timings_s},
            provenance=provenance), overwrite=overwrite)
        bar.update(1)
        mip_png(volume, paths["mip"], title="AW-OSEM reconstruction (Bq/ml)", overwrite=overwrite)
        plane_z_mm = float(np.mean([s.centre_mm[2] for s in result.nema.spheres]))
        transverse_slices_png({"AW-OSEM reconstruction": volume, "truth": truth_volume}, plane_z_mm, paths["slice"],
                              title=f"sphere plane, z = {round(plane_z_mm, 1) + 0.0:.1f} mm (Bq/ml)", overwrite=overwrite)
        plot_recovery(result.nema, paths["recovery"], overwrite=overwrite)
        plot_rois(volume, result.nema, paths["rois"], overwrite=overwrite)
        bar.update(2)
        result.timings_s["write"] = time.perf_counter() - start
        _write_report(result, overwrite)
        bar.update(1)


def _method(protocol: ReconstructionProtocol) -> str:
    osem = protocol.osem
    return f"AW-OSEM {osem.n_iterations}i{osem.n_subsets}s, {osem.post_filter_fwhm_mm:g} mm Gaussian"


def _write_report(result: DemoResult, overwrite: bool) -> None:
    from petrecon.report.html import document, key_value_table, paragraph, png_figure, section, write_html
    from petrecon.report.nema import earl_table, sphere_table, summary_table

    nema, osem = result.nema, result.protocol.osem
    parameters = {
        "scanner": "Siemens Biograph mMR (simulated)",
        "sampling": result.sampling.description,
        "phantom": f"{PHANTOM}, spheres : background {ACTIVITY_RATIO:g} : 1, {ISOTOPE}",
        "true background (Bq/ml, scan start)": f"{result.truth_background_bq_per_ml:.6g}",
        **{f"{name} (counts)": f"{value:.4g}" for name, value in result.counts.items()},
        "protocol": f"{result.protocol.name}: {result.protocol.description}",
        "OSEM": f"{osem.n_iterations} iterations x {osem.n_subsets} subsets, {osem.post_filter_fwhm_mm:g} mm FWHM "
                f"Gaussian post-filter, PSF {result.protocol.psf_fwhm_mm:g} mm",
        "corrections (DICOM CorrectedImage)": " ".join(result.corrected),
        **{f"time: {name} (s)": f"{seconds:.1f}" for name, seconds in result.timings_s.items()},
        "petrecon": __version__,
    }
    note = ("Reduced sampling for CPUs (the mMR's in-plane sampling and voxel size, so its recovery "
            "coefficients; see petrecon.demo). " if result.sampling.reduced else "")
    page = document(
        "petrecon demo: NEMA IEC phantom, 68Ga, Biograph mMR",
        paragraph(note, result.sampling.description[0].upper(), result.sampling.description[1:], "."),
        section("NEMA NU 2 and EARL", summary_table(nema, truth_background=result.truth_background_bq_per_ml),
                sphere_table(nema), earl_table(nema),
                png_figure(result.paths["recovery"], "recovery curves",
                           caption="Recovery coefficients with the EARL1 and EARL2 bands."),
                png_figure(result.paths["rois"], "NEMA ROI placement",
                           caption=f"ROIs on the fitted sphere plane (tilt {nema.tilt_deg:.1f} deg) and a profile "
                                   f"through each sphere with the fitted blurred-sphere model "
                                   f"({nema.fitted_fwhm_mm:.1f} mm FWHM).")),
        section("Images",
                png_figure(result.paths["slice"], "sphere plane",
                           caption="Transverse slice through the sphere plane: reconstruction and truth, same scale."),
                png_figure(result.paths["mip"], "maximum-intensity projections",
                           caption="Maximum-intensity projections of the reconstruction.")),
        section("Run parameters", key_value_table(parameters)),
        section("Outputs", key_value_table({key: str(result.paths[key]) for key in ("dicom", "container", "report")}),
                paragraph(f"SUV of the 37 mm sphere: petrecon suv {result.paths['dicom']} --roi {result.roi_example}")),
    )
    write_html(result.paths["report"], page, overwrite=overwrite)
