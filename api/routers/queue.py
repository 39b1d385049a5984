"""``/v1/queue``: the review queue, most urgent first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api import schemas
from api.convert import queue_item_out
from api.deps import Reader, Services
from mcu_nlp.records import Channel
from mcu_nlp.services.queue import list_queue

router = APIRouter(prefix="/v1", tags=["queue"])


@router.get("/queue", response_model=schemas.QueueOut)
def queue(
    services: Services,
    _: Reader,
    status: Literal["open", "resolved", "all"] = "open",
    department: Annotated[str | None, Query(max_length=500)] = None,
    territory: Annotated[str | None, Query(max_length=200)] = None,
    channel: Channel | None = None,
    priority: Literal["low", "normal", "high", "critical"] | None = None,
    min_urgency: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.QueueOut:
    """Appeals waiting for a person, ordered by urgency, then by waiting time."""
    page = list_queue(services.store, status=status,
                      department=department, territory=territory,
                      channel=None if channel is None else channel.value, priority=priority,
                      min_urgency=min_urgency, limit=limit, offset=offset)
    return schemas.QueueOut(total=page.total, items=[queue_item_out(i) for i in page.items])
