"""Realized precision of auto-routing, its Clopper–Pearson bounds, and how thresholds tighten.

Pure functions over audited verdicts (``correct`` flags with the model's confidence); the store is
read by :mod:`mcu_nlp.services.routing_quality`.

* Display: the point estimate ``k / n`` with the two-sided 95 % Clopper–Pearson interval.
* Decision: the one-sided lower bound at ``confidence``. A label is below its promise when at
  least :meth:`PrecisionPolicy.min_evidence` items are audited and the bound is below ``target``.
  The minimum is never smaller than the number of items a flawless sample needs to clear the
  target (59 at 0.95 / 0.95): with fewer, a perfect record would still "fail" the bound, and the
  tightening would answer a lack of data rather than errors.
* Tightening (:func:`tightened_threshold`): the lowest confidence ``t`` above the current
  threshold such that the audited items at or above ``t`` are enough and clear the bound
  (``method="estimate"``); when no such ``t`` exists, the threshold moves a fixed share of its
  distance to 1.0 (``method="step"``) and waits for new audits above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scipy.stats import beta

if TYPE_CHECKING:
    from mcu_nlp.settings import Settings

__all__ = [
    "DISPLAY_LEVEL",
    "PrecisionEstimate",
    "PrecisionPolicy",
    "Tightening",
    "clopper_pearson",
    "estimate_precision",
    "lower_bound",
    "tightened_threshold",
]

DISPLAY_LEVEL = 0.95  # two-sided interval shown to people


def _check(correct: int, total: int) -> None:
    if total < 0 or correct < 0 or correct > total:
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")


def clopper_pearson(correct: int, total: int, level: float = DISPLAY_LEVEL) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval for a proportion (``(0, 1)`` when ``total`` is 0)."""
    _check(correct, total)
    if total == 0:
        return 0.0, 1.0
    tail = (1.0 - level) / 2.0
    low = 0.0 if correct == 0 else float(beta.ppf(tail, correct, total - correct + 1))
    high = 1.0 if correct == total else float(beta.ppf(1.0 - tail, correct + 1, total - correct))
    return low, high


def lower_bound(correct: int, total: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson lower bound: precision is at least this with ``confidence``."""
    _check(correct, total)
    if correct == 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, correct, total - correct + 1))


@dataclass(frozen=True, slots=True)
class PrecisionEstimate:
    """Audited items, how many were right, and what that says about precision."""

    audited: int
    correct: int
    estimate: float | None
    interval: tuple[float, float] | None
    lower_bound: float | None


def estimate_precision(correct: int, total: int, *, confidence: float = 0.95,
                       level: float = DISPLAY_LEVEL) -> PrecisionEstimate:
    """Point estimate, two-sided interval at ``level``, one-sided bound at ``confidence``."""
    _check(correct, total)
    if total == 0:
        return PrecisionEstimate(0, 0, None, None, None)
    return PrecisionEstimate(total, correct, correct / total,
                             clopper_pearson(correct, total, level),
                             lower_bound(correct, total, confidence))


@dataclass(frozen=True, slots=True)
class PrecisionPolicy:
    """What auto-routing promises and when its thresholds tighten.

    Args:
        target: Precision promised per label.
        confidence: Confidence of the one-sided lower bound that decides.
        min_items: Audited items needed before the bound may tighten a threshold.
        step: Fallback tightening, as the share of the distance to 1.0.
    """

    target: float = 0.95
    confidence: float = 0.95
    min_items: int = 30
    step: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0 or not 0.5 < self.confidence < 1.0:
            raise ValueError("target must lie in (0, 1) and confidence in (0.5, 1)")
        if self.min_items < 1 or not 0.0 < self.step <= 1.0:
            raise ValueError("min_items must be >= 1 and step in (0, 1]")

    @property
    def min_evidence(self) -> int:
        """Audited items before deciding: ``min_items``, or more when a flawless sample needs it.

        ``n`` correct of ``n`` clear the target once ``(1 - confidence) ** (1 / n) >= target``.
        """
        flawless = math.ceil(math.log(1.0 - self.confidence) / math.log(self.target) - 1e-9)
        return max(self.min_items, flawless)

    def below_target(self, correct: int, total: int) -> bool:
        """Whether enough audits show precision below the target (the bound says so)."""
        return total >= self.min_evidence and lower_bound(correct, total,
                                                          self.confidence) < self.target

    def precise_enough(self, correct: int, total: int) -> bool:
        """Whether enough audits show the target is met (the bound clears it)."""
        return total >= self.min_evidence and lower_bound(correct, total,
                                                          self.confidence) >= self.target

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PrecisionPolicy:
        """The policy of ``MCU_AUDIT_TARGET_PRECISION``, ``MCU_AUDIT_CONFIDENCE``..."""
        if settings is None:
            from mcu_nlp.settings import get_settings

            settings = get_settings()
        return cls(target=settings.audit_target_precision, confidence=settings.audit_confidence,
                   min_items=settings.audit_min_items, step=settings.audit_tighten_step)


@dataclass(frozen=True, slots=True)
class Tightening:
    """A raised threshold and how it was chosen."""

    threshold: float
    method: str  # estimate | step
    audited_above: int  # audited items at or above the new threshold
    correct_above: int


def tightened_threshold(confidences: Sequence[float], correct: Sequence[bool], current: float,
                        policy: PrecisionPolicy) -> Tightening:
    """The raised threshold for a label whose audited precision is below the target.

    Args:
        confidences: The model's confidence of each audited item (all at or above ``current``).
        correct: Whether the person confirmed each item.
        current: The threshold in force.
        policy: Target, confidence, minimum evidence and fallback step.

    Returns:
        The lowest audited confidence above ``current`` from which on the audited items clear
        the bound (``estimate``); else ``current`` moved ``step`` of its distance to 1.0
        (``step``). Either way strictly above ``current`` unless ``current`` is already 1.0.
    """
    if len(confidences) != len(correct):
        raise ValueError("confidences and verdicts differ in length")
    pairs = sorted(zip(confidences, correct, strict=True), key=lambda p: -p[0])
    hits = 0
    best: Tightening | None = None
    for index, (confidence, right) in enumerate(pairs):
        hits += bool(right)
        n = index + 1
        tie = index + 1 < len(pairs) and pairs[index + 1][0] == confidence
        if tie or confidence <= current:
            continue  # a threshold keeps every item of equal confidence, and must rise
        if policy.precise_enough(hits, n):
            best = Tightening(float(confidence), "estimate", n, hits)
    if best is not None:
        return best
    raised = min(1.0, current + policy.step * (1.0 - current))
    above = [right for confidence, right in pairs if confidence >= raised]
    return Tightening(raised, "step", len(above), sum(map(bool, above)))
