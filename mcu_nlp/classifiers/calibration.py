"""Calibration of the stacked sparse model on a held-out validation part.

The final probability of label ``k`` for an appeal combines three learned pieces::

    z_k     = a · log p_text(k | text) + Σ_c b_c · log P(context_c | k)
    p_stack = softmax(z)
    p_k     = (m_k + α · p_stack_k) / (m + α)

``m_k`` are the label counts of the same normalized text in training (``m`` their sum; zero for new
texts), so templated texts get their observed label distribution shrunk towards the model. ``a``
acts as an inverse temperature. ``a``, ``b``, ``α`` minimise the log loss on validation, which is
what makes the probabilities usable as routing confidence.
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

    def combine(
        self,
        text_log_proba: np.ndarray,
        context_loglik: list[np.ndarray],
        memory_counts: np.ndarray | None,
    ) -> np.ndarray:
        """Calibrated probabilities."""
        z = self.text_weight * text_log_proba
        for weight, loglik in zip(self.context_weights, context_loglik, strict=True):
            z = z + weight * loglik
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
    ) -> StackCalibration:
        """Minimise validation log loss over the weights."""
        n_context = len(context_loglik)
        rows = np.arange(len(y_index))
        # float64 throughout: finite-difference gradients vanish in float32.
        text_log_proba = text_log_proba.astype(np.float64)
        context_loglik = [loglik.astype(np.float64) for loglik in context_loglik]
        if memory_counts is not None:
            memory_counts = memory_counts.astype(np.float64)

        def unpack(theta: np.ndarray) -> StackCalibration:
            return cls(
                float(np.exp(theta[0])),
                [float(v) for v in theta[1 : 1 + n_context]],
                float(np.exp(theta[-1])),
            )

        def loss(theta: np.ndarray) -> float:
            proba = unpack(theta).combine(text_log_proba, context_loglik, memory_counts)
            return float(-np.log(np.clip(proba[rows, y_index], 1e-12, None)).mean())

        start = np.r_[0.0, np.ones(n_context), np.log(2.0)]
        result = minimize(
            loss, start, method="L-BFGS-B", bounds=[(-3, 3)] + [(0, 5)] * n_context + [(-5, 8)]
        )
        return unpack(result.x)


def log_proba_from_decision(decision: np.ndarray) -> np.ndarray:
    """Log-softmax of linear decision values (rows sum to one after exp)."""
    return log_softmax(decision, axis=1)
