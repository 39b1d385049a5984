"""``/v1/reports/...``, ``/v1/departments/rating``: note, ЦУР export, rating (analysts).

All read the stored appeals (the frame :class:`api.analytics.AnalyticsData` keeps) and the stored
alerts; the figures come from :mod:`mcu_nlp.services.reporting`. Each is computed as a
background job and cached per store data version (:mod:`api.analytics`): a request answers 200
from the cache, or ``202 Accepted`` with a job to poll while the figures are computed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_analytics as out
from api.analytics import (
    Analyst,
    Analytics,
    AnalyticsData,
    EmptyStore,
    http_error,
    respond,
    with_headers,
)
from api.deps import AppServices, Services
from api.schemas_jobs import JobOut
from mcu_nlp.reports.cur_export import cur_csv
from mcu_nlp.reports.note import AnalyticalNote
from mcu_nlp.reports.periods import Period, PeriodKind, report_period
from mcu_nlp.routing.precision import PrecisionPolicy
from mcu_nlp.services.alerts import alerts_for_note
from mcu_nlp.services.reporting import (
    build_report,
    cur_export_document,
    department_rating_report,
    render_report,
)
from mcu_nlp.services.routing_quality import note_months, note_section, routing_quality
from mcu_nlp.storage.models import AlertRow, AuditVerdictRow, ThresholdOverrideRow

router = APIRouter(prefix="/v1", tags=["reports"])

ERRORS = {202: {"model": JobOut, "description": "Computing: poll the job, then ask again."},
          409: {"model": schemas.ErrorOut}, 422: {"model": schemas.ErrorOut},
          429: {"model": schemas.ErrorOut}}
PeriodQuery = Annotated[PeriodKind, Query(description="week (7 days) or quarter (to date)")]
EndQuery = Annotated[date | None, Query(description=(
    "Last day; default: the last Sunday of the data (week) or its newest day (quarter)."))]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _period(analytics: AnalyticsData, kind: PeriodKind, end: date | None) -> Period:
    """The report period, refused with a reason when it misses the stored data entirely."""
    first, last = analytics.span()
    if end is None:  # the last Sunday on or before the newest appeal (or its day)
        end = last - timedelta(days=(last.weekday() + 1) % 7) if kind == "week" else last
    period = report_period(kind, end)
    if period.end < first or period.start > last:
        raise HTTPException(422, f"the {kind} {period.start} – {period.end} holds no stored "
                                 f"appeal; the data cover {first} – {last}")
    return period


async def _chosen(analytics: AnalyticsData, kind: PeriodKind, end: date | None) -> Period:
    try:
        return await run_in_threadpool(_period, analytics, kind, end)
    except EmptyStore as exc:
        raise http_error(exc) from exc


def _note_marks(services: AppServices) -> tuple:
    """What the note reads beside the appeals: stored alerts, audit verdicts, overrides, model.

    Part of the note's cache key, so a scan or an audit verdict is seen at once.
    """
    with services.store.session() as session:
        alerts = session.execute(select(func.count(AlertRow.id), func.max(AlertRow.id),
                                        func.max(AlertRow.last_seen_at))).one()
        verdicts = session.execute(select(func.count(AuditVerdictRow.id),
                                          func.max(AuditVerdictRow.id))).one()
        overrides = session.execute(select(func.count(ThresholdOverrideRow.id),
                                           func.max(ThresholdOverrideRow.updated_at))).one()
    model = services.registry.holder.current
    return (*alerts, *verdicts, *overrides, getattr(model, "version", None))


def _filename(stem: str, period: Period, suffix: str) -> dict[str, str]:
    name = f"{stem}_{period.kind}_{period.start}_{period.end}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def note_inputs(services: AppServices, start: date, end: date
                ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """What a note takes from the store besides the appeals: its alerts and routing section."""
    since, until = note_months(start, end)
    quality = routing_quality(services.store, services.registry.holder.current,
                              PrecisionPolicy.from_settings(services.settings),
                              department_label=services.department_label, since=since,
                              until=until,
                              audit_share=getattr(services.classifier.audit, "share", None))
    return alerts_for_note(services.store, start, end), note_section(quality)


@router.get("/reports/note", response_model=None, responses={
    200: {"model": AnalyticalNote, "content": {"text/html": {}, DOCX: {}}}, **ERRORS})
async def note(request: Request, response: Response, services: Services, analytics: Analytics,
               _: Analyst, period: PeriodQuery, end: EndQuery = None,
               format: Literal["json", "html", "docx"] = "json"):  # noqa: A002 - query name
    """The analytical note: figures as JSON, or the document as HTML or DOCX (masked)."""
    chosen = await _chosen(analytics, period, end)
    marks = await run_in_threadpool(_note_marks, services)

    def build() -> AnalyticalNote | bytes:
        alerts, routing = note_inputs(services, chosen.start, chosen.end)
        built = build_report(analytics.frame(), period=period, end=chosen.end, alerts=alerts,
                             department=services.department_label, routing_quality=routing)
        return built if format == "json" else render_report(built, format)

    built = await respond(request, response, analytics, "note",
                          ("note", period, chosen.end, format, marks), build,
                          params={"period": period, "end": chosen.end, "format": format})
    if isinstance(built, Response) or format == "json":
        return built
    if format == "html":
        return with_headers(Response(built, media_type="text/html; charset=utf-8"), response)
    return with_headers(Response(built, media_type=DOCX,
                                 headers=_filename("note", chosen, "docx")), response)


@router.get("/reports/cur-export", response_model=None, responses={
    200: {"content": {"application/json": {}, "text/csv": {}}}, **ERRORS})
async def cur_export(request: Request, response: Response, analytics: Analytics,
                     services: Services, _: Analyst, period: PeriodQuery, end: EndQuery = None,
                     format: Literal["json", "csv"] = "json"):  # noqa: A002 - query name
    """The period's figures for the regional ЦУР (schema in docs/cur_export.md)."""
    chosen = await _chosen(analytics, period, end)
    document = await respond(request, response, analytics, "cur_export",
                             ("cur_export", period, chosen.end),
                             lambda: cur_export_document(analytics.frame(), period=period,
                                                         end=chosen.end,
                                                         department=services.department_label),
                             params={"period": period, "end": chosen.end})
    if isinstance(document, Response) or format == "json":
        return document
    # spreadsheet-safe: a territory "=HYPERLINK(...)" is written as text, never run by Excel
    return with_headers(Response(cur_csv(document), media_type="text/csv; charset=utf-8",
                                 headers=_filename("cur", chosen, "csv")), response)


@router.get("/departments/rating", response_model=out.RatingOut, responses=ERRORS)
async def rating(request: Request, response: Response, analytics: Analytics,
                 services: Services, _: Analyst, period: PeriodQuery, end: EndQuery = None):
    """Departments ranked on timeliness, satisfaction, routing, backlog (components shown)."""
    chosen = await _chosen(analytics, period, end)
    scores = await respond(request, response, analytics, "rating",
                           ("rating", period, chosen.end),
                           lambda: department_rating_report(analytics.frame(), period=period,
                                                            end=chosen.end,
                                                            department=services.department_label),
                           params={"period": period, "end": chosen.end})
    if isinstance(scores, Response):
        return scores
    return out.RatingOut(period=chosen.to_dict(), departments=scores)
