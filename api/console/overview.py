"""Console page: the overview for analysts and the head of district (``/console/overview``).

One page for a period (a week, a month, a quarter or chosen days; by default the latest complete
week of the stored data — the data are historical, so "now" is the newest appeal) against the
period before it:

* counts by channel, topic and territory, and per day — the figures of the analytical note
  (:func:`mcu_nlp.reports.note.build_note`), drawn as SVG on the server (:mod:`api.console.charts`);
* open growth alerts with their explanations (:mod:`mcu_nlp.services.alerts`), acknowledged from
  the page (``POST /console/overview/alerts/{id}/ack``, CSRF token, audited as ``alert.ack``);
* the top root causes (the API's cached analysis, :mod:`api.analytics`; a job when missing — the
  page says «идёт расчёт» and fetches them when the job is done) and their roadmap;
* overdue and at-risk appeals by department and the department rating with its components;
* the share of auto-routing and its precision measured by the audit, per month
  (:mod:`mcu_nlp.services.routing_quality`);
* downloads of the analytical note (DOCX/HTML) and the ЦУР export (JSON/CSV), streamed by
  session-authenticated routes over the same services as ``/v1/reports/...``.

Speed: the figures of a period (note, rating, routing, the charts) are one analysis job of
:class:`api.analytics.AnalyticsData`, cached per store data version with the appeals frame; a
page for a known period reads the cache, the alerts and a few counts. A period seen for the first
time waits up to :data:`FIGURES_WAIT` seconds for its job, then renders «идёт расчёт» and
reloads itself once the job is done.

Personal data: analysts never see raw text here. Alert explanations are masked when stored;
root-cause cards (titles, places, descriptions, examples) are masked again before they are shown
or written into a roadmap; the note and the ЦУР export mask what they carry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from api.analytics import (
    MAX_DAYS,
    AnalyticsData,
    EmptyStore,
    NoAppeals,
    answer_of,
    get_analytics,
)
from api.analytics import Period as AnalysisPeriod
from api.console import charts
from api.console.render import page
from api.console.security import AnalystSession
from api.deps import AppServices, Services
from api.jobs import Job, QueueFull
from api.routers.reports import note_inputs
from mcu_nlp.reports.cur_export import cur_csv
from mcu_nlp.reports.note import AnalyticalNote, CountRow, build_note
from mcu_nlp.reports.periods import (
    Period,
    custom_period,
    month_period,
    previous_period,
    report_period,
)
from mcu_nlp.reports.writers import render_docx, render_html
from mcu_nlp.routing.precision import PrecisionPolicy
from mcu_nlp.services.alerts import (
    AlertNotFound,
    AlertTransitionError,
    StoredAlert,
    acknowledge_alert,
    list_alerts,
)
from mcu_nlp.services.reporting import cur_export_document
from mcu_nlp.services.routing_quality import routing_quality
from mcu_nlp.sla.config import load_sla_config
from mcu_nlp.storage.models import AlertRow, AuditVerdictRow, ThresholdOverrideRow

router = APIRouter(prefix="/console", include_in_schema=False)

KINDS: dict[str, str] = {"week": "Неделя", "month": "Месяц", "quarter": "Квартал",
                         "custom": "Свои даты"}
FIGURES_WAIT = 3.0  # seconds a page waits for its figures' job before «идёт расчёт»
DOWNLOAD_WAIT = 10.0  # seconds a download waits for its document before «идёт расчёт»
ROOT_CAUSES_WAIT = 0.0  # root causes never hold the page: cached, or a job and «идёт расчёт»
ROOT_CAUSES_SHOWN = 5
ROADMAP_CARDS = 10
CHART_ROWS = 12  # categories per bar chart; the rest are summed in «прочие»
TERRITORY_ROWS = 20  # a city's districts fit
WIDE, NARROW, SECTION = 1200, 640, 960  # chart widths: across the page, half of it, a section
ALERTS_SHOWN = 20
ROUTING_MONTHS = 12
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_POLL_SECONDS = 0.02
_MONTHS_RU = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
_ALERT_STATUS = {"new": "новое", "acknowledged": "принято", "resolved": "завершено"}
_CUTS_RU = {"topic_group": "группа тем", "topic": "тема", "department": "получатель",
            "territory": "территория", "channel": "канал", "total": "всего"}
_THRESHOLD_STATUS = {"ok": "точность подтверждена аудитом", "below_target": "ниже цели",
                     "insufficient": "мало проверок"}
_DAY = timedelta(days=1)

# -- periods ----------------------------------------------------------------------------------


class PeriodError(ValueError):
    """The chosen period cannot be shown (reversed, too long, a date that does not parse)."""


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - _DAY


def _quarter_end(day: date) -> date:
    return _month_end(date(day.year, 3 * ((day.month - 1) // 3) + 3, 1))


def _cut(first: date, end: date, last: date) -> date:
    """``end``, or the newest stored day ``last`` when the data end between ``first`` and it."""
    return last if first <= last < end else end


def latest_week_end(last: date) -> date:
    """The last Sunday on or before ``last`` (as ``reporting.latest_complete_week_end``)."""
    return last - timedelta(days=(last.weekday() + 1) % 7)


def choose_period(kind: str, start: date | None, end: date | None, last: date) -> Period:
    """The period a picker's choice means, given the newest stored day ``last``.

    * ``week``: the Monday–Sunday week holding ``end`` (default: the latest complete week);
    * ``month``/``quarter``: the calendar month or quarter holding ``end`` (default: the one
      holding the latest complete week's Sunday), cut at ``last`` — a month or quarter the data
      end in is compared with the same part of the one before;
    * ``custom``: ``start``..``end`` (default: the four weeks up to the latest complete week).

    Raises:
        PeriodError: Unknown kind, ``start`` after ``end``, or longer than ``MAX_DAYS`` days.
    """
    anchor = end or latest_week_end(last)
    if kind == "week":
        return report_period("week", anchor + timedelta(days=6 - anchor.weekday()))
    if kind == "month":
        chosen = month_period(_cut(anchor.replace(day=1), _month_end(anchor), last))
    elif kind == "quarter":
        first = date(anchor.year, 3 * ((anchor.month - 1) // 3) + 1, 1)
        chosen = report_period("quarter", _cut(first, _quarter_end(anchor), last))
    elif kind == "custom":
        try:
            chosen = custom_period(start or anchor - timedelta(days=27), anchor)
        except ValueError as exc:
            raise PeriodError("начало периода позже его конца") from exc
    else:
        raise PeriodError(f"неизвестный вид периода: {kind}")
    if chosen.days > MAX_DAYS:
        raise PeriodError(f"период длиннее {MAX_DAYS} дней — выберите короче")
    return chosen


def _query(period: Period) -> dict[str, str]:
    """The picker's query string of ``period`` (what the page's links carry)."""
    params = {"period": period.kind, "end": period.end.isoformat()}
    if period.kind == "custom":
        params["start"] = period.start.isoformat()
    return params


def _shifted(period: Period, last: date, forward: bool) -> Period:
    """The period of the same kind right after (``forward``) or before ``period``."""
    if period.kind == "custom":
        step = timedelta(days=period.days)
        start, end = (period.start + step, period.end + step) if forward else \
            (period.start - step, period.end - step)
        return custom_period(start, end)
    day = period.end + _DAY if forward else period.start - _DAY
    return choose_period(period.kind, None, day, last)


# -- analyses -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """What the page shows of a period, computed once per data version (charts included)."""

    note: AnalyticalNote
    charts: dict[str, Markup]
    routing: list[dict[str, Any]]
    routing_period: dict[str, Any]
    thresholds: list[dict[str, Any]]
    target: float
    weights: dict[str, float]
    computed_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class Outcome:
    """An analysis as a page gets it: a result, an error, or a job still at work."""

    result: Any = None
    error: BaseException | None = None
    job: Job | None = None
    stale: bool = False
    busy: int | None = None  # the job queue is full: retry after this many seconds

    @property
    def pending(self) -> bool:
        """Still being computed (nothing to show yet)."""
        return self.result is None and self.error is None and (self.job is not None
                                                              or self.busy is not None)


def _fresh(analytics: AnalyticsData, key: Hashable, version: tuple[int, ...] | None
           ) -> Outcome | None:
    """The outcome cached for ``key`` at exactly ``version`` (None: not there)."""
    entry = analytics.cached(key) if version is not None else None
    if entry is None or entry.version != version:
        return None
    return Outcome(result=entry.result, error=entry.error)


async def _outcome(analytics: AnalyticsData, kind: str, key: Hashable,
                   compute: Callable[[], Any], *, wait: float, params: dict[str, Any],
                   result_url: str | None = None,
                   version: tuple[int, ...] | None = None) -> Outcome:
    """The cached analysis of ``key``, or its job (waited for up to ``wait`` s on the loop).

    ``version``, the store's data version read once for the whole page, answers from the cache
    without reading it again (each read costs tens of ms on a large SQLite store).
    """
    fresh = _fresh(analytics, key, version)
    if fresh is not None:
        return fresh
    try:
        answer = await run_in_threadpool(analytics.request, kind, key, compute, params=params,
                                         result_url=result_url)
    except QueueFull as exc:
        return Outcome(busy=exc.retry_after)
    if answer.cached is None:
        job = answer.job
        assert job is not None
        deadline = time.monotonic() + wait
        while not job.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
        if not job.finished:
            return Outcome(job=job)
        answer = answer_of(job)
    assert answer.cached is not None
    return Outcome(result=answer.cached.result, error=answer.cached.error,
                   job=answer.job if answer.stale else None, stale=answer.stale)


def _routing_marks(services: AppServices) -> tuple:
    """What the routing figures read beside the appeals: audit verdicts, overrides, the model."""
    with services.store.session() as session:
        verdicts = session.execute(select(func.count(AuditVerdictRow.id),
                                          func.max(AuditVerdictRow.id))).one()
        overrides = session.execute(select(func.count(ThresholdOverrideRow.id),
                                           func.max(ThresholdOverrideRow.updated_at))).one()
    model = services.registry.holder.current
    return (*verdicts, *overrides, getattr(model, "version", None))


def _note_marks(services: AppServices) -> tuple:
    """The routing marks and the stored alerts (the note lists them)."""
    with services.store.session() as session:
        alerts = session.execute(select(func.count(AlertRow.id), func.max(AlertRow.id),
                                        func.max(AlertRow.last_seen_at))).one()
    return (*alerts, *_routing_marks(services))


def _month_label(month: str) -> str:
    year, number = month.split("-")
    return f"{_MONTHS_RU[int(number) - 1]} {year}"


def _bar_rows(rows: list[CountRow], limit: int = CHART_ROWS) -> list[charts.BarRow]:
    """Count rows as bars: the first ``limit`` and, when more, their rest summed as «прочие»."""
    shown = [charts.BarRow(r.name, r.current, r.previous) for r in rows[:limit]]
    rest = rows[limit:]
    if rest:
        shown.append(charts.BarRow(f"прочие ({len(rest)})", sum(r.current for r in rest),
                                   sum(r.previous for r in rest)))
    return shown


def _routing(services: AppServices, frame: Any, period: Period) -> tuple[
        list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], float]:
    """Per month: appeals, auto-routed share and audited precision; the period's share."""
    import pandas as pd

    policy = PrecisionPolicy.from_settings(services.settings)
    model = services.registry.holder.current
    label = services.department_label
    first_month = date(period.end.year, period.end.month, 1)
    for _ in range(ROUTING_MONTHS - 1):
        first_month = (first_month - _DAY).replace(day=1)
    quality = routing_quality(services.store, model, policy, department_label=label,
                              since=first_month, until=period.end, label=label,
                              audit_share=getattr(services.classifier.audit, "share", None))
    created = pd.to_datetime(frame["created_at"], errors="coerce")
    kept = created[(created >= pd.Timestamp(first_month))
                   & (created < pd.Timestamp(period.end + _DAY))]
    appeals = kept.dt.strftime("%Y-%m").value_counts().to_dict()
    by_month = {m.month: m for m in quality.months}
    months = []
    for month in sorted(set(appeals) | set(by_month)):
        m = by_month.get(month)
        total = int(appeals.get(month, 0))
        auto = m.auto_routed if m else 0
        months.append({
            "month": month, "caption": _month_label(month), "appeals": total,
            "auto_routed": auto, "share": auto / total if total else None,
            "audited": m.audit.audited if m else 0, "correct": m.audit.correct if m else 0,
            "estimate": m.audit.estimate if m and m.audit.audited else None,
            "interval": m.audit.interval if m else None,
            "later_corrected_share": m.later_corrected_share if m else None})
    in_period = routing_quality(services.store, model, policy, department_label=label,
                                since=period.start, until=period.end, label=label)
    received = int(((created >= pd.Timestamp(period.start))
                    & (created < pd.Timestamp(period.end + _DAY))).sum())
    audited = sum(m.audit.audited for m in in_period.months)
    correct = sum(m.audit.correct for m in in_period.months)
    auto = sum(m.auto_routed for m in in_period.months)
    summary = {"auto_routed": auto, "received": received,
               "share": auto / received if received else None, "audited": audited,
               "correct": correct, "precision": correct / audited if audited else None}
    thresholds = [{"label": s.label, "effective": s.effective_threshold, "status": s.status,
                   "status_name": _THRESHOLD_STATUS.get(s.status, s.status),
                   "override": s.override, "audited": s.evidence.audited,
                   "estimate": s.evidence.estimate if s.evidence.audited else None}
                  for s in quality.labels]
    return months, summary, thresholds, policy.target


def compute_figures(services: AppServices, analytics: AnalyticsData, period: Period) -> Figures:
    """The page's figures of ``period``: the note's counts and rating, routing, the charts."""
    frame = analytics.frame()
    config = load_sla_config()
    note = build_note(frame, period, config=config, top=None,
                      department=services.department_label)
    months, routing_period, thresholds, target = _routing(services, frame, period)
    days = [date.fromisoformat(d["date"]) for d in note.daily]
    previous = previous_period(period)
    daily = charts.line_chart(
        [f"{d:%d.%m}" for d in days],
        [charts.LineSeries(f"{period.start:%d.%m} – {period.end:%d.%m.%Y}",
                           [d["current"] for d in note.daily]),
         charts.LineSeries(f"{previous.start:%d.%m} – {previous.end:%d.%m.%Y}",
                           [d["previous"] for d in note.daily])],
        title="Сообщения по дням", chart_id="chart-daily", width=WIDE, height=280)
    sla_rows = sorted((r for r in note.rating if r.overdue_open or r.at_risk),
                      key=lambda r: (-(r.overdue_open + r.at_risk), r.department))
    sla = charts.bar_chart(
        [charts.BarRow(r.department, r.overdue_open, r.at_risk) for r in sla_rows[:CHART_ROWS]],
        title="Просроченные и под угрозой просрочки на конец периода",
        series=("Просрочено без ответа", "Под угрозой"), chart_id="chart-sla",
        empty="нет просроченных и под угрозой", width=SECTION)
    routing = charts.line_chart(
        [m["caption"] for m in months],
        [charts.LineSeries("Доля авторазметки", [m["share"] for m in months]),
         charts.LineSeries("Точность по аудиту", [m["estimate"] for m in months])],
        title="Авторазметка получателя по месяцам", chart_id="chart-routing", percent=True,
        y_max=1.0, target=target, target_label="цель точности", width=SECTION)
    built = {
        "daily": daily,
        "channel": charts.bar_chart(_bar_rows(note.by_channel), title="По каналам",
                                    chart_id="chart-channel", width=NARROW),
        "topic": charts.bar_chart(_bar_rows(note.top_topics), title="По темам",
                                  chart_id="chart-topic", width=WIDE),
        "territory": charts.bar_chart(_bar_rows(note.top_territories, TERRITORY_ROWS),
                                      title="По территориям", chart_id="chart-territory",
                                      width=NARROW),
        "sla": sla,
        "routing": routing,
    }
    return Figures(note=note, charts=built, routing=months, routing_period=routing_period,
                   thresholds=thresholds, target=target,
                   weights=dict(config.rating.weights))


async def _figures(services: AppServices, analytics: AnalyticsData, period: Period,
                   marks: tuple, wait: float, version: tuple[int, ...] | None = None
                   ) -> Outcome:
    return await _outcome(analytics, "console_overview", ("console_overview", period, marks),
                          lambda: compute_figures(services, analytics, period), wait=wait,
                          params={"period": period.kind, "start": period.start,
                                  "end": period.end},
                          result_url="/console/overview?" + urlencode(_query(period)),
                          version=version)


def _analysis_period(period: Period) -> AnalysisPeriod:
    """The root-cause period of ``period`` (the key ``/v1/root-causes`` caches it under)."""
    return AnalysisPeriod(period.start, period.end, None)


def _root_cause_key(period: Period) -> tuple:
    return ("root_causes", _analysis_period(period))


async def _root_causes(analytics: AnalyticsData, period: Period, wait: float,
                       version: tuple[int, ...] | None = None) -> Outcome:
    chosen = _analysis_period(period)
    url = f"/v1/root-causes?since={chosen.since}&until={chosen.until}"
    return await _outcome(analytics, "root_causes", _root_cause_key(period),
                          lambda: analytics.compute_root_causes(chosen), wait=wait,
                          params=chosen.as_dict(), result_url=url, version=version)


# -- masked views -------------------------------------------------------------------------------

_masked_cards: OrderedDict[int, tuple[Any, list[Any]]] = OrderedDict()
_masked_lock = threading.Lock()


def masked_cards(analysis: Any) -> list[Any]:
    """The analysis' cards with every free text masked again (kept per analysis, 8 at most).

    Titles and keywords come from the texts' words, places from addresses and texts: a name or
    a flat number among them is masked as in the analyst's view of an appeal.
    """
    with _masked_lock:
        kept = _masked_cards.get(id(analysis))
        if kept is not None and kept[0] is analysis:
            return kept[1]
    from mcu_nlp.text.masking import mask_many

    cards = list(analysis.cards)
    texts: list[str] = []
    for card in cards:
        texts += [card.title, *card.keywords, *(p for p, _ in card.top_places), *card.examples]
    masked = iter(mask_many(texts))
    out = []
    for card in cards:
        title = next(masked)
        keywords = [next(masked) for _ in card.keywords]
        places = [(next(masked), n) for _, n in card.top_places]
        examples = [next(masked) for _ in card.examples]
        out.append(dataclasses.replace(card, title=title, keywords=keywords, top_places=places,
                                       examples=examples))
    with _masked_lock:
        _masked_cards[id(analysis)] = (analysis, out)
        while len(_masked_cards) > 8:
            _masked_cards.popitem(last=False)
    return out


def _alert_view(alert: StoredAlert) -> dict[str, Any]:
    """An alert as the page shows it (its explanation was masked when stored)."""
    explanation = alert.explanation or {}
    lines = [line for line in str(explanation.get("summary") or "").splitlines() if line]
    drivers = [{"cut": _CUTS_RU.get(cut, cut),
                "values": [f"{d['value']} (+{max(0.0, d['observed'] - d['expected']):.0f})"
                           for d in found[:3]]}
               for cut, found in (explanation.get("drivers") or {}).items() if found]
    return {"id": alert.id, "title": alert.title, "status": alert.status,
            "status_name": _ALERT_STATUS.get(alert.status, alert.status),
            "first_day": alert.first_day, "last_day": alert.last_day,
            "observed": alert.observed, "expected": alert.expected, "excess": alert.excess,
            "summary": lines, "drivers": drivers,
            "examples": list(explanation.get("examples") or [])[:3],
            "changed_by": alert.status_changed_by}


def _alerts(services: AppServices, period: Period) -> tuple[list[dict[str, Any]], int]:
    """Open alerts of rises in the period (largest first) and how many are open at all."""
    found = list_alerts(services.store, status=("new", "acknowledged"), since=period.start,
                        until=period.end, limit=ALERTS_SHOWN)
    every = list_alerts(services.store, status=("new", "acknowledged"), limit=1)
    return [_alert_view(a) for a in found.items], every.total


# -- pages --------------------------------------------------------------------------------------

_spans: weakref.WeakKeyDictionary[AnalyticsData, tuple[tuple[int, ...], tuple[date, date]]] = \
    weakref.WeakKeyDictionary()


def _span_at(analytics: AnalyticsData, version: tuple[int, ...]) -> tuple[date, date] | None:
    """First and last stored day, read again when the appeals' count or newest id moved."""
    key = version[:2]
    kept = _spans.get(analytics)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        found = analytics.span()
    except EmptyStore:
        return None
    _spans[analytics] = (key, found)
    return found


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise PeriodError(f"дата «{value[:20]}» не распознана; формат ГГГГ-ММ-ДД") from exc


def _chosen(kind: str, start: str | None, end: str | None, last: date
            ) -> tuple[Period, str | None]:
    """The picker's period, or the default one with the reason the choice was refused."""
    try:
        return choose_period(kind, _parse_day(start), _parse_day(end), last), None
    except PeriodError as exc:
        return choose_period("week", None, None, last), str(exc)


@dataclass(slots=True)
class PageState:
    """What a page reads from the store before its analyses: cheap, indexed queries."""

    version: tuple[int, ...]
    span: tuple[date, date] | None
    period: Period | None = None
    period_error: str | None = None
    marks: tuple = ()
    alerts: list[dict[str, Any]] = field(default_factory=list)
    open_alerts: int = 0


def _state(services: AppServices, analytics: AnalyticsData, kind: str, start: str | None,
           end: str | None, *, alerts: bool = True) -> PageState:
    """The store's version, the data's days, the chosen period, its marks and open alerts."""
    version = analytics.data_version()
    state = PageState(version, _span_at(analytics, version))
    if state.span is None:
        return state
    state.period, state.period_error = _chosen(kind, start, end, state.span[1])
    state.marks = _routing_marks(services)
    if alerts:
        state.alerts, state.open_alerts = _alerts(services, state.period)
    return state


def _links(period: Period, first: date, last: date) -> dict[str, str]:
    """The page's own links: neighbouring periods, downloads, the root-cause fragment."""
    query = urlencode(_query(period))
    cur = period
    if period.kind not in ("week", "quarter"):  # the ЦУР takes weeks and quarters
        sunday = latest_week_end(period.end)
        cur = report_period("week", sunday if sunday >= period.start
                            else period.end + timedelta(days=6 - period.end.weekday()))
    cur_query = urlencode(_query(cur))
    links = {"self": f"/console/overview?{query}",
             "note_docx": f"/console/overview/note?{query}&format=docx",
             "note_html": f"/console/overview/note?{query}&format=html",
             "cur_json": f"/console/overview/cur-export?{cur_query}&format=json",
             "cur_csv": f"/console/overview/cur-export?{cur_query}&format=csv",
             "cur_title": cur.title(),
             "roadmap_docx": f"/console/overview/roadmap?{query}&format=docx",
             "roadmap_html": f"/console/overview/roadmap?{query}&format=html",
             "root_causes": f"/console/overview/root-causes?{query}"}
    for name, forward in (("previous", False), ("next", True)):
        try:
            other = _shifted(period, last, forward)
        except (PeriodError, ValueError):
            continue
        if other.start <= last and other.end >= first:
            links[name] = "/console/overview?" + urlencode(_query(other))
    return links


def _root_cause_context(outcome: Outcome) -> dict[str, Any]:
    if outcome.pending:
        return {"rc_state": "busy" if outcome.busy is not None else "pending",
                "rc_job": outcome.job.id if outcome.job is not None else None,
                "rc_retry": outcome.busy}
    if outcome.error is not None:
        message = ("в периоде слишком мало обращений для поиска первопричин"
                   if isinstance(outcome.error, NoAppeals)
                   else "расчёт первопричин не удался; причина — в журнале сервера")
        return {"rc_state": "error", "rc_message": message}
    analysis = outcome.result
    return {"rc_state": "ready", "rc_cards": masked_cards(analysis)[:ROOT_CAUSES_SHOWN],
            "rc_total": len(analysis.cards), "rc_appeals": analysis.n_appeals,
            "rc_stale": outcome.stale, "rc_job": outcome.job.id if outcome.job else None}


KindParam = Annotated[str, Query(max_length=10)]
DayParam = Annotated[str | None, Query(max_length=20)]


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, session: AnalystSession, services: Services,
                        period: KindParam = "week", start: DayParam = None,
                        end: DayParam = None) -> HTMLResponse:
    """The overview of a period against the one before it (see the module doc)."""
    analytics = await get_analytics(request)
    state = await run_in_threadpool(_state, services, analytics, period, start, end)
    if state.span is None or state.period is None:
        return page(request, "overview.html", session, empty_store=True, kinds=KINDS)
    chosen, (first, last) = state.period, state.span
    figures = await _figures(services, analytics, chosen, state.marks, FIGURES_WAIT,
                             state.version)
    causes = await _root_causes(analytics, chosen, ROOT_CAUSES_WAIT, state.version)
    root_causes = await run_in_threadpool(_root_cause_context, causes)  # masking takes a while
    context: dict[str, Any] = {
        "kinds": KINDS, "period": chosen, "previous": previous_period(chosen),
        "period_error": state.period_error, "first_day": first, "last_day": last,
        "links": _links(chosen, first, last),
        "outside": chosen.end < first or chosen.start > last,
        "alerts": state.alerts, "open_alerts": state.open_alerts,
        "figures": figures.result if isinstance(figures.result, Figures) else None,
        "figures_job": figures.job.id if figures.job is not None else None,
        "figures_stale": figures.stale, "figures_busy": figures.busy,
        "figures_failed": figures.error is not None,
        "start_value": chosen.start.isoformat(), "end_value": chosen.end.isoformat(),
        **root_causes,
    }
    return page(request, "overview.html", session, **context)


@router.get("/overview/root-causes", response_class=HTMLResponse)
async def root_causes_fragment(request: Request, session: AnalystSession, services: Services,
                               period: KindParam = "week", start: DayParam = None,
                               end: DayParam = None) -> HTMLResponse:
    """The root-cause section alone (the page fetches it when its job is done)."""
    analytics = await get_analytics(request)
    state = await run_in_threadpool(_state, services, analytics, period, start, end,
                                    alerts=False)
    if state.span is None or state.period is None:
        raise HTTPException(409, "в хранилище нет обращений")
    causes = await _root_causes(analytics, state.period, ROOT_CAUSES_WAIT, state.version)
    context = await run_in_threadpool(_root_cause_context, causes)
    return page(request, "overview_root_causes.html", session, period=state.period,
                links=_links(state.period, *state.span), **context)


class JobStateOut(BaseModel):
    """Whether a background job of the page is done."""

    id: str
    status: str
    finished: bool


@router.get("/overview/jobs/{job_id}", response_model=JobStateOut)
async def job_state(job_id: Annotated[str, PathParam(max_length=64)], request: Request,
                    session: AnalystSession) -> JobStateOut:
    """The status of an analysis job the page waits for (404 once it is forgotten)."""
    job = (await get_analytics(request)).runner.get(job_id)
    if job is None:
        raise HTTPException(404, "расчёт не найден — обновите страницу")
    return JobStateOut(id=job.id, status=job.status, finished=job.finished)


def _back(target: object) -> str:
    """Only an overview page of this console (never another host)."""
    if isinstance(target, str) and len(target) < 500:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path == "/console/overview" \
                and "\\" not in target:
            return target
    return "/console/overview"


@router.post("/overview/alerts/{alert_id}/ack", response_model=None)
async def acknowledge(alert_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
                      request: Request, session: AnalystSession,
                      services: Services) -> Response:
    """Acknowledge a new growth alert (audited as ``alert.ack`` by the signed-in person).

    Scripts post JSON (``X-CSRF-Token``; ``{"comment": ...}`` optional) and get the alert's new
    status; the page's plain form (``csrf_token`` field) is sent back to the overview.
    """
    form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data"))
    fields: Any = await request.form() if form else None
    if form:
        comment = fields.get("comment")
    else:
        try:
            body = await request.json() if await request.body() else {}
        except ValueError as exc:
            raise HTTPException(422, "тело запроса — не JSON") from exc
        comment = body.get("comment") if isinstance(body, dict) else None
    text = comment[:1000] if isinstance(comment, str) else ""
    try:
        alert = await run_in_threadpool(acknowledge_alert, services.store, alert_id,
                                        actor=session.user.actor, comment=text)
    except AlertNotFound as exc:
        raise HTTPException(404, "такого оповещения нет") from exc
    except AlertTransitionError as exc:
        raise HTTPException(409, "оповещение уже завершено — принять его нельзя") from exc
    if form:
        return RedirectResponse(_back(fields.get("back")), status_code=303)
    return JSONResponse({"id": alert.id, "status": alert.status,
                         "status_name": _ALERT_STATUS.get(alert.status, alert.status),
                         "changed_by": alert.status_changed_by})


# -- downloads ----------------------------------------------------------------------------------


def _attachment(stem: str, period: Period, suffix: str) -> dict[str, str]:
    name = f"{stem}_{period.kind}_{period.start}_{period.end}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


async def _download_state(request: Request, services: AppServices, kind: str,
                          start: str | None, end: str | None
                          ) -> tuple[AnalyticsData, PageState, Period]:
    analytics = await get_analytics(request)
    state = await run_in_threadpool(_state, services, analytics, kind, start, end,
                                    alerts=False)
    if state.span is None or state.period is None:
        raise HTTPException(409, "в хранилище нет обращений")
    if state.period_error is not None:
        raise HTTPException(422, state.period_error)
    return analytics, state, state.period


def _pending_page(request: Request, session: Any, outcome: Outcome, what: str,
                  back: str) -> HTMLResponse:
    """«идёт расчёт» for a download whose job is still at work (202), with a link to retry."""
    busy = outcome.busy is not None
    return page(request, "overview_pending.html", session, status_code=429 if busy else 202,
                what=what, job=outcome.job.id if outcome.job else None, retry=outcome.busy,
                back=back, again=str(request.url.path) + "?" + request.url.query)


def compute_note(services: AppServices, analytics: AnalyticsData, period: Period,
                 fmt: str) -> bytes:
    """The analytical note of ``period`` as DOCX or HTML bytes (what ``/v1/reports/note`` sends).

    The same figures as :func:`mcu_nlp.services.reporting.build_report` — stored alerts, the
    routing section, masked text — over any period kind of the console.
    """
    from mcu_nlp.reports.layout import note_blocks

    alerts, routing = note_inputs(services, period.start, period.end)
    note = build_note(analytics.frame(), period, config=load_sla_config(), alerts=alerts,
                      department=services.department_label, routing_quality=routing)
    blocks = note_blocks(note)
    return render_html(blocks).encode("utf-8") if fmt == "html" else render_docx(blocks)


@router.get("/overview/note", response_model=None)
async def note_download(request: Request, session: AnalystSession, services: Services,
                        period: KindParam = "week", start: DayParam = None,
                        end: DayParam = None,
                        format: Literal["docx", "html"] = "docx") -> Response:  # noqa: A002
    """The analytical note of the period as DOCX or HTML (personal data masked)."""
    analytics, state, chosen = await _download_state(request, services, period, start, end)
    marks = await run_in_threadpool(_note_marks, services)
    # a week's or a quarter's note is the one /v1/reports/note caches: the same key
    key = ("note", chosen.kind, chosen.end, format, marks) if chosen.kind in ("week", "quarter") \
        else ("console_note", chosen, format, marks)
    outcome = await _outcome(analytics, "note", key,
                             lambda: compute_note(services, analytics, chosen, format),
                             wait=DOWNLOAD_WAIT, version=state.version,
                             params={"period": chosen.kind, "start": chosen.start,
                                     "end": chosen.end, "format": format})
    back = "/console/overview?" + urlencode(_query(chosen))
    if outcome.pending:
        return _pending_page(request, session, outcome, "аналитической справки", back)
    if outcome.error is not None:
        raise HTTPException(500, "справка не сформирована; причина — в журнале сервера")
    if format == "html":
        return Response(outcome.result, media_type="text/html; charset=utf-8",
                        headers=_attachment("note", chosen, "html"))
    return Response(outcome.result, media_type=DOCX, headers=_attachment("note", chosen, "docx"))


@router.get("/overview/cur-export", response_model=None)
async def cur_download(request: Request, session: AnalystSession, services: Services,
                       period: Annotated[Literal["week", "quarter"], Query()] = "week",
                       end: DayParam = None,
                       format: Literal["json", "csv"] = "json") -> Response:  # noqa: A002
    """The ЦУР export of a week or a quarter (schema in docs/cur_export.md)."""
    analytics, state, chosen = await _download_state(request, services, period, None, end)

    def document() -> dict[str, Any]:
        return cur_export_document(analytics.frame(), period=period, end=chosen.end,
                                   department=services.department_label)

    outcome = await _outcome(analytics, "cur_export", ("cur_export", period, chosen.end),
                             document, wait=DOWNLOAD_WAIT, version=state.version,
                             params={"period": period, "end": chosen.end})
    back = "/console/overview?" + urlencode(_query(chosen))
    if outcome.pending:
        return _pending_page(request, session, outcome, "выгрузки в ЦУР", back)
    if outcome.error is not None:
        raise HTTPException(500, "выгрузка не сформирована; причина — в журнале сервера")
    if format == "csv":  # spreadsheet-safe, as /v1/reports/cur-export
        return Response(cur_csv(outcome.result), media_type="text/csv; charset=utf-8",
                        headers=_attachment("cur", chosen, "csv"))
    return JSONResponse(outcome.result, headers=_attachment("cur", chosen, "json"))


def _roadmap(cards: list[Any], start: date, fmt: str) -> bytes:
    import tempfile
    from pathlib import Path

    from mcu_nlp.root_causes.roadmap import render_html as roadmap_html
    from mcu_nlp.root_causes.roadmap import write_docx

    if fmt == "html":
        return roadmap_html(cards, start=start).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="mcu_roadmap_") as folder:
        return write_docx(cards, Path(folder) / "roadmap.docx", start=start).read_bytes()


@router.get("/overview/roadmap", response_model=None)
async def roadmap_download(request: Request, session: AnalystSession, services: Services,
                           period: KindParam = "week", start: DayParam = None,
                           end: DayParam = None,
                           format: Literal["docx", "html"] = "docx") -> Response:  # noqa: A002
    """The roadmap of the period's top root causes (DOCX or HTML; masked cards).

    Made from the root-cause analysis the page shows; while it is computed the answer is the
    «идёт расчёт» page (202).
    """
    analytics, state, chosen = await _download_state(request, services, period, start, end)
    causes = await _root_causes(analytics, chosen, 0.0, state.version)
    back = "/console/overview?" + urlencode(_query(chosen))
    if causes.pending:
        return _pending_page(request, session, causes, "первопричин", back)
    if causes.error is not None:
        raise HTTPException(404 if isinstance(causes.error, NoAppeals) else 500,
                            "первопричины за период не найдены")
    cards = (await run_in_threadpool(masked_cards, causes.result))[:ROADMAP_CARDS]
    data = await run_in_threadpool(_roadmap, cards, chosen.end + _DAY, format)
    media = "text/html; charset=utf-8" if format == "html" else DOCX
    return Response(data, media_type=media, headers=_attachment("roadmap", chosen, format))
