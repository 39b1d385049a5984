"""Auto-route thresholds with a finite-sample precision guarantee (Learn-then-Test).

The promise "what is routed automatically is right at least 95 % of the time" is certified on a
calibration part that nothing else was fitted on (not the model, not its stack or pooling weights,
not the choice of components):

* For a threshold ``λ`` the routed rows are those whose top-1 probability is ``≥ λ``; the null
  hypothesis is "precision of the rows at or above ``λ`` is below the target".
* Its p-value is the binomial tail of the correct count among the ``n(λ)`` routed calibration
  rows; rejecting at level ``δ`` is the same as the one-sided Clopper–Pearson lower bound at
  confidence ``1 − δ`` being at least the target.
* Thresholds come from a fixed grid, tested from the highest down (fixed-sequence testing): the
  search stops at the first threshold that cannot be certified, so the whole search spends ``δ``
  once (Learn-then-Test, Angelopoulos et al. 2021). The threshold is the lowest certified one.
* The search starts at the first grid point that routes enough rows to certify the target even
  with a small error rate among them (:data:`START_ERROR_RATE`; 132 rows for 95 % at 90 %
  confidence): higher points are skipped, not tested, so a single early error among the top
  few rows cannot end the search. That rule looks at the confidences only, never at the labels.

Where nothing can be certified the threshold is ``inf``: nothing is routed automatically, and the
certificate says why. The Mondrian variant certifies one threshold per predicted class (classes
with too few calibration rows share one group); the overall precision is then at least the target
whenever every group's is. :func:`certify` (``auto``) runs both searches at ``δ/2`` each and
keeps the one that routes more calibration rows (Bonferroni over the two procedures, so picking
on the same rows keeps the overall level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mcu_nlp.routing.precision import clopper_pearson, lower_bound

TARGET_PRECISION = 0.95
CONFIDENCE_LEVEL = 0.90
OTHER_GROUP = "__other__"
# Classes with fewer training examples than this are kept for the top-k, never auto-routed.
MIN_EXAMPLES_TO_ROUTE = 5
# The search starts where this error rate among the routed rows could still be certified.
START_ERROR_RATE = 0.02
# A fixed grid of thresholds: every 0.001, and finer towards 1 where templated texts sit.
GRID = np.unique(np.r_[np.linspace(0.0, 1.0, 1001), 1.0 - np.logspace(-6, -3, 31)])[::-1]


def precision_lower_bound(correct: int, total: int, confidence: float = CONFIDENCE_LEVEL) -> float:
    """One-sided Clopper–Pearson lower bound of a precision (``0`` when nothing is correct)."""
    return 0.0 if total <= 0 else lower_bound(correct, total, confidence)


def precision_interval(correct: int, total: int, confidence: float = 0.95
                       ) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval of a precision (``(nan, nan)`` for no rows)."""
    if total <= 0:
        return float("nan"), float("nan")
    return clopper_pearson(correct, total, confidence)


def rows_needed(target: float = TARGET_PRECISION, confidence: float = CONFIDENCE_LEVEL,
                error_rate: float = 0.0) -> int:
    """Fewest routed rows that certify ``target`` when ``error_rate`` of them are wrong.

    With ``error_rate=0``: the fewest rows that can certify it at all (all of them correct).
    """
    n = int(math.ceil(math.log(1.0 - confidence) / math.log(target)))
    if error_rate <= 0:
        return n
    if error_rate >= 1 - target:
        raise ValueError("error_rate must be below 1 - target")
    while precision_lower_bound(n - int(math.ceil(error_rate * n)), n, confidence) < target:
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certified auto-route threshold for one label (or one class group) and its evidence.

    ``threshold`` is ``inf`` when nothing could be certified; ``class_thresholds`` holds the
    Mondrian thresholds by predicted class (``OTHER_GROUP`` for the pooled rare classes).
    """

    threshold: float
    target: float
    confidence: float
    method: str  # global | mondrian
    calibration_rows: int
    routed: int
    correct: int
    lower_bound: float | None
    reason: str
    class_thresholds: dict[str, float] = field(default_factory=dict)
    never_routed: list[str] = field(default_factory=list)

    @property
    def certified(self) -> bool:
        """Whether any row may be routed automatically."""
        return self.routed > 0

    @property
    def coverage(self) -> float:
        """Share of calibration rows routed automatically."""
        return self.routed / self.calibration_rows if self.calibration_rows else 0.0

    def thresholds_for(self, predicted: Sequence[Any]) -> np.ndarray:
        """The threshold that applies to each row, given its predicted class."""
        by_class = self.bundle_thresholds()
        fallback = by_class.get(OTHER_GROUP, self.threshold)
        return np.array([by_class.get(str(p), fallback) for p in predicted], dtype=float)

    def bundle_thresholds(self) -> dict[str, float]:
        """Per-class thresholds as a model bundle keeps them (empty: one global threshold).

        Mondrian thresholds by class, and ``inf`` for the classes that are never routed.
        """
        out = dict(self.class_thresholds) if self.method == "mondrian" else {}
        out.update({name: math.inf for name in self.never_routed})
        return out

    def routed_mask(self, proba: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
        """Rows of ``proba`` whose confidence reaches their threshold."""
        predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        return proba.max(axis=1) >= self.thresholds_for(predicted)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``inf`` as ``None``)."""
        out = asdict(self)
        out["threshold"] = _finite(self.threshold)
        out["class_thresholds"] = {k: _finite(v) for k, v in self.class_thresholds.items()}
        out["coverage"] = self.coverage
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        """Inverse of :meth:`as_dict`."""
        fields = {k: v for k, v in data.items() if k != "coverage"}
        fields["threshold"] = _infinite(fields.get("threshold"))
        fields["class_thresholds"] = {
            k: _infinite(v) for k, v in (fields.get("class_thresholds") or {}).items()}
        fields["never_routed"] = list(fields.get("never_routed") or [])
        return cls(**fields)


def certify_global(
    correct: np.ndarray,
    confidence: np.ndarray,
    *,
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
    grid: np.ndarray = GRID,
    start_error_rate: float = START_ERROR_RATE,
) -> Certificate:
    """One threshold for all rows by fixed-sequence testing from the top of ``grid``.

    The search starts at the first grid point that routes at least
    ``rows_needed(target, level, start_error_rate)`` rows.
    """
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    total = len(correct)
    minimum = rows_needed(target, level, start_error_rate)
    if total < minimum:
        return Certificate(math.inf, target, level, "global", total, 0, 0, None,
                           f"{total} calibration rows; at least {minimum} are needed to certify "
                           f"{target:.0%} precision at {level:.0%} confidence")
    order = np.argsort(-confidence, kind="stable")
    sorted_conf, correct_cum = confidence[order], np.cumsum(correct[order])
    # Routed counts at every grid point: rows with confidence >= λ.
    routed = np.searchsorted(-sorted_conf, -np.asarray(grid), side="right")
    best: tuple[float, int, int, float] | None = None
    stop = ""
    last_n = -1
    for threshold, n in zip(grid, routed, strict=True):
        if n < minimum:
            continue
        if n == last_n:  # same rows as the grid point above: same decision
            if best is not None:
                best = (float(threshold), *best[1:])
            continue
        last_n = int(n)
        k = int(correct_cum[n - 1])
        bound = precision_lower_bound(k, int(n), level)
        if bound < target:
            stop = (f"at threshold {threshold:.4f} ({n} rows, {k} correct) the lower bound "
                    f"{bound:.4f} is below {target:.2f}")
            break
        best = (float(threshold), int(n), k, bound)
    if best is None:
        return Certificate(math.inf, target, level, "global", total, 0, 0, None,
                           "no threshold certified: " + (stop or "too few confident rows"))
    threshold, n, k, bound = best
    return Certificate(threshold, target, level, "global", total, n, k, bound,
                       f"certified on {total} calibration rows; search stopped "
                       + (stop if stop else "at the bottom of the grid"))


def certify_mondrian(
    correct: np.ndarray,
    confidence: np.ndarray,
    predicted: Sequence[Any],
    *,
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
) -> Certificate:
    """One threshold per predicted class, each at ``δ / groups`` (Bonferroni over the groups).

    Classes predicted for fewer rows than one group needs are pooled into ``OTHER_GROUP``.
    """
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    predicted_str = np.array([str(p) for p in predicted], dtype=object)
    total = len(correct)
    values, counts = np.unique(predicted_str, return_counts=True)
    # The group size needed depends on the number of groups: shrink until stable.
    groups = len(values)
    for _ in range(5):
        needed = rows_needed(target, 1 - (1 - level) / max(groups, 1), START_ERROR_RATE)
        big = values[counts >= needed]
        new_groups = len(big) + int((counts < needed).any())
        if new_groups == groups:
            break
        groups = max(new_groups, 1)
    group_level = 1 - (1 - level) / max(groups, 1)
    group_of = np.where(np.isin(predicted_str, big), predicted_str, OTHER_GROUP)
    thresholds: dict[str, float] = {}
    routed = correct_total = 0
    for group in np.unique(group_of):
        rows = group_of == group
        cert = certify_global(correct[rows], confidence[rows], target=target, level=group_level)
        thresholds[str(group)] = cert.threshold
        routed += cert.routed
        correct_total += cert.correct
    finite = [t for t in thresholds.values() if np.isfinite(t)]
    bound = precision_lower_bound(correct_total, routed, level) if routed else None
    return Certificate(
        min(finite) if finite else math.inf, target, level, "mondrian", total, routed,
        correct_total, bound,
        f"{groups} class groups at {group_level:.4f} confidence each; "
        f"{len(finite)} certified", thresholds)


def certify(
    correct: np.ndarray,
    confidence: np.ndarray,
    predicted: Sequence[Any] | None = None,
    *,
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
    method: str = "auto",
) -> Certificate:
    """Certify an auto-route threshold: ``global``, ``mondrian``, or ``auto``.

    ``auto`` runs the global and the Mondrian search at ``δ/2`` each (``δ = 1 − level``,
    Bonferroni) and keeps the one that routes more rows, so the guarantee holds at ``level``
    for the chosen one. (A third search, starting where half of the rows are routed, was tried
    against label noise among the most confident rows; it never routed more on the reference or
    small data, and cost a third of δ.)
    """
    if method == "global" or (method == "auto" and predicted is None):
        return certify_global(correct, confidence, target=target, level=level)
    if predicted is None:
        raise ValueError("the Mondrian method needs the predicted classes")
    if method == "mondrian":
        return certify_mondrian(correct, confidence, predicted, target=target, level=level)
    if method != "auto":
        raise ValueError(f"method must be global, mondrian or auto, got {method!r}")
    half = 1 - (1 - level) / 2
    one = certify_global(correct, confidence, target=target, level=half)
    per_class = certify_mondrian(correct, confidence, predicted, target=target, level=half)
    chosen, other = (per_class, one) if per_class.routed > one.routed else (one, per_class)
    note = (f"{chosen.reason}; the {chosen.method} search routes the most calibration rows "
            f"(others: {other.method} {other.routed}), each of the 2 at {half:.1%} confidence")
    return Certificate(**{**asdict(chosen), "confidence": level, "reason": note})


def certify_model(
    truth: Sequence[Any],
    proba: np.ndarray,
    classes: Sequence[Any],
    *,
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
    method: str = "auto",
    never_route: Sequence[Any] = (),
) -> Certificate:
    """:func:`certify` on a model's probabilities for labelled calibration rows.

    Rows predicted as one of ``never_route`` (classes too rare to trust, see
    :func:`rare_classes`) are never routed: they take no part in the search either.
    """
    classes_arr = np.asarray(classes, dtype=object)
    predicted = classes_arr[proba.argmax(axis=1)]
    correct = predicted == np.asarray(truth, dtype=object)
    confidence = proba.max(axis=1).astype(float)
    excluded = sorted({str(c) for c in never_route})
    if excluded:
        confidence = np.where(np.isin(predicted.astype(str), excluded), -1.0, confidence)
    cert = certify(correct, confidence, predicted, target=target, level=level, method=method)
    if not excluded:
        return cert
    n_rows = int(np.isin(predicted.astype(str), excluded).sum())
    return Certificate(**{
        **asdict(cert), "never_routed": excluded,
        "reason": f"{cert.reason}; {len(excluded)} classes with fewer than "
                  f"{MIN_EXAMPLES_TO_ROUTE} training examples are never routed "
                  f"({n_rows} calibration rows predicted as them)"})


def rare_classes(labels: Sequence[Any], minimum: int = MIN_EXAMPLES_TO_ROUTE) -> list[str]:
    """Classes with fewer than ``minimum`` training examples: top-k only, never auto-routed."""
    values, counts = np.unique(np.asarray([str(v) for v in labels], dtype=object),
                               return_counts=True)
    return sorted(values[counts < minimum].tolist())


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _infinite(value: Any) -> float:
    return math.inf if value is None else float(value)
