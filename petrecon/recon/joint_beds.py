"""Joint whole-body reconstruction: one OSEM over the data of every bed, into one whole-body image.

The alternative to stitching (:mod:`petrecon.recon.wholebody`): the unknown
is the activity ``x`` at the first bed's start on the whole-body grid, and
bed ``b`` sees it through its own system model (:func:`~petrecon.recon.study.study_model`)::

    y_b ~ Poisson( m_b * A (P_b x) + a_b ),   m_b = n_b x ACF_b x l_b x T_b x D_b / C_b

- ``P_b``: the planes of bed ``b``'s grid interpolated from the whole-body
  grid (:func:`~petrecon.recon.wholebody.axial_interpolation`; a selection
  when the bed step is a whole number of planes), so ``P_b^T`` puts a bed's
  back-projection into the whole-body image;
- ``A``: the projector of one bed (all beds share layout and grid), with the
  protocol's PSF applied on the whole-body image when it asks for one;
- ``D_b = 2^(-(t_b - t_0) / T_half)``: decay from the first bed's start to
  bed ``b``'s start, ``C_b``: the within-frame decay correction factor of the
  bed (its frame-mean activity is ``1 / C_b`` of that at its start); both 1
  without decay correction;
- ``n_b``, ``ACF_b``, ``l_b``, ``T_b``, ``a_b``: normalisation, attenuation
  factors, live fraction, duration, randoms (+ scatter) of the bed;
- and, where beds carry their own calibrations ``k_b`` (Bq/ml per unit of
  the bed's model, over the positron fraction), ``m_b`` is multiplied by
  ``k_0 / k_b``: the image is in the first bed's unit, Bq/ml = ``k_0 x``.

Subset ``S`` of the OSEM update takes the views ``S`` of every bed, so each
sub-iteration uses all beds and a voxel in an overlap is updated from both
beds' data at once: the maximum-likelihood combination of the overlapping
data, instead of a weighted mean of two separately converged images (whose
end planes, seen by few oblique LORs, converge differently; cf. the
lesion-in-overlap test of the stitched mode). Scatter is estimated per bed,
from the whole-body image moved into the bed's frame: the single-scatter
simulation sees the activity beyond the bed's axial field of view where a
neighbouring bed measured it, instead of replicating end planes. The
post-filter is applied once, to the whole-body image.

Cost: one bed's projections per bed and sub-iteration, as for stitching,
but every bed's model and stacked sinograms are held at once (prompts,
efficiency, attenuation factors, randoms, ``m`` and the stacked prompts,
``m`` and ``a``: eight float32 sinograms, about 2.3 GB per mMR span-11 bed).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from petrecon.backend import array_module
from petrecon.errors import ParameterError
from petrecon.geometry.patient import check_patient_position
from petrecon.io.multibed import WholeBodyStudy, whole_body_grid
from petrecon.isotopes import decay_correction_factor
from petrecon.operators import LinearOperator
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon.osem import osem
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.recon.resolution import ResolutionModelledProjector
from petrecon.recon.study import (
    StudyReconstruction, calibration_factor, half_life_s, positron_fraction, scatter_rounds, study_model,
)
from petrecon.volume import ImageGrid, Volume


class JointBedProjector:
    """Subset projector from a whole-body image to the stacked sinograms of every bed: ``x -> [A P_b x]_b``.

    Parameters
    ----------
    projector : SubsetProjector
        One bed's projector ``A`` (e.g. a :class:`~petrecon.projectors.sinogram.SinogramProjector` on the bed grid).
    bed_grid : ImageGrid
        The grid ``projector`` works on (scanner frame).
    grid : ImageGrid
        The whole-body grid (same transaxial voxels, extended along z).
    offsets_mm : sequence of float
        Bed offsets: bed ``b``'s plane at scanner ``z`` lies at whole-body ``z + offsets_mm[b]``.

    Attributes
    ----------
    in_shape : tuple of int
        The whole-body grid's shape.
    out_shape : tuple of int
        ``(n_beds, *projector.out_shape)``.
    view_axis : int
        The projector's view axis, shifted by the bed axis.

    Examples
    --------
    Two one-plane "beds" seen through the identity:

    >>> from petrecon.operators import Multiply
    >>> class Identity:
    ...     in_shape = out_shape = (1, 1, 1); view_axis = 0; voxel_size_mm = (1.0, 1.0, 1.0)
    ...     def subset_operator(self, views): return Multiply(np.ones((1, 1, 1), np.float32))
    >>> bed = ImageGrid.centred((1, 1, 1), (1.0, 1.0, 1.0))
    >>> whole = ImageGrid((1, 1, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> joint = JointBedProjector(Identity(), bed, whole, [0.0, 1.0]).subset_operator(np.arange(1))
    >>> joint.forward(np.array([[[2.0, 5.0]]], np.float32)).ravel().tolist()
    [2.0, 5.0]
    """

    def __init__(self, projector, bed_grid: ImageGrid, grid: ImageGrid, offsets_mm) -> None:
        from petrecon.recon.wholebody import axial_interpolation

        if tuple(projector.in_shape) != tuple(bed_grid.shape):
            raise ParameterError(f"the projector's image shape {tuple(projector.in_shape)} is not the bed grid's "
                                 f"{bed_grid.shape}")
        if grid.shape[:2] != bed_grid.shape[:2] or grid.voxel_size_mm != bed_grid.voxel_size_mm:
            raise ParameterError(f"the whole-body grid {grid} and the bed grid {bed_grid} differ in their voxels")
        self.projector = projector
        # P_b as (whole-body planes x bed planes): image @ P_b gives the bed's planes, bed image @ P_b.T puts them
        # back. The whole-body grid ends at the top bed's last whole plane: a bed plane up to one plane beyond it
        # (bed steps that are no whole number of planes) takes the grid's end plane.
        self.plane_maps = [axial_interpolation(bed_grid, grid, -float(offset), clamp_mm=grid.voxel_size_mm[2])
                           .T.astype(np.float32) for offset in offsets_mm]
        if any(not plane_map.any(axis=0).all() for plane_map in self.plane_maps):
            raise ParameterError("a bed's planes reach beyond the whole-body grid")
        self.in_shape = tuple(grid.shape)
        self.out_shape = (len(self.plane_maps), *projector.out_shape)
        self.view_axis = projector.view_axis % len(projector.out_shape) + 1
        self.voxel_size_mm = grid.voxel_size_mm

    def subset_operator(self, views: np.ndarray) -> LinearOperator:
        """``x -> [A_S P_b x]_b``: the views ``views`` of every bed."""
        return _JointSubset(self.projector.subset_operator(views), self.plane_maps, self.in_shape)


class _JointSubset(LinearOperator):
    """One subset of :class:`JointBedProjector`; the adjoint sums ``P_b^T A_S^T y_b`` over the beds."""

    def __init__(self, operator: LinearOperator, plane_maps: list[np.ndarray], in_shape: tuple[int, ...]) -> None:
        self.operator, self.plane_maps = operator, plane_maps
        self.in_shape = in_shape
        self.out_shape = (len(plane_maps), *operator.out_shape)

    def _forward(self, x):
        xp = array_module(x)
        return xp.stack([self.operator.forward(xp.ascontiguousarray(x @ xp.asarray(plane_map)))
                         for plane_map in self.plane_maps])

    def _adjoint(self, y):
        xp = array_module(y)
        image = xp.zeros(self.in_shape, xp.float32)
        for bed_data, plane_map in zip(y, self.plane_maps):
            image += self.operator.adjoint(xp.ascontiguousarray(bed_data)) @ xp.asarray(plane_map).T
        return image


def reconstruct_beds_jointly(study: WholeBodyStudy, protocol: ReconstructionProtocol = ReconstructionProtocol(), *,
                             mu: Volume | None = None, progress: bool = True):
    """Reconstruct all beds of ``study`` at once into one whole-body volume (module docstring).

    Parameters and result as :func:`~petrecon.recon.wholebody.reconstruct_whole_body`, which calls
    this for ``protocol.whole_body == "joint"``; ``beds`` of the result hold each bed's view of the
    joint image (Bq/ml at the first bed's start, bed grid, post-filtered), ``weights`` is empty.
    """
    from petrecon.recon.wholebody import WholeBodyReconstruction, bed_frame, check_beds

    check_beds(study)
    offsets = study.bed_offsets_mm()
    models = [study_model(bed, protocol, mu=None if mu is None else bed_frame(mu, float(offsets[b])))
              for b, bed in enumerate(study.beds)]
    bed_grid = models[0].grid
    grid = whole_body_grid(bed_grid, offsets)
    joint = JointBedProjector(SinogramProjector(models[0].layout, bed_grid), bed_grid, grid, offsets)
    system = ResolutionModelledProjector(joint, protocol.psf_fwhm_mm) if protocol.psf_fwhm_mm > 0 else joint
    # Bq/ml per unit of each bed's own model; the joint image is in bed 0's unit (each bed may carry its calibration)
    bq_per_ml_per_unit = [calibration_factor(bed, protocol) / positron_fraction(bed) for bed in study.beds]
    prompts = np.stack([model.prompts for model in models])
    multiplicative = np.stack([model.multiplicative * np.float32(_counted_fraction(study, b, protocol)
                                                                 * bq_per_ml_per_unit[0] / bq_per_ml_per_unit[b])
                               for b, model in enumerate(models)])
    scatter = [model.scatter for model in models]
    rounds = scatter_rounds(models[0], protocol)
    updates = rounds * protocol.osem.n_iterations * protocol.osem.n_subsets
    with tqdm(total=updates, desc=f"joint OSEM ({len(models)} beds)", unit="subset", disable=not progress) as bar:
        for round_index in range(rounds):
            additive = np.stack([model.randoms if s is None else model.randoms + s
                                 for model, s in zip(models, scatter)])
            image = osem(prompts, system, multiplicative=multiplicative, additive=additive, protocol=protocol.osem,
                         callback=lambda *_: bar.update())
            if round_index < rounds - 1:
                whole_body = Volume(image, grid)
                scatter = [model.next_scatter(previous, bed_frame(whole_body, float(offset)))
                           for model, previous, offset in zip(models, scatter, offsets)]
    volume_bq_per_ml = (image * np.float32(bq_per_ml_per_unit[0])).astype(np.float32)
    corrected = models[0].corrected + (["SCAT"] if scatter[0] is not None else []) \
        + (["DECY"] if protocol.corrections.decay else [])
    metadata = {"units": "Bq/ml", "protocol": protocol.to_dict(), "corrected_image": corrected,
                "decay_correction": "START" if protocol.corrections.decay else "NONE",
                "calibration_bq_per_ml_per_unit": calibration_factor(study.beds[0], protocol),
                "patient_position": check_patient_position(study.beds[0].attributes.get("patient_position")),
                "bed_position_mm": 0.0,
                "frame_start_s": float(study.frame_starts_s()[0]), "bed_offsets_mm": offsets.tolist(),
                "bed_frame_starts_s": study.frame_starts_s().tolist(), "bed_durations_s": study.durations_s().tolist(),
                "stitching": "joint: one OSEM over every bed's data, y_b = m_b A P_b x + a_b"}
    volume = Volume(volume_bq_per_ml, grid, metadata)
    beds = [StudyReconstruction(Volume(volume_bq_per_ml @ plane_map, bed_grid, metadata), tuple(corrected), s)
            for plane_map, s in zip(joint.plane_maps, scatter)]
    return WholeBodyReconstruction(volume, beds, [])


def _counted_fraction(study: WholeBodyStudy, b: int, protocol: ReconstructionProtocol) -> float:
    """``D_b / C_b``: bed ``b``'s frame-mean activity per unit activity at the first bed's start (1 without decay)."""
    from petrecon.recon.wholebody import decay_since_first_bed

    if not protocol.corrections.decay:
        return 1.0
    within_frame = decay_correction_factor(half_life_s(study.beds[b]), 0.0, float(study.durations_s()[b]))
    return decay_since_first_bed(study, b) / within_frame

