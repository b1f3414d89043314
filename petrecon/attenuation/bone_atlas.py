"""A vertebral-body bone template placed from the Dixon images: the fifth class of a bone-aware MR mu-map.

The 4-class Dixon mu-map of the Biograph mMR (:mod:`petrecon.attenuation.dixon`)
calls bone soft tissue, so uptake in and near bone is underestimated (bone
lesions -8 +- 3 % and -11 +- 5 % against CT attenuation,
reference/quantification.md). Siemens later registered an atlas of the major
bones to the Dixon images and gave the registered bones a bone mu (Paulus et
al., J Nucl Med 56:1061, 2015). This module is a deliberately small version
of that idea for the trunk: one template, the vertebral body, placed slice by
slice from the Dixon water and fat images themselves.

Anatomy the placement rests on (facts, not the phantom's numbers):

- The vertebral column lies in the mid-sagittal plane, in the posterior half
  of the trunk: vertebral body, spinal canal and posterior elements lie
  between the posterior body surface and the thoracic and abdominal viscera;
  the sternum is the only midline bone of the anterior half (Gray's Anatomy,
  42nd ed., 2020, chapters on the back and thorax). The search is therefore
  restricted to the posterior half of the trunk, within
  :attr:`VertebralTemplate.lateral_tolerance_mm` of its left-right centre
  (room for scoliosis and positioning).
- Depth of the vertebral body centre below the posterior skin: the skin to
  lumbar epidural space distance is about 5 cm in adults (2.5-8 cm; Harrison
  and Clowes, Anaesthesia 40:685, 1985), the spinal canal's sagittal
  diameter 15-20 mm, half the vertebral body's depth 12-18 mm: the body
  centre lies some 60-110 mm deep in the lumbar spine, less in the thorax of
  a lean patient, more in an obese one. The search window,
  30-150 mm (:attr:`VertebralTemplate.min_depth_mm`, ``max_depth_mm``),
  holds that range with margin.
- Size: vertebral bodies are about 27-50 mm wide and 16-35 mm deep from T1 to
  L5 (Panjabi et al., Spine 16:888, 1991 (thoracic); Spine 17:299, 1992
  (lumbar)). The template is one elliptic cross-section of 40 x 32 mm
  (mid-range, thoracolumbar), not resized per level.
- MR appearance: adult vertebral marrow is a mixture of water and fat
  (proton-density fat fraction typically 20-60 %, rising with age;
  Karampinos et al., J Magn Reson Imaging 47:332, 2018), unlike muscle and
  organs (mostly water) and subcutaneous fat (mostly fat); its thin
  cortical shell gives almost no signal. The vertebral body is found as the
  placement of the template that holds the largest fraction of such
  "marrow-like" voxels (fat fraction within
  :attr:`VertebralTemplate.marrow_fat_fraction`), and only where that
  fraction reaches :attr:`VertebralTemplate.min_marrow_fraction` (no bone
  where none is seen). Per-slice centres are median-filtered along the axis
  (the spine's curvature changes over centimetres, not millimetres).

Bone mu: the template's area-weighted mean of its trabecular core (ICRU 44
spongiosa, 1.18 g/ml) and a cortical shell of ~0.4 mm (vertebral shells are
thin, ~0.4-1 mm: Eswaran et al., J Bone Miner Res 21:307, 2006) of ICRU 44
cortical bone (1.92 g/ml), at 511 keV from NIST XCOM: about 0.116 cm^-1
(:func:`vertebral_body_mu_per_cm`; the material values are those of
:mod:`petrecon.simulate.materials`).

Unverified: placement has been tested only on simulated Dixon images (the
``pentixafor-torso`` phantom and synthetic bodies), not on real MR images
(vertebral marrow with fat fractions outside the band, fatty paraspinal
muscle, metal, motion, truncation at the MR field of view). Only the
vertebral bodies are modelled: the posterior elements, ribs, sternum,
pelvis, limbs and the skull are not, so other body regions and the head keep
the 4-class map's bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from petrecon.errors import GeometryError, ParameterError
from petrecon.volume import Volume


@dataclass(frozen=True)
class VertebralTemplate:
    """The vertebral-body template and its search rule (module notes give the sources).

    Attributes
    ----------
    width_mm, depth_mm : float
        Left-right and antero-posterior diameters of the elliptic cross-section.
    cortical_thickness_mm : float
        Cortical shell thickness used for the template's mean mu.
    min_depth_mm, max_depth_mm : float
        Search window of the centre's depth below the posterior body surface
        at the midline (also capped at half the trunk's thickness there).
    lateral_tolerance_mm : float
        Search window of the centre's distance from the trunk's left-right centre.
    marrow_fat_fraction : tuple of float
        Fat fractions ``fat / (water + fat)`` taken as vertebral marrow.
    min_marrow_fraction : float
        Fraction of the template that must be marrow-like for bone to be placed.
    smoothing_slices : int
        Width (slices, odd) of the median filter of the centres along the axis.
    """

    width_mm: float = 40.0
    depth_mm: float = 32.0
    cortical_thickness_mm: float = 0.4
    min_depth_mm: float = 30.0
    max_depth_mm: float = 150.0
    lateral_tolerance_mm: float = 30.0
    marrow_fat_fraction: tuple[float, float] = (0.2, 0.8)
    min_marrow_fraction: float = 0.5
    smoothing_slices: int = 5


#: The default template (thoracolumbar vertebral body).
VERTEBRAL_BODY = VertebralTemplate()


@dataclass(frozen=True)
class VertebralPlacement:
    """Where the template was placed.

    Attributes
    ----------
    centres_mm : numpy.ndarray
        ``(n_slices, 2)`` (x, y) centre per transverse slice in the image's
        frame (mm); NaN where no vertebral body was found.
    marrow_fraction : numpy.ndarray
        ``(n_slices,)`` fraction of marrow-like voxels in the best placement (0 where none was searched).
    mask : numpy.ndarray
        Boolean bone mask on the Dixon grid.
    """

    centres_mm: np.ndarray
    marrow_fraction: np.ndarray
    mask: np.ndarray


def vertebral_body_mu_per_cm(template: VertebralTemplate = VERTEBRAL_BODY) -> float:
    """Area-weighted mean mu (cm^-1, 511 keV) of the template's cross-section: spongiosa core and cortical shell.

    The shell's area fraction is ``thickness x perimeter / area`` of the
    ellipse (Ramanujan's perimeter); its mu and the core's are ICRU 44
    cortical bone and spongiosa (:mod:`petrecon.simulate.materials`).

    Examples
    --------
    >>> round(vertebral_body_mu_per_cm(), 4)
    0.1157
    """
    from petrecon.simulate.materials import get_material  # not at import: the simulator imports the attenuation module

    a, b = template.width_mm / 2, template.depth_mm / 2
    perimeter_mm = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
    shell = min(1.0, template.cortical_thickness_mm * perimeter_mm / (math.pi * a * b))
    return shell * get_material("cortical_bone").mu_per_cm + (1 - shell) * get_material("spongiosa").mu_per_cm


def place_vertebral_column(water: Volume, fat: Volume, body: np.ndarray, outline: np.ndarray, *,
                           posterior_sign: float = 1.0,
                           template: VertebralTemplate = VERTEBRAL_BODY) -> VertebralPlacement:
    """Find the vertebral body in each transverse slice of a Dixon pair and place the template there.

    Parameters
    ----------
    water, fat : Volume
        Dixon water and fat images on one grid (axes x, y, z; z axial).
    body : numpy.ndarray
        Boolean tissue mask (signal above the body threshold, inside the patient).
    outline : numpy.ndarray
        Boolean patient outline (holes filled): gives the midline and the posterior surface.
    posterior_sign : float
        +1 when the patient's posterior is +y of the image (supine), -1 when prone.
    template : VertebralTemplate
        Size and search rule.

    Returns
    -------
    VertebralPlacement
    """
    if water.grid != fat.grid or body.shape != water.grid.shape or outline.shape != water.grid.shape:
        raise GeometryError("the Dixon water and fat images and the body masks must share one grid")
    low, high = template.marrow_fat_fraction
    if not 0.0 <= low < high <= 1.0:
        raise ParameterError(f"marrow_fat_fraction must be 0 <= low < high <= 1, got {template.marrow_fat_fraction}")
    if posterior_sign not in (1.0, -1.0):
        raise ParameterError(f"posterior_sign must be +1 or -1, got {posterior_sign}")
    grid = water.grid
    water_signal = np.clip(np.asarray(water.data, dtype=np.float32), 0, None)
    fat_signal = np.clip(np.asarray(fat.data, dtype=np.float32), 0, None)
    total = water_signal + fat_signal
    fat_fraction = np.divide(fat_signal, total, out=np.zeros_like(total), where=total > 0)
    marrow = body & (fat_fraction >= low) & (fat_fraction <= high)
    ellipse = _ellipse_kernel(template.width_mm, template.depth_mm, grid.voxel_size_mm[:2])
    kernel = (ellipse / ellipse.sum())[:, :, None]
    score = signal.fftconvolve(marrow.astype(np.float32), kernel, mode="same", axes=(0, 1))
    centres = np.full((grid.shape[2], 2), np.nan)
    fraction = np.zeros(grid.shape[2])
    for k in range(grid.shape[2]):
        window = _search_window(outline[:, :, k], grid.voxel_size_mm[:2], posterior_sign, template)
        if window is None or not window.any():
            continue
        best = np.unravel_index(np.argmax(np.where(window, score[:, :, k], -1.0)), window.shape)
        fraction[k] = score[best[0], best[1], k]
        if fraction[k] >= template.min_marrow_fraction:
            centres[k] = [grid.origin_mm[i] + best[i] * grid.voxel_size_mm[i] for i in range(2)]
    centres = _median_along_axis(centres, template.smoothing_slices)
    return VertebralPlacement(centres, fraction, _template_mask(grid, centres, template) & outline)


def _ellipse_kernel(width_mm: float, depth_mm: float, voxel_mm: tuple[float, float]) -> np.ndarray:
    """A 2D boolean ellipse of the given diameters (odd-sized, centred), in voxels of ``voxel_mm``."""
    half = [int(np.ceil(d / 2 / v)) for d, v in zip((width_mm, depth_mm), voxel_mm)]
    x, y = np.meshgrid(*(np.arange(-h, h + 1) * v for h, v in zip(half, voxel_mm)), indexing="ij")
    return ((x / (width_mm / 2)) ** 2 + (y / (depth_mm / 2)) ** 2 <= 1.0).astype(np.float32)


def _search_window(outline: np.ndarray, voxel_mm: tuple[float, float], posterior_sign: float,
                   template: VertebralTemplate) -> np.ndarray | None:
    """Candidate centres in one slice: near the trunk's midline, at the anatomical depth below its posterior surface."""
    labels, count = ndimage.label(outline)
    if count == 0:
        return None
    trunk = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))  # the largest part: not an arm
    columns = np.flatnonzero(trunk.any(axis=1))
    midline = 0.5 * (columns[0] + columns[-1])
    rows = np.flatnonzero(trunk[int(round(midline))])
    if rows.size == 0:  # a trunk with nothing at its left-right centre: no midline to search
        return None
    posterior, anterior = (rows[-1], rows[0]) if posterior_sign > 0 else (rows[0], rows[-1])
    x_mm = (np.arange(outline.shape[0]) - midline) * voxel_mm[0]
    depth_mm = (posterior - np.arange(outline.shape[1])) * posterior_sign * voxel_mm[1]
    max_depth_mm = min(template.max_depth_mm, 0.5 * (abs(posterior - anterior) + 1) * voxel_mm[1])
    lateral = np.abs(x_mm) <= template.lateral_tolerance_mm
    deep = (depth_mm >= template.min_depth_mm) & (depth_mm <= max_depth_mm)
    return lateral[:, None] & deep[None, :] & trunk


def _median_along_axis(centres: np.ndarray, width: int) -> np.ndarray:
    """Each found centre replaced by the median of the found centres within ``width // 2`` slices."""
    found = ~np.isnan(centres[:, 0])
    smoothed = centres.copy()
    for k in np.flatnonzero(found):
        neighbours = slice(max(0, k - width // 2), k + width // 2 + 1)
        smoothed[k] = np.nanmedian(centres[neighbours], axis=0)
    return smoothed


def _template_mask(grid, centres: np.ndarray, template: VertebralTemplate) -> np.ndarray:
    """The elliptic template at each slice's centre (nothing where the centre is NaN)."""
    x = grid.origin_mm[0] + np.arange(grid.shape[0]) * grid.voxel_size_mm[0]
    y = grid.origin_mm[1] + np.arange(grid.shape[1]) * grid.voxel_size_mm[1]
    mask = np.zeros(grid.shape, dtype=bool)
    for k in np.flatnonzero(~np.isnan(centres[:, 0])):
        mask[:, :, k] = (((x[:, None] - centres[k, 0]) / (template.width_mm / 2)) ** 2
                         + ((y[None, :] - centres[k, 1]) / (template.depth_mm / 2)) ** 2) <= 1.0
    return mask
