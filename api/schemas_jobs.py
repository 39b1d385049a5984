"""Response body of ``GET /v1/jobs/{id}`` and of a ``202 Accepted`` analytics request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from api.jobs import Job


class JobErrorOut(BaseModel):
    """Why a job failed: the status the analytics request answers with, and the reason."""

    status: int
    detail: str


class JobOut(BaseModel):
    """A background analytics job."""

    id: str
    kind: str = Field(description="root_causes | incidents | note | cur_export | rating | scan")
    status: str = Field(description="queued | running | done | failed")
    params: dict[str, Any]
    status_url: str = Field(description="Poll this until status is done or failed.")
    result_url: str | None = Field(
        None, description="Request this again once done: it answers from the cache.")
    data_version: str | None = Field(None, description="Store version the result holds for.")
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: JobErrorOut | None = None
    result: Any = Field(None, description="The outcome of a job that is not cached (a scan).")


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def job_out(job: Job) -> JobOut:
    """The API view of a job."""
    from api.analytics import http_error

    error = None
    if job.error is not None:
        exc = http_error(job.error)
        error = JobErrorOut(status=exc.status_code, detail=str(exc.detail))
    result = None
    if job.status == "done" and job.kind == "scan":
        result = job.result.model_dump(mode="json") if hasattr(job.result, "model_dump") \
            else job.result
    return JobOut(id=job.id, kind=job.kind, status=job.status,
                  params={k: v if isinstance(v, (int, float, bool, type(None))) else str(v)
                          for k, v in job.params.items()},
                  status_url=f"/v1/jobs/{job.id}", result_url=job.result_url,
                  data_version=job.data_version, submitted_at=_time(job.submitted_at),
                  started_at=_time(job.started_at), finished_at=_time(job.finished_at),
                  error=error, result=result)
