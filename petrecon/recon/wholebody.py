"""Whole-body reconstruction: each bed alone, decay-corrected to the first bed's start, stitched by sensitivity.

:func:`reconstruct_whole_body` takes a :class:`~petrecon.io.multibed.WholeBodyStudy`
(overlapping bed positions, reference/clinical-protocol.md: 3 min per bed)
and

1. reconstructs every bed with :func:`~petrecon.recon.study.reconstruct_study`
   and its own corrections (normalisation, attenuation, randoms, scatter,
   dead time, within-frame decay), *without* the post-filter: Bq/ml at the
   bed's start on the bed's grid (scanner frame);
2. decay-corrects bed ``b`` to the first bed's start ``t_0`` (DICOM
   DecayCorrection START refers to the series time, the first bed's start):
   ``f_b <- f_b x 2^((t_b - t_0) / T_half)``;
3. places every bed on a whole-body grid (the bed grid extended along z,
   :func:`~petrecon.io.multibed.whole_body_grid`; bed ``b``'s plane at
   scanner ``z`` lies at whole-body ``z + bed_offset_mm[b]``, i.e. the
   whole-body frame is the gantry frame at bed position 0, since
   ``bed_offset_mm = -start horizontal bed position``
   (:mod:`petrecon.geometry.patient`), linear
   interpolation along z where the offsets are not whole planes apart) and
   averages them with sensitivity weights::

       f(x) = sum_b w_b(x) f_b(x) / sum_b w_b(x)

   ``w_b(x) = T_b x D_b x [A_b^T (n_b x l_b)](x)``: the OSEM sensitivity image
   of the bed without attenuation, i.e. the back-projection of the
   normalisation ``n_b`` (detection efficiency, gaps, the axial fall-off of
   3D acceptance towards the ends of the axial field of view) times the live
   fraction ``l_b``, times the bed duration ``T_b`` and the decay
   ``D_b = 2^(-(t_b - t_0) / T_half)`` of the activity between ``t_0`` and the
   bed's start. ``w_b`` is the expected number of counts a unit of activity
   at ``t_0`` contributes to bed ``b``, so the image of the bed with more
   counts at ``x`` (lower relative variance: the end planes of a bed are the
   noisiest) weighs more, and a plane seen by one bed only takes that bed's
   value. Attenuation is left out: it belongs to the patient, and along the
   same LORs through the same voxel it is nearly the same for both beds, so it
   would scale both weights alike; leaving it out keeps the weights
   independent of the mu-map (and of the CT's extent);
4. applies the protocol's Gaussian post-filter once, to the stitched volume
   (filtering each bed before stitching would filter the end planes against
   replicated edges).

The result is Bq/ml at the first bed's start (decay-corrected, calibrated as
each bed is, :mod:`petrecon.recon.study`). :func:`write_whole_body_pet_series`
writes it as one DICOM PET series; :func:`reconstruct_whole_body_to_file` is
what ``petrecon recon`` runs on a whole-body study.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from petrecon.errors import ParameterError
from petrecon.io.atomic import EXISTS
from petrecon.io.multibed import WholeBodyStudy, whole_body_grid
from petrecon.operators import gaussian_post_filter
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.recon.study import StudyReconstruction, half_life_s, reconstruct_study
from petrecon.volume import ImageGrid, Volume


@dataclass
class WholeBodyReconstruction:
    """The stitched volume and the per-bed results.

    Attributes
    ----------
    volume : Volume
        Bq/ml at the first bed's start on the whole-body grid, post-filtered.
    beds : list of StudyReconstruction
        Stitched: per-bed reconstructions (Bq/ml at each bed's own start, bed grid, not post-filtered).
        Joint: each bed's view of the joint volume (at the first bed's start, post-filtered).
    weights : list of Volume
        Per-bed stitching weights ``w_b`` on the bed grid (module docstring); empty for a joint reconstruction.
    """

    volume: Volume
    beds: list[StudyReconstruction]
    weights: list[Volume]


def check_beds(study: WholeBodyStudy) -> None:
    """Refuse beds that cannot be stitched: no beds, missing bed attributes, different scanners,
    layouts or isotopes, beds not acquired one after the other (a bed starting before the previous one
    ends: typically list-mode frames counted from each file's start), or a gap between axially
    neighbouring beds.

    Raises
    ------
    FormatError
        A bed lacks ``bed_offset_mm``, ``frame_start_s`` or ``duration_s``.
    ParameterError
        The beds are inconsistent.
    """
    if not study.beds:
        raise ParameterError("the whole-body study has no beds")
    study.bed_offsets_mm()  # FormatError naming the bed and the field
    first = study.beds[0]
    for b, bed in enumerate(study.beds):
        if bed.layout is None:
            raise ParameterError(f"bed {b} has no sinogram layout to reconstruct")
        if bed.layout != first.layout:
            raise ParameterError(f"bed {b} was acquired on {bed.layout.scanner.name} with layout {bed.layout.shape}, "
                                 f"bed 0 on {first.layout.scanner.name} with {first.layout.shape}: "
                                 "the beds of one whole-body study must share scanner and layout")
        if bed.attributes.get("isotope") != first.attributes.get("isotope"):
            raise ParameterError(f"bed {b} is {bed.attributes.get('isotope')!r}, bed 0 "
                                 f"{first.attributes.get('isotope')!r}: one isotope per whole-body study")
    starts, durations = study.frame_starts_s(), study.durations_s()
    for b in range(1, len(study.beds)):
        if starts[b] < starts[b - 1] + durations[b - 1] - 1e-3:
            raise ParameterError(f"bed {b} starts at {starts[b]:g} s, before bed {b - 1} ends "
                                 f"({starts[b - 1]:g} + {durations[b - 1]:g} s): beds are acquired one after "
                                 "the other, in order; set each bed's frame_start_s in s after injection "
                                 "(histogrammed list-mode counts from its own file's start)")
    overlaps_mm = study.overlaps_mm()
    if np.any(overlaps_mm < 0):
        raise ParameterError(f"the beds at {sorted(study.bed_offsets_mm().round(1).tolist())} mm leave gaps of "
                             f"{(-overlaps_mm[overlaps_mm < 0]).round(1).tolist()} mm between them")


def bed_sensitivity(study: WholeBodyStudy, b: int, grid: ImageGrid, protocol: ReconstructionProtocol) -> Volume:
    """Stitching weight ``w_b`` of bed ``b`` on ``grid`` (module docstring): counts per unit activity at t_0."""
    bed = study.beds[b]
    efficiency = np.ones(bed.layout.shape, np.float32)
    if protocol.corrections.normalisation and "normalisation" in bed.sinograms:
        efficiency = np.asarray(bed.sinograms["normalisation"], np.float32)
    live_fraction = float(bed.attributes.get("live_fraction", 1.0))
    decay = decay_since_first_bed(study, b) if protocol.corrections.decay else 1.0
    scale = np.float32(live_fraction * study.durations_s()[b] * decay)
    sensitivity = SinogramProjector(bed.layout, grid).adjoint(efficiency) * scale
    return Volume(sensitivity, grid, {"units": "relative counts per unit activity"})


def decay_since_first_bed(study: WholeBodyStudy, b: int) -> float:
    """``D_b``: fraction of the activity at the first bed's start left at bed ``b``'s start."""
    starts = study.frame_starts_s()
    return 2.0 ** (-(starts[b] - starts[0]) / half_life_s(study.beds[0]))


def _isotope(study: WholeBodyStudy) -> str:
    isotope = study.beds[0].attributes.get("isotope")
    if not isinstance(isotope, str):
        raise ParameterError("bed 0 carries no 'isotope' attribute: decay between beds cannot be corrected")
    return isotope


def axial_interpolation(target: ImageGrid, source: ImageGrid, offset_mm: float, *,
                        clamp_mm: float = 0.0) -> np.ndarray:
    """Matrix ``M`` (target planes x source planes) of linear interpolation along z, source shifted by ``offset_mm``.

    Target planes outside the source's extent get a zero row, except those
    within ``clamp_mm`` of its end planes, which take the end plane's value.

    Examples
    --------
    >>> source = ImageGrid.centred((1, 1, 3), (1.0, 1.0, 2.0))
    >>> target = ImageGrid((1, 1, 4), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    >>> axial_interpolation(target, source, 3.0).tolist()
    [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]
    >>> axial_interpolation(target, source, 3.0, clamp_mm=2.0)[3].tolist()
    [0.0, 0.0, 1.0]
    """
    position = (target.voxel_centres_mm(2) - offset_mm - source.origin_mm[2]) / source.voxel_size_mm[2]
    position = np.where(np.abs(position - np.round(position)) < 1e-6, np.round(position), position)
    reach = clamp_mm / source.voxel_size_mm[2]
    position = np.where((position < 0) & (position >= -reach), 0.0, position)
    position = np.where((position > source.shape[2] - 1) & (position <= source.shape[2] - 1 + reach),
                        source.shape[2] - 1.0, position)
    matrix = np.zeros((target.shape[2], source.shape[2]))
    inside = (position >= 0) & (position <= source.shape[2] - 1)
    rows = np.nonzero(inside)[0]
    low = np.minimum(np.floor(position[rows]).astype(int), source.shape[2] - 1)
    high = np.minimum(low + 1, source.shape[2] - 1)
    fraction = position[rows] - low
    np.add.at(matrix, (rows, low), 1.0 - fraction)
    np.add.at(matrix, (rows, high), fraction)
    return matrix


def stitch(images: list[Volume], weights: list[Volume], offsets_mm, grid: ImageGrid) -> np.ndarray:
    """``sum_b w_b f_b / sum_b w_b`` on ``grid`` (0 where no bed sees a voxel); bed ``b`` shifted by ``offsets_mm[b]``.

    Examples
    --------
    >>> bed = ImageGrid.centred((1, 1, 2), (1.0, 1.0, 1.0))
    >>> whole = ImageGrid((1, 1, 3), (1.0, 1.0, 1.0), (0.0, 0.0, -0.5))
    >>> f = [Volume(np.full((1, 1, 2), v), bed) for v in (1.0, 4.0)]
    >>> w = [Volume(np.array([[[1.0, 1.0]]]), bed), Volume(np.array([[[2.0, 1.0]]]), bed)]
    >>> stitch(f, w, [0.0, 1.0], whole).ravel().tolist()
    [1.0, 3.0, 4.0]
    """
    numerator = np.zeros(grid.shape, np.float64)
    denominator = np.zeros(grid.shape, np.float64)
    for image, weight, offset in zip(images, weights, offsets_mm):
        if image.grid.shape[:2] != grid.shape[:2] or image.grid.voxel_size_mm[:2] != grid.voxel_size_mm[:2]:
            raise ParameterError(f"bed image grid {image.grid} does not match the whole-body grid {grid} transaxially")
        matrix = axial_interpolation(grid, image.grid, float(offset))
        numerator += np.asarray(weight.data * image.data, np.float64) @ matrix.T
        denominator += np.asarray(weight.data, np.float64) @ matrix.T
    seen = denominator > 0
    return np.where(seen, numerator / np.where(seen, denominator, 1.0), 0.0)


def bed_frame(volume: Volume, bed_offset_mm: float) -> Volume:
    """A whole-body volume (e.g. a CT mu-map covering all beds) in the scanner frame of the bed at ``bed_offset_mm``.

    Same voxels, grid moved by ``-bed_offset_mm`` along z (whole-body ``z`` is scanner ``z - bed_offset_mm``).

    Examples
    --------
    >>> grid = ImageGrid((2, 2, 4), (1.0, 1.0, 2.0), (0.0, 0.0, -50.0))
    >>> bed_frame(Volume(np.zeros((2, 2, 4)), grid), -60.0).grid.origin_mm
    (0.0, 0.0, 10.0)
    """
    x, y, z = volume.grid.origin_mm
    return Volume(volume.data, ImageGrid(volume.grid.shape, volume.grid.voxel_size_mm, (x, y, z - bed_offset_mm)),
                  volume.metadata)


def reconstruct_whole_body(study: WholeBodyStudy, protocol: ReconstructionProtocol = ReconstructionProtocol(), *,
                           mu: Volume | None = None, progress: bool = True) -> WholeBodyReconstruction:
    """Reconstruct every bed, decay-correct to the first bed's start and stitch (module docstring).

    Parameters
    ----------
    study : WholeBodyStudy
        The beds (each a single-bed study container with its bed attributes).
    protocol : ReconstructionProtocol
        Applied to every bed; its post-filter is applied once, to the stitched volume.
    mu : Volume, optional
        mu-map (cm^-1) in the whole-body frame (a CT covering all beds): each
        bed gets it shifted into its scanner frame. Default: each bed's own
        attenuation (:func:`~petrecon.recon.study.reconstruct_study`).
    progress : bool
        Progress bars.

    Raises
    ------
    ParameterError, FormatError
        Inconsistent beds (:func:`check_beds`) or what a bed's reconstruction refuses.

    Notes
    -----
    A protocol with ``whole_body = "joint"`` reconstructs all beds in one OSEM instead
    (:func:`petrecon.recon.joint_beds.reconstruct_beds_jointly`).
    """
    if protocol.whole_body == "joint":
        from petrecon.recon.joint_beds import reconstruct_beds_jointly

        return reconstruct_beds_jointly(study, protocol, mu=mu, progress=progress)
    check_beds(study)
    offsets = study.bed_offsets_mm()
    unfiltered = dataclasses.replace(protocol, osem=dataclasses.replace(protocol.osem, post_filter_fwhm_mm=0.0))
    beds, images, weights = [], [], []
    for b in tqdm(range(len(study.beds)), desc="beds", unit="bed", disable=not progress):
        bed_mu = None if mu is None else bed_frame(mu, float(offsets[b]))
        result = reconstruct_study(study.beds[b], unfiltered, mu=bed_mu, progress=progress)
        to_first_start = 1.0 / decay_since_first_bed(study, b) if protocol.corrections.decay else 1.0
        beds.append(result)
        images.append(Volume(result.volume.data * np.float32(to_first_start), result.volume.grid))
        weights.append(bed_sensitivity(study, b, result.volume.grid, protocol))
    grid = whole_body_grid(images[0].grid, offsets)
    stitched = stitch(images, weights, offsets, grid)
    stitched = gaussian_post_filter(stitched, protocol.osem.post_filter_fwhm_mm, grid.voxel_size_mm)
    metadata = {**beds[0].volume.metadata, "protocol": protocol.to_dict(), "bed_position_mm": 0.0,
                "frame_start_s": float(study.frame_starts_s()[0]), "bed_offsets_mm": offsets.tolist(),
                "bed_frame_starts_s": study.frame_starts_s().tolist(), "bed_durations_s": study.durations_s().tolist(),
                "stitching": "sensitivity-weighted mean: w_b = T_b D_b A_b^T(normalisation x live fraction)"}
    return WholeBodyReconstruction(Volume(stitched.astype(np.float32), grid, metadata), beds, weights)


def write_whole_body_pet_series(reconstruction: WholeBodyReconstruction, study: WholeBodyStudy,
                                folder: str | os.PathLike, *, injection_datetime: dt.datetime,
                                **settings) -> list[Path]:
    """Write the stitched volume as ONE DICOM PET series spanning every bed.

    SeriesDate/Time (= AcquisitionDate/Time, the DecayCorrection START time)
    is the first bed's start, ``injection_datetime + frame_start_s`` of bed 0;
    ActualFrameDuration the first bed's duration. RadionuclideTotalDose,
    isotope and CorrectedImage come from the study and the reconstruction;
    ``settings`` go to :func:`petrecon.io.dicom.write_pet_series` (patient
    weight, position, tracer name, ``overwrite``, ...).
    """
    from petrecon.io.dicom import write_pet_series

    first = study.beds[0].attributes
    injected = settings.pop("injected_dose_bq", first.get("injected_activity_bq"))
    if injected is None:
        raise ParameterError("the study carries no injected_activity_bq; pass injected_dose_bq")
    series_datetime = injection_datetime + dt.timedelta(seconds=float(study.frame_starts_s()[0]))
    corrected = tuple(reconstruction.volume.metadata.get("corrected_image", ()))
    return write_pet_series(reconstruction.volume, folder, injected_dose_bq=float(injected),
                            injection_datetime=injection_datetime, series_datetime=series_datetime,
                            frame_duration_s=float(study.durations_s()[0]), isotope=_isotope(study),
                            corrected_image=corrected, **settings)


def reconstruct_whole_body_to_file(path: str | os.PathLike, protocol: ReconstructionProtocol,
                                   out: str | os.PathLike | None, *, dicom: str | os.PathLike | None = None,
                                   dicom_fields: Callable[[dict], dict] | None = None, mu: Volume | None = None,
                                   overwrite: bool = False, progress: bool = True) -> list[str]:
    """Read a whole-body study, reconstruct it, write the stitched volume; summary lines.

    What ``petrecon recon`` runs when its input is a whole-body study
    (:func:`~petrecon.io.multibed.is_whole_body`). ``out``: the HDF5
    container (volume ``activity_bq_per_ml``); ``dicom``: a folder for the one
    PET series (:func:`write_whole_body_pet_series`), whose keywords
    ``dicom_fields(first bed's attributes)`` gives (default
    :func:`petrecon.io.study_input.pet_series_fields`, fused with the CT or
    MR series of ``mu``'s ``dicom_reference``); ReconstructionMethod is the
    protocol's unless they give it.
    """
    from petrecon.io.container import Container, make_provenance, write_container
    from petrecon.io.multibed import bed_file_name, read_whole_body

    path = Path(path)
    if out is None and dicom is None:
        raise ParameterError("give an output: an HDF5 file and/or a DICOM folder")
    for target in (out, dicom):
        if target is not None and Path(target).exists() and not overwrite:
            raise ParameterError(f"{target}: {EXISTS}")
    study = read_whole_body(path)
    fields = {}
    if dicom is not None:
        from petrecon.io.study_input import pet_series_fields

        first = study.beds[0].attributes
        reference = mu.metadata.get("dicom_reference") if mu is not None else None
        fields = dicom_fields(first) if dicom_fields is not None else pet_series_fields(first, reference=reference)[0]
        fields.setdefault("reconstruction_method", protocol.dicom_method())
    result = reconstruct_whole_body(study, protocol, mu=mu, progress=progress)
    inputs = [path, *(path.with_name(bed_file_name(path, b)) for b in range(len(study.beds)))]
    provenance = make_provenance(protocol=protocol, scanner=study.beds[0].layout.scanner.name, input_files=inputs,
                                 corrected_image=list(result.volume.metadata.get("corrected_image", ())),
                                 bed_offsets_mm=study.bed_offsets_mm().tolist())
    volume = result.volume
    method = "stitched by sensitivity" if protocol.whole_body == "stitched" else "reconstructed jointly"
    lines = [f"reconstructed    {path}: {len(study.beds)} beds at {', '.join(f'{z:g}' for z in study.bed_offsets_mm())}"
             f" mm, {method}, image {volume.grid.shape}",
             f"corrections      {' '.join(volume.metadata.get('corrected_image', ())) or 'none'}",
             f"activity         max {float(volume.data.max()):.4g} Bq/ml at the first bed's start"]
    if out is not None:
        write_container(out, Container(volumes={"activity_bq_per_ml": volume}, attributes=study.attributes,
                                       provenance=provenance), overwrite=overwrite)
        lines.append(f"written          {out} (volume activity_bq_per_ml)")
    if dicom is not None:
        settings = {k: v for k, v in fields.items() if k not in ("series_datetime", "isotope", "half_life_s")}
        write_whole_body_pet_series(result, study, dicom, provenance=provenance, overwrite=overwrite,
                                    manufacturer_model_name=study.beds[0].layout.scanner.name, **settings)
        lines.append(f"written          {dicom} (one PET DICOM series, {volume.grid.shape[2]} slices)")
    return lines

