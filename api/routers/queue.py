"""``/v1/queue``: the review queue, most urgent first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_routing as routing_out
from api.convert import queue_item_out
from api.deps import Operator, Reader, Services
from api.routers.routing_quality import after_verdict, change_out
from mcu_nlp.records import Channel
from mcu_nlp.services.personal_data import list_queue_as
from mcu_nlp.services.routing_audit import AuditItemClosed, NotAnAuditItem, confirm_audit

router = APIRouter(prefix="/v1", tags=["queue"])
AppealId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Stored appeal id")]


@router.get("/queue", response_model=schemas.QueueOut)
def queue(
    services: Services,
    who: Reader,
    status: Literal["open", "resolved", "all"] = "open",
    department: Annotated[str | None, Query(max_length=500)] = None,
    territory: Annotated[str | None, Query(max_length=200)] = None,
    channel: Channel | None = None,
    priority: Literal["low", "normal", "high", "critical"] | None = None,
    min_urgency: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    audit: Annotated[bool | None, Query(description=(
        "true: only audit items (auto-routed appeals to check); false: only appeals waiting "
        "for routing"))] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.QueueOut:
    """Appeals waiting for a person, ordered by urgency, then by waiting time.

    Operators and admins see the raw texts, and every appeal on the page gets an ``appeal.read``
    audit row; analysts see the texts with personal data masked.
    """
    page = list_queue_as(services.store, actor=who.actor, role=who.role, status=status,
                         department=department, territory=territory,
                         channel=None if channel is None else channel.value, priority=priority,
                         min_urgency=min_urgency, audit=audit, limit=limit, offset=offset)
    return schemas.QueueOut(total=page.total, items=[queue_item_out(i) for i in page.items])


@router.post("/queue/{appeal_id}/confirm", response_model=routing_out.AuditConfirmOut,
             responses={404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut}})
async def confirm(appeal_id: AppealId, services: Services,
                  who: Operator) -> routing_out.AuditConfirmOut:
    """Confirm an audit item as routed (to correct it, POST /v1/appeals/{id}/correction).

    The verdict feeds the realized precision (GET /v1/routing/quality); thresholds tighten when
    the audit shows a label below its target.
    """
    try:
        verdicts = await run_in_threadpool(confirm_audit, services.store, appeal_id,
                                           author=who.actor,
                                           department_label=services.department_label)
    except NotAnAuditItem as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except AuditItemClosed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    changes = await run_in_threadpool(after_verdict, services)
    services.metrics.count("audit.confirmed")
    return routing_out.AuditConfirmOut(
        appeal_id=appeal_id,
        verdicts=[routing_out.VerdictOut(label=v.label, predicted=v.predicted,
                                         confidence=v.confidence, correct=v.correct)
                  for v in verdicts],
        threshold_changes=[change_out(c) for c in changes])
