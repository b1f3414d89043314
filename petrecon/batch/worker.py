"""The task a Dask worker runs for one study: read it, reconstruct it, return the calibrated volume.

A whole-body main file (several beds, :func:`petrecon.io.multibed.is_whole_body`)
is reconstructed as ``petrecon recon`` does: every bed, stitched (or jointly,
as the protocol says) into one volume in the frame of bed position 0, whose
scan start is the first bed's. The CT or Dixon water image, when given, comes
back resampled onto the PET grid for the report's fused slice.

:func:`reconstruct_cohort_study` is a top-level function of plain, picklable
arguments (a :class:`~petrecon.batch.cohort.CohortStudy` and a
:class:`~petrecon.recon.protocol.ReconstructionProtocol`), so any Dask worker
that can import petrecon and read the input paths can run it. Workers return
the volume to the client, which writes every output: the output folder need
not be shared with the workers, the inputs must be readable by them.

Any error becomes a :class:`StudyFailed` that carries one line (for the
report) and the worker's traceback (for ``--debug``); it pickles with both, so
it crosses process and machine boundaries intact (petrecon's own errors take
several constructor arguments and would not).
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from dataclasses import dataclass

from petrecon.batch.cohort import CohortStudy, MuMapSource
from petrecon.errors import ParameterError, PetreconError
from petrecon.isotopes import get_isotope
from petrecon.io.container import Container, make_provenance, read_container
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.volume import Volume

LOG = logging.getLogger(__name__)


class StudyFailed(PetreconError):
    """One study of a batch failed; ``str()`` is one line, ``details`` the worker's traceback."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details

    def __reduce__(self):
        return StudyFailed, (str(self), self.details)


@dataclass
class StudyOutcome:
    """What a worker sends back: the calibrated volume and what the outputs need to describe it."""

    study_id: str
    volume: Volume
    corrected: tuple[str, ...]
    attributes: dict
    provenance: dict
    seconds: float
    worker: str
    dicom_reference: dict | None = None
    anatomy: Volume | None = None


def worker_name() -> str:
    """The Dask worker's address when called in a task, else the host name."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return socket.gethostname()


def read_study(study: CohortStudy) -> Container:
    """The raw data of a study as a study container (any input :func:`~petrecon.io.study_input.open_study`
    reads; list-mode histogrammed)."""
    from petrecon.io.study_input import open_study

    container = open_study(study.raw, scanner=study.scanner, progress=False)
    _set_isotope(study, container.attributes)
    return container


def _set_isotope(study: CohortStudy, attributes: dict) -> None:
    """The cohort's isotope into ``attributes``, refused when the input names another."""
    if study.isotope is not None:
        recorded = attributes.get("isotope")
        if recorded is not None and get_isotope(str(recorded)).name != study.isotope:
            raise ParameterError(f"study {study.id}: the cohort says {study.isotope}, {study.raw} says {recorded}")
        attributes["isotope"] = study.isotope


def _frame(attributes: dict) -> dict:
    """Where DICOM series of the study's patient are placed: its patient and bed position."""
    from petrecon.geometry.patient import study_bed_position_mm

    return {"patient_position": attributes.get("patient_position"),
            "bed_position_mm": study_bed_position_mm(attributes)}


def load_mu_map(source: MuMapSource, attributes: dict) -> Volume | None:
    """The mu-map (cm^-1) of ``source`` on its own grid, or None to use the study's own attenuation.

    DICOM series are placed in the gantry frame of the study whose container
    ``attributes`` are given (patient and bed position).
    """
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series

    frame = _frame(attributes)
    if source.kind == "ct":
        return mu_map_from_ct_series(source.paths[0], **frame)
    if source.kind == "dixon":
        return mu_map_from_dixon_series(*source.paths, bone=source.dixon_bone, **frame)
    if source.kind == "mumap":
        return read_container(source.paths[0]).volumes["mu_per_cm"]
    return None


def load_anatomy(source: MuMapSource, attributes: dict, grid) -> Volume | None:
    """The CT (HU) or Dixon water image on the PET ``grid`` (trilinear), for the report; None without one."""
    from petrecon.attenuation.resample import resample_to_grid
    from petrecon.io.dicom import read_ct_series, read_dixon_series

    if source.kind == "ct":
        image, label, outside = read_ct_series(source.paths[0], **_frame(attributes)), "CT (HU)", -1000.0
    elif source.kind == "dixon":
        image, label, outside = read_dixon_series(*source.paths, **_frame(attributes))[0], "Dixon water", 0.0
    else:
        return None
    on_grid = resample_to_grid(image, grid, order=1, fill_value=outside)
    return Volume(on_grid.data, grid, {"label": label})


def one_line(error: BaseException) -> str:
    """An error as one line: petrecon's own errors as they are, others with their type.

    Examples
    --------
    >>> one_line(ValueError("bad\\nvalue"))
    'ValueError: bad value'
    """
    text = str(error) if isinstance(error, PetreconError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def reconstruct_cohort_study(study: CohortStudy, protocol: ReconstructionProtocol) -> StudyOutcome:
    """Reconstruct one study of a cohort (the Dask task); errors become :class:`StudyFailed`."""
    from petrecon.io.multibed import is_whole_body

    started = time.perf_counter()
    try:
        LOG.info("study %s: reading %s", study.id, study.raw)
        if is_whole_body(study.raw):
            outcome = _whole_body(study, protocol)
        else:
            outcome = _single_bed(study, protocol)
    except Exception as error:
        raise StudyFailed(f"{study.id}: {one_line(error)}", traceback.format_exc()) from None
    outcome.seconds = time.perf_counter() - started
    LOG.info("study %s: reconstructed in %.1f s", study.id, outcome.seconds)
    return outcome


def _provenance(study: CohortStudy, protocol: ReconstructionProtocol, scanner: str, corrected, **extra) -> dict:
    inputs = [study.raw, *study.mu.paths] if study.mu.kind == "mumap" else [study.raw]
    return make_provenance(protocol=protocol, scanner=scanner, input_files=inputs, corrected_image=list(corrected),
                           mu_map_source=study.mu.kind, mu_map_inputs=[str(p) for p in study.mu.paths], **extra)


def _single_bed(study: CohortStudy, protocol: ReconstructionProtocol) -> StudyOutcome:
    from petrecon.io.study_input import plan_corrections
    from petrecon.recon.study import reconstruct_study

    container = read_study(study)
    mu = load_mu_map(study.mu, container.attributes)
    protocol, not_applied = plan_corrections(container, protocol, mu_given=mu is not None)
    for name, reason in not_applied.items():
        LOG.warning("study %s: %s correction off: %s", study.id, name, reason)
    LOG.info("study %s: reconstructing (%d iterations x %d subsets)", study.id, protocol.osem.n_iterations,
             protocol.osem.n_subsets)
    result = reconstruct_study(container, protocol, mu=mu, progress=False)
    provenance = _provenance(study, protocol, container.layout.scanner.name, result.corrected,
                             corrections_not_applied=not_applied)
    return StudyOutcome(study.id, result.volume, result.corrected, container.attributes, provenance, 0.0,
                        worker_name(), _reference(mu), load_anatomy(study.mu, container.attributes, result.volume.grid))


def _whole_body(study: CohortStudy, protocol: ReconstructionProtocol) -> StudyOutcome:
    """A multi-bed study as ``petrecon recon`` reconstructs it; attributes: the first bed's (its scan start)."""
    from petrecon.io.multibed import read_whole_body
    from petrecon.recon.wholebody import reconstruct_whole_body

    whole_body = read_whole_body(study.raw)
    for bed in whole_body.beds:
        _set_isotope(study, bed.attributes)
    first = whole_body.beds[0].attributes
    frame = {"patient_position": first.get("patient_position")}  # the whole-body frame: bed position 0
    mu = load_mu_map(study.mu, frame)
    LOG.info("study %s: reconstructing %d beds (%s)", study.id, len(whole_body.beds), protocol.whole_body)
    result = reconstruct_whole_body(whole_body, protocol, mu=mu, progress=False)
    corrected = tuple(result.volume.metadata.get("corrected_image", ()))
    provenance = _provenance(study, protocol, whole_body.beds[0].layout.scanner.name, corrected,
                             bed_offsets_mm=whole_body.bed_offsets_mm().tolist())
    return StudyOutcome(study.id, result.volume, corrected, dict(first), provenance, 0.0, worker_name(),
                        _reference(mu), load_anatomy(study.mu, frame, result.volume.grid))


def _reference(mu: Volume | None) -> dict | None:
    """The CT's or MR's :func:`~petrecon.io.dicom.series_reference` a mu-map from DICOM carries."""
    return None if mu is None else mu.metadata.get("dicom_reference")
