"""Run a cohort on Dask distributed: one reconstruction per task, outputs gathered on the client.

Cluster: an existing scheduler (``scheduler="tcp://host:8786"``), else a
``distributed.LocalCluster`` made here: one worker per GPU when the CUDA
backend is available (each worker sees its own device through
``CUDA_VISIBLE_DEVICES``), else :func:`default_cpu_workers` CPU workers. Every
worker runs one task at a time (``threads_per_worker=1``): a reconstruction
is already parallel inside (numba threads or the GPU), so the cores are split
between the worker processes through ``NUMBA_NUM_THREADS``. Dask's own worker
logs are silenced below CRITICAL: petrecon reports every failure per study.

A study that fails (after ``retries`` Dask retries) is reported with its id
and one line, its VOIs are rows of status ``failed``, and the others finish.
The client writes each study's outputs, its table rows and its report
(:mod:`petrecon.batch.outputs`, :mod:`petrecon.report.patient`) as its result
arrives, then the cohort's ``quantification.csv``, ``summary.json`` and
``index.html``. Each study is reconstructed with its own protocol
(:meth:`~petrecon.batch.cohort.Cohort.study_protocol`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from petrecon import __version__
from petrecon.batch.cohort import Cohort
from petrecon.batch.outputs import (CONTAINER_NAME, DICOM_FOLDER, failed_rows, harmonised_folder, table_rows,
                                    write_study_outputs, write_table)
from petrecon.batch.worker import StudyFailed, one_line, reconstruct_cohort_study
from petrecon.errors import ParameterError, PetreconError
from petrecon.io.atomic import atomic_output
from petrecon.logs import LOGGER_NAME, LineFormatter, configure_logging

LOG = logging.getLogger(__name__)
CORES_PER_CPU_WORKER = 4
"""Default cores per CPU worker: a reconstruction's numba kernels scale over a few cores, and each
worker holds several sinograms (about 2 GB for an mMR span-11 study)."""


@dataclass
class BatchReport:
    """The outcome of a batch: per study what was written or why it failed."""

    out_dir: Path
    succeeded: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    n_workers: int = 0
    scheduler: str = ""
    dashboard: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {"software": f"petrecon {__version__}", "out_dir": str(self.out_dir), "scheduler": self.scheduler,
                "n_workers": self.n_workers, "wall_s": round(self.wall_s, 3), "n_succeeded": len(self.succeeded),
                "n_failed": len(self.failed), "succeeded": self.succeeded,
                "failed": [{k: v for k, v in f.items() if k != "details"} for f in self.failed]}

    def summary_lines(self) -> list[str]:
        lines = [f"{s['id']:16s} ok      {s['seconds']:.1f} s on {s['worker']}" for s in self.succeeded]
        lines += [f"{f['id']:16s} FAILED  {f['error']}" for f in self.failed]
        lines.append(f"{len(self.succeeded)} of {len(self.succeeded) + len(self.failed)} studies reconstructed "
                     f"in {self.wall_s:.1f} s on {self.n_workers} worker(s); outputs in {self.out_dir}")
        return lines


def default_cpu_workers(n_cores: int | None = None, n_studies: int | None = None) -> int:
    """Number of CPU workers of a LocalCluster: one per :data:`CORES_PER_CPU_WORKER` cores, at least 1.

    Examples
    --------
    >>> default_cpu_workers(16), default_cpu_workers(2), default_cpu_workers(16, n_studies=2)
    (4, 1, 2)
    """
    n_cores = n_cores or os.cpu_count() or 1
    workers = max(1, n_cores // CORES_PER_CPU_WORKER)
    return workers if n_studies is None else max(1, min(workers, n_studies))


def _local_cluster(n_workers: int | None, n_studies: int, processes: bool):
    """A LocalCluster: one worker per GPU (if the CUDA backend is available), else CPU workers."""
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    from petrecon.backend import cupy, resolve_backend

    options = {"dashboard_address": ":0"}  # a free port: several clusters (and users) on one machine
    if processes and resolve_backend() == "cuda":
        n_gpus = cupy().cuda.runtime.getDeviceCount()
        n_workers = n_gpus if n_workers is None else n_workers
        workers = {i: {"cls": Nanny, "options": {"nthreads": 1, "silence_logs": logging.CRITICAL,
                                                 "env": {"CUDA_VISIBLE_DEVICES": str(i % n_gpus)}}}
                   for i in range(n_workers)}
        LOG.info("LocalCluster: %d GPU worker(s) on %d GPU(s)", n_workers, n_gpus)
        return SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": options},
                           silence_logs=logging.CRITICAL)
    n_workers = default_cpu_workers(n_studies=n_studies) if n_workers is None else n_workers
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    extra = {"env": {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}} if processes else {}
    LOG.info("LocalCluster: %d CPU worker(s), %d numba thread(s) each", n_workers, threads)
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                        silence_logs=logging.CRITICAL, **options, **extra)


@contextlib.contextmanager
def open_client(scheduler: str | None = None, *, n_workers: int | None = None, n_studies: int = 1,
                processes: bool = True) -> Iterator:
    """A ``distributed.Client`` on ``scheduler``, or on a LocalCluster made (and closed) here."""
    try:
        from distributed import Client
    except ImportError:
        raise ParameterError("petrecon batch needs Dask distributed: pip install 'petrecon[dask]'") from None
    if n_workers is not None and n_workers < 1:
        raise ParameterError(f"--workers must be >= 1, got {n_workers}")
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as error:
            raise ParameterError(f"cannot reach the Dask scheduler {scheduler} ({error})") from None
        with client:
            yield client
        return
    with _local_cluster(n_workers, n_studies, processes) as cluster, Client(cluster) as client:
        yield client


def check_outputs(cohort: Cohort, out_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work, to overwrite earlier outputs (unless ``overwrite``)."""
    if overwrite:
        return
    targets = [out_dir / "quantification.csv", out_dir / "summary.json", out_dir / "index.html"]
    targets += [out_dir / s.id / name for s in cohort.studies for name in _study_outputs(cohort, s)]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ParameterError(f"{existing[0]} exists (and {len(existing) - 1} more outputs); "
                             "pass --overwrite to replace them")


def _study_outputs(cohort: Cohort, study) -> list[str]:
    """The names of the outputs written into ``OUT/<study id>/``."""
    from petrecon.report.patient import FUSED_NAME, MIPS_NAME, REPORT_NAME

    names = [CONTAINER_NAME, DICOM_FOLDER, REPORT_NAME, MIPS_NAME, FUSED_NAME]
    if study.harmonisation is not None:
        names.append(harmonised_folder(cohort.harmonisations[study.harmonisation].name))
    return names


def run_batch(cohort: Cohort, out_dir: str | os.PathLike, *, scheduler: str | None = None,
              n_workers: int | None = None, retries: int = 0, overwrite: bool = False, progress: bool = True,
              processes: bool = True, on_start: Callable[[str, str | None], None] | None = None) -> BatchReport:
    """Reconstruct every study of ``cohort`` on Dask; write the outputs to ``out_dir``.

    Parameters
    ----------
    cohort : Cohort
        From :func:`petrecon.batch.cohort.read_cohort`.
    out_dir : path-like
        Output folder (created): ``<study id>/recon.h5``, ``<study id>/dicom/`` (and ``dicom-<name>/`` of a
        harmonised image), ``<study id>/report.html``, ``quantification.csv``, ``summary.json``, ``index.html``.
    scheduler : str, optional
        Address of an existing Dask scheduler; None makes a LocalCluster.
    n_workers : int, optional
        Workers of the LocalCluster (default: one per GPU, else :func:`default_cpu_workers`).
    retries : int
        Dask retries of a failed task (a study that fails deterministically fails ``retries + 1`` times).
    overwrite : bool
        Replace earlier outputs.
    progress : bool
        Progress bar over completed studies (with ETA).
    processes : bool
        LocalCluster workers in separate processes (True) or threads of this one.
    on_start : callable, optional
        Called as ``on_start(scheduler_address, dashboard_link)`` once the cluster is up.

    Returns
    -------
    BatchReport
        ``ok`` is False when any study failed; the others' outputs are written.

    Notes
    -----
    Worker processes are started by spawning: a script that calls this
    function must do so under ``if __name__ == "__main__":``.
    """
    try:
        from distributed import as_completed
    except ModuleNotFoundError:
        raise PetreconError("petrecon batch needs Dask distributed, which is not installed: "
                            "pip install 'petrecon[dask]'") from None

    if retries < 0:
        raise ParameterError(f"--retries must be >= 0, got {retries}")
    out_dir = Path(out_dir)
    check_outputs(cohort, out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = BatchReport(out_dir)
    studies = {s.id: s for s in cohort.studies}
    with open_client(scheduler, n_workers=n_workers, n_studies=len(studies), processes=processes) as client:
        report.scheduler = client.scheduler.address
        report.n_workers = len(client.scheduler_info()["workers"])
        has_dashboard = scheduler is not None or importlib.util.find_spec("bokeh") is not None
        report.dashboard = client.dashboard_link if has_dashboard else None
        if on_start:
            on_start(report.scheduler, report.dashboard)
        logger = logging.getLogger(LOGGER_NAME)
        client.run(_configure_worker_logging, logger.getEffectiveLevel(),
                   any(isinstance(h.formatter, LineFormatter) for h in logger.handlers))
        futures = {client.submit(reconstruct_cohort_study, study, cohort.study_protocol(study),
                                 key=f"petrecon-{study.id}", retries=retries, pure=False): study.id
                   for study in cohort.studies}
        with tqdm(total=len(futures), desc="studies", unit="study", disable=not progress) as bar:
            for future in as_completed(futures):
                study = studies[futures[future]]
                _gather_one(future, study, cohort, out_dir, overwrite, report)
                future.release()
                bar.update()
    report.failed.sort(key=lambda f: f["id"])
    report.succeeded.sort(key=lambda s: s["id"])
    report.wall_s = time.perf_counter() - started
    order = {s.id: i for i, s in enumerate(cohort.studies)}
    report.rows.sort(key=lambda row: order[row["study"]])  # cohort order, whatever order the studies finished in
    write_table(out_dir / "quantification.csv", report.rows, cohort.info_keys(), overwrite=overwrite)
    _write_index(cohort, out_dir, report, overwrite)
    with atomic_output(out_dir / "summary.json", overwrite=overwrite) as temporary:
        temporary.write_text(json.dumps({**report.to_dict(), "cohort": str(cohort.path),
                                         "protocol_source": cohort.protocol_source,
                                         "protocols": {source: p.to_dict() for source, p in cohort.protocols.items()},
                                         "normalisation": cohort.normalisation}, indent=2, default=str))
    return report


def _configure_worker_logging(level: int, line_format: bool) -> None:
    """Give a worker's ``petrecon`` logger the client's level (``--quiet``, ``--log-level``) and, where the
    client prints one-line records (the command line), the same line format."""
    if line_format:
        configure_logging(level)
    else:
        logging.getLogger(LOGGER_NAME).setLevel(level)


def _gather_one(future, study, cohort: Cohort, out_dir: Path, overwrite: bool, report: BatchReport) -> None:
    """Write one study's outputs and report from its finished task, or record why it failed."""
    try:
        outcome = future.result()
        LOG.info("%s: writing the container and DICOM, quantifying %d VOI(s)", study.id, len(study.vois.names()))
        images = write_study_outputs(outcome, study, out_dir / study.id, cohort, overwrite=overwrite)
        scanner = str(outcome.provenance.get("scanner", ""))
        rows = table_rows(study, cohort, scanner, images)
        _study_report(study, cohort, outcome, images, scanner, out_dir, overwrite)
    except StudyFailed as error:
        _failed(study, cohort, report, str(error), error.details)
        return
    except Exception as error:  # a lost worker (KilledWorker), a write or quantification error: report, go on
        _failed(study, cohort, report, f"{study.id}: {one_line(error)}", "")
        return
    report.rows.extend(rows)
    outside = [r["voi"] for r in images[0].records if r["status"] == "outside"]
    if outside:
        LOG.warning("%s: VOI(s) %s not wholly inside the image: status outside", study.id, ", ".join(outside))
    report.succeeded.append({"id": study.id, "seconds": round(outcome.seconds, 3), "worker": outcome.worker,
                             "scanner": scanner, "protocols": [image.protocol for image in images],
                             "corrected_image": list(outcome.corrected),
                             "outputs": [str(out_dir / study.id / CONTAINER_NAME),
                                         *(str(image.folder) for image in images)]})
    LOG.info("%s: written to %s", study.id, out_dir / study.id)


def _failed(study, cohort: Cohort, report: BatchReport, message: str, details: str) -> None:
    report.failed.append({"id": study.id, "error": message, "details": details})
    report.rows.extend(failed_rows(study, cohort))
    LOG.warning("%s", message)


def _study_report(study, cohort: Cohort, outcome, images, scanner: str, out_dir: Path, overwrite: bool) -> None:
    """``OUT/<id>/report.html`` and its figures."""
    from petrecon.report.patient import write_patient_report

    protocol = cohort.study_protocol(study)
    patient = study.patient
    facts = {"study": study.id, "patient": study.patient_name, "scanner": scanner,
             "protocol": f"{protocol.name}: {protocol.dicom_method()}",
             "harmonisation": ", ".join(image.protocol for image in images[1:]) or "none",
             "tracer": study.tracer or "not given", "isotope": outcome.attributes.get("isotope", ""),
             "injected activity (MBq)": f"{patient.injected_dose_bq / 1e6:.1f}",
             "injection time": patient.injection_time.isoformat(), "weight (kg)": f"{patient.weight_kg:g}",
             "attenuation": study.mu.kind, "corrections": " ".join(outcome.corrected),
             **{key: value for key, value in study.info}}
    LOG.info("%s: writing the report", study.id)
    write_patient_report(out_dir / study.id, title=f"{study.id} (patient {study.patient_name}, {scanner})",
                         facts=facts, images=[(i.protocol, i.suv, i.records) for i in images], vois=study.vois,
                         anatomy=outcome.anatomy, overwrite=overwrite)


def _write_index(cohort: Cohort, out_dir: Path, report: BatchReport, overwrite: bool) -> None:
    """``OUT/index.html``: every study, its status and a link to its report."""
    from petrecon.report.patient import REPORT_NAME, write_index

    done = {s["id"]: s for s in report.succeeded}
    errors = {f["id"]: f["error"] for f in report.failed}
    rows = [{"study": s.id, "patient": s.patient_name, "scanner": done.get(s.id, {}).get("scanner", s.scanner or ""),
             "protocol": cohort.study_protocol(s).name, "status": "ok" if s.id in done else "failed",
             "report": f"{s.id}/{REPORT_NAME}" if s.id in done else "", "note": errors.get(s.id, "")}
            for s in cohort.studies]
    write_index(out_dir, rows, title=f"petrecon batch: {cohort.path.name}", overwrite=overwrite)
