"""Console page: the operator's review queue (``/console/queue``).

One appeal at a time, the items claimed for the operator beside it, the suggested department and
topic pre-selected, the words that drove them highlighted; keys for speed (``Enter`` accepts,
``1``–``9`` pick an alternative, ``/`` searches every class, ``Backspace`` undoes, ``s`` skips).
The page's script (``static/queue.js``) talks to the JSON routes below with the session cookie and
the CSRF header; every rule (claims, decisions, undo, bulk) lives in
:mod:`mcu_nlp.services.console_queue`.

Limits on every input: filters and labels are bounded strings, a value must be a class of its
label (the active model's classes and the curated list) or the request is refused with 422, ids
are positive 32-bit integers, lists are short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.console.render import page
from api.console.security import OperatorSession
from api.deps import AppServices, Services
from mcu_nlp.records import Channel
from mcu_nlp.services import console_queue as cq
from mcu_nlp.services.taxonomy import Taxonomy, TaxonomyError, active_taxonomy

router = APIRouter(prefix="/console", include_in_schema=False)

MAX_ID = 2**31 - 1
AppealId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
CHANNEL_NAMES = {"59-fz": "59-ФЗ", "pos": "ПОС «Решаем вместе»", "im": "Инцидент Менеджмент",
                 "gospabliki": "Госпаблики", "portal": "Портал", "other": "Другое"}
LABEL_TITLES = {"department": "Получатель", "category": "Тематика", "reason": "Причина"}
RISK_NAMES = {"overdue": "просрочено", "at_risk": "срок под угрозой", "ok": "в срок",
              "unknown": "срок неизвестен"}


class FilterIn(BaseModel):
    """The queue filter the page sends (every field bounded)."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = None
    topic: Annotated[str | None, Field(max_length=500)] = None
    department: Annotated[str | None, Field(max_length=500)] = None
    territory: Annotated[str | None, Field(max_length=200)] = None
    audit: bool | None = None
    sort: Literal["urgency", "confidence"] = "urgency"

    def to_filter(self) -> cq.QueueFilter:
        """The service's filter (empty strings mean «any»)."""
        return cq.QueueFilter(channel=None if self.channel is None else self.channel.value,
                              topic=self.topic or None, department=self.department or None,
                              territory=self.territory or None, audit=self.audit,
                              sort=self.sort)


class ClaimIn(FilterIn):
    """Claim the items of the screen."""

    size: Annotated[int, Field(ge=1, le=cq.MAX_SCREEN)] = cq.SCREEN_SIZE
    exclude: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]],
                       Field(max_length=cq.MAX_EXCLUDE)] = []
    keep: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


class DecideIn(BaseModel):
    """The operator's labels for one appeal."""

    model_config = ConfigDict(extra="forbid")

    labels: Annotated[dict[Annotated[str, Field(max_length=64)],
                           Annotated[str, Field(min_length=1, max_length=500)]],
                      Field(min_length=1, max_length=2)]


class UndoIn(BaseModel):
    """Which decision to undo (the last one when absent)."""

    model_config = ConfigDict(extra="forbid")

    decision_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


class BulkIn(FilterIn):
    """One correction for every open item under the filter; ``expected`` as shown."""

    label: Annotated[str, Field(min_length=1, max_length=64)]
    value: Annotated[str, Field(min_length=1, max_length=500)]
    expected: Annotated[int, Field(ge=1, le=cq.MAX_BULK)]


# ----------------------------------------------------------------------------- helpers


def _labels(services: AppServices) -> tuple[str, str]:
    """``(topic label, department label)`` of the active model."""
    department = services.department_label
    model = services.registry.holder.current
    names = [str(n) for n in (model.bundle.labels if model else [])]
    if cq.DEFAULT_TOPIC_LABEL in names or not names:
        return cq.DEFAULT_TOPIC_LABEL, department
    return next((n for n in names if n != department), cq.DEFAULT_TOPIC_LABEL), department


def _taxonomy(services: AppServices) -> Taxonomy:
    model = services.registry.holder.current
    try:
        return active_taxonomy(model.bundle if model else None, list(_labels(services)),
                               curated_path=services.settings.taxonomy_file,
                               model_version=model.version if model else None)
    except TaxonomyError as exc:
        raise HTTPException(503, str(exc)) from exc


def _classes(services: AppServices) -> dict[str, list[str]]:
    taxonomy = _taxonomy(services)
    return {label: sorted(taxonomy.values(label)) for label in _labels(services)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _entry(entry: cq.QueueEntry) -> dict[str, Any]:
    return {"appeal_id": entry.appeal_id, "channel": entry.channel,
            "channel_name": CHANNEL_NAMES.get(entry.channel, entry.channel),
            "territory": entry.territory, "created_at": _iso(entry.created_at),
            "urgency": entry.urgency, "priority": entry.priority, "audit": entry.audit,
            "suggested": entry.suggested, "confidence": entry.confidence,
            "deadline": _iso(entry.deadline), "risk": entry.risk,
            "risk_name": RISK_NAMES.get(entry.risk, entry.risk)}


def _decision(decision: cq.Decision) -> dict[str, Any]:
    return {"decision_id": decision.id, "appeal_id": decision.appeal_id, "kind": decision.kind,
            "labels": decision.labels, "before": decision.before, "at": _iso(decision.at),
            "audit": decision.audit}


def _conflict(exc: Exception) -> JSONResponse:
    if isinstance(exc, cq.StaleBulk):
        return JSONResponse({"detail": str(exc), "found": exc.found}, status_code=409)
    if isinstance(exc, cq.QueueConflict):
        return JSONResponse({"detail": str(exc)}, status_code=409)
    if isinstance(exc, cq.ItemNotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)
    return JSONResponse({"detail": str(exc)}, status_code=422)


QUEUE_ERRORS = (cq.QueueConflict, cq.ItemNotFound, cq.InvalidDecision)


def _after_verdict(services: AppServices) -> None:
    # An audit item's decision is a verdict: thresholds may tighten (as /v1 does).
    from api.routers.routing_quality import after_verdict

    after_verdict(services)


# ----------------------------------------------------------------------------- the page


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(
    request: Request, session: OperatorSession, services: Services,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    topic: Annotated[str | None, Query(max_length=500)] = None,
    department: Annotated[str | None, Query(max_length=500)] = None,
    territory: Annotated[str | None, Query(max_length=200)] = None,
    audit: Annotated[str | None, Query(max_length=8)] = None,
    sort: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """The queue page; the filter in the address pre-selects the form (unknown values: «все»)."""
    topic_label, department_label = _labels(services)
    classes = await run_in_threadpool(_classes, services)
    places = await run_in_threadpool(cq.territories, services.store)
    chosen = {"channel": channel if channel in CHANNEL_NAMES else "",
              "topic": topic if topic in classes[topic_label] else "",
              "department": department if department in classes[department_label] else "",
              "territory": territory if territory in places else "",
              "audit": audit if audit in ("1", "0") else "",
              "sort": sort if sort in ("urgency", "confidence") else "urgency"}
    config = {"topic_label": topic_label, "department_label": department_label,
              "titles": {topic_label: LABEL_TITLES.get(topic_label, topic_label),
                         department_label: LABEL_TITLES.get(department_label, department_label)},
              "label_order": [department_label, topic_label], "size": cq.SCREEN_SIZE,
              "claim_seconds": int(cq.CLAIM_TTL.total_seconds()),
              "channels": CHANNEL_NAMES, "risks": RISK_NAMES, "recent": cq.RECENT_LIMIT}
    return page(request, "queue.html", session, config=config, chosen=chosen,
                channels=list(CHANNEL_NAMES.items()), topics=classes[topic_label],
                departments=classes[department_label], territories=places,
                topic_title=config["titles"][topic_label],
                department_title=config["titles"][department_label])


# ----------------------------------------------------------------------------- JSON routes


@router.get("/queue/classes")
async def queue_classes(session: OperatorSession, services: Services) -> dict[str, Any]:
    """Every class of the decided labels (for the search box)."""
    return {"classes": await run_in_threadpool(_classes, services)}


@router.post("/queue/claim")
def queue_claim(body: ClaimIn, session: OperatorSession, services: Services) -> dict[str, Any]:
    """Claim (renew) the operator's screen under the filter; the items, most urgent first."""
    topic_label, department_label = _labels(services)
    result = cq.claim_items(services.store, actor=session.user.actor, flt=body.to_filter(),
                            size=body.size, exclude=body.exclude, keep=body.keep,
                            topic_label=topic_label, department_label=department_label)
    return {"items": [_entry(e) for e in result.items], "matching": result.matching,
            "held_by_others": result.held_by_others,
            "claim_seconds": int(cq.CLAIM_TTL.total_seconds())}


@router.post("/queue/item/{appeal_id}/open", response_model=None)
def queue_open(appeal_id: AppealId, session: OperatorSession,
               services: Services) -> dict[str, Any] | JSONResponse:
    """One claimed appeal with its suggestions and history (an audited read)."""
    topic_label, department_label = _labels(services)
    try:
        item = cq.open_item(services.store, appeal_id, actor=session.user.actor,
                            topic_label=topic_label, department_label=department_label)
    except QUEUE_ERRORS as exc:
        return _conflict(exc)
    item["channel_name"] = CHANNEL_NAMES.get(item["channel"], item["channel"])
    item["risk_name"] = RISK_NAMES.get(item["risk"], item["risk"])
    return item


@router.post("/queue/item/{appeal_id}/decide", response_model=None)
def queue_decide(appeal_id: AppealId, body: DecideIn, session: OperatorSession,
                 services: Services) -> dict[str, Any] | JSONResponse:
    """Store the operator's labels for one appeal (a correction, or an audit confirmation)."""
    topic_label, department_label = _labels(services)
    try:
        decision = cq.decide(services.store, appeal_id, body.labels, actor=session.user.actor,
                             taxonomy=_taxonomy(services), topic_label=topic_label,
                             department_label=department_label)
    except QUEUE_ERRORS as exc:
        return _conflict(exc)
    services.metrics.count("console.queue.decided")
    if decision.audit:
        _after_verdict(services)
    return {"decision": _decision(decision)}


@router.post("/queue/item/{appeal_id}/skip")
def queue_skip(appeal_id: AppealId, session: OperatorSession,
               services: Services) -> dict[str, Any]:
    """Give the item back to the queue (the page does not claim it again)."""
    released = cq.release(services.store, actor=session.user.actor, appeal_ids=[appeal_id])
    return {"released": released}


@router.get("/queue/recent")
def queue_recent(session: OperatorSession, services: Services) -> dict[str, Any]:
    """The operator's last decisions that can still be undone."""
    return {"decisions": [_decision(d) for d in
                          cq.recent_decisions(services.store, actor=session.user.actor)]}


@router.post("/queue/undo", response_model=None)
def queue_undo(body: UndoIn, session: OperatorSession,
               services: Services) -> dict[str, Any] | JSONResponse:
    """Undo one recent decision: labels restored, the item reopened for this operator."""
    try:
        decision = cq.undo(services.store, actor=session.user.actor,
                           decision_id=body.decision_id)
    except QUEUE_ERRORS as exc:
        return _conflict(exc)
    if decision.audit:
        _after_verdict(services)
    return {"undone": _decision(decision)}


@router.post("/queue/bulk/count")
def queue_bulk_count(body: FilterIn, session: OperatorSession,
                     services: Services) -> dict[str, Any]:
    """How many open items under the filter a bulk correction would change now."""
    topic_label, _ = _labels(services)
    return {"count": cq.bulk_count(services.store, actor=session.user.actor,
                                   flt=body.to_filter(), topic_label=topic_label)}


@router.post("/queue/bulk", response_model=None)
def queue_bulk(body: BulkIn, session: OperatorSession,
               services: Services) -> dict[str, Any] | JSONResponse:
    """One correction for exactly ``expected`` open items under the filter (else 409)."""
    topic_label, department_label = _labels(services)
    try:
        result = cq.bulk_correct(services.store, actor=session.user.actor,
                                 flt=body.to_filter(), label=body.label, value=body.value,
                                 expected=body.expected, taxonomy=_taxonomy(services),
                                 topic_label=topic_label, department_label=department_label)
    except QUEUE_ERRORS as exc:
        return _conflict(exc)
    services.metrics.count("console.queue.bulk_corrected", result.changed)
    _after_verdict(services)
    return {"changed": result.changed, "appeal_ids": result.appeal_ids}
