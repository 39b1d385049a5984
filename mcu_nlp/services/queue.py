"""The review queue: appeals a person must route, most urgent first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mcu_nlp.storage import Store
from mcu_nlp.storage import repositories as repo


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One appeal waiting for (or resolved by) a person."""

    appeal_id: int
    status: str
    urgency: float
    urgency_reasons: list[dict[str, Any]]
    priority: str | None
    reason: str
    suggested_department: str | None
    enqueued_at: datetime
    text: str
    channel: str
    territory: str | None
    created_at: datetime
    audit: bool = False  # an auto-routed appeal drawn for the precision audit
    outcome: str | None = None  # confirmed | corrected, once an audit item is checked


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of the queue and the number of matching items."""

    total: int
    items: list[QueueItem]


def list_queue(store: Store, *, status: str | None = "open", department: str | None = None,
               territory: str | None = None, channel: str | None = None,
               priority: str | None = None, min_urgency: float | None = None,
               audit: bool | None = None, limit: int = 50, offset: int = 0) -> QueuePage:
    """The review queue filtered and ordered by urgency (then by waiting time).

    ``status`` is ``open``, ``resolved``, or ``all`` / ``None`` for both; ``audit`` keeps only
    audit items (``True``) or only appeals waiting for routing (``False``).
    """
    query = repo.queue_query(status=None if status == "all" else status,
                             department=department, territory=territory,
                             channel=channel, priority=priority, min_urgency=min_urgency,
                             audit=audit)
    with store.session() as session:
        total = repo.count(session, query)
        rows = session.execute(query.limit(limit).offset(offset)).all()
        items = [QueueItem(appeal.id, item.status, item.urgency, list(appeal.urgency_reasons),
                           item.priority, item.reason, item.suggested_department,
                           item.enqueued_at, appeal.text, appeal.channel, appeal.territory,
                           appeal.created_at, item.audit, item.outcome)
                 for item, appeal in rows]
    return QueuePage(total, items)
