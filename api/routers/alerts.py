"""``/v1/alerts``: rises in message counts, why they happen, and acknowledging them (analysts).

``/v1/alerts/quality`` lists the quality alerts of auto-routing (precision below its target).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas, schemas_routing
from api import schemas_analytics as out
from api.analytics import Analyst, Analytics, AnalyticsData, EmptyStore, http_error, respond
from api.deps import AppServices, Services
from api.jobs import QueueFull
from api.schemas_jobs import JobOut
from mcu_nlp.services.alerts import (
    AlertNotFound,
    AlertTransitionError,
    ScanBusy,
    StoredAlert,
    acknowledge_alert,
    list_alerts,
    scan_exclusively,
)
from mcu_nlp.services.quality_alerts import (
    QualityAlert,
    acknowledge_quality_alert,
    list_quality_alerts,
)
from mcu_nlp.trends.counts import default_dimensions

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

MIN_HISTORY_DAYS = 28  # the baseline model needs four weeks before the day assessed
SCAN_BUSY_RETRY_SECONDS = 5
SCHEDULER = "scheduler"  # the periodic scan's actor in the audit log
AlertId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


def alert_out(alert: StoredAlert) -> out.AlertOut:
    """API view of a stored alert."""
    return out.AlertOut(id=alert.id, key=alert.key, dimension=alert.dimension, value=alert.value,
                        title=alert.title, status=alert.status, first_day=alert.first_day,
                        last_day=alert.last_day, observed=alert.observed,
                        expected=alert.expected, excess=alert.excess, rules=alert.rules,
                        days=[out.AlarmDayOut(**d) for d in alert.days],
                        explanation=alert.explanation,
                        status_changed_by=alert.status_changed_by)


def _dimensions() -> list[str]:
    return sorted({d.name for d in default_dimensions()} | {"total"})


@router.get("", response_model=out.AlertsOut, responses={422: {"model": schemas.ErrorOut}})
def alerts(services: Services, _: Analyst,
           status_: Annotated[Literal["new", "acknowledged", "resolved"] | None,
                              Query(alias="status")] = None,
           since: Annotated[date | None, Query(description="Rises going on at or after.")] = None,
           until: Annotated[date | None, Query(description="Rises started by this day.")] = None,
           dimension: Annotated[str | None, Query(max_length=64,
                                                  description="topic_group, topic, department, "
                                                              "territory, channel, total")] = None,
           limit: Annotated[int, Query(ge=1, le=500)] = 50,
           offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> out.AlertsOut:
    """Stored alerts, largest excess first, with their explanations."""
    if since and until and since > until:
        raise HTTPException(422, f"since ({since}) is after until ({until})")
    if dimension is not None and dimension not in _dimensions():
        raise HTTPException(422, f"unknown dimension {dimension!r}; use one of {_dimensions()}")
    page = list_alerts(services.store, status=status_, since=since, until=until,
                       dimension=dimension, limit=limit, offset=offset)
    return out.AlertsOut(total=page.total, items=[alert_out(a) for a in page.items])


def _scan_day(analytics: AnalyticsData, day: date | None) -> date:
    """The day to assess, refused with a reason when the stored data cannot carry it."""
    first, last = analytics.span()
    as_of = day or last
    if as_of > last:
        raise HTTPException(422, f"date {as_of} is after the newest stored appeal ({last}); "
                                 "days without data would read as a fall to zero")
    if (as_of - first).days < MIN_HISTORY_DAYS:
        raise HTTPException(422, f"date {as_of} leaves less than {MIN_HISTORY_DAYS} days of "
                                 f"history (data start {first}); the baseline needs them")
    return as_of


def _scan(services: AppServices, analytics: AnalyticsData, as_of: date, lookback: int,
          actor: str) -> out.ScanOut:
    try:
        outcome = scan_exclusively(services.store, analytics.frame, as_of=as_of,
                                   lookback_days=lookback, actor=actor)
    except ScanBusy as exc:  # another replica (or the CLI) is scanning: it stores the same
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc), headers={
            "Retry-After": str(SCAN_BUSY_RETRY_SECONDS)}) from exc
    still_open = list_alerts(services.store, status=("new", "acknowledged"), limit=500)
    return out.ScanOut(as_of=as_of, created=outcome.created, updated=outcome.updated,
                       resolved=outcome.resolved,
                       open=[alert_out(a) for a in still_open.items])


@router.post("/scan", response_model=out.ScanOut, responses={
    202: {"model": JobOut, "description": "Scanning: poll the job; its result is the scan."},
    409: {"model": schemas.ErrorOut}, 422: {"model": schemas.ErrorOut},
    429: {"model": schemas.ErrorOut}})
async def scan(request: Request, response: Response, services: Services, analytics: Analytics,
               who: Analyst,
               day: Annotated[date | None, Query(alias="date", description=(
                   "Day to assess (default: the newest appeal's day)."))] = None,
               lookback: Annotated[int, Query(ge=1, le=60)] = 7):
    """Run the detector on the stored appeals as of ``date`` and store what it finds (audited).

    The scan runs as a background job (never cached: it stores alerts); an identical scan
    already running is joined. When it takes longer than a moment the answer is ``202`` with
    the job, whose ``result`` is this endpoint's body once done. While another API replica or
    the command line scans the same store the answer (or the job's error) is ``409`` with
    ``Retry-After``: one scan at a time per store.
    """
    try:
        as_of = await run_in_threadpool(_scan_day, analytics, day)
    except EmptyStore as exc:
        raise http_error(exc) from exc
    return await respond(request, response, analytics, "scan",
                         ("scan", as_of, lookback, who.actor),
                         lambda: _scan(services, analytics, as_of, lookback, who.actor),
                         cache=False, params={"date": as_of, "lookback": lookback})


def scheduled_scan(services: AppServices, analytics: AnalyticsData, *,
                   lookback: int = 7) -> out.ScanOut | None:
    """One turn of the periodic scan (``MCU_ALERT_SCAN_SECONDS``): the newest day, as the API's.

    Runs on the analytics worker like ``POST /v1/alerts/scan`` (and joins an identical scan
    already queued there), and blocks until it is done. A turn with nothing to do is skipped
    with a log line, not an error: an empty store, less than :data:`MIN_HISTORY_DAYS` of
    history, a full job queue, or another replica scanning right now.

    Returns:
        The scan's outcome, or ``None`` when the turn was skipped.
    """
    try:
        as_of = _scan_day(analytics, None)
    except (EmptyStore, HTTPException) as exc:
        log.info("periodic alert scan skipped: %s", getattr(exc, "detail", exc))
        return None
    try:
        answer = analytics.request("scan", ("scan", as_of, lookback, SCHEDULER),
                                   lambda: _scan(services, analytics, as_of, lookback, SCHEDULER),
                                   cache=False, params={"date": as_of, "lookback": lookback})
        result = analytics.wait_for(answer)
    except QueueFull as exc:
        log.info("periodic alert scan skipped: %s", exc)
        return None
    except HTTPException as exc:
        if exc.status_code != status.HTTP_409_CONFLICT:
            raise
        log.info("periodic alert scan skipped: %s", exc.detail)
        return None
    log.info("periodic alert scan as of %s: %d new, %d updated, %d resolved", as_of,
             len(result.created), len(result.updated), len(result.resolved))
    return result


def quality_alert_out(alert: QualityAlert) -> schemas_routing.QualityAlertOut:
    """API view of a quality alert."""
    return schemas_routing.QualityAlertOut(
        id=alert.id, kind=alert.kind, title=alert.title, status=alert.status,
        severity=alert.severity, raised_at=alert.raised_at, details=alert.details,
        status_changed_by=alert.status_changed_by)


@router.get("/quality", response_model=schemas_routing.QualityAlertsOut)
def quality_alerts(services: Services, _: Analyst,
                   status_: Annotated[Literal["new", "acknowledged", "resolved"] | None,
                                      Query(alias="status")] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
                   ) -> schemas_routing.QualityAlertsOut:
    """Quality alerts, newest first: auto-routing whose audited precision fell below target."""
    page = list_quality_alerts(services.store, status=status_, limit=limit, offset=offset)
    return schemas_routing.QualityAlertsOut(total=page.total,
                                            items=[quality_alert_out(a) for a in page.items])


@router.post("/quality/{alert_id}/ack", response_model=schemas_routing.QualityAlertOut,
             responses={404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut}})
def acknowledge_quality(alert_id: AlertId, services: Services, who: Analyst,
                        body: Annotated[out.AlertAckIn | None, Body()] = None
                        ) -> schemas_routing.QualityAlertOut:
    """Mark a new quality alert acknowledged (audited)."""
    try:
        alert = acknowledge_quality_alert(services.store, alert_id, actor=who.actor,
                                          comment=body.comment if body else "")
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except AlertTransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return quality_alert_out(alert)


@router.post("/{alert_id}/ack", response_model=out.AlertOut,
             responses={404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut}})
def acknowledge(alert_id: AlertId, services: Services, who: Analyst,
                body: Annotated[out.AlertAckIn | None, Body()] = None) -> out.AlertOut:
    """Mark a new alert acknowledged (audited); acknowledging again changes nothing."""
    try:
        alert = acknowledge_alert(services.store, alert_id, actor=who.actor,
                                  comment=body.comment if body else "")
    except AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except AlertTransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return alert_out(alert)
