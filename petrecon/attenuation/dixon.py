"""Dixon MR to a 4-class mu-map at 511 keV (the Biograph mMR method).

Classes and default mu (Martinez-Moeller et al., J Nucl Med 50:520, 2009;
reference/quantification.md): air/background 0, lung 0.0224, fat 0.0854, soft
tissue 0.100 cm^-1. Bone is not a class: it is soft tissue, which is why
PET/MR underestimates uptake in and near bone (~8 +- 3 %, up to 13 %).

Segmentation (documented choices; all thresholds are parameters):

1. tissue: in-phase signal (water + fat) above ``body_fraction`` (10 %) of its
   99.5th percentile;
2. patient: the tissue's 3D connected components of at least
   ``min_body_part_ml`` (10 ml; the largest one always), whose transverse
   slices, holes filled, are the patient's outline; only what lies outside
   that outline is air (noise specks outside the patient are dropped);
3. body: every tissue voxel inside the outline, whether or not it connects
   to the largest component. A soft-tissue nodule or a fat island inside a
   lung, and the marrow of the sternum, which its cortex (almost no Dixon
   signal) cuts off from the rest of the body, keep their tissue class;
   taking the largest component alone turned them into lung (a 15 mm lung
   nodule lost 22 % of its SUVmax against CT attenuation);
4. lung: low-signal voxels inside the outline, kept if their 3D connected
   component is at least ``min_lung_ml`` (20 ml) and thicker than
   ``min_lung_thickness_mm`` (10 mm: it survives a morphological opening by a
   ball of that diameter); thin or small low-signal regions (vessels, tendons,
   the cortical shell of the spine, the sternum and other bones) become soft
   tissue. Large gas pockets in the bowel are labelled lung, as in the
   vendor's method;
5. fat: body voxels whose fat fraction ``fat / (water + fat)`` exceeds
   ``fat_fraction_threshold`` (0.5: fat dominates the voxel);
6. soft tissue: the rest of the body;
7. bone (only with ``bone="atlas"``, not the mMR's 4-class map): the
   vertebral-body template of :mod:`petrecon.attenuation.bone_atlas`, placed
   from the Dixon images, inside the outline and outside the lungs, with the
   template's mean bone mu (~0.116 cm^-1).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from scipy import ndimage

from petrecon.attenuation.bone_atlas import place_vertebral_column, vertebral_body_mu_per_cm
from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry.patient import gantry_to_patient_affine, volume_patient_frame
from petrecon.volume import Volume

#: Bone models of :func:`segment_dixon`: none (the 4-class map) or the vertebral-body template.
BONE_MODELS = ("none", "atlas")


class DixonClass(IntEnum):
    """Tissue classes of the 4-class Dixon mu-map."""

    AIR = 0
    LUNG = 1
    FAT = 2
    SOFT_TISSUE = 3
    BONE = 4
    """Only in bone-aware maps (``segment_dixon(..., bone="atlas")``); mu from
    :func:`~petrecon.attenuation.bone_atlas.vertebral_body_mu_per_cm` unless given."""


#: mu (cm^-1) of the four classes of the mMR's map; the bone class's is computed (see :class:`DixonClass`).
DIXON_MU_PER_CM: dict[DixonClass, float] = {
    DixonClass.AIR: 0.0,
    DixonClass.LUNG: 0.0224,
    DixonClass.FAT: 0.0854,
    DixonClass.SOFT_TISSUE: 0.100,
}


def water_fat_from_in_opposed(in_phase: np.ndarray, opposed_phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-point Dixon: ``water = (IP + OP) / 2``, ``fat = (IP - OP) / 2``.

    With magnitude images ``OP = |W - F|``, so this assumes water dominates;
    fat-dominated voxels come out with water and fat swapped (the known
    ambiguity of magnitude 2-point Dixon). Prefer the scanner's water and fat
    series when they exist.

    Examples
    --------
    >>> water, fat = water_fat_from_in_opposed(np.array([10.0]), np.array([6.0]))
    >>> float(water[0]), float(fat[0])
    (8.0, 2.0)
    """
    in_phase = np.asarray(in_phase, dtype=np.float32)
    opposed_phase = np.asarray(opposed_phase, dtype=np.float32)
    return (in_phase + opposed_phase) / 2, np.clip((in_phase - opposed_phase) / 2, 0, None)


def segment_dixon(water: Volume, fat: Volume, *, body_fraction: float = 0.1, fat_fraction_threshold: float = 0.5,
                  min_lung_ml: float = 20.0, min_lung_thickness_mm: float = 10.0,
                  min_body_part_ml: float = 10.0, bone: str = "none") -> Volume:
    """Label every voxel air, lung, fat or soft tissue, and bone with ``bone="atlas"`` (see the module notes).

    Parameters
    ----------
    water, fat : Volume
        Dixon water and fat images on the same grid (arbitrary MR units).
    body_fraction : float
        Body threshold as a fraction of the 99.5th percentile of water + fat.
    fat_fraction_threshold : float
        Fat fraction above which a body voxel is fat.
    min_lung_ml : float
        Smallest enclosed low-signal region labelled lung.
    min_lung_thickness_mm : float
        Thinner enclosed low-signal structures are soft tissue (bone cortex).
    min_body_part_ml : float
        Tissue components at least this large (arms, which the threshold
        may cut off from the trunk) belong to the patient; smaller ones
        count only inside the patient's outline (a lung nodule), else they
        are noise.
    bone : {"none", "atlas"}
        ``"atlas"`` adds the vertebral bodies as :attr:`DixonClass.BONE`
        (:func:`~petrecon.attenuation.bone_atlas.place_vertebral_column`; the
        patient's posterior is found from ``water.metadata["patient_position"]``,
        HFS when absent).

    Returns
    -------
    Volume
        uint8 labels (:class:`DixonClass`) on the input grid; ``metadata["bone"]``
        names the bone model, and with ``"atlas"`` ``metadata["bone_slices"]``
        counts the slices where a vertebral body was placed.
    """
    if water.grid != fat.grid:
        raise GeometryError(f"Dixon water and fat images must share one grid: {water.grid} vs {fat.grid}")
    for name, value in (("body_fraction", body_fraction), ("fat_fraction_threshold", fat_fraction_threshold)):
        if not 0.0 < value < 1.0:
            raise ParameterError(f"{name} must be in (0, 1), got {value}")
    if bone not in BONE_MODELS:
        raise ParameterError(f"bone must be one of {', '.join(BONE_MODELS)}, got {bone!r}")
    water_signal = np.clip(np.asarray(water.data, dtype=np.float32), 0, None)
    fat_signal = np.clip(np.asarray(fat.data, dtype=np.float32), 0, None)
    signal = water_signal + fat_signal
    reference = float(np.percentile(signal, 99.5))
    if not reference > 0:
        raise ParameterError("the Dixon images hold no signal (99.5th percentile of water + fat is 0)")
    tissue = signal > body_fraction * reference
    outline = _patient_outline(tissue, min_body_part_ml / water.grid.voxel_volume_ml)
    body = tissue & outline
    enclosed = outline & ~tissue
    lung = _components_at_least(enclosed, min_lung_ml / water.grid.voxel_volume_ml)
    lung &= _thicker_than(lung, min_lung_thickness_mm, water.grid.voxel_size_mm)
    fat_fraction = np.divide(fat_signal, signal, out=np.zeros_like(signal), where=signal > 0)
    labels = np.full(signal.shape, DixonClass.AIR, dtype=np.uint8)
    labels[outline] = DixonClass.SOFT_TISSUE
    labels[body & (fat_fraction > fat_fraction_threshold)] = DixonClass.FAT
    labels[lung] = DixonClass.LUNG
    metadata = {"units": "DixonClass", "source": "dixon", "bone": bone}
    if bone == "atlas":
        posterior_sign = float(np.sign(gantry_to_patient_affine(volume_patient_frame(water.metadata)[0])[1, 1]))
        placement = place_vertebral_column(water, fat, body, outline, posterior_sign=posterior_sign)
        labels[placement.mask & ~lung] = DixonClass.BONE
        metadata["bone_slices"] = int(np.count_nonzero(~np.isnan(placement.centres_mm[:, 0])))
    return Volume(labels, water.grid, metadata)


def dixon_mu_map(labels: Volume, mu_per_cm: dict[DixonClass, float] | None = None,
                 hardware: Volume | None = None) -> Volume:
    """mu-map (cm^-1) of a Dixon label volume, plus an optional hardware (table, coil) template.

    ``mu_per_cm`` needs the four classes of the mMR's map; the bone class's mu
    defaults to :func:`~petrecon.attenuation.bone_atlas.vertebral_body_mu_per_cm`.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((2, 1, 1), (1.0, 1.0, 1.0))
    >>> [round(float(m), 4) for m in dixon_mu_map(Volume(np.array([[[1]], [[3]]], np.uint8), grid)).data.ravel()]
    [0.0224, 0.1]
    """
    table = dict(DIXON_MU_PER_CM) if mu_per_cm is None else {DixonClass(k): float(v) for k, v in mu_per_cm.items()}
    if set(table) - {DixonClass.BONE} != set(DIXON_MU_PER_CM) or min(table.values()) < 0:
        raise ParameterError(f"mu_per_cm needs a non-negative value for each of {[c.name for c in DIXON_MU_PER_CM]}")
    classes = np.asarray(labels.data, dtype=np.intp)
    has_bone = bool(np.any(classes == DixonClass.BONE))
    if has_bone and DixonClass.BONE not in table:
        table[DixonClass.BONE] = vertebral_body_mu_per_cm()
    lookup = np.array([table.get(c, 0.0) for c in DixonClass], dtype=np.float32)
    mu = lookup[classes]
    if hardware is not None:
        if hardware.grid != labels.grid:
            raise GeometryError("the hardware mu template must be resampled to the Dixon grid first")
        mu = mu + np.asarray(hardware.data, dtype=np.float32)
    used = {c.name: table[c] for c in table if c != DixonClass.BONE or has_bone}
    metadata = {"units": "cm^-1", "source": "dixon", "mu_per_cm": used,
                "hardware": hardware is not None}
    return Volume(mu, labels.grid, metadata)


def _thicker_than(mask: np.ndarray, thickness_mm: float, voxel_size_mm: tuple[float, float, float]) -> np.ndarray:
    """The connected components of ``mask`` that keep voxels after an opening by a ball of ``thickness_mm``."""
    radii = [max(0, int(thickness_mm / 2 // v)) for v in voxel_size_mm]
    if not any(radii):
        return mask
    grids = np.meshgrid(*(np.arange(-r, r + 1) / max(r, 1) for r in radii), indexing="ij")
    ball = sum(g**2 for g in grids) <= 1.0
    core = ndimage.binary_opening(mask, structure=ball)
    labels, _ = ndimage.label(mask)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    return keep[labels]


def _patient_outline(tissue: np.ndarray, min_part_voxels: float) -> np.ndarray:
    """The patient's outline: its large tissue components (the largest always), holes filled slice by slice."""
    patient = _components_at_least(tissue, min_part_voxels, keep_largest=True)
    for k in range(patient.shape[2]):
        patient[:, :, k] = ndimage.binary_fill_holes(patient[:, :, k])
    return patient


def _components_at_least(mask: np.ndarray, min_voxels: float, *, keep_largest: bool = False) -> np.ndarray:
    """The 3D connected components of ``mask`` of at least ``min_voxels`` (and the largest one if ``keep_largest``)."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= min_voxels
    keep[np.argmax(sizes)] |= keep_largest
    keep[0] = False
    return keep[labels]
