"""Simulate a whole-body acquisition: several overlapping bed positions of one phantom.

The phantom (patient coordinates, LPS) is placed in the whole-body frame,
the gantry frame at bed position 0 (:func:`~petrecon.simulate.placement.place_phantom`,
:mod:`petrecon.geometry.patient`). Bed ``b`` (acquisition order, from the
head: skull base to mid-thigh as in reference/clinical-protocol.md) is an
ordinary :func:`~petrecon.simulate.simulate_study` frame of the placed
phantom translated by ``-bed_offset_mm[b]`` along z, so the scanner sees only its axial window of
the phantom (activity outside the window still adds singles, hence randoms,
as in a real scanner). Decay between beds: bed ``b`` starts at
``frame_start_s + b x (duration_s + bed_move_s)`` after injection, and its
counts come from the activity decayed to that start, with the single-bed
simulator's within-frame decay.

Offsets: ``n_beds`` beds, centred on ``centre_mm`` (patient S), spaced by
``axial_fov_mm x (1 - overlap_percent / 100)`` (:func:`bed_offsets_mm`),
converted to the whole-body frame; each bed records its bed position
(``bed_position_mm = -bed_offset_mm``) and the patient position.

The whole-body volumes (``activity_bq_per_ml`` at the first bed's start,
``mu_per_cm``, ``ct_hu``, ...) are voxelised on a grid that covers every
bed (:func:`~petrecon.io.multibed.whole_body_grid`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from petrecon import __version__
from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.geometry.patient import bed_attributes, check_patient_position, patient_to_gantry_affine
from petrecon.io.atomic import EXISTS
from petrecon.io.multibed import WholeBodyStudy, bed_file_name, whole_body_grid, write_whole_body
from petrecon.isotopes import get_isotope
from petrecon.simulate.acquisition import region_concentrations_bq_per_ml, simulate_study
from petrecon.simulate.phantom import Phantom, Pose, load_phantom
from petrecon.simulate.placement import place_phantom
from petrecon.simulate.voxelise import voxelise
from petrecon.volume import ImageGrid


def bed_offsets_mm(axial_fov_mm: float, n_beds: int, overlap_percent: float, centre_mm: float = 0.0) -> np.ndarray:
    """Table positions of ``n_beds`` beds overlapping by ``overlap_percent`` of the axial FOV, first bed at the top.

    Examples
    --------
    >>> bed_offsets_mm(258.0, 3, 25.0).tolist()
    [193.5, 0.0, -193.5]
    """
    if int(n_beds) != n_beds or n_beds < 1:
        raise ParameterError(f"the number of beds must be a positive integer, got {n_beds}")
    if not 0 <= overlap_percent < 100:
        raise ParameterError(f"the bed overlap must be in [0, 100) %, got {overlap_percent}")
    step_mm = axial_fov_mm * (1.0 - overlap_percent / 100.0)
    return centre_mm + step_mm * ((n_beds - 1) / 2.0 - np.arange(int(n_beds)))


def translated_phantom(phantom: Phantom, dz_mm: float) -> Phantom:
    """``phantom`` moved by ``dz_mm`` along the scanner's z (its pose shifted).

    Examples
    --------
    >>> moved = translated_phantom(load_phantom("uniform-cylinder"), -50.0)
    >>> moved.pose.shift_mm, moved.bounding_box_mm()[1][2] - load_phantom("uniform-cylinder").bounding_box_mm()[1][2]
    ((0.0, 0.0, -50.0), np.float64(-50.0))
    """
    x, y, z = phantom.pose.shift_mm
    return dataclasses.replace(phantom, pose=Pose(phantom.pose.rotation_deg, (x, y, z + dz_mm)))


def simulate_whole_body(phantom: Phantom | str, *, n_beds: int, overlap_percent: float,
                        scanner: str | SinogramLayout = "mmr", span: int | None = None,
                        centre_mm: float | None = None, frame_start_s: float | None = None,
                        duration_s: float | None = None, bed_move_s: float = 0.0, isotope: str | None = None,
                        injected_activity_bq: float | None = None, parameters: dict | None = None,
                        grid: ImageGrid | None = None, seed: int = 0, progress: bool = True,
                        patient_position: str = "HFS", **settings) -> WholeBodyStudy:
    """Simulate ``n_beds`` overlapping beds of ``phantom`` (model in the module docstring).

    Parameters
    ----------
    phantom : Phantom or str
        A phantom, shipped phantom name or TOML path.
    n_beds, overlap_percent : int, float
        Number of beds and their overlap in % of the axial field of view.
    scanner, span : str or SinogramLayout, int
        As for :func:`~petrecon.simulate.simulate_study`.
    centre_mm : float, optional
        Patient S (mm) of the middle of the bed range (default: the middle of the phantom's extent).
    frame_start_s, duration_s : float, optional
        First bed's start after injection and each bed's duration (default: the phantom's).
    bed_move_s : float
        Table movement time between beds (s).
    isotope, injected_activity_bq, parameters : optional
        As for :func:`~petrecon.simulate.simulate_study`.
    grid : ImageGrid, optional
        Per-bed ground-truth grid (default: the scanner's reconstruction grid);
        the whole-body volumes use it extended over all beds.
    seed : int
        Bed ``b`` is simulated with seed ``seed + b``.
    progress : bool
        Progress bars.
    patient_position : str
        HFS, HFP, FFS or FFP (:mod:`petrecon.geometry.patient`).
    **settings
        Further :func:`~petrecon.simulate.simulate_study` switches (``noise``,
        ``randoms``, ``scatter``, ``resolution``, ``supersampling``, ...).

    Examples
    --------
    >>> study = simulate_whole_body("uniform-cylinder", n_beds=2, overlap_percent=25.0, scanner="test",
    ...     duration_s=10.0, grid=ImageGrid.centred((8, 8, 8), (30.0, 30.0, 4.0)), progress=False)
    >>> study.bed_offsets_mm().tolist(), study.volumes["activity_bq_per_ml"].grid.shape
    ([-12.0, 12.0], (8, 8, 14))
    """
    if not isinstance(phantom, Phantom):
        phantom = load_phantom(phantom, parameters)
    elif parameters:
        raise ParameterError("parameters apply when loading a phantom; pass its name or path")
    if "frame_start_s" in settings or "listmode" in settings:
        raise ParameterError("whole-body simulation sets each bed's frame start and writes no list-mode")
    if not bed_move_s >= 0:
        raise ParameterError(f"bed_move_s must be >= 0 s, got {bed_move_s}")
    layout = scanner if isinstance(scanner, SinogramLayout) else default_layout(scanner, span=span, tof=False)
    if centre_mm is None:
        low, high = phantom.bounding_box_mm()
        centre_mm = float(low[2] + high[2]) / 2.0
    patient_offsets = bed_offsets_mm(layout.scanner.axial_fov_mm, n_beds, overlap_percent, centre_mm)
    to_gantry = patient_to_gantry_affine(patient_position)
    offsets = to_gantry[2, 2] * patient_offsets            # whole-body frame: the gantry frame at bed position 0
    phantom = place_phantom(phantom, patient_position)
    duration_s = phantom.duration_s if duration_s is None else float(duration_s)
    first_start_s = phantom.frame_start_s if frame_start_s is None else float(frame_start_s)
    bed_grid = grid or ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    beds = []
    for b, offset in enumerate(offsets):
        study = simulate_study(translated_phantom(phantom, -float(offset)), scanner=layout, isotope=isotope,
                               injected_activity_bq=injected_activity_bq, duration_s=duration_s,
                               frame_start_s=first_start_s + b * (duration_s + bed_move_s), grid=bed_grid,
                               seed=seed + b, progress=progress, patient_position=None, **settings)
        study.container.attributes.update(bed_attributes(-float(offset)), bed_index=b,
                                          patient_position=check_patient_position(patient_position))
        beds.append(study.container)

    nuclide = get_isotope(isotope or phantom.isotope)
    concentration, injected = region_concentrations_bq_per_ml(phantom, injected_activity_bq)
    volumes = voxelise(phantom, whole_body_grid(bed_grid, offsets),
                       activity_bq_per_ml=concentration * nuclide.decay_factor(first_start_s),
                       supersampling=settings.get("supersampling", 3), progress=progress)
    attributes = {"phantom": phantom.name, "phantom_parameters": phantom.parameters, "scanner": layout.scanner.name,
                  "isotope": nuclide.name, "half_life_s": nuclide.half_life_s, "injected_activity_bq": injected,
                  "n_beds": int(n_beds), "overlap_percent": float(overlap_percent), "bed_move_s": float(bed_move_s),
                  "frame_start_s": first_start_s, "seed": seed}
    provenance = {"software": f"petrecon {__version__}", "generator": "petrecon.simulate.multibed"}
    return WholeBodyStudy(beds, volumes, attributes, provenance)


def simulate_whole_body_to_file(path, phantom: Phantom | str, *, overwrite: bool = False,
                                **settings) -> tuple[WholeBodyStudy, list[Path]]:
    """Simulate (:func:`simulate_whole_body` with ``settings``) and write the study (main file and bed files).

    Existing outputs are refused before any work unless ``overwrite``.
    """
    path = Path(path)
    n_beds = settings.get("n_beds", 0)
    for output in [path, *(path.with_name(bed_file_name(path, b)) for b in range(int(n_beds)))]:
        if output.exists() and not overwrite:
            raise ParameterError(f"{output}: {EXISTS}")
    if not path.parent.is_dir():
        raise ParameterError(f"{path}: folder {path.parent} does not exist")
    study = simulate_whole_body(phantom, **settings)
    return study, write_whole_body(path, study, overwrite=overwrite)
