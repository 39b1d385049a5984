"""Calibration of the stacked sparse model on a held-out validation part.

The final probability of label ``k`` for an appeal combines three learned pieces::

    z_k     = a · log p_text(k | text) + Σ_c b_c · log P(context_c | k) + e · log p_nb(k | text)
    p_stack = softmax(z)
    p_k     = (m_k + α · p_stack_k) / (m + α)

``m_k`` are the label counts of the same normalized text in training (``m`` their sum; zero for new
texts), so templated texts get their observed label distribution shrunk towards the model. ``a``
acts as an inverse temperature. ``a``, ``b``, ``α`` minimise the log loss on validation, which is
what makes the probabilities usable as routing confidence. The naive-Bayes weight ``e`` is not
fitted by log loss (which would trade macro-F1 for sharpness) but chosen on a time split of the
calibration part by :func:`choose_evidence_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax


@dataclass(slots=True)
class StackCalibration:
    """Learned combination weights (see module docstring)."""

    text_weight: float = 1.0
    context_weights: list[float] = field(default_factory=list)
    memory_strength: float = 1.0
    evidence_weight: float = 0.0

    def combine(
        self,
        text_log_proba: np.ndarray,
        context_loglik: list[np.ndarray],
        memory_counts: np.ndarray | None,
        evidence_log_proba: np.ndarray | None = None,
    ) -> np.ndarray:
        """Calibrated probabilities."""
        z = self.text_weight * text_log_proba
        for weight, loglik in zip(self.context_weights, context_loglik, strict=True):
            z = z + weight * loglik
        if evidence_log_proba is not None and self.evidence_weight:
            z = z + self.evidence_weight * evidence_log_proba
        proba = softmax(z, axis=1)
        if memory_counts is None:
            return proba
        total = memory_counts.sum(axis=1, keepdims=True)
        return (memory_counts + self.memory_strength * proba) / (total + self.memory_strength)

    @classmethod
    def fit(
        cls,
        y_index: np.ndarray,
        text_log_proba: np.ndarray,
        context_loglik: list[np.ndarray],
        memory_counts: np.ndarray | None,
        evidence_log_proba: np.ndarray | None = None,
        *,
        evidence_weight: float = 0.0,
    ) -> StackCalibration:
        """Minimise validation log loss over the weights (``evidence_weight`` stays fixed)."""
        n_context = len(context_loglik)
        rows = np.arange(len(y_index))
        # float64 throughout: finite-difference gradients vanish in float32.
        text_log_proba = text_log_proba.astype(np.float64)
        context_loglik = [loglik.astype(np.float64) for loglik in context_loglik]
        if memory_counts is not None:
            memory_counts = memory_counts.astype(np.float64)
        if evidence_log_proba is None:
            evidence_weight = 0.0

        def unpack(theta: np.ndarray) -> StackCalibration:
            return cls(
                float(np.exp(theta[0])),
                [float(v) for v in theta[1 : 1 + n_context]],
                float(np.exp(theta[-1])),
                float(evidence_weight),
            )

        def loss(theta: np.ndarray) -> float:
            proba = unpack(theta).combine(text_log_proba, context_loglik, memory_counts,
                                          evidence_log_proba)
            return float(-np.log(np.clip(proba[rows, y_index], 1e-12, None)).mean())

        start = np.r_[0.0, np.ones(n_context), np.log(2.0)]
        result = minimize(
            loss, start, method="L-BFGS-B", bounds=[(-3, 3)] + [(0, 5)] * n_context + [(-5, 8)]
        )
        return unpack(result.x)


def tempered_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities from logits divided by a fitted temperature (rows sum to 1)."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def log_proba_from_decision(decision: np.ndarray) -> np.ndarray:
    """Log-softmax of linear decision values (rows sum to one after exp)."""
    return log_softmax(decision, axis=1)


def choose_evidence_weight(
    y_index: np.ndarray,
    text_log_proba: np.ndarray,
    context_loglik: list[np.ndarray],
    memory_counts: np.ndarray | None,
    evidence: dict[float, np.ndarray],
    *,
    weights: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2),
    f1_tolerance: float = 0.005,
    target_precision: float = 0.95,
) -> tuple[float | None, float]:
    """Pick the naive-Bayes smoothing and weight on a time split of the calibration part.

    The stack is fitted on the first half and scored on the second: among the candidates whose
    macro-F1 there is within ``f1_tolerance`` of the stack without naive Bayes, the one that
    routes the largest share at ``target_precision`` (threshold from the first half) wins; the
    stack without it wins when none routes more. Returns ``(alpha, weight)``; ``(None, 0.0)``
    means no naive-Bayes term.
    """
    from sklearn.metrics import f1_score

    from mcu_nlp.evaluation.metrics import choose_threshold

    n = len(y_index)
    half = n // 2
    first, second = slice(0, half), slice(half, n)

    def part(rows: slice) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
        return (text_log_proba[rows], [c[rows] for c in context_loglik],
                None if memory_counts is None else memory_counts[rows])

    classes = np.arange(text_log_proba.shape[1])

    def score(alpha: float | None, weight: float) -> tuple[float, float]:
        nb = None if alpha is None else evidence[alpha]
        stack = StackCalibration.fit(y_index[first], *part(first),
                                     None if nb is None else nb[first], evidence_weight=weight)
        fitted = stack.combine(*part(first), None if nb is None else nb[first])
        held = stack.combine(*part(second), None if nb is None else nb[second])
        threshold = choose_threshold(y_index[first], fitted, classes,
                                     target_precision=target_precision)
        predicted = held.argmax(axis=1)
        truth = y_index[second]
        f1 = f1_score(truth, predicted, average="macro",
                      labels=np.union1d(truth, predicted), zero_division=0)
        return float(f1), float((held.max(axis=1) >= threshold).mean())

    base_f1, best_coverage = score(None, 0.0)
    best: tuple[float | None, float] = (None, 0.0)
    for alpha in sorted(evidence):
        for weight in weights:
            f1, coverage = score(alpha, weight)
            if f1 >= base_f1 - f1_tolerance and coverage > best_coverage:
                best, best_coverage = (alpha, weight), coverage
    return best
