"""Quality alerts: auto-routing that broke its precision promise, in the ``alerts`` table.

Trend alerts (:mod:`mcu_nlp.services.alerts`) keep the kinds ``trend:*``; these use
``quality:routing_precision``, one row per tightening (the dedup key names the label, the model
version and the new threshold). ``GET /v1/alerts/quality`` lists them and an analyst acknowledges
them as trend alerts are acknowledged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mcu_nlp.services.alerts import acknowledge_row
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import AlertRow, utcnow

__all__ = ["KIND", "QualityAlert", "QualityAlertPage", "acknowledge_quality_alert",
           "list_quality_alerts", "raise_precision_alert"]

KIND = "quality:routing_precision"
_KEY_LIMIT = 300  # the column's length


@dataclass(frozen=True, slots=True)
class QualityAlert:
    """A stored quality alert."""

    id: int
    kind: str
    title: str
    status: str
    severity: float
    raised_at: datetime
    details: dict[str, Any]
    status_changed_by: str | None


@dataclass(frozen=True, slots=True)
class QualityAlertPage:
    """A page of quality alerts and how many match."""

    total: int
    items: list[QualityAlert]


def _share(value: float) -> str:
    return f"{100 * value:.1f}\u00a0%".replace(".", ",")


def _num(value: float) -> str:
    return f"{value:.3f}".replace(".", ",")


def _key(label: str, version: str, after: float) -> str:
    key = f"routing_precision:{label}@{version}:{after:.6f}"
    if len(key) <= _KEY_LIMIT:
        return key
    return f"routing_precision:{hashlib.sha1(key.encode()).hexdigest()}"


def raise_precision_alert(session: Session, *, label: str, version: str, before: float,
                          after: float, audited: int, correct: int, lower: float,
                          target: float, confidence: float, method: str) -> AlertRow:
    """Add (or refresh) the alert of one tightening to the caller's transaction."""
    key = _key(label, version, after)
    row = session.scalar(select(AlertRow).where(AlertRow.dedup_key == key))
    now = utcnow()
    if row is None:
        row = AlertRow(dedup_key=key, kind=KIND, status="new", occurrences=0, first_seen_at=now)
        session.add(row)
    row.title = (f"Точность автоматической маршрутизации «{label}» ниже цели: верно {correct} "
                 f"из {audited} проверенных, нижняя граница {_share(lower)} < {_share(target)}; "
                 f"порог поднят {_num(before)} → {_num(after)}")
    row.severity = round(target - lower, 6)
    row.payload = {"label": label, "model_version": version, "threshold_before": before,
                   "threshold_after": after, "method": method, "audited": audited,
                   "correct": correct, "lower_bound": lower, "target": target,
                   "confidence": confidence}
    row.last_seen_at = now
    row.occurrences = (row.occurrences or 0) + 1
    session.flush()
    return row


def _stored(row: AlertRow) -> QualityAlert:
    return QualityAlert(row.id, row.kind, row.title, row.status, float(row.severity),
                        row.first_seen_at, dict(row.payload or {}), row.status_changed_by)


def list_quality_alerts(store: Store, *, status: str | None = None, limit: int = 50,
                        offset: int = 0) -> QualityAlertPage:
    """Stored quality alerts, newest first."""
    query = select(AlertRow).where(AlertRow.kind.like("quality:%"))
    if status is not None:
        query = query.where(AlertRow.status == status)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(AlertRow.first_seen_at.desc(), AlertRow.id.desc())
                               .limit(limit).offset(offset))
        return QualityAlertPage(int(total), [_stored(row) for row in rows])


def acknowledge_quality_alert(store: Store, alert_id: int, *, actor: str,
                              comment: str = "") -> QualityAlert:
    """Mark a new quality alert acknowledged (audited); acknowledging twice changes nothing.

    Raises:
        AlertNotFound: No quality alert has that id.
        AlertTransitionError: The alert is resolved.
    """
    with store.session() as session:
        return _stored(acknowledge_row(session, alert_id, kind_prefix="quality:", actor=actor,
                                       comment=comment, name="quality alert"))
