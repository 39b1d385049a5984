"""``/v1/reports/...``, ``/v1/departments/rating``: note, ЦУР export, rating (analysts).

All read the stored appeals (the frame :class:`api.analytics.AnalyticsData` keeps) and the stored
alerts; the figures come from :mod:`mcu_nlp.services.reporting`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_analytics as out
from api.analytics import Analyst, Analytics, AnalyticsData, EmptyStore, http_error
from api.deps import Services
from mcu_nlp.reports.cur_export import cur_csv
from mcu_nlp.reports.note import AnalyticalNote
from mcu_nlp.reports.periods import Period, PeriodKind, report_period
from mcu_nlp.routing.precision import PrecisionPolicy
from mcu_nlp.services.alerts import alerts_for_note
from mcu_nlp.services.reporting import (
    build_report,
    cur_export_document,
    department_rating_report,
    latest_complete_week_end,
    render_report,
)
from mcu_nlp.services.routing_quality import note_months, note_section, routing_quality

router = APIRouter(prefix="/v1", tags=["reports"])

ERRORS = {409: {"model": schemas.ErrorOut}, 422: {"model": schemas.ErrorOut}}
PeriodQuery = Annotated[PeriodKind, Query(description="week (7 days) or quarter (to date)")]
EndQuery = Annotated[date | None, Query(description=(
    "Last day; default: the last Sunday of the data (week) or its newest day (quarter)."))]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _period(analytics: AnalyticsData, kind: PeriodKind, end: date | None) -> Period:
    """The report period, refused with a reason when it misses the stored data entirely."""
    first, last = analytics.span()
    if end is None:
        end = latest_complete_week_end(analytics.frame()) if kind == "week" else last
    period = report_period(kind, end)
    if period.end < first or period.start > last:
        raise HTTPException(422, f"the {kind} {period.start} – {period.end} holds no stored "
                                 f"appeal; the data cover {first} – {last}")
    return period


def _filename(stem: str, period: Period, suffix: str) -> dict[str, str]:
    name = f"{stem}_{period.kind}_{period.start}_{period.end}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/reports/note", response_model=None, responses={
    200: {"model": AnalyticalNote, "content": {"text/html": {}, DOCX: {}}}, **ERRORS})
async def note(services: Services, analytics: Analytics, _: Analyst, period: PeriodQuery,
               end: EndQuery = None,
               format: Literal["json", "html", "docx"] = "json"):  # noqa: A002 - query name
    """The analytical note: figures as JSON, or the document as HTML or DOCX (masked)."""
    def build() -> tuple[Period, AnalyticalNote]:
        chosen = _period(analytics, period, end)
        alerts = alerts_for_note(services.store, chosen.start, chosen.end)
        since, until = note_months(chosen.start, chosen.end)
        quality = routing_quality(services.store, services.registry.holder.current,
                                  PrecisionPolicy.from_settings(services.settings),
                                  department_label=services.department_label, since=since,
                                  until=until,
                                  audit_share=getattr(services.classifier.audit, "share", None))
        return chosen, build_report(analytics.frame(), period=period, end=chosen.end,
                                    alerts=alerts, department=services.department_label,
                                    routing_quality=note_section(quality))

    try:
        chosen, built = await run_in_threadpool(build)
    except EmptyStore as exc:
        raise http_error(exc) from exc
    if format == "json":
        return built
    data = await run_in_threadpool(render_report, built, format)
    if format == "html":
        return Response(data, media_type="text/html; charset=utf-8")
    return Response(data, media_type=DOCX, headers=_filename("note", chosen, "docx"))


@router.get("/reports/cur-export", response_model=None, responses={
    200: {"content": {"application/json": {}, "text/csv": {}}}, **ERRORS})
def cur_export(analytics: Analytics, services: Services, _: Analyst, period: PeriodQuery,
               end: EndQuery = None, format: Literal["json", "csv"] = "json"):  # noqa: A002
    """The period's figures for the regional ЦУР (schema in docs/cur_export.md)."""
    try:
        chosen = _period(analytics, period, end)
        document = cur_export_document(analytics.frame(), period=period, end=chosen.end,
                                       department=services.department_label)
    except EmptyStore as exc:
        raise http_error(exc) from exc
    if format == "json":
        return document
    # spreadsheet-safe: a territory "=HYPERLINK(...)" is written as text, never run by Excel
    return Response(cur_csv(document), media_type="text/csv; charset=utf-8",
                    headers=_filename("cur", chosen, "csv"))


@router.get("/departments/rating", response_model=out.RatingOut, responses=ERRORS)
def rating(analytics: Analytics, services: Services, _: Analyst, period: PeriodQuery,
           end: EndQuery = None) -> out.RatingOut:
    """Departments ranked on timeliness, satisfaction, routing, backlog (components shown)."""
    try:
        chosen = _period(analytics, period, end)
        scores = department_rating_report(analytics.frame(), period=period, end=chosen.end,
                                          department=services.department_label)
    except EmptyStore as exc:
        raise http_error(exc) from exc
    return out.RatingOut(period=chosen.to_dict(), departments=scores)
