"""Quality metrics of the fixed evaluation protocol (``EVAL.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

TARGET_PRECISION = 0.95


def json_ready(value: object) -> object:
    """``None`` for a non-finite float (inf, nan), element-wise in lists and tuples."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [json_ready(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The protocol's figures for one label on one part of the data."""

    rows: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    top3: float
    coverage_at_95: float
    precision_at_threshold: float
    threshold: float
    routed: int = 0
    precision_ci95: tuple[float, float] = (float("nan"), float("nan"))

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON."""
        return asdict(self)


def choose_threshold(
    y_true: Sequence[object],
    proba: np.ndarray,
    classes: Sequence[object],
    *,
    target_precision: float = TARGET_PRECISION,
) -> float:
    """Lowest confidence threshold at which top-1 precision of rows at or above it hits the target.

    Confidence is the top-1 probability. Returns ``inf`` when no threshold reaches the target, so
    nothing is routed automatically.
    """
    classes_arr = np.asarray(classes, dtype=object)
    confidence = proba.max(axis=1)
    correct = classes_arr[proba.argmax(axis=1)] == np.asarray(y_true, dtype=object)
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # Rows tied at one confidence value are all in or all out: evaluate at the last row of each tie.
    last_of_tie = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    ok = last_of_tie & (precision >= target_precision)
    if not ok.any():
        return float("inf")
    return float(conf_sorted[np.flatnonzero(ok)[-1]])


def quality_report(
    y_true: Sequence[object],
    proba: np.ndarray,
    classes: Sequence[object],
    *,
    threshold: float,
    routed: np.ndarray | None = None,
) -> QualityReport:
    """Accuracy, macro/weighted F1, top-3, and coverage/precision at a fixed threshold.

    ``routed`` (a row mask) replaces the threshold test where thresholds differ by class (see
    :meth:`mcu_nlp.evaluation.certify.Certificate.routed_mask`). The realized precision of the
    routed rows comes with its two-sided 95 % Clopper–Pearson interval.
    """
    from mcu_nlp.evaluation.certify import precision_interval

    classes_arr = np.asarray(classes, dtype=object)
    truth = np.asarray(y_true, dtype=object)
    if len(truth) == 0:
        raise ValueError("cannot evaluate on zero rows")
    predicted = classes_arr[proba.argmax(axis=1)]
    labels = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    k = min(3, proba.shape[1])
    top_k = np.argpartition(-proba, kth=k - 1, axis=1)[:, :k]
    in_top3 = (classes_arr[top_k] == truth[:, None]).any(axis=1)
    confident = proba.max(axis=1) >= threshold if routed is None else np.asarray(routed, bool)
    covered = int(confident.sum())
    hits = int((predicted[confident] == truth[confident]).sum())
    return QualityReport(
        rows=len(truth),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        weighted_f1=float(
            f1_score(truth, predicted, labels=labels, average="weighted", zero_division=0)
        ),
        top3=float(in_top3.mean()),
        coverage_at_95=covered / len(truth),
        precision_at_threshold=float((predicted[confident] == truth[confident]).mean())
        if covered
        else float("nan"),
        threshold=float(threshold),
        routed=covered,
        precision_ci95=precision_interval(hits, covered),
    )


def ranked_coverage(y_true: Sequence[object], proba: np.ndarray, classes: Sequence[object],
                    target: float = TARGET_PRECISION) -> float:
    """Diagnostic chosen **on test**, not a coverage anyone can promise.

    The largest share of rows, taken by falling confidence, whose top-1 precision is still
    ``>= target``: how well a model ranks its own answers, apart from how well a threshold chosen
    on earlier rows carries over.
    """
    truth = np.asarray(y_true, dtype=object)
    if len(truth) == 0:
        return 0.0
    confidence = proba.max(axis=1)
    correct = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] == truth
    order = np.argsort(-confidence, kind="stable")
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precision >= target)
    return float((ok[-1] + 1) / len(truth)) if len(ok) else 0.0
