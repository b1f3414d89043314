"""What ``petrecon batch`` writes per study, and the cohort's quantification table.

Per study, in ``OUT/<study id>/``:

* ``recon.h5``: the container (volume ``activity_bq_per_ml``, the study's
  attributes, provenance: protocol, scanner, input hashes, corrections);
* ``dicom/``: the PET series (Bq/ml, decay-corrected to the scan start;
  patient weight, height, sex, dose and times from the cohort file;
  CorrectedImage from the reconstruction, ReconstructionMethod from the
  protocol, Radiopharmaceutical from the cohort's ``tracer``, and the
  Study and Frame of Reference UIDs of the CT or MR that gave the mu-map,
  so that the series fuses with it in a viewer);
* ``dicom-<name>/``: with an image harmonisation file, the filtered image's
  series (:class:`~petrecon.quant.image_harmonisation.ImageHarmonisation`).

The SUVs of the table are computed the way ``petrecon suv OUT/<id>/dicom``
computes them: from the DICOM series just written, by the QIBA logic of
:func:`petrecon.quant.suv_dicom.suv_volume` (so the table and a later manual
check agree to the last digit), with the VOIs of
:func:`petrecon.quant.lesions.measure_vois`. The table has one row per VOI per
study and image (the protocol's, the harmonised one), columns
:data:`~petrecon.batch.cohort.TABLE_COLUMNS` then the cohort's ``[study.info]``
keys; a failed study's VOIs are rows with status ``failed``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from petrecon.batch.cohort import TABLE_COLUMNS, Cohort, CohortStudy
from petrecon.batch.worker import StudyOutcome
from petrecon.errors import ParameterError
from petrecon.io.atomic import atomic_output
from petrecon.io.container import Container, write_container
from petrecon.quant.lesions import RECORD_KEYS
from petrecon.volume import Volume

CONTAINER_NAME = "recon.h5"
DICOM_FOLDER = "dicom"


@dataclass
class QuantifiedImage:
    """One quantified image of a study: its protocol (or harmonisation) name, SUV volume, DICOM folder, records."""

    protocol: str
    suv: Volume
    folder: Path
    records: list[dict]


def harmonised_folder(name: str) -> str:
    """The DICOM folder of a harmonised image, ``dicom-<name>``.

    Examples
    --------
    >>> harmonised_folder("earl1")
    'dicom-earl1'
    """
    return f"{DICOM_FOLDER}-{name}"


def scan_time(study: CohortStudy, attributes: dict) -> dt.datetime:
    """The scan (frame) start: the cohort's ``scan_time``, else injection time + the study's ``frame_start_s``."""
    if study.patient.scan_time is not None:
        return study.patient.scan_time
    if "frame_start_s" not in attributes:
        raise ParameterError(f"{study.id}: the study carries no frame_start_s; give scan_time in the cohort file")
    return study.patient.injection_time + dt.timedelta(seconds=float(attributes["frame_start_s"]))


def write_study_outputs(outcome: StudyOutcome, study: CohortStudy, folder: Path, cohort: Cohort, *,
                        overwrite: bool = False) -> list[QuantifiedImage]:
    """Write ``recon.h5``, ``dicom/`` (and ``dicom-<name>/`` when harmonised) into ``folder``; quantify each series.

    Returns
    -------
    list of QuantifiedImage
        The protocol's image, then the harmonised one; :func:`table_rows` makes the table's rows of them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    attributes = outcome.attributes
    write_container(folder / CONTAINER_NAME, Container(volumes={"activity_bq_per_ml": outcome.volume},
                                                       attributes=attributes, provenance=outcome.provenance),
                    overwrite=overwrite)
    if "duration_s" not in attributes or "isotope" not in attributes:
        raise ParameterError(f"{study.id}: the study carries no duration_s or isotope for the DICOM header")
    protocol = cohort.study_protocol(study)
    images = [(protocol.name, outcome.volume, folder / DICOM_FOLDER, {})]
    if study.harmonisation is not None:
        harmonisation = cohort.harmonisations[study.harmonisation]
        description = f"petrecon AW-OSEM, {harmonisation.name} ({harmonisation.fwhm_mm:g} mm Gaussian)"
        images.append((harmonisation.name, harmonisation.apply(outcome.volume),
                       folder / harmonised_folder(harmonisation.name),
                       {"series_description": description, "series_number": 2}))
    return [_write_and_quantify(outcome, study, name, volume, target, cohort, overwrite=overwrite, **series)
            for name, volume, target, series in images]


def _write_and_quantify(outcome: StudyOutcome, study: CohortStudy, name: str, volume: Volume, target: Path,
                        cohort: Cohort, *, overwrite: bool, **series) -> QuantifiedImage:
    from petrecon.io.dicom import read_pet_series, write_pet_series
    from petrecon.quant.lesions import measure_vois
    from petrecon.quant.suv_dicom import suv_volume

    attributes, patient = outcome.attributes, study.patient
    reference = outcome.dicom_reference or {}
    uids = {key: reference[key] for key in ("study_instance_uid", "frame_of_reference_uid") if key in reference}
    tracer = {"radiopharmaceutical": study.tracer} if study.tracer else {}
    write_pet_series(volume, target, injected_dose_bq=patient.injected_dose_bq,
                     injection_datetime=patient.injection_time, series_datetime=scan_time(study, attributes),
                     frame_duration_s=float(attributes["duration_s"]), isotope=str(attributes["isotope"]),
                     half_life_s=attributes.get("half_life_s"), patient_weight_kg=patient.weight_kg,
                     patient_size_m=patient.height_m, patient_sex=patient.sex, patient_id=study.patient_name,
                     corrected_image=outcome.corrected, provenance=_dicom_provenance(outcome.provenance),
                     reconstruction_method=cohort.study_protocol(study).dicom_method(),
                     manufacturer_model_name=str(outcome.provenance.get("scanner", attributes.get("scanner", ""))),
                     overwrite=overwrite, **uids, **tracer, **series)
    if not study.vois.names():  # nothing to measure: no SUVs (a series may not support them), Bq/ml figures
        return QuantifiedImage(name, Volume(volume.data, volume.grid, {**volume.metadata, "units": "Bq/ml"}),
                               target, [])
    suv = suv_volume(read_pet_series(target), cohort.normalisation)
    return QuantifiedImage(name, suv, target, measure_vois(suv, study.vois))


def table_rows(study: CohortStudy, cohort: Cohort, scanner: str, images: list[QuantifiedImage]) -> list[dict]:
    """The study's rows of the quantification table: one per VOI per image."""
    return [{**_row_head(study, cohort, scanner, image.protocol), "units": image.suv.metadata["units"], **record}
            for image in images for record in image.records]


def failed_rows(study: CohortStudy, cohort: Cohort) -> list[dict]:
    """A failed study's rows: each VOI of each image it would have had, status ``failed``, no statistics."""
    names = [cohort.study_protocol(study).name]
    if study.harmonisation is not None:
        names.append(cohort.harmonisations[study.harmonisation].name)
    kinds = {**dict.fromkeys(study.vois.organs, "organ"), **dict.fromkeys(study.vois.lesions, "lesion"),
             **dict.fromkeys(study.vois.rois, "roi")}
    return [{**_row_head(study, cohort, study.scanner or "", name), **dict.fromkeys(RECORD_KEYS), "voi": voi,
             "kind": kind, "reference": study.vois.reference if kind != "organ" else None, "status": "failed"}
            for name in names for voi, kind in kinds.items()]


def _row_head(study: CohortStudy, cohort: Cohort, scanner: str, protocol: str) -> dict:
    return {"study": study.id, "patient": study.patient_name, "scanner": scanner, "protocol": protocol,
            **dict(study.info)}


def _dicom_provenance(provenance: dict) -> dict:
    """The provenance without the per-file creation time, which DICOM records itself."""
    return {key: value for key, value in provenance.items() if key != "created_utc"}


def write_table(path: Path, rows: list[dict], info_keys: list[str] = (), *, overwrite: bool = False) -> Path:
    """The quantification table (CSV, columns :data:`TABLE_COLUMNS` then ``info_keys``), written atomically;
    missing values (None) are empty cells."""
    with atomic_output(path, overwrite=overwrite) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, [*TABLE_COLUMNS, *info_keys], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
