"""Realized precision of auto-routing per label and month, and thresholds that tighten.

Two sources, kept apart:

* **the audit sample** — auto-routed appeals drawn at random (:mod:`mcu_nlp.routing.audit_sample`)
  and checked by a person (:mod:`mcu_nlp.services.routing_audit`). Unbiased, so it alone gives
  the estimate, its Clopper–Pearson interval and the lower bound that may tighten a threshold;
* **later corrections** — people correcting other auto-routed appeals when they happen to notice
  a mistake. Only the noticed errors, so a biased count: shown beside the estimate, never used in
  it.

:func:`tighten_thresholds` runs after every audit verdict. For each label of the active model it
takes the audited items that the threshold in force would still route (confidence at or above
the override; verdicts since the last admin reset) and, when the policy says they fall below the
target (:class:`~mcu_nlp.routing.precision.PrecisionPolicy`), stores a raised threshold
(:func:`~mcu_nlp.routing.precision.tightened_threshold`), writes an audit-log row (``system``,
before, after, reason) and a quality alert, and puts the new threshold in force in the registry.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mcu_nlp.reports.routing_quality import (
    RoutingPrecisionRow,
    RoutingPrecisionSection,
    ThresholdNote,
)
from mcu_nlp.routing.precision import (
    PrecisionEstimate,
    PrecisionPolicy,
    estimate_precision,
    tightened_threshold,
)
from mcu_nlp.routing.thresholds import effective_threshold
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.models import ActiveModel, ModelRegistry
from mcu_nlp.services.quality_alerts import raise_precision_alert
from mcu_nlp.services.routing_audit import model_decided
from mcu_nlp.services.threshold_overrides import ENTITY, override_rows, upsert_override
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import (
    AppealRow,
    AuditVerdictRow,
    CorrectionRow,
    PredictionRow,
    RoutingDecisionRow,
    ThresholdOverrideRow,
)

__all__ = ["LabelState", "MonthQuality", "RoutingQuality", "ThresholdChange", "note_months",
           "note_section", "routing_quality", "tighten_thresholds"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonthQuality:
    """One label's auto-routing in one month (of the appeals' filing time)."""

    label: str
    month: str  # YYYY-MM
    auto_routed: int  # auto-routed appeals whose label the model set alone
    audit: PrecisionEstimate  # from the audit sample only
    later_base: int  # auto-routed appeals outside the audit sample
    later_corrected: int  # of those, corrected to another value afterwards

    @property
    def later_corrected_share(self) -> float | None:
        """Corrected share of the appeals outside the sample (a floor of the error rate)."""
        return self.later_corrected / self.later_base if self.later_base else None


@dataclass(frozen=True, slots=True)
class LabelState:
    """A label's threshold in force and the audit evidence behind it (active model)."""

    label: str
    bundle_threshold: float | None
    per_class_thresholds: bool
    override: float | None
    override_reason: str | None
    effective_threshold: float | None
    evidence: PrecisionEstimate  # audited items the threshold in force still routes
    status: str  # ok | below_target | insufficient


@dataclass(frozen=True, slots=True)
class RoutingQuality:
    """The precision of auto-routing: thresholds per label and figures per label and month."""

    model_version: str | None
    policy: PrecisionPolicy
    audit_share: float | None
    labels: list[LabelState]
    months: list[MonthQuality]


@dataclass(frozen=True, slots=True)
class ThresholdChange:
    """One automatic tightening."""

    label: str
    model_version: str
    before: float
    after: float
    method: str
    audited: int
    correct: int
    lower_bound: float
    alert_id: int


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _month(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _between(column: Any, since: date | None, until: date | None) -> list[Any]:
    where = []
    if since is not None:
        where.append(column >= datetime.combine(since, time.min))
    if until is not None:
        where.append(column <= datetime.combine(until, time.max))
    return where


def _evidence(session: Session, version: str, label: str, state: ThresholdOverrideRow | None
              ) -> list[tuple[float, bool, float | None]]:
    """Audited items the threshold in force still routes: (confidence, correct, threshold)."""
    query = select(AuditVerdictRow.confidence, AuditVerdictRow.correct,
                   AuditVerdictRow.threshold).where(AuditVerdictRow.model_version == version,
                                                    AuditVerdictRow.label == label)
    if state is not None and state.threshold is not None:
        query = query.where(AuditVerdictRow.confidence >= state.threshold)
    if state is not None and state.evidence_since is not None:
        query = query.where(AuditVerdictRow.recorded_at >= state.evidence_since)
    return [(float(c), bool(ok), t) for c, ok, t in session.execute(query)]


def _label_states(session: Session, model: ActiveModel | None, policy: PrecisionPolicy,
                  only: str | None) -> list[LabelState]:
    if model is None:
        return []
    states = override_rows(session, model.version)
    thresholds = getattr(model.bundle, "thresholds", {}) or {}
    per_class = getattr(model.bundle, "class_thresholds", {}) or {}
    out = []
    for label in model.bundle.labels:
        if only is not None and label != only:
            continue
        state = states.get(label)
        override = state.threshold if state is not None else None
        bundle = _finite(thresholds.get(label))
        effective = effective_threshold(bundle, override)
        if effective is None and per_class.get(label) and override is not None:
            effective = float(override)  # a floor under the per-class thresholds
        evidence = _evidence(session, model.version, label, state)
        correct = sum(ok for _, ok, _ in evidence)
        estimate = estimate_precision(correct, len(evidence), confidence=policy.confidence)
        status = ("below_target" if policy.below_target(correct, len(evidence)) else
                  "ok" if policy.precise_enough(correct, len(evidence)) else "insufficient")
        out.append(LabelState(label, bundle, bool(per_class.get(label)), override,
                              state.reason if state is not None else None, effective, estimate,
                              status))
    return out


def _auto_routed(session: Session, *, department_label: str, since: date | None,
                 until: date | None, label: str | None
                 ) -> Iterable[tuple[int, str, bool, datetime, str]]:
    """(appeal id, label, audit sample, filing time, predicted value) the model set alone."""
    query = (select(RoutingDecisionRow.appeal_id, RoutingDecisionRow.decided_by,
                    RoutingDecisionRow.audit_sample, AppealRow.created_at, PredictionRow.label,
                    PredictionRow.value, PredictionRow.confidence, PredictionRow.threshold)
             .join(AppealRow, AppealRow.id == RoutingDecisionRow.appeal_id)
             .join(PredictionRow, and_(
                 PredictionRow.appeal_id == RoutingDecisionRow.appeal_id,
                 PredictionRow.model_version == func.coalesce(RoutingDecisionRow.model_version,
                                                              "")))
             .where(RoutingDecisionRow.decision == "auto",
                    *_between(AppealRow.created_at, since, until)))
    if label is not None:
        query = query.where(PredictionRow.label == label)
    for row in session.execute(query):
        if model_decided(row.label, row.decided_by, row.confidence, row.threshold,
                         department_label=department_label):
            yield row.appeal_id, row.label, bool(row.audit_sample), row.created_at, row.value


def routing_quality(store: Store, model: ActiveModel | None, policy: PrecisionPolicy, *,
                    department_label: str = "department", since: date | None = None,
                    until: date | None = None, label: str | None = None,
                    audit_share: float | None = None) -> RoutingQuality:
    """Per label and month: auto-routed, audited, correct, estimate, interval, later corrections.

    Args:
        store: The store.
        model: The active model (its thresholds and overrides are shown); None: none active.
        policy: Target, confidence and minimum evidence.
        department_label: The routing label.
        since: First filing day to count.
        until: Last filing day to count.
        label: Keep one label.
        audit_share: The configured share of the audit sample (shown as is).
    """
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    # [auto-routed, audited, audited correct, outside the sample, later corrected]
    with store.session() as session:
        outside: dict[tuple[int, str], tuple[str, str]] = {}
        for appeal_id, name, sampled, created, value in _auto_routed(
                session, department_label=department_label, since=since, until=until,
                label=label):
            key = (name, _month(created))
            counts[key][0] += 1
            if not sampled:
                counts[key][3] += 1
                outside[(appeal_id, name)] = (value, key[1])
        verdicts = (select(AuditVerdictRow.label, AuditVerdictRow.correct, AppealRow.created_at)
                    .join(AppealRow, AppealRow.id == AuditVerdictRow.appeal_id)
                    .where(*_between(AppealRow.created_at, since, until)))
        if label is not None:
            verdicts = verdicts.where(AuditVerdictRow.label == label)
        for name, correct, created in session.execute(verdicts):
            key = (name, _month(created))
            counts[key][1] += 1
            counts[key][2] += bool(correct)
        corrections = (select(CorrectionRow.appeal_id, CorrectionRow.label,
                              CorrectionRow.new_value)
                       .join(RoutingDecisionRow,
                             RoutingDecisionRow.appeal_id == CorrectionRow.appeal_id)
                       .where(RoutingDecisionRow.decision == "auto",
                              RoutingDecisionRow.audit_sample.is_(False)))
        wrong: set[tuple[int, str]] = set()
        for appeal_id, name, new in session.execute(corrections):
            known = outside.get((appeal_id, name))
            if known is not None and new != known[0]:
                wrong.add((appeal_id, name))
        for appeal_id, name in wrong:
            counts[(name, outside[(appeal_id, name)][1])][4] += 1
        labels = _label_states(session, model, policy, label)
    months = [MonthQuality(name, month, c[0],
                           estimate_precision(c[2], c[1], confidence=policy.confidence),
                           c[3], c[4])
              for (name, month), c in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
    return RoutingQuality(model.version if model else None, policy, audit_share, labels, months)


def _current_level(bundle: float | None, override: float | None,
                   evidence: list[tuple[float, bool, float | None]]) -> float:
    """The threshold the tightening starts from (an override, the bundle's, or the lowest used)."""
    if override is not None:
        return max(float(override), bundle or 0.0)
    if bundle is not None:
        return bundle
    used = [t for _, _, t in evidence if t is not None]
    return min(used) if used else min(c for c, _, _ in evidence)


def _tighten_once(store: Store, model: ActiveModel, policy: PrecisionPolicy,
                  actor: str) -> list[ThresholdChange]:
    changes: list[ThresholdChange] = []
    thresholds = getattr(model.bundle, "thresholds", {}) or {}
    with store.session() as session:
        states = override_rows(session, model.version)
        labels = session.scalars(select(AuditVerdictRow.label).distinct().where(
            AuditVerdictRow.model_version == model.version)).all()
        for label in sorted(labels):
            state = states.get(label)
            evidence = _evidence(session, model.version, label, state)
            correct = sum(ok for _, ok, _ in evidence)
            if not policy.below_target(correct, len(evidence)):
                continue
            bundle = _finite(thresholds.get(label))
            override = state.threshold if state is not None else None
            before = _current_level(bundle, override, evidence)
            choice = tightened_threshold([c for c, _, _ in evidence],
                                         [ok for _, ok, _ in evidence], before, policy)
            if choice.threshold <= before:
                continue  # already at 1.0: nothing left to raise
            found = estimate_precision(correct, len(evidence), confidence=policy.confidence)
            lower = float(found.lower_bound or 0.0)
            reason = (f"audited precision of {label!r}: {correct} of {len(evidence)} correct, "
                      f"one-sided {policy.confidence:.0%} lower bound {lower:.3f} < target "
                      f"{policy.target:.3f}; threshold {before:.3f} -> {choice.threshold:.3f} "
                      f"({choice.method})")
            upsert_override(session, version=model.version, label=label,
                            threshold=choice.threshold, bundle_threshold=bundle, reason=reason,
                            actor=actor)
            record_audit(session, actor=actor, action="routing.threshold.tighten", entity=ENTITY,
                         entity_id=f"{label}@{model.version}",
                         details={"label": label, "model_version": model.version,
                                  "before": before, "after": choice.threshold,
                                  "bundle_threshold": bundle, "reason": reason,
                                  "method": choice.method, "audited": len(evidence),
                                  "correct": correct, "lower_bound": lower,
                                  "target": policy.target, "confidence": policy.confidence,
                                  "audited_above": choice.audited_above,
                                  "correct_above": choice.correct_above})
            alert = raise_precision_alert(session, label=label, version=model.version,
                                          before=before, after=choice.threshold,
                                          audited=len(evidence), correct=correct, lower=lower,
                                          target=policy.target, confidence=policy.confidence,
                                          method=choice.method)
            changes.append(ThresholdChange(label, model.version, before, choice.threshold,
                                           choice.method, len(evidence), correct, lower,
                                           alert.id))
    return changes


def tighten_thresholds(registry: ModelRegistry, policy: PrecisionPolicy, *,
                       actor: str = "system") -> list[ThresholdChange]:
    """Raise the threshold of every label of the active model whose audit falls below target.

    Runs after each audit verdict (and on demand). Changes are stored, audited, alerted and put in
    force in ``registry``'s holder; other replicas pick them up on their next sync.
    """
    model = registry.holder.current
    if model is None:
        return []
    for attempt in (1, 2):
        try:
            changes = _tighten_once(registry.store, model, policy, actor)
            break
        except IntegrityError:  # another replica tightened the same label at the same moment
            if attempt == 2:
                raise
            log.info("a threshold tightening raced another one; re-reading the evidence")
    for change in changes:
        log.warning("routing threshold of %s (model %s) raised %.3f -> %.3f by the precision "
                    "audit (%d of %d correct)", change.label, change.model_version,
                    change.before, change.after, change.correct, change.audited)
    registry.refresh_overrides()
    return changes


def note_months(start: date, end: date) -> tuple[date, date]:
    """The filing days a note's section covers: the month before ``start`` through ``end``."""
    first = start.replace(day=1)
    previous = (first.replace(year=first.year - 1, month=12) if first.month == 1
                else first.replace(month=first.month - 1))
    return previous, end


def note_section(quality: RoutingQuality) -> RoutingPrecisionSection:
    """The analytical note's section from the figures."""
    rows = []
    for m in quality.months:
        low, high = m.audit.interval or (None, None)
        rows.append(RoutingPrecisionRow(
            label=m.label, month=m.month, auto_routed=m.auto_routed, audited=m.audit.audited,
            audited_correct=m.audit.correct, estimate=m.audit.estimate, interval_low=low,
            interval_high=high, lower_bound=m.audit.lower_bound, target=quality.policy.target,
            later_base=m.later_base, later_corrected=m.later_corrected,
            later_corrected_share=m.later_corrected_share))
    thresholds = [ThresholdNote(label=s.label, bundle_threshold=s.bundle_threshold,
                                override=s.override, effective_threshold=s.effective_threshold,
                                status=s.status, reason=s.override_reason)
                  for s in quality.labels]
    return RoutingPrecisionSection(
        model_version=quality.model_version, target=quality.policy.target,
        confidence=quality.policy.confidence, min_evidence=quality.policy.min_evidence,
        audit_share=quality.audit_share, rows=rows, thresholds=thresholds)
