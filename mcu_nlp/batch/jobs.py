"""The batch jobs by name (imported on first use: each pulls its own models' code)."""

from __future__ import annotations

import importlib

from mcu_nlp.batch.job import BatchJob

JOBS: dict[str, str] = {
    "score": "mcu_nlp.batch.score:ScoreJob",
    "embed": "mcu_nlp.batch.embed:EmbedJob",
    "prepare": "mcu_nlp.batch.prepare:PrepareJob",
}
"""Job name → ``module:class``."""


def job_class(job: str | type[BatchJob]) -> type[BatchJob]:
    """The job class named ``job`` (a :class:`BatchJob` subclass is returned as it is).

    Raises:
        ValueError: No job has that name.
    """
    if isinstance(job, type) and issubclass(job, BatchJob):
        return job
    if job not in JOBS:
        raise ValueError(f"unknown batch job {job!r}; known: {', '.join(JOBS)}")
    module, name = JOBS[job].split(":")
    return getattr(importlib.import_module(module), name)
