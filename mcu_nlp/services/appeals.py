"""Store appeals with their classification and routing; read them back; apply corrections.

An appeal is written in one transaction together with its source labels, the model's predictions,
the routing decision and, when it needs a person or is drawn for the precision audit, its
review-queue entry: a reader never sees an appeal without the rest. Storage is idempotent by
``(source, source_id)``.

Labels that arrive with an appeal (the API's ``labels``, an export's topic or executor) are
*source labels*: stored with ``origin="source"`` and ``confirmed=False``. Anyone with an operator
key can send them, so they are not people's labels until a person confirms them: a correction
with the same value, or the confirmation of an audit item whose model value agrees
(:mod:`mcu_nlp.services.routing_audit`). Only confirmed labels train and score model versions
(:mod:`mcu_nlp.services.retrain`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from mcu_nlp.records import Appeal
from mcu_nlp.routing.audit_sample import AuditSampler, sample_key
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.classify import Classification
from mcu_nlp.services.routing_audit import record_verdicts
from mcu_nlp.services.taxonomy import Taxonomy
from mcu_nlp.storage import Store
from mcu_nlp.storage import repositories as repo
from mcu_nlp.storage.models import (
    AppealRow,
    CorrectionRow,
    HumanLabelRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
    utcnow,
)

_CLOSED_STATUS_PREFIXES = ("завершено", "закрыт", "решено", "ответ дан", "closed", "resolved")


class AppealNotFound(LookupError):
    """No stored appeal has that id."""


class InvalidCorrection(ValueError):
    """A correction that cannot be applied (unknown label, empty value)."""


def naive(moment: datetime) -> datetime:
    """Drop the offset the store cannot keep: aware times become UTC wall-clock time."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def source_label_final(metadata: Mapping[str, Any] | None, label: str) -> bool:
    """Whether the source itself considers a label settled.

    Used only when retraining is configured to take unconfirmed source labels (see
    :func:`mcu_nlp.services.retrain.retrain`). Topics are set by the citizen or a
    moderator and count as given. A department is only final once the case is closed: for open
    cases it names the current coordinator, which changes.
    """
    if not label.startswith("department"):
        return True
    meta = metadata or {}
    if meta.get("executor_org") or meta.get("executor"):
        return True
    status = str(meta.get("last_status") or meta.get("status") or "").strip().casefold()
    return status.startswith(_CLOSED_STATUS_PREFIXES)


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _prediction_rows(classification: Classification) -> list[PredictionRow]:
    rows = []
    for label, prediction in classification.predictions.items():
        if not prediction.top:
            continue
        rows.append(PredictionRow(
            model_version=classification.model_version or "", label=label,
            value=str(prediction.top[0][0]), confidence=float(prediction.confidence),
            threshold=None if prediction.threshold is None else float(prediction.threshold),
            probabilities=[[str(c), round(float(p), 6)] for c, p in prediction.top],
            explanation=[[str(w), round(float(s), 6)] for w, s in prediction.explanation]))
    return rows


def add_classified(session: Session, appeal: Appeal, classification: Classification,
                   audit: AuditSampler | None = None) -> AppealRow:
    """Add one appeal with its labels, predictions, decision and queue entry (not committed).

    An auto-routed appeal that ``audit`` draws keeps its department and also enters the review
    queue as an audit item (``audit=True``), for a person to confirm or correct.
    """
    decision = classification.decision
    row = AppealRow(
        source=appeal.source, source_id=str(appeal.id), channel=str(appeal.channel),
        created_at=naive(appeal.created_at), text=appeal.text, territory=appeal.territory,
        address=appeal.address, extra=_json_safe(dict(appeal.metadata)),
        urgency=classification.urgency.score,
        urgency_reasons=[{"id": r.id, "description": r.description, "phrase": r.phrase,
                          "weight": r.weight} for r in classification.urgency.reasons])
    # Source labels wait for a person (see the module doc).
    labels = [HumanLabelRow(label=str(name), value=str(value)[:500], origin="source",
                            confirmed=False)
              for name, value in appeal.labels.items() if value not in (None, "")]
    decision_row = RoutingDecisionRow(
        decision=decision.decision, department=decision.department, priority=decision.priority,
        decided_by=decision.decided_by, reason=decision.reason,
        model_version=classification.model_version, rules_version=classification.rules_version)
    review = None
    if decision.decision == "review":
        review = ReviewItemRow(status="open", urgency=classification.urgency.score,
                               priority=decision.priority, reason=decision.reason,
                               suggested_department=decision.department)
    elif (decision.decision == "auto" and audit is not None
          and audit.sampled(sample_key(appeal.source, str(appeal.id)))):
        decision_row.audit_sample = True
        review = ReviewItemRow(status="open", audit=True, urgency=classification.urgency.score,
                               priority=decision.priority,
                               reason=f"audit sample of auto-routing ({decision.decided_by}: "
                                      f"{decision.reason}); confirm or correct",
                               suggested_department=decision.department)
    return repo.add_appeal(session, appeal=row, labels=labels,
                           predictions=_prediction_rows(classification), decision=decision_row,
                           review=review)


@dataclass(frozen=True, slots=True)
class AppealView:
    """A stored appeal with what the system and people said about it."""

    id: int
    source: str
    source_id: str
    channel: str
    created_at: datetime
    text: str
    territory: str | None
    address: str | None
    urgency: float
    urgency_reasons: list[dict[str, Any]]
    source_labels: dict[str, str]
    corrected_labels: dict[str, str]
    predictions: list[dict[str, Any]]
    decision: dict[str, Any] | None
    review_status: str | None
    corrections: list[dict[str, Any]] = field(default_factory=list)
    audit_sample: bool = False
    audit_outcome: str | None = None


def get_appeal(store: Store, appeal_id: int) -> AppealView:
    """One stored appeal, or :class:`AppealNotFound`."""
    with store.session() as session:
        row = repo.get_appeal(session, appeal_id)
        if row is None:
            raise AppealNotFound(f"no appeal with id {appeal_id}")
        labels = repo.labels_by_origin(row.labels)
        latest = max(row.decisions, key=lambda d: d.id, default=None)
        item = repo.review_item(session, appeal_id)
        return AppealView(
            id=row.id, source=row.source, source_id=row.source_id, channel=row.channel,
            created_at=row.created_at, text=row.text, territory=row.territory,
            address=row.address, urgency=row.urgency, urgency_reasons=list(row.urgency_reasons),
            source_labels=labels.get("source", {}), corrected_labels=labels.get("correction", {}),
            predictions=[{"label": p.label, "value": p.value, "confidence": p.confidence,
                          "threshold": p.threshold, "top": p.probabilities,
                          "explanation": p.explanation, "model_version": p.model_version}
                         for p in sorted(row.predictions, key=lambda p: p.id)],
            decision=None if latest is None else {
                "decision": latest.decision, "department": latest.department,
                "priority": latest.priority, "decided_by": latest.decided_by,
                "reason": latest.reason, "model_version": latest.model_version,
                "rules_version": latest.rules_version},
            review_status=item.status if item else None,
            corrections=[{"label": c.label, "old_value": c.old_value, "new_value": c.new_value,
                          "author": c.author, "comment": c.comment, "at": c.recorded_at}
                         for c in repo.corrections_of(session, appeal_id)],
            audit_sample=any(d.audit_sample for d in row.decisions),
            audit_outcome=item.outcome if item is not None and item.audit else None)


def correct_appeal(store: Store, appeal_id: int, labels: Mapping[str, str], *, author: str,
                   allowed_labels: Sequence[str], comment: str = "",
                   department_label: str = "department",
                   taxonomy: Taxonomy | None = None,
                   audit_details: Mapping[str, Any] | None = None) -> AppealView:
    """A person sets labels of an appeal: stored for retraining, audited, queue item resolved.

    Args:
        store: The appeal store.
        appeal_id: The appeal to correct.
        labels: Label name → the right value.
        author: Who corrects (recorded in the audit log).
        allowed_labels: Label names that may be corrected (the model's labels and the source's).
        comment: Free text kept with the correction.
        department_label: The routing label; correcting it records a human routing decision.
        taxonomy: When given, every value must be approved in it (the API always gives it);
            retraining ignores unapproved values either way.
        audit_details: More details for the audit row (the console adds the labels before, the
            model version and its scores).

    Raises:
        InvalidCorrection: Unknown label, empty value, or a value outside ``taxonomy``.
        AppealNotFound: No such appeal.
    """
    if not labels:
        raise InvalidCorrection("give at least one label to correct")
    for name, value in labels.items():
        if name not in allowed_labels:
            raise InvalidCorrection(f"unknown label {name!r}; known: {sorted(allowed_labels)}")
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise InvalidCorrection(f"label {name!r} needs a non-empty value of <= 500 characters")
        if taxonomy is not None and not taxonomy.allows(name, value):
            raise InvalidCorrection(taxonomy.refusal(name, value))
    with store.session() as session:
        # The queue entry is locked first, as confirm_audit does: one verdict per audit item
        # when two replicas check it at once, and no lock-order cycle between them.
        item = repo.review_item(session, appeal_id, lock=True)
        row = repo.get_appeal(session, appeal_id)
        if row is None:
            raise AppealNotFound(f"no appeal with id {appeal_id}")
        current = {p.label: p.value for p in sorted(row.predictions, key=lambda p: p.id)}
        for origin in ("source", "correction"):
            current.update(repo.labels_by_origin(row.labels).get(origin, {}))
        for name, value in labels.items():
            value = value.strip()
            # A person setting the value the source sent confirms the source label.
            for label_row in row.labels:
                if (label_row.origin == "source" and label_row.label == name
                        and label_row.value == value):
                    label_row.confirmed = True
            session.add(CorrectionRow(appeal_id=appeal_id, label=name, old_value=current.get(name),
                                      new_value=value, author=author, comment=comment))
            repo.upsert_human_label(session, appeal_id=appeal_id, label=name, value=value,
                                    origin="correction")
            if name == department_label:
                session.add(RoutingDecisionRow(
                    appeal_id=appeal_id, decision="manual", department=value, priority=None,
                    decided_by=f"human:{author}", reason=comment or "corrected by a person"))
        if item is not None and item.status == "open":
            if item.audit:  # the correction is the audit's verdict on the model's labels
                record_verdicts(session, row, item, author=author,
                                corrected={n: v.strip() for n, v in labels.items()},
                                department_label=department_label)
            item.status, item.resolved_at, item.resolved_by = "resolved", utcnow(), author
        record_audit(session, actor=author, action="appeal.correct", entity="appeal",
                     entity_id=appeal_id, details={**dict(audit_details or {}),
                                                   "labels": dict(labels), "comment": comment})
    return get_appeal(store, appeal_id)
