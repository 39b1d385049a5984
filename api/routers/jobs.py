"""``/v1/jobs/{id}``: the status of a background analytics job (analysts, like the analytics)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api import schemas
from api.analytics import Analyst, Analytics
from api.schemas_jobs import JobOut, job_out

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"model": schemas.ErrorOut}})
async def job(job_id: Annotated[str, Path(min_length=8, max_length=64)], analytics: Analytics,
              _: Analyst) -> JobOut:
    """A job's status; once ``done``, request ``result_url`` again (scans carry ``result``)."""
    found = analytics.runner.get(job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no job {job_id!r}; finished jobs are kept for 15 minutes")
    return job_out(found)
