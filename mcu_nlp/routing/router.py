"""Auto-coordination (автокоординация): curator rules first, then the model and its threshold.

Every decision names what made it in ``decided_by``:

- ``rule:<id>`` — a curator rule sent the appeal to a department or forced a review;
- ``threshold:<label>`` — the model's top-1 for the routing label reached the label's threshold
  (chosen on validation for the target precision), so the appeal goes out with no human touch;
- ``review:below-threshold:<label>`` / ``review:no-threshold:<label>`` / ``review:no-model`` —
  a person decides, and the reason says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mcu_nlp.routing.rules import PRIORITIES, RuleBook, RuleSubject

Decision = Literal["auto", "review"]


class LabelPredictionLike(Protocol):
    """What routing reads from a model's prediction for one label."""

    label: str
    top: list[tuple[str, float]]
    confidence: float
    threshold: float | None


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where an appeal goes and why."""

    decision: Decision
    department: str | None
    decided_by: str
    reason: str
    priority: str = "normal"
    rule_ids: tuple[str, ...] = field(default=())


def _raise_priority(current: str, new: str | None) -> str:
    if new is None:
        return current
    return new if PRIORITIES.index(new) > PRIORITIES.index(current) else current


def route(
    subject: RuleSubject,
    predictions: Mapping[str, LabelPredictionLike] | None,
    rules: RuleBook,
    *,
    department_label: str = "department",
    urgent_priority_at: float | None = None,
    urgency: float = 0.0,
) -> RoutingDecision:
    """Decide auto vs review for one appeal.

    Args:
        subject: The appeal's text, lemmas, channel, territory and the model's topics.
        predictions: The model's predictions per label (``None`` when no model is active).
        rules: The curator's rules, evaluated first, in order.
        department_label: The label whose prediction names the responsible department.
        urgent_priority_at: Urgency score from which the priority becomes ``high``.
        urgency: The appeal's urgency score (0–1).

    Returns:
        The decision with the rule or threshold that made it.
    """
    priority = "normal"
    if urgent_priority_at is not None and urgency >= urgent_priority_at:
        priority = "high"
    fired: list[str] = []
    for rule in rules.matching(subject):
        fired.append(rule.id)
        priority = _raise_priority(priority, rule.then.priority)
        if rule.then.review:
            return RoutingDecision("review", rule.then.department, f"rule:{rule.id}",
                                   rule.description or "curator rule: always review",
                                   priority, tuple(fired))
        if rule.then.department:
            return RoutingDecision("auto", rule.then.department, f"rule:{rule.id}",
                                   rule.description or "curator rule", priority, tuple(fired))
    prediction = (predictions or {}).get(department_label)
    if prediction is None:
        by = "review:no-model" if not predictions else f"review:no-label:{department_label}"
        return RoutingDecision("review", None, by, "no model prediction for the department",
                               priority, tuple(fired))
    department = prediction.top[0][0] if prediction.top else None
    if prediction.threshold is None:
        return RoutingDecision(
            "review", department, f"review:no-threshold:{department_label}",
            "the model reaches the target precision at no threshold for this label",
            priority, tuple(fired))
    if prediction.confidence >= prediction.threshold:
        return RoutingDecision(
            "auto", department, f"threshold:{department_label}",
            f"confidence {prediction.confidence:.3f} >= threshold {prediction.threshold:.3f}",
            priority, tuple(fired))
    return RoutingDecision(
        "review", department, f"review:below-threshold:{department_label}",
        f"confidence {prediction.confidence:.3f} < threshold {prediction.threshold:.3f}",
        priority, tuple(fired))
