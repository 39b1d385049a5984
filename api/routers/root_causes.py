"""``/v1/root-causes`` and ``/v1/incidents``: recurring problems and merged duplicates (analysts).

Both read the store's appeals of a period (default: the 90 days up to the newest appeal; at most
400 days). The analysis runs as a background job (:mod:`api.analytics`): the first call on a
quarter of a region's data answers ``202 Accepted`` with a job to poll (``GET /v1/jobs/{id}``)
while it clusters for a minute or more; once done, the same call answers at once from the cache
(kept per store data version).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_analytics as out
from api.analytics import (
    Analyst,
    Analytics,
    AnalyticsData,
    BadPeriod,
    EmptyStore,
    NoAppeals,
    Period,
    http_error,
    respond,
)
from api.schemas_jobs import JobOut
from mcu_nlp.services.root_causes import card_with_roadmap

router = APIRouter(prefix="/v1", tags=["root causes"])

ERRORS = {202: {"model": JobOut, "description": "Computing: poll the job, then ask again."},
          404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut},
          422: {"model": schemas.ErrorOut}, 429: {"model": schemas.ErrorOut}}
Since = Annotated[date | None, Query(description="First day (default: 89 days before until).")]
Until = Annotated[date | None, Query(description="Last day (default: the newest appeal's).")]
Territory = Annotated[str | None, Query(max_length=200, description="District or settlement.")]


async def _period(analytics: AnalyticsData, since: date | None, until: date | None,
                  territory: str | None) -> Period:
    try:
        return await run_in_threadpool(analytics.period, since, until, territory)
    except (EmptyStore, NoAppeals, BadPeriod) as exc:
        raise http_error(exc) from exc


async def _analysis(request: Request, response: Response, analytics: AnalyticsData,
                    period: Period):
    return await respond(request, response, analytics, "root_causes", ("root_causes", period),
                         lambda: analytics.compute_root_causes(period),
                         params=period.as_dict())


@router.get("/root-causes", response_model=out.RootCausesOut, responses=ERRORS)
async def root_causes(request: Request, response: Response, analytics: Analytics, _: Analyst,
                      since: Since = None, until: Until = None, territory: Territory = None,
                      top: Annotated[int, Query(ge=1, le=100)] = 10):
    """The ``top`` recurring problems of a period: size, trend, places, department, examples."""
    period = await _period(analytics, since, until, territory)
    analysis = await _analysis(request, response, analytics, period)
    if isinstance(analysis, Response):
        return analysis
    summary = analysis.summary()
    summary["root_causes"] = summary["root_causes"][:top]
    return out.RootCausesOut(period=out.PeriodOut(**period.as_dict()), **summary)


@router.get("/root-causes/{root_cause_id}", response_model=out.RootCauseOut, responses=ERRORS)
async def root_cause(root_cause_id: Annotated[int, PathParam(ge=0, le=100_000)],
                     request: Request, response: Response, analytics: Analytics, _: Analyst,
                     since: Since = None, until: Until = None, territory: Territory = None):
    """One root cause with its weekly counts, evidence and roadmap stages.

    Ids hold for the same period and territory.
    """
    period = await _period(analytics, since, until, territory)
    analysis = await _analysis(request, response, analytics, period)
    if isinstance(analysis, Response):
        return analysis
    for card in analysis.cards:
        if card.id == root_cause_id:  # its roadmap's deadlines count from the period's end
            return out.RootCauseOut(**card_with_roadmap(card, period.until))
    raise HTTPException(status.HTTP_404_NOT_FOUND,
                        f"no root cause {root_cause_id} in this period; ids come from "
                        "GET /v1/root-causes with the same since, until and territory")


@router.get("/incidents", response_model=out.IncidentsOut, responses=ERRORS)
async def incidents(request: Request, response: Response, analytics: Analytics, _: Analyst,
                    since: Since = None, until: Until = None, territory: Territory = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    window_hours: Annotated[float, Query(gt=0, le=720)] = 72.0,
                    min_similarity: Annotated[float, Query(ge=0.5, le=1.0)] = 0.8):
    """Near-duplicate appeals about one problem merged into incidents, largest first."""
    period = await _period(analytics, since, until, territory)
    key = ("incidents", period, window_hours, min_similarity, limit)
    found = await respond(request, response, analytics, "incidents", key,
                          lambda: analytics.compute_incidents(
                              period, window_hours=window_hours,
                              min_similarity=min_similarity, limit=limit),
                          params={**period.as_dict(), "window_hours": window_hours,
                                  "min_similarity": min_similarity, "limit": limit})
    if isinstance(found, Response):
        return found
    return out.IncidentsOut(period=out.PeriodOut(**period.as_dict()), **found)
