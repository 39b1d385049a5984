"""``/v1/root-causes`` and ``/v1/incidents``: recurring problems and merged duplicates (analysts).

Both read the store's appeals of a period (default: the 90 days up to the newest appeal; at most
400 days) and are memoized per (store state, period, territory): the first call on a quarter of a
region's data clusters for a minute or more, the next ones answer at once.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam

from api import schemas
from api import schemas_analytics as out
from api.analytics import Analyst, Analytics, BadPeriod, EmptyStore, NoAppeals, http_error

router = APIRouter(prefix="/v1", tags=["root causes"])

ERRORS = {404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut},
          422: {"model": schemas.ErrorOut}}
Since = Annotated[date | None, Query(description="First day (default: 89 days before until).")]
Until = Annotated[date | None, Query(description="Last day (default: the newest appeal's).")]
Territory = Annotated[str | None, Query(max_length=200, description="District or settlement.")]


@router.get("/root-causes", response_model=out.RootCausesOut, responses=ERRORS)
def root_causes(analytics: Analytics, _: Analyst, since: Since = None, until: Until = None,
                territory: Territory = None,
                top: Annotated[int, Query(ge=1, le=100)] = 10) -> out.RootCausesOut:
    """The ``top`` recurring problems of a period: size, trend, places, department, examples."""
    try:
        period = analytics.period(since, until, territory)
        summary = analytics.root_causes(period).summary()
    except (EmptyStore, NoAppeals, BadPeriod) as exc:
        raise http_error(exc) from exc
    summary["root_causes"] = summary["root_causes"][:top]
    return out.RootCausesOut(period=out.PeriodOut(**period.as_dict()), **summary)


@router.get("/root-causes/{root_cause_id}", response_model=out.RootCauseOut, responses=ERRORS)
def root_cause(root_cause_id: Annotated[int, PathParam(ge=0, le=100_000)], analytics: Analytics,
               _: Analyst, since: Since = None, until: Until = None,
               territory: Territory = None) -> out.RootCauseOut:
    """One root cause with its weekly counts; ids hold for the same period and territory."""
    try:
        analysis = analytics.root_causes(analytics.period(since, until, territory))
    except (EmptyStore, NoAppeals, BadPeriod) as exc:
        raise http_error(exc) from exc
    for card in analysis.cards:
        if card.id == root_cause_id:
            return out.RootCauseOut(**card.to_dict())
    raise HTTPException(status.HTTP_404_NOT_FOUND,
                        f"no root cause {root_cause_id} in this period; ids come from "
                        "GET /v1/root-causes with the same since, until and territory")


@router.get("/incidents", response_model=out.IncidentsOut, responses=ERRORS)
def incidents(analytics: Analytics, _: Analyst, since: Since = None, until: Until = None,
              territory: Territory = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              window_hours: Annotated[float, Query(gt=0, le=720)] = 72.0,
              min_similarity: Annotated[float, Query(ge=0.5, le=1.0)] = 0.8) -> out.IncidentsOut:
    """Near-duplicate appeals about one problem merged into incidents, largest first."""
    try:
        period = analytics.period(since, until, territory)
        found = analytics.incident_summary(period, window_hours=window_hours,
                                           min_similarity=min_similarity, limit=limit)
    except (EmptyStore, NoAppeals, BadPeriod) as exc:
        raise http_error(exc) from exc
    return out.IncidentsOut(period=out.PeriodOut(**period.as_dict()), **found)
