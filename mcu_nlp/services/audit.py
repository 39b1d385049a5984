"""The audit log: who changed what. Written in the same transaction as the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mcu_nlp.storage import Store
from mcu_nlp.storage.limits import column_limit, fit_actor
from mcu_nlp.storage.models import AuditRow


def record_audit(session: Session, *, actor: str, action: str, entity: str,
                 entity_id: str | int | None = None, details: dict[str, Any] | None = None) -> None:
    """Add one audit entry to the caller's transaction.

    The actor is cut to fit its column (:func:`~mcu_nlp.storage.limits.fit_actor`) and so is the
    entity id: an audit entry never fails the change it records.
    """
    limit = column_limit("audit_log", "entity_id")
    session.add(AuditRow(actor=fit_actor(actor), action=action, entity=entity,
                         entity_id=None if entity_id is None else str(entity_id)[:limit],
                         details=dict(details or {})))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit entry as shown to admins."""

    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    details: dict[str, Any]


def list_audit(store: Store, *, entity: str | None = None, entity_id: str | None = None,
               limit: int = 100) -> list[AuditEntry]:
    """Newest audit entries, optionally for one entity."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditRow.entity == entity)
    if entity_id is not None:
        query = query.where(AuditRow.entity_id == entity_id)
    with store.session() as session:
        return [AuditEntry(r.at, r.actor, r.action, r.entity, r.entity_id, dict(r.details or {}))
                for r in session.scalars(query)]
