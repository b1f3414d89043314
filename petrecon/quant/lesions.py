"""Organ, lesion and ROI records of one SUV image: segmentation, size exclusion, T/B and VOIs outside the image.

What ``petrecon suv`` and ``petrecon batch`` measure, as one call
(:func:`measure_vois`) returning one record per VOI:

* **organ**: a reference sphere (liver, spleen, bone marrow) of the fixed
  diameter of :data:`petrecon.quant.organs.ORGAN_VOI_DIAMETER_MM`, centred at a
  point given in DICOM patient coordinates (LPS, mm);
* **lesion**: ``NAME:sphere:x,y,z,r``, a search sphere around the lesion; the
  VOI is the isocontour of the hottest voxel in it (reference/quantification.md):
  41 % of the maximum (EANM), 50 %, or ``a50``, the background-adapted
  ``B + 0.5 (max - B)`` with ``B`` the reference VOI's mean. A lesion whose
  VOI is smaller than ``min_volume_ml`` is kept with status ``too-small``
  (its statistics stay, for the record; cohort statistics leave it out).
  An A50 lesion whose reference VOI could not be measured (outside the
  image) has no background: status ``failed``, no statistics; one whose
  maximum does not exceed that background has no A50 contour: status
  ``below-background``, no statistics;
* **roi**: a plain ``sphere:`` or ``box:`` ROI (:mod:`petrecon.quant.report`).

A VOI that is not wholly inside the image gets status ``outside`` and empty
statistics (the others are measured). With a ``reference`` VOI (an organ,
usually the liver), lesion and ROI records carry ``tb_max`` = SUVmax / reference
SUVmean and ``tb_peak`` = SUVpeak / reference SUVmean (T/B as defined in
reference/quantification.md, section "ROI statistics").

Every record has the keys of :data:`RECORD_KEYS` (and, when measured, the
positions of max and peak); missing values are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from petrecon.errors import ParameterError
from petrecon.quant.organs import ORGAN_VOI_DIAMETER_MM
from petrecon.quant.report import parse_roi, voi_record, volume_roi_mask
from petrecon.quant.roi import EANM_FRACTION, a50_voi, isocontour_voi
from petrecon.volume import Volume

#: Keys of every record, in table order (``voi`` names the VOI).
RECORD_KEYS = ("voi", "kind", "suv_max", "suv_mean", "suv_peak", "suv_sd", "volume_ml", "tlg", "n_voxels",
               "reference", "tb_max", "tb_peak", "status")
STATISTICS = ("suv_max", "suv_mean", "suv_peak", "suv_sd", "volume_ml", "tlg", "n_voxels")
#: Isocontour methods of lesion segmentation: fixed fractions of the maximum, or A50.
ISOCONTOURS = {"41%": EANM_FRACTION, "50%": 0.5, "a50": None}
KINDS = ("organ", "lesion", "roi")


def parse_organ(text: str) -> tuple[str, tuple[float, float, float]]:
    """``"liver:10,-20,-300"`` -> ``("liver", (10.0, -20.0, -300.0))`` (patient coordinates, mm).

    Examples
    --------
    >>> parse_organ("bone-marrow:0,40,-700")
    ('bone-marrow', (0.0, 40.0, -700.0))
    """
    name, _, numbers = text.partition(":")
    name = name.strip().lower()
    if name not in ORGAN_VOI_DIAMETER_MM:
        raise ParameterError(f"organ {text!r}: name one of {', '.join(ORGAN_VOI_DIAMETER_MM)} (e.g. liver:x,y,z)")
    return name, _centre(text, numbers)


def _centre(text: str, numbers: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in numbers.split(","))
    except ValueError:
        raise ParameterError(f"{text!r}: the centre must be 3 numbers in mm (x,y,z)") from None
    if len(values) != 3:
        raise ParameterError(f"{text!r}: the centre must be 3 numbers in mm (x,y,z), got {len(values)}")
    return values  # type: ignore[return-value]


def organ_spec(centre_mm: Sequence[float], organ: str) -> str:
    """The ``sphere:`` ROI of an organ's reference VOI (fixed diameter) at ``centre_mm``.

    Examples
    --------
    >>> organ_spec((1, 2, 3), "liver")
    'sphere:1,2,3,15'
    """
    x, y, z = (float(c) for c in centre_mm)
    return f"sphere:{x:g},{y:g},{z:g},{ORGAN_VOI_DIAMETER_MM[organ] / 2:g}"


def parse_lesion(text: str) -> tuple[str, str]:
    """``"nodule:sphere:x,y,z,r"`` -> ``("nodule", "sphere:x,y,z,r")`` (the search sphere, patient mm).

    Examples
    --------
    >>> parse_lesion("lung_nodule:sphere:-80,20,-350,20")
    ('lung_nodule', 'sphere:-80,20,-350,20')
    """
    name, _, search = text.partition(":")
    name = name.strip()
    if not name or not search:
        raise ParameterError(f"lesion {text!r}: give NAME:sphere:x,y,z,r (a search sphere around the lesion)")
    shape, _ = parse_roi(search)
    if shape != "sphere":
        raise ParameterError(f"lesion {text!r}: the search region must be a sphere (NAME:sphere:x,y,z,r)")
    return name, search


def check_isocontour(method: str) -> str:
    """``method`` if it is one of :data:`ISOCONTOURS`, else a ParameterError naming them."""
    if method not in ISOCONTOURS:
        raise ParameterError(f"isocontour {method!r}: choose one of {', '.join(ISOCONTOURS)}")
    return method


@dataclass(frozen=True)
class VoiSet:
    """The VOIs of one study: organs (name -> centre), lesions (name -> search sphere), plain ROIs.

    Examples
    --------
    >>> VoiSet(organs={"liver": (0, 0, 0)}, reference="liver").names()
    ['liver']
    """

    organs: dict = field(default_factory=dict)
    lesions: dict = field(default_factory=dict)
    rois: tuple[str, ...] = ()
    reference: str | None = None
    isocontour: str = "41%"
    min_volume_ml: float = 0.0

    def __post_init__(self) -> None:
        check_isocontour(self.isocontour)
        if self.min_volume_ml < 0:
            raise ParameterError(f"minimum lesion volume must be >= 0 ml, got {self.min_volume_ml}")
        names = self.names()
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ParameterError(f"VOI name(s) {', '.join(duplicates)} given twice")
        if self.reference is not None and self.reference not in (*self.organs, *self.rois):
            raise ParameterError(f"reference VOI {self.reference!r} is none of the organ VOIs or ROIs "
                                 f"({', '.join([*self.organs, *self.rois]) or 'none given'})")
        if self.isocontour == "a50" and self.lesions and self.reference is None:
            raise ParameterError("isocontour a50 takes its background from the reference VOI: name one "
                                 "(e.g. the liver)")

    def names(self) -> list[str]:
        """Every VOI's name, in record order."""
        return [*self.organs, *self.lesions, *self.rois]


def measure_vois(volume: Volume, vois: VoiSet) -> list[dict]:
    """One record per VOI of ``vois`` in the SUV image ``volume`` (module docstring); organs, lesions, ROIs.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((60, 40, 40), (2.0, 2.0, 2.0))
    >>> x = grid.voxel_centres_mm(0)[:, None, None]
    >>> image = Volume(np.broadcast_to(np.where(np.abs(x) < 10, 8.0, 2.0), grid.shape), grid)
    >>> records = measure_vois(image, VoiSet(organs={"liver": (35, 0, 0)}, rois=("sphere:0,0,0,6", "sphere:0,0,90,6"),
    ...                                      reference="liver"))
    >>> [(r["voi"], r["status"], r["tb_max"]) for r in records]
    [('liver', 'ok', None), ('sphere:0,0,0,6', 'ok', 4.0), ('sphere:0,0,90,6', 'outside', None)]
    """
    records = {name: _organ_record(volume, name, centre) for name, centre in vois.organs.items()}
    records.update({spec: _roi_record(volume, spec, "roi") for spec in vois.rois})
    reference = records.get(vois.reference)
    for name, search in vois.lesions.items():
        records[name] = _lesion_record(volume, name, search, vois, reference)
    for record in records.values():
        _add_tb(record, vois.reference, reference)
    return [records[name] for name in vois.names()]


def _empty(name: str, kind: str, status: str) -> dict:
    return {**dict.fromkeys(RECORD_KEYS), "voi": name, "kind": kind, "status": status}


def _measured(name: str, kind: str, volume: Volume, mask: np.ndarray) -> dict:
    measured = voi_record(name, volume, mask)  # the statistics and the positions of max and peak
    return {**_empty(name, kind, "ok"), **{key: value for key, value in measured.items() if key != "roi"}}


def _mask_or_none(volume: Volume, spec: str) -> np.ndarray | None:
    """The ROI's mask, or None when it is not wholly inside the image (specifications are parsed before)."""
    try:
        return volume_roi_mask(volume, spec)
    except ParameterError:
        return None


def _roi_record(volume: Volume, spec: str, kind: str, name: str | None = None) -> dict:
    mask = _mask_or_none(volume, spec)
    return _empty(name or spec, kind, "outside") if mask is None else _measured(name or spec, kind, volume, mask)


def _organ_record(volume: Volume, organ: str, centre_mm: Sequence[float]) -> dict:
    return _roi_record(volume, organ_spec(centre_mm, organ), "organ", organ)


def _lesion_record(volume: Volume, name: str, search: str, vois: VoiSet, reference: dict | None) -> dict:
    mask = _mask_or_none(volume, search)
    if mask is None:
        return _empty(name, "lesion", "outside")
    fraction = ISOCONTOURS[vois.isocontour]
    if fraction is not None:
        segmented = isocontour_voi(volume, mask, fraction)
    elif reference is None or reference["status"] != "ok":
        return _empty(name, "lesion", "failed")  # A50 without a measured background
    elif not float(np.max(volume.data[mask])) > reference["suv_mean"]:
        return _empty(name, "lesion", "below-background")  # A50 has no contour: nothing above the background
    else:
        segmented = a50_voi(volume, mask, reference["suv_mean"])
    record = _measured(name, "lesion", volume, segmented)
    if record["volume_ml"] < vois.min_volume_ml:
        record["status"] = "too-small"
    return record


def _add_tb(record: dict, name: str | None, reference: dict | None) -> None:
    """T/B of a measured lesion or ROI record against the reference record (not of organs, not of itself)."""
    if name is None or record["kind"] == "organ" or record["voi"] == name:
        return
    record["reference"] = name
    if record["suv_max"] is None or reference is None or reference["status"] != "ok" or not reference["suv_mean"] > 0:
        return
    record["tb_max"] = record["suv_max"] / reference["suv_mean"]
    record["tb_peak"] = record["suv_peak"] / reference["suv_mean"]
