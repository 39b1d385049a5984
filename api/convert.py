"""Service results → response schemas (kept out of routers so they stay thin)."""

from __future__ import annotations

from pathlib import PurePath

from api import schemas
from api.redact import without_paths
from mcu_nlp.services.appeals import AppealView
from mcu_nlp.services.classify import Classification
from mcu_nlp.services.models import ModelVersionView
from mcu_nlp.services.queue import QueueItem


def classification_out(result: Classification, department_label: str) -> schemas.ClassificationOut:
    """One classification as the API returns it."""
    predictions = {
        label: schemas.LabelPredictionOut(
            label=label,
            top=[schemas.ClassScore(value=str(v), probability=float(p)) for v, p in pred.top],
            confidence=float(pred.confidence),
            threshold=None if pred.threshold is None else float(pred.threshold),
            explanation=[schemas.WordWeight(word=str(w), weight=float(s))
                         for w, s in pred.explanation])
        for label, pred in result.predictions.items()}
    decision = result.decision
    department_prediction = result.predictions.get(department_label)
    return schemas.ClassificationOut(
        model_version=result.model_version, rules_version=result.rules_version,
        department=decision.department,
        confidence=None if department_prediction is None else float(
            department_prediction.confidence),
        predictions=predictions,
        urgency=schemas.UrgencyOut(score=result.urgency.score, reasons=[
            schemas.UrgencyReasonOut(id=r.id, description=r.description, phrase=r.phrase,
                                     weight=r.weight) for r in result.urgency.reasons]),
        routing=schemas.RoutingOut(decision=decision.decision, department=decision.department,
                                   priority=decision.priority, decided_by=decision.decided_by,
                                   reason=decision.reason, rules_fired=list(decision.rule_ids)))


def appeal_out(view: AppealView) -> schemas.AppealOut:
    """A stored appeal as the API returns it."""
    return schemas.AppealOut(
        id=view.id, source=view.source, source_id=view.source_id, channel=view.channel,
        created_at=view.created_at, text=view.text, territory=view.territory,
        address=view.address, urgency=view.urgency, urgency_reasons=view.urgency_reasons,
        source_labels=view.source_labels, corrected_labels=view.corrected_labels,
        predictions=[schemas.PredictionOut(**p) for p in view.predictions],
        routing=None if view.decision is None else schemas.RoutingOut(
            decision=view.decision["decision"], department=view.decision["department"],
            priority=view.decision["priority"], decided_by=view.decision["decided_by"],
            reason=view.decision["reason"]),
        review_status=view.review_status,
        corrections=[schemas.CorrectionOut(**c) for c in view.corrections],
        audit_sample=view.audit_sample, audit_outcome=view.audit_outcome)


def queue_item_out(item: QueueItem) -> schemas.QueueItemOut:
    """A queue entry as the API returns it."""
    return schemas.QueueItemOut(
        appeal_id=item.appeal_id, status=item.status, urgency=item.urgency,
        urgency_reasons=item.urgency_reasons, priority=item.priority, reason=item.reason,
        suggested_department=item.suggested_department, enqueued_at=item.enqueued_at,
        text=item.text, channel=item.channel, territory=item.territory,
        created_at=item.created_at, audit=item.audit, outcome=item.outcome)


def model_out(view: ModelVersionView) -> schemas.ModelVersionOut:
    """A registered model version as the API returns it, without server paths.

    ``path`` is the bundle directory's name only (``fake-v1``), not where it lies on the server;
    path-like strings in the metrics are cut to their last part the same way.
    """
    return schemas.ModelVersionOut(
        version=view.version, path=PurePath(view.path).name, labels=view.labels,
        metrics=without_paths(view.metrics), active=view.active,
        registered_at=view.registered_at, activated_at=view.activated_at)
