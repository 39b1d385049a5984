"""Stored threshold overrides: the floors the precision audit puts under bundle thresholds.

One row per (model version, label). The router reads the rows of the active version through
:class:`mcu_nlp.services.models.ModelRegistry`; :mod:`mcu_nlp.services.routing_quality` writes
them when a label's audited precision falls below the target, and an admin resets them here.
Every change is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mcu_nlp.services.audit import record_audit
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import ThresholdOverrideRow, utcnow

__all__ = ["NoOverride", "OverrideView", "active_overrides", "list_overrides", "override_rows",
           "reset_override", "upsert_override"]

ENTITY = "routing_threshold"


class NoOverride(LookupError):
    """The label has no override in force for that model version."""


@dataclass(frozen=True, slots=True)
class OverrideView:
    """A label's override as admins see it (``threshold`` None: reset, not in force)."""

    model_version: str
    label: str
    threshold: float | None
    bundle_threshold: float | None
    evidence_since: datetime | None
    reason: str
    updated_by: str
    updated_at: datetime


def _view(row: ThresholdOverrideRow) -> OverrideView:
    return OverrideView(row.model_version, row.label, row.threshold, row.bundle_threshold,
                        row.evidence_since, row.reason, row.updated_by, row.updated_at)


def override_rows(session: Session, version: str) -> dict[str, ThresholdOverrideRow]:
    """The override rows of a model version by label (reset ones included)."""
    return {row.label: row for row in session.scalars(
        select(ThresholdOverrideRow).where(ThresholdOverrideRow.model_version == version))}


def active_overrides(session: Session, version: str) -> dict[str, float]:
    """Label → override threshold in force for a model version."""
    return {label: float(row.threshold) for label, row in override_rows(session, version).items()
            if row.threshold is not None}


def list_overrides(store: Store, version: str | None = None) -> list[OverrideView]:
    """Stored overrides (of one version, or all), newest change first."""
    query = select(ThresholdOverrideRow).order_by(ThresholdOverrideRow.updated_at.desc(),
                                                  ThresholdOverrideRow.id.desc())
    if version is not None:
        query = query.where(ThresholdOverrideRow.model_version == version)
    with store.session() as session:
        return [_view(row) for row in session.scalars(query)]


def upsert_override(session: Session, *, version: str, label: str, threshold: float,
                    bundle_threshold: float | None, reason: str, actor: str
                    ) -> ThresholdOverrideRow:
    """Put a raised threshold in force (not committed; the caller audits the change)."""
    row = override_rows(session, version).get(label)
    if row is None:
        row = ThresholdOverrideRow(model_version=version, label=label)
        session.add(row)
    row.threshold, row.bundle_threshold = float(threshold), bundle_threshold
    row.reason, row.updated_by, row.updated_at = reason[:2000], actor, utcnow()
    return row


def reset_override(store: Store, *, version: str, label: str, actor: str,
                   comment: str = "") -> OverrideView:
    """Take a label's override out of force (audited); the audit then counts only new verdicts.

    Raises:
        NoOverride: The label has no override in force for ``version``.
    """
    with store.session() as session:
        row = override_rows(session, version).get(label)
        if row is None or row.threshold is None:
            raise NoOverride(f"label {label!r} of model {version!r} has no threshold override")
        before = row.threshold
        now = utcnow()
        row.threshold, row.evidence_since = None, now
        row.reason = f"reset by {actor}" + (f": {comment}" if comment else "")
        row.updated_by, row.updated_at = actor, now
        record_audit(session, actor=actor, action="routing.threshold.reset", entity=ENTITY,
                     entity_id=f"{label}@{version}",
                     details={"label": label, "model_version": version, "before": before,
                              "after": row.bundle_threshold, "reason": row.reason})
        session.flush()
        return _view(row)
