"""Audit items: auto-routed appeals a person checks after the fact, and the verdicts they give.

An audit item is a review-queue entry flagged ``audit`` (see
:func:`mcu_nlp.services.appeals.add_classified`); the appeal itself already went to its department.
The operator either confirms it (:func:`confirm_audit`) or corrects labels through the ordinary
correction (:func:`mcu_nlp.services.appeals.correct_appeal`). Either way one verdict per label the
model decided alone is stored: correct when the person kept the model's value.

"Decided alone" means: the routing label when the threshold routed the appeal
(``decided_by = threshold:<label>``; a curator rule's department is not the model's), and any
other label whose confidence reached its (effective) threshold. Labels the correction leaves out
count as confirmed: the operator saw the whole appeal. A confirmation also confirms the appeal's
source labels that agree with the values the person kept (they become training labels).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mcu_nlp.services.audit import record_audit
from mcu_nlp.storage import Store
from mcu_nlp.storage import repositories as repo
from mcu_nlp.storage.models import (
    AppealRow,
    AuditVerdictRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
    utcnow,
)

__all__ = ["AuditItemClosed", "NotAnAuditItem", "VerdictView", "confirm_audit", "decided_labels",
           "model_decided", "record_verdicts"]


class NotAnAuditItem(LookupError):
    """The appeal has no audit item in the review queue."""


class AuditItemClosed(ValueError):
    """The audit item was already confirmed or corrected."""


@dataclass(frozen=True, slots=True)
class VerdictView:
    """One label's verdict on an audited appeal."""

    label: str
    predicted: str
    confidence: float
    correct: bool
    corrected_to: str | None


def model_decided(label: str, decided_by: str, confidence: float, threshold: float | None, *,
                  department_label: str = "department") -> bool:
    """Whether the model alone set ``label`` of an auto-routed appeal (see the module doc)."""
    if label == department_label:
        return decided_by == f"threshold:{department_label}"
    return threshold is not None and confidence >= threshold


def decided_labels(decision: RoutingDecisionRow, predictions: Iterable[PredictionRow], *,
                   department_label: str = "department") -> dict[str, PredictionRow]:
    """The labels of an auto-routed appeal that the model decided alone (label → prediction)."""
    return {p.label: p for p in predictions
            if p.model_version == (decision.model_version or "")
            and model_decided(p.label, decision.decided_by, p.confidence, p.threshold,
                              department_label=department_label)}


def _system_decision(session: Session, appeal_id: int) -> RoutingDecisionRow | None:
    return session.scalar(select(RoutingDecisionRow).where(
        RoutingDecisionRow.appeal_id == appeal_id, RoutingDecisionRow.audit_sample.is_(True))
        .order_by(RoutingDecisionRow.id).limit(1))


def record_verdicts(session: Session, appeal: AppealRow, item: ReviewItemRow, *,
                    corrected: Mapping[str, str], author: str,
                    department_label: str = "department") -> list[VerdictView]:
    """Store the verdicts of an open audit item and set its outcome (not committed).

    Args:
        session: The caller's transaction (the correction or confirmation itself).
        appeal: The audited appeal, predictions loaded.
        item: Its open audit item.
        corrected: Label → the value the person set (empty for a confirmation).
        author: Who checked it.
        department_label: The routing label.
    """
    decision = _system_decision(session, appeal.id)
    verdicts: list[VerdictView] = []
    if decision is not None:
        decided = decided_labels(decision, appeal.predictions, department_label=department_label)
        for label, prediction in sorted(decided.items()):
            new = corrected.get(label)
            correct = new is None or new.strip() == prediction.value
            session.add(AuditVerdictRow(
                appeal_id=appeal.id, label=label, model_version=prediction.model_version,
                predicted=prediction.value, confidence=prediction.confidence,
                threshold=prediction.threshold, correct=correct,
                corrected_to=None if correct or new is None else new.strip()[:500],
                reviewer=author))
            verdicts.append(VerdictView(label, prediction.value, prediction.confidence, correct,
                                        None if correct else new))
    item.outcome = "corrected" if corrected else "confirmed"
    return verdicts


def confirm_audit(store: Store, appeal_id: int, *, author: str,
                  department_label: str = "department") -> list[VerdictView]:
    """A person confirms an audited appeal as routed: every decided label counts as correct.

    Raises:
        NotAnAuditItem: No such appeal, or it has no audit item.
        AuditItemClosed: The audit item was already confirmed or corrected.
    """
    with store.session() as session:
        # Locked before anything is read: a second replica confirming or correcting the same
        # item waits here, then finds it closed (409) instead of recording a second verdict.
        item = repo.review_item(session, appeal_id, lock=True)
        appeal = repo.get_appeal(session, appeal_id) if item is not None else None
        if appeal is None or item is None or not item.audit:
            raise NotAnAuditItem(f"appeal {appeal_id} has no audit item in the review queue")
        if item.status != "open":
            raise AuditItemClosed(f"the audit of appeal {appeal_id} was already "
                                  f"{item.outcome or item.status}")
        verdicts = record_verdicts(session, appeal, item, corrected={}, author=author,
                                   department_label=department_label)
        item.status, item.resolved_at, item.resolved_by = "resolved", utcnow(), author
        # The person confirmed these values: a source label that says the same is confirmed.
        kept = {v.label: v.predicted for v in verdicts}
        for label_row in appeal.labels:
            if label_row.origin == "source" and kept.get(label_row.label) == label_row.value:
                label_row.confirmed = True
        record_audit(session, actor=author, action="audit.confirm", entity="appeal",
                     entity_id=appeal_id,
                     details={"labels": {v.label: v.predicted for v in verdicts}})
    return verdicts
