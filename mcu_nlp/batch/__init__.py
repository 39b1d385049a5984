"""Batch jobs over Parquet archives — score, embed, prepare — in process or on Ray Data.

Example:
    >>> from mcu_nlp.batch import run_job
    >>> report = run_job("score", "appeals.parquet", "scored/", engine="ray",
    ...                  bundle="models/v12")  # doctest: +SKIP
    >>> report.rows_per_second  # doctest: +SKIP
"""

from mcu_nlp.batch.engines import ENGINES, EngineUnavailable
from mcu_nlp.batch.job import ERROR_COLUMN, BatchJob
from mcu_nlp.batch.jobs import JOBS, job_class
from mcu_nlp.batch.run import BatchReport, RowsLost, run_job

__all__ = ["ENGINES", "ERROR_COLUMN", "JOBS", "BatchJob", "BatchReport", "EngineUnavailable",
           "RowsLost", "job_class", "run_job"]
