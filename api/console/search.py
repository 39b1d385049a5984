"""Console pages: search over appeals (``/console/search``) and one appeal (``/appeals/{id}``).

The search form is a plain GET form (the query and filters live in the URL, so a search can be
bookmarked); the query language is described on the page and in :mod:`mcu_nlp.services.search`.
Operators and admins read raw texts and every page of results and every opened appeal writes
``appeal.read`` audit rows; analysts read texts with personal data masked, and their openings are
audited too (``masked: true``).

Hostile input: the query is limited to :data:`~mcu_nlp.services.search.MAX_QUERY_LENGTH`
characters (a longer one is answered 400 with the form), filters are bounded strings, dates
that do not parse are reported and ignored, pages stop at a fixed depth.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.console.render import page
from api.console.security import ReaderSession
from api.deps import Services
from mcu_nlp.services.appeals import AppealNotFound
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.personal_data import READ_ACTION, read_appeal_as, sees_raw
from mcu_nlp.services.search import (
    MAX_OFFSET,
    MAX_QUERY_LENGTH,
    ORDERS,
    STATUSES,
    QueryTooLong,
    SearchFilters,
    appeal_history,
    filter_options,
    search_appeals_as,
)
from mcu_nlp.services.users import ConsoleSession

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 20
MAX_PAGE = MAX_OFFSET // PAGE_SIZE
MAX_ID = 2**31 - 1
CHANNEL_NAMES = {"59-fz": "59-ФЗ", "pos": "ПОС «Решаем вместе»", "im": "Инцидент Менеджмент",
                 "gospabliki": "Госпаблики", "portal": "Портал", "other": "Другое"}
DECISION_NAMES = {"auto": "автоматически", "review": "на проверку", "manual": "вручную"}
REVIEW_NAMES = {"open": "в очереди", "resolved": "решено"}
LABEL_TITLES = {"department": "Получатель", "category": "Тематика", "reason": "Причина"}

Text = Annotated[str, Query(max_length=500)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain(value: str) -> str:
    """A filter value without control characters (a NUL is no text the store can compare)."""
    return _CONTROL.sub("", value).strip()


def _date(value: str, name: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"Дата «{name}» не распознана: {value[:20]!r}; нужен формат ГГГГ-ММ-ДД.")
        return None


def _audit_masked_open(services: Any, appeal_id: int, session: ConsoleSession, via: str) -> None:
    with services.store.session() as db:
        record_audit(db, actor=session.user.actor, action=READ_ACTION, entity="appeal",
                     entity_id=appeal_id, details={"via": via, "fields": [], "masked": True})


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, services: Services, session: ReaderSession,
                      q: Annotated[str, Query(max_length=5000)] = "",
                      topic: Text = "", department: Text = "", territory: Text = "",
                      channel: Text = "", status: Text = "", date_from: Text = "",
                      date_to: Text = "", order: Text = "",
                      page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1
                      ) -> HTMLResponse:
    """The search form and a page of results."""
    errors: list[str] = []
    topic, department, territory, channel = (_plain(v) for v in (topic, department, territory,
                                                                 channel))
    filters = SearchFilters(topic=topic or None, department=department or None,
                            territory=territory or None, channel=channel or None,
                            status=status if status in STATUSES else None,
                            date_from=_date(date_from, "с", errors),
                            date_to=_date(date_to, "по", errors))
    order = order if order in ORDERS else ("relevance" if q.strip() else "newest")
    options = await run_in_threadpool(filter_options, services.store)
    form = {"q": q[:MAX_QUERY_LENGTH * 2], "topic": topic, "department": department,
            "territory": territory, "channel": channel, "status": filters.status or "",
            "date_from": date_from if filters.date_from else "",
            "date_to": date_to if filters.date_to else "", "order": order}
    searched = bool(q.strip()) or filters.active
    results, status_code = None, 200
    if searched:
        try:
            results = await run_in_threadpool(
                search_appeals_as, services.store, q, filters, actor=session.user.actor,
                role=session.user.role, via="GET /console/search",
                offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE, order=order)
        except QueryTooLong as exc:
            errors.append(f"Слишком длинный запрос: {exc}.")
            status_code = 400

    def page_url(number: int) -> str:
        params = {key: value for key, value in form.items() if value}
        params["page"] = str(number)
        return "/console/search?" + urlencode(params)

    pages = 0 if results is None else min(MAX_PAGE, -(-results.total // PAGE_SIZE))
    return page(request, "search.html", session, status_code=status_code, form=form,
                options=options, results=results, errors=errors, page_no=page_no, pages=pages,
                page_url=page_url, statuses=STATUSES, orders=ORDERS, channel_names=CHANNEL_NAMES,
                decision_names=DECISION_NAMES, review_names=REVIEW_NAMES,
                masked=not sees_raw(session.user.role), max_query=MAX_QUERY_LENGTH,
                searched=searched)


@router.get("/appeals/{appeal_id}", response_class=HTMLResponse)
async def appeal_page(request: Request, services: Services, session: ReaderSession,
                      appeal_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> HTMLResponse:
    """One appeal: its text, labels, predictions, routing and history (the opening is audited)."""
    via = "GET /console/appeals/{id}"
    raw = sees_raw(session.user.role)
    try:
        view = await run_in_threadpool(read_appeal_as, services.store, appeal_id,
                                       actor=session.user.actor, role=session.user.role, via=via)
    except AppealNotFound:
        return page(request, "error.html", session, status_code=404,
                    title="Обращение не найдено", message=f"Нет обращения №{appeal_id}.")
    if not raw:
        await run_in_threadpool(_audit_masked_open, services, appeal_id, session, via)
    history, reads = await run_in_threadpool(appeal_history, services.store, appeal_id,
                                             masked=not raw)
    labels = sorted({*view.source_labels, *view.corrected_labels,
                     *(p["label"] for p in view.predictions)})
    predicted = {p["label"]: p for p in view.predictions}
    return page(request, "search_appeal.html", session, view=view, labels=labels,
                predicted=predicted, history=history, reads=reads, masked=not raw,
                channel_names=CHANNEL_NAMES, decision_names=DECISION_NAMES,
                review_names=REVIEW_NAMES, label_titles=LABEL_TITLES,
                back=request.headers.get("referer", "") if _same_search(request) else "")


def _same_search(request: Request) -> bool:
    """Whether the page was opened from this console's search (for the «back» link)."""
    referer = request.headers.get("referer", "")
    return referer.startswith(f"{request.url.scheme}://{request.url.netloc}/console/search")
