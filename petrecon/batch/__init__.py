"""Batch reprocessing of a cohort on Dask distributed (``petrecon batch cohort.toml``).

:mod:`~petrecon.batch.cohort` reads and validates the cohort file,
:mod:`~petrecon.batch.worker` is the task run per study,
:mod:`~petrecon.batch.outputs` writes each study's container and DICOM series
and the quantification table, :mod:`~petrecon.batch.run` drives the cluster.
Importing this package does not import Dask; running a batch needs it
(``pip install 'petrecon[dask]'``).
"""

from petrecon.batch.cohort import Cohort, CohortStudy, read_cohort
from petrecon.batch.run import BatchReport, run_batch
from petrecon.batch.worker import StudyFailed, reconstruct_cohort_study

__all__ = ["BatchReport", "Cohort", "CohortStudy", "StudyFailed", "read_cohort", "reconstruct_cohort_study",
           "run_batch"]
