"""Simulate a harmonised PET/CT + PET/MR cohort study end to end: :func:`simulate_cohort`.

Every patient (:mod:`petrecon.simulate.cohort_patients`) is scanned on each
scanner of the cohort (default the study's Biograph 64 PET/CT and Biograph
mMR PET/MR, reference/clinical-protocol.md), the second scan later by the
time between the study's mean uptakes (62 min PET/CT, 72 min PET/MR:
:data:`SCAN_INTERVAL_MIN`). Written into the output folder::

    raw/<patient>-<scanner>.h5     raw study container (simulate_study: 3 min frame, 68Ga): what the scanner
                                   exports (prompts, delays, normalisation), without the simulator's truth
    truth/<patient>-<scanner>.h5   the simulator's truth on the PET grid: activity (Bq/ml) and mu (cm^-1)
    ct/<patient>/                  the PET/CT's low-dose CT (DICOM CT, HU of the phantom's materials)
    mr/<patient>/water/, fat/      the PET/MR's Dixon water and fat series (DICOM MR, coronal)
    cohort.toml                    the cohort file of ``petrecon batch``
    truth.csv                      true SUV of every organ reference region and lesion

The PET/MR study is reconstructed by ``petrecon batch`` with the 4-class
Dixon mu-map made from its MR series, which calls bone soft tissue: the
PET/MR bias in and near bone (reference/quantification.md) appears as in a
real study, while its raw container was simulated with the phantom's true
(bone-containing) attenuation. The PET/CT study's CT gives mu through the
bilinear HU conversion. The raw containers hold only what a scanner exports
(:data:`RAW_SINOGRAMS`): no true attenuation factors, mu-map, scatter or
activity, so the reconstruction estimates scatter from the CT's or the
Dixon mu-map and randoms from the delays, as on the scanners; the truth is
in ``truth.csv`` and ``truth/``.

Sampling: :func:`petrecon.geometry.reduced.reduced_sampling` of each scanner
unless ``full`` (then the scanner's own sinogram and image), so a CPU
reconstructs a study in minutes; the reduced layout travels in each
container, so ``petrecon batch`` needs no option. CT and Dixon series:
:mod:`petrecon.simulate.anatomy`.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SCANNERS
from petrecon.geometry.patient import patient_to_gantry
from petrecon.geometry.reduced import (DEFAULT_FIELD_OF_VIEW_MM, DEFAULT_RINGS, DEFAULT_VIEW_MASHING, Sampling,
                                       full_sampling, reduced_sampling)
from petrecon.io.atomic import EXISTS, atomic_output
from petrecon.io.container import Container, write_container
from petrecon.io.dicom_anatomy import SeriesIdentity
from petrecon.quant.organs import ORGAN_VOI_DIAMETER_MM
from petrecon.recon.protocol import toml_value
from petrecon.simulate.cohort_patients import (BED_POSITION_MM, ORGAN_VOI_CENTRES_MM, PATIENT_POSITION, TRACER,
                                               SimulatedPatient, draw_patients, patient_phantom, truth_rows)
from petrecon.simulate.anatomy import write_ct, write_dixon
from petrecon.volume import ImageGrid

LOG = logging.getLogger(__name__)

DEFAULT_SCANNERS = ("b64", "mmr")
#: Scanners whose attenuation comes from a Dixon MR (PET/MR); every other one is a PET/CT.
MR_SCANNERS = ("mmr",)
#: Minutes between the scans of one patient on consecutive scanners (study means: 72 - 62 min).
SCAN_INTERVAL_MIN = 10
FRAME_DURATION_S = 180.0  # 3 min per bed position (reference/clinical-protocol.md)
FIRST_INJECTION = dt.datetime(2026, 3, 2, 8, 30)  # patient k is injected k days later
TRUTH_SUPERSAMPLING = 2
#: The sinograms a raw container keeps: a scanner's export (prompts, delayed coincidences, normalisation).
RAW_SINOGRAMS = ("prompts", "delays", "normalisation")
#: Lesions and VOIs closer than this to an end of the axial field of view are reported (partial axial coverage).
FOV_END_MARGIN_MM = 10.0
#: Top-level keys of the written cohort file (petrecon.batch.cohort). A50 (half-way between the lesion maximum
#: and the reference mean), not a fixed 41 % of the maximum: the bone and liver lesions' contrast over their
#: surroundings is below 2.5, where 41 % of the maximum lies under the surrounding uptake and the isocontour
#: fills the whole search sphere (measured: a 14 mm vertebral lesion segmented as 14 ml instead of 1.4 ml).
COHORT_SETTINGS = {"protocol": "clinical", "isocontour": "a50", "min_lesion_volume_ml": 0.5}


@dataclass
class CohortSimulation:
    """What :func:`simulate_cohort` wrote and measured.

    Attributes
    ----------
    out_dir : Path
    cohort_file, truth_file : Path
    studies : list of dict
        Per study: ``id``, ``patient``, ``scanner``, ``raw``, ``anatomy`` (CT folder or the two Dixon
        folders), ``uptake_min``, ``counts`` (the container's totals).
    patients : list of SimulatedPatient
    samplings : dict of str to str
        Sampling description per scanner.
    outside_fov : list of str
        ``study: voi`` of VOIs not inside the axial field of view with the 10 mm margin.
    seconds : float
        Wall time.
    """

    out_dir: Path
    cohort_file: Path
    truth_file: Path
    studies: list[dict] = field(default_factory=list)
    patients: list[SimulatedPatient] = field(default_factory=list)
    samplings: dict[str, str] = field(default_factory=dict)
    outside_fov: list[str] = field(default_factory=list)
    seconds: float = 0.0


def cohort_sampling(scanner: str, *, full: bool = False, n_rings: int = DEFAULT_RINGS,
                    field_of_view_mm: float = DEFAULT_FIELD_OF_VIEW_MM,
                    view_mashing: int = DEFAULT_VIEW_MASHING) -> Sampling:
    """The scanner's full sampling, or its reduced one (:func:`~petrecon.geometry.reduced.reduced_sampling`).

    Examples
    --------
    >>> cohort_sampling("b64").grid.shape, cohort_sampling("b64", full=True).reduced
    ((198, 198, 55), False)
    """
    if scanner not in SCANNERS:
        raise ParameterError(f"unknown scanner {scanner!r}; known: {', '.join(SCANNERS)}")
    if full:
        return full_sampling(scanner)
    return reduced_sampling(scanner, n_rings=n_rings, field_of_view_mm=field_of_view_mm, view_mashing=view_mashing)


def simulate_cohort(out_dir: str | os.PathLike, *, n_patients: int = 4, scanners: Sequence[str] = DEFAULT_SCANNERS,
                    full: bool = False, n_rings: int = DEFAULT_RINGS,
                    field_of_view_mm: float = DEFAULT_FIELD_OF_VIEW_MM, view_mashing: int = DEFAULT_VIEW_MASHING,
                    seed: int = 0, activity_mbq: tuple[float, float] = (150.0, 250.0),
                    uptake_min: tuple[float, float] = (55.0, 75.0), weight_kg: tuple[float, float] = (60.0, 95.0),
                    lesions: str = "all", harmonisation: Mapping[str, str | os.PathLike] | None = None,
                    bed_position_mm: float = BED_POSITION_MM, scatter: bool = True, overwrite: bool = False,
                    progress: bool = True) -> CohortSimulation:
    """Simulate the cohort and write its raw data, CT and Dixon series, cohort file and truth (module docstring).

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    n_patients : int
    scanners : sequence of str
        Registry names, scanned in this order; ``mmr`` is a PET/MR (Dixon), the others PET/CT (CT).
    full : bool
        The scanners' full sampling instead of the reduced one.
    n_rings, field_of_view_mm, view_mashing
        Reduced sampling (:func:`~petrecon.geometry.reduced.reduced_sampling`).
    seed : int
        Seed of the patients and of every simulation.
    activity_mbq, uptake_min, weight_kg : tuple of float
        Uniform ranges (:func:`~petrecon.simulate.cohort_patients.draw_patients`).
    lesions : str
        ``all`` or ``random`` (a subset of at least 2 per patient).
    harmonisation : mapping of str to path-like, optional
        Image-harmonisation file per scanner, written into the scanner's studies
        (:mod:`petrecon.quant.image_harmonisation`; checked by loading it).
    bed_position_mm : float
        Bed position of every scan (:data:`~petrecon.simulate.cohort_patients.BED_POSITION_MM`).
    scatter : bool
        Simulate scatter (the single-scatter integral over the whole torso: about 3/4 of the time).
        Without it the studies differ by their attenuation alone.
    overwrite : bool
        Replace the outputs of an earlier run.
    progress : bool
        A progress bar over the studies (with ETA).

    Raises
    ------
    ParameterError
        An unknown scanner, a bad range, a harmonisation file that cannot be read, or existing
        outputs without ``overwrite`` (before any work).
    """
    from tqdm.auto import tqdm

    from petrecon.simulate.acquisition import simulate_study

    started = time.perf_counter()
    scanners = list(dict.fromkeys(scanners))
    if not scanners:
        raise ParameterError("give at least one scanner")
    samplings = {scanner: cohort_sampling(scanner, full=full, n_rings=n_rings, field_of_view_mm=field_of_view_mm,
                                          view_mashing=view_mashing) for scanner in scanners}
    harmonisation_files = _harmonisation_files(harmonisation or {}, scanners)
    patients = draw_patients(n_patients, seed=seed, activity_mbq=activity_mbq, uptake_min=uptake_min,
                             weight_kg=weight_kg, lesions=lesions)
    out_dir = Path(out_dir)
    result = CohortSimulation(out_dir, out_dir / "cohort.toml", out_dir / "truth.csv", patients=patients,
                              samplings={scanner: s.description for scanner, s in samplings.items()})
    plan = [(i, patient, scanner, k) for i, patient in enumerate(patients) for k, scanner in enumerate(scanners)]
    outputs = [result.cohort_file, result.truth_file] + [path for _, p, s, _ in plan
                                                         for path in (*_study_paths(out_dir, p, s),
                                                                      _truth_path(out_dir, p, s))]
    existing = [str(path) for path in outputs if path.exists()]
    if existing and not overwrite:
        raise ParameterError(f"{existing[0]}: {EXISTS}" + (f" (and {len(existing) - 1} more outputs)"
                                                          if len(existing) > 1 else ""))
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)

    tables = []
    with tqdm(total=len(plan), desc="simulate cohort", unit="study", disable=not progress) as bar:
        for i, patient, scanner, k in plan:
            sampling = samplings[scanner]
            uptake = patient.uptake_min + k * SCAN_INTERVAL_MIN
            raw, *anatomy = _study_paths(out_dir, patient, scanner)
            bar.set_postfix_str(f"{patient.id}-{scanner}")
            phantom = patient_phantom(patient)
            study = simulate_study(phantom, scanner=sampling.layout, grid=sampling.grid, duration_s=FRAME_DURATION_S,
                                   frame_start_s=uptake * 60.0, seed=patient.seed + k,
                                   supersampling=TRUTH_SUPERSAMPLING, scatter=scatter, progress=False,
                                   patient_position=PATIENT_POSITION, bed_position_mm=bed_position_mm)
            write_container(raw, raw_container(study.container), overwrite=overwrite)
            write_container(_truth_path(out_dir, patient, scanner), truth_container(study.container),
                            overwrite=overwrite)
            injection = FIRST_INJECTION + dt.timedelta(days=i)
            scan = injection + dt.timedelta(minutes=uptake)
            _write_anatomy(phantom, patient, scanner, sampling.grid, anatomy, scan, bed_position_mm, overwrite)
            study_id = f"{patient.id}-{scanner}"
            result.outside_fov += [f"{study_id}: {name}" for name in vois_outside_fov(patient, sampling.grid,
                                                                                 bed_position_mm)]
            tables.append(_study_table(out_dir, study_id, patient, scanner, raw, anatomy, injection, scan, uptake,
                                       harmonisation_files.get(scanner)))
            result.studies.append({"id": study_id, "patient": patient.id, "scanner": scanner, "raw": raw,
                                   "anatomy": anatomy, "uptake_min": uptake,
                                   "counts": dict(study.container.attributes["counts"])})
            bar.update(1)
    for line in result.outside_fov:
        LOG.warning("%s lies within %g mm of an end of the axial field of view or outside it", line,
                    FOV_END_MARGIN_MM)
    _write_cohort_file(result.cohort_file, tables, patients, samplings, seed, overwrite)
    _write_truth(result.truth_file, patients, overwrite)
    result.seconds = time.perf_counter() - started
    return result


def raw_container(study: Container) -> Container:
    """The part of a simulated study a scanner exports: :data:`RAW_SINOGRAMS`, the layout and the study facts."""
    # the simulator models no count losses: its live fraction is 1 (dead-time correction is then a no-op)
    return Container(sinograms={name: study.sinograms[name] for name in RAW_SINOGRAMS},
                     layout=study.layout, attributes={**study.attributes, "live_fraction": 1.0},
                     provenance=dict(study.provenance))


def truth_container(study: Container) -> Container:
    """The simulator's truth of a study on its PET grid: activity concentration and mu-map."""
    return Container(volumes={name: study.volumes[name] for name in ("activity_bq_per_ml", "mu_per_cm")},
                     attributes=dict(study.attributes), provenance=dict(study.provenance))


def _truth_path(out_dir: Path, patient: SimulatedPatient, scanner: str) -> Path:
    return out_dir / "truth" / f"{patient.id}-{scanner}.h5"


def _study_paths(out_dir: Path, patient: SimulatedPatient, scanner: str) -> list[Path]:
    """The raw container and the anatomy folders (CT, or Dixon water and fat) of one study."""
    raw = out_dir / "raw" / f"{patient.id}-{scanner}.h5"
    if scanner in MR_SCANNERS:
        return [raw, out_dir / "mr" / patient.id / "water", out_dir / "mr" / patient.id / "fat"]
    return [raw, out_dir / "ct" / patient.id]


def _harmonisation_files(harmonisation: Mapping[str, str | os.PathLike], scanners: list[str]) -> dict[str, Path]:
    """Each scanner's image-harmonisation file, absolute, checked by reading it."""
    from petrecon.quant.image_harmonisation import ImageHarmonisation

    files = {}
    for scanner, path in harmonisation.items():
        if scanner not in scanners:
            raise ParameterError(f"harmonisation for {scanner!r}: not a scanner of the cohort ({', '.join(scanners)})")
        ImageHarmonisation.load(path)
        files[scanner] = Path(path).resolve()
    return files


def _write_anatomy(phantom, patient: SimulatedPatient, scanner: str, pet_grid: ImageGrid, folders: list[Path],
                   scan: dt.datetime, bed_position_mm: float, overwrite: bool) -> None:
    """The study's CT, or its Dixon water and fat series, of the phantom placed as the emission was."""
    identity = SeriesIdentity(patient.id, f"Simulated^{patient.id}", patient.sex, patient.weight_kg, scan,
                              patient.height_m, patient.age_years, PATIENT_POSITION, bed_position_mm)
    if scanner in MR_SCANNERS:
        write_dixon(phantom, folders[0], folders[1], pet_grid, identity, overwrite=overwrite)
    else:
        write_ct(phantom, folders[0], pet_grid, identity, overwrite=overwrite)


def vois_outside_fov(patient: SimulatedPatient, grid: ImageGrid, bed_position_mm: float) -> list[str]:
    """Names of the organ VOIs and lesions of ``patient`` not inside ``grid``'s axial extent with a 10 mm margin.

    Examples
    --------
    >>> from petrecon.geometry.reduced import reduced_sampling
    >>> patient = draw_patients(1)[0]
    >>> vois_outside_fov(patient, reduced_sampling("mmr").grid, BED_POSITION_MM)
    []
    >>> vois_outside_fov(patient, reduced_sampling("mmr").grid, 0.0)  # S = -57 to 57 mm
    ['lung_nodule', 'bone_lesion', 'node']
    """
    spheres = [(organ, centre, ORGAN_VOI_DIAMETER_MM[organ] / 2.0) for organ, centre in ORGAN_VOI_CENTRES_MM.items()]
    spheres += [(lesion.name, lesion.centre_mm, lesion.diameter_mm / 2.0) for lesion in patient.lesions]
    z_mm = patient_to_gantry(np.array([centre for _, centre, _ in spheres]), PATIENT_POSITION, bed_position_mm)[:, 2]
    half_mm = grid.shape[2] * grid.voxel_size_mm[2] / 2.0 - FOV_END_MARGIN_MM
    centre_mm = grid.origin_mm[2] + (grid.shape[2] - 1) * grid.voxel_size_mm[2] / 2.0
    return [name for (name, _, radius), z in zip(spheres, z_mm) if abs(z - centre_mm) + radius > half_mm]


def _study_table(out_dir: Path, study_id: str, patient: SimulatedPatient, scanner: str, raw: Path,
                 anatomy: list[Path], injection: dt.datetime, scan: dt.datetime, uptake: int,
                 harmonisation: Path | None) -> list[str]:
    """The ``[[study]]`` table of one study (petrecon.batch.cohort), as TOML lines."""
    def relative(path: Path) -> str:
        return Path(os.path.relpath(path, out_dir)).as_posix()

    values = {"id": study_id, "patient": patient.id, "scanner": scanner, "raw": relative(raw)}
    if scanner in MR_SCANNERS:
        values["dixon"] = [relative(anatomy[0]), relative(anatomy[1])]
    else:
        values["ct"] = relative(anatomy[0])
    values.update(tracer=TRACER, weight_kg=patient.weight_kg, height_m=patient.height_m, sex=patient.sex,
                  injected_dose_mbq=patient.injected_activity_mbq)
    lines = ["[[study]]"] + [f"{key} = {toml_value(value)}" for key, value in values.items()]
    lines += [f"injection_time = {injection.isoformat()}", f"scan_time = {scan.isoformat()}"]
    if harmonisation is not None:
        lines.append(f"harmonisation = {toml_value(relative(harmonisation))}")
    lines += ['reference = "liver"', "", "[study.vois]"]
    lines += [f"{organ} = {toml_value(list(centre))}" for organ, centre in ORGAN_VOI_CENTRES_MM.items()]
    lines.append(f"lesions = {toml_value([lesion.search_sphere() for lesion in patient.lesions])}")
    lines += ["", "[study.info]", f"group = {toml_value(patient.group)}", f"uptake_min = {uptake}",
              f"weight_kg = {toml_value(patient.weight_kg)}"]
    return lines


def _write_cohort_file(path: Path, tables: list[list[str]], patients: list[SimulatedPatient],
                       samplings: dict[str, Sampling], seed: int, overwrite: bool) -> None:
    header = [f"# Simulated {TRACER} PET/CT + PET/MR cohort: {len(patients)} patients, seed {seed} "
              "(petrecon simulate-cohort; truth in truth.csv).",
              *(f"# {sampling.description}" for sampling in samplings.values()),
              *(f"{key} = {toml_value(value)}" for key, value in COHORT_SETTINGS.items())]
    text = "\n".join(header + [line for table in tables for line in ["", *table]]) + "\n"
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(text)


def _write_truth(path: Path, patients: list[SimulatedPatient], overwrite: bool) -> None:
    columns = ("patient", "voi", "kind", "true_suv", "diameter_mm", "tissue")
    with atomic_output(path, overwrite=overwrite) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for patient in patients:
            writer.writerows(truth_rows(patient))
