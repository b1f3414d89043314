"""What ``petrecon batch`` writes per study, and the cohort's quantification table.

Per study, in ``OUT/<study id>/``:

* ``recon.h5``: the container (volume ``activity_bq_per_ml``, the study's
  attributes, provenance: protocol, scanner, input hashes, corrections);
* ``dicom/``: the PET series (Bq/ml, decay-corrected to the scan start;
  patient weight, height, sex, dose and times from the cohort file;
  CorrectedImage from the reconstruction).

The SUVs of the table are computed the way ``petrecon suv OUT/<id>/dicom``
computes them: from the DICOM series just written, by the QIBA logic of
:func:`petrecon.quant.suv_dicom.suv_volume` (so the table and a later manual
check agree to the last digit).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from petrecon.batch.cohort import CohortStudy
from petrecon.batch.worker import StudyOutcome
from petrecon.errors import ParameterError
from petrecon.io.atomic import atomic_output
from petrecon.io.container import Container, write_container

TABLE_COLUMNS = ("study", "roi", "units", "suv_max", "suv_mean", "suv_peak", "suv_sd", "volume_ml", "tlg",
                 "n_voxels")
CONTAINER_NAME = "recon.h5"
DICOM_FOLDER = "dicom"


def scan_time(study: CohortStudy, attributes: dict) -> dt.datetime:
    """The scan (frame) start: the cohort's ``scan_time``, else injection time + the study's ``frame_start_s``."""
    if study.patient.scan_time is not None:
        return study.patient.scan_time
    if "frame_start_s" not in attributes:
        raise ParameterError(f"{study.id}: the study carries no frame_start_s; give scan_time in the cohort file")
    return study.patient.injection_time + dt.timedelta(seconds=float(attributes["frame_start_s"]))


def write_study_outputs(outcome: StudyOutcome, study: CohortStudy, folder: Path, *, normalisation: str = "bw",
                        overwrite: bool = False) -> list[dict]:
    """Write ``recon.h5`` and ``dicom/`` into ``folder``; return the study's rows of the quantification table."""
    from petrecon.io.dicom import read_pet_series, write_pet_series
    from petrecon.quant.report import roi_records
    from petrecon.quant.suv_dicom import suv_volume

    folder.mkdir(parents=True, exist_ok=True)
    attributes = outcome.attributes
    write_container(folder / CONTAINER_NAME, Container(volumes={"activity_bq_per_ml": outcome.volume},
                                                       attributes=attributes, provenance=outcome.provenance),
                    overwrite=overwrite)
    if "duration_s" not in attributes or "isotope" not in attributes:
        raise ParameterError(f"{study.id}: the study carries no duration_s or isotope for the DICOM header")
    patient = study.patient
    write_pet_series(outcome.volume, folder / DICOM_FOLDER, injected_dose_bq=patient.injected_dose_bq,
                     injection_datetime=patient.injection_time, series_datetime=scan_time(study, attributes),
                     frame_duration_s=float(attributes["duration_s"]), isotope=str(attributes["isotope"]),
                     half_life_s=attributes.get("half_life_s"), patient_weight_kg=patient.weight_kg,
                     patient_size_m=patient.height_m, patient_sex=patient.sex, patient_id=study.id,
                     corrected_image=outcome.corrected, provenance=_dicom_provenance(outcome.provenance),
                     manufacturer_model_name=str(attributes.get("scanner", "")), overwrite=overwrite)
    if not study.rois:
        return []
    suv = suv_volume(read_pet_series(folder / DICOM_FOLDER), normalisation)
    return [{"study": study.id, "units": suv.metadata["units"], **record}
            for record in roi_records(suv, list(study.rois))]


def _dicom_provenance(provenance: dict) -> dict:
    """The provenance without the per-file creation time, which DICOM records itself."""
    return {key: value for key, value in provenance.items() if key != "created_utc"}


def write_table(path: Path, rows: list[dict], *, overwrite: bool = False) -> Path:
    """The quantification table (CSV, columns :data:`TABLE_COLUMNS`), written atomically."""
    with atomic_output(path, overwrite=overwrite) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
