"""Image-based EARL harmonisation: one extra Gaussian filter applied to reconstructed images.

Retrospective cohorts rarely keep raw data, so harmonisation is often done on
the images: the site's NEMA IEC phantom, reconstructed with its clinical
protocol, is smoothed with Gaussians of increasing FWHM until every sphere's
recovery lies in the EARL bands, and the patient images are smoothed with the
same kernel (EARL practice for PSF reconstructions: Kaalep et al., EJNMMI
45:1344, 2018; reference/quantification.md). The file records the filter and
what it was found for::

    name = "earl1"                    # the protocol column of quantification tables
    standard = "earl1"                # earl1 or earl2
    fwhm_mm = 4.5                     # extra 3D Gaussian on the reconstructed image
    scanner = "b64"                   # optional: the scanner the filter was found for
    isotope = "F18"                   # optional: the phantom's isotope
    source = "nema_b64/"              # optional: the phantom image or simulation it was found on

Unknown keys are errors (a misspelt key must not fall back to a default).
:func:`filter_pet_series` applies a file to an existing PET DICOM series
(``petrecon filter``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from petrecon.checks import check_parameter
from petrecon.errors import FormatError, ParameterError, PetreconError
from petrecon.io.atomic import atomic_output
from petrecon.operators import gaussian_post_filter
from petrecon.quant.earl import EARL_BANDS
from petrecon.volume import Volume

_KEYS = ("name", "standard", "fwhm_mm", "scanner", "isotope", "source")


@dataclass(frozen=True)
class ImageHarmonisation:
    """An extra Gaussian filter that puts a scanner's images in an EARL standard's bands.

    Examples
    --------
    >>> import numpy as np
    >>> from petrecon.volume import ImageGrid
    >>> filt = ImageHarmonisation(fwhm_mm=6.0, scanner="b64")
    >>> ImageHarmonisation.from_toml(filt.to_toml()) == filt
    True
    >>> grid = ImageGrid.centred((15, 15, 15), (2.0, 2.0, 2.0))
    >>> point = np.zeros(grid.shape, np.float32); point[7, 7, 7] = 1.0
    >>> smoothed = filt.apply(Volume(point, grid))
    >>> round(float(smoothed.data.sum()), 4), smoothed.metadata["image_harmonisation"]["fwhm_mm"]
    (1.0, 6.0)
    """

    name: str = "earl1"
    standard: str = "earl1"
    fwhm_mm: float = 0.0
    scanner: str | None = None
    isotope: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.standard not in EARL_BANDS:
            raise ParameterError(f"standard must be one of {', '.join(EARL_BANDS)}, got {self.standard!r}")
        check_parameter("fwhm_mm", self.fwhm_mm, label="image harmonisation fwhm_mm")
        object.__setattr__(self, "fwhm_mm", float(self.fwhm_mm))

    def apply(self, volume: Volume) -> Volume:
        """``volume`` smoothed by the filter (edge planes replicated, as the post-filter); metadata records it."""
        data = gaussian_post_filter(volume.data, self.fwhm_mm, volume.grid.voxel_size_mm)
        return Volume(data, volume.grid, {**volume.metadata, "image_harmonisation": dataclasses.asdict(self)})

    @classmethod
    def from_toml(cls, text: str, source: str = "<image harmonisation>") -> "ImageHarmonisation":
        """Parse a file's text; ``source`` names it in errors."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise FormatError(source, "TOML", str(error)) from None
        unknown = sorted(set(document) - set(_KEYS))
        if unknown:
            raise FormatError(source, unknown[0], f"unknown key; known: {', '.join(_KEYS)}")
        if "fwhm_mm" not in document:
            raise FormatError(source, "fwhm_mm", "is missing (the extra Gaussian FWHM in mm)")
        try:
            return cls(**{key: document[key] for key in _KEYS if key in document})
        except (PetreconError, TypeError) as error:
            raise FormatError(source, "value", str(error)) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImageHarmonisation":
        """Read an image harmonisation file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise FormatError(path, "file", "does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise FormatError(path, "file", f"cannot be read ({error})") from None
        return cls.from_toml(text, str(path))

    def to_toml(self) -> str:
        """The file's text (only the keys that are set)."""
        lines = []
        for key, value in dataclasses.asdict(self).items():
            if value is not None:
                lines.append(f"{key} = {value!r}" if isinstance(value, float) else f"{key} = {json.dumps(str(value))}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the file atomically."""
        with atomic_output(path, overwrite=overwrite) as temporary:
            temporary.write_text(self.to_toml())
        return Path(path)


def filter_pet_series(series: str | os.PathLike, harmonisation: ImageHarmonisation, folder: str | os.PathLike, *,
                      overwrite: bool = False) -> list[Path]:
    """Apply ``harmonisation`` to a PET DICOM series and write the result as a new series.

    The new series keeps the source's patient and study facts (name, id, birth
    date, sex, weight, size), its Study and FrameOfReference UIDs, the
    injection (dose, date-time, half-life, radiopharmaceutical), the scan
    start, frame duration, corrections and patient position, so SUVs read
    from it use the same inputs; it gets a new SeriesInstanceUID, a
    SeriesDescription naming the filter, and the filter in its provenance.

    Parameters
    ----------
    series : path-like
        Folder of one PET series (Units BQML, DecayCorrection START: the
        values :func:`petrecon.io.dicom.write_pet_series` writes).
    harmonisation : ImageHarmonisation
        The filter.
    folder : path-like
        Output folder (must not exist unless ``overwrite``).

    Raises
    ------
    FormatError
        A header field the new series needs is missing or not as required (names the file and the field).
    """
    import pydicom

    from petrecon.io.dicom import RADIONUCLIDE_CODES, UNKNOWN_TRACER, read_pet_series, write_pet_series
    from petrecon.quant.suv_dicom import _Header, _injection_time, _scan_time

    volume = read_pet_series(series)
    dataset = pydicom.Dataset.from_json(volume.metadata["dicom_header"])
    header = _Header(dataset, f"{series} (first slice)")
    if volume.metadata.get("units") != "Bq/ml":
        raise header.error("Units (0054,1001)", f"is {volume.metadata.get('dicom_units')!r}; filtering writes BQML")
    decay = str(header.required("DecayCorrection", "(0054,1102)", "the new series' decay reference")).upper()
    if decay != "START":
        raise header.error("DecayCorrection (0054,1102)", f"is {decay!r}; the new series is written with START")
    drug = (header.required("RadiopharmaceuticalInformationSequence", "(0054,0016)", "the injection") or [None])[0]
    half_life_s = header.positive("RadionuclideHalfLife", "(0018,1075)", "decay", drug)
    scan, _ = _scan_time(header, half_life_s)
    codes = {code: name for name, (code, _) in RADIONUCLIDE_CODES.items()}
    code = next((str(item.get("CodeValue", "")) for item in (drug.get("RadionuclideCodeSequence") or [])), "")
    isotope = codes.get(code) or _isotope_by_half_life(half_life_s, header)
    weight = dataset.get("PatientWeight")
    size = dataset.get("PatientSize")
    sex = str(dataset.get("PatientSex", "") or "").upper()
    method = str(dataset.get("ReconstructionMethod", "") or "")
    extra = f" + {harmonisation.name} {harmonisation.fwhm_mm:g}mm"
    description = (str(dataset.get("SeriesDescription", "") or "PET") + extra)[-64:]
    provenance = {**(volume.metadata.get("provenance") or {}), "image_harmonisation": dataclasses.asdict(harmonisation),
                  "filtered_series": str(dataset.get("SeriesInstanceUID", ""))}
    return write_pet_series(
        harmonisation.apply(volume), folder, overwrite=overwrite,
        injected_dose_bq=header.positive("RadionuclideTotalDose", "(0018,1074)", "the injected dose", drug),
        injection_datetime=_injection_time(header, drug, scan), series_datetime=scan,
        frame_duration_s=header.positive("ActualFrameDuration", "(0018,1242)", "the frame duration") / 1000.0,
        isotope=isotope, half_life_s=half_life_s,
        radiopharmaceutical=str(drug.get("Radiopharmaceutical", "") or UNKNOWN_TRACER),
        patient_weight_kg=float(weight) if weight else None, patient_size_m=float(size) if size else None,
        patient_sex=sex if sex in ("M", "F") else "O",
        patient_name=str(dataset.get("PatientName", "") or "Anonymous^"),
        patient_id=str(dataset.get("PatientID", "") or "petrecon"),
        patient_birth_date=str(dataset.get("PatientBirthDate", "") or ""),
        corrected_image=tuple(c for c in (str(v).upper() for v in volume.metadata["suv_inputs"]["corrected_image"])
                              if c in ("NORM", "DTIM", "ATTN", "SCAT", "DECY", "RAN")),
        series_description=description, series_number=int(dataset.get("SeriesNumber", 0) or 0) + 100,
        study_instance_uid=str(header.required("StudyInstanceUID", "(0020,000D)", "the study the series joins")),
        frame_of_reference_uid=str(header.required("FrameOfReferenceUID", "(0020,0052)", "fusion with CT/MR")),
        reconstruction_method=(method + extra)[:64] if method else None,
        manufacturer_model_name=str(dataset.get("ManufacturerModelName", "") or ""), provenance=provenance)


def _isotope_by_half_life(half_life_s: float, header) -> str:
    """The isotope of petrecon.isotopes whose half-life is within 1 % of the header's."""
    from petrecon.isotopes import ISOTOPES

    for isotope in ISOTOPES.values():
        if abs(isotope.half_life_s - half_life_s) <= 0.01 * isotope.half_life_s:
            return isotope.name
    raise header.error("RadionuclideCodeSequence (0054,0300)",
                       f"names no known radionuclide and the half-life {half_life_s:g} s matches none of "
                       f"{', '.join(ISOTOPES)}")
