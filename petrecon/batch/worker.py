"""The task a Dask worker runs for one study: read it, reconstruct it, return the calibrated volume.

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
    if study.isotope is not None:
        recorded = container.attributes.get("isotope")
        if recorded is not None and get_isotope(str(recorded)).name != study.isotope:
            raise ParameterError(f"study {study.id}: the cohort says {study.isotope}, {study.raw} says {recorded}")
        container.attributes["isotope"] = study.isotope
    return container


def load_mu_map(source: MuMapSource, attributes: dict) -> Volume | None:
    """The mu-map (cm^-1) of ``source`` on its own grid, or None to use the study's own attenuation.

    DICOM series are placed in the gantry frame of the study whose container
    ``attributes`` are given (patient and bed position).
    """
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series
    from petrecon.geometry.patient import study_bed_position_mm

    frame = {"patient_position": attributes.get("patient_position"),
             "bed_position_mm": study_bed_position_mm(attributes)}
    if source.kind == "ct":
        return mu_map_from_ct_series(source.paths[0], **frame)
    if source.kind == "dixon":
        return mu_map_from_dixon_series(*source.paths, **frame)
    if source.kind == "mumap":
        return read_container(source.paths[0]).volumes["mu_per_cm"]
    return None


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
    from petrecon.io.study_input import plan_corrections
    from petrecon.recon.study import reconstruct_study

    started = time.perf_counter()
    try:
        LOG.info("study %s: reading %s", study.id, study.raw)
        container = read_study(study)
        mu = load_mu_map(study.mu, container.attributes)
        protocol, not_applied = plan_corrections(container, protocol, mu_given=mu is not None)
        for name, reason in not_applied.items():
            LOG.warning("study %s: %s correction off: %s", study.id, name, reason)
        result = reconstruct_study(container, protocol, mu=mu, progress=False)
        inputs = [study.raw, *study.mu.paths] if study.mu.kind == "mumap" else [study.raw]
        provenance = make_provenance(protocol=protocol, scanner=container.layout.scanner.name, input_files=inputs,
                                     corrected_image=list(result.corrected), mu_map_source=study.mu.kind,
                                     mu_map_inputs=[str(p) for p in study.mu.paths],
                                     corrections_not_applied=not_applied)
    except Exception as error:
        raise StudyFailed(f"{study.id}: {one_line(error)}", traceback.format_exc()) from None
    seconds = time.perf_counter() - started
    LOG.info("study %s: reconstructed in %.1f s", study.id, seconds)
    return StudyOutcome(study.id, result.volume, result.corrected, container.attributes, provenance, seconds,
                        worker_name())
