"""Multinomial naive-Bayes evidence over the same TF-IDF features, a second opinion for the stack.

The linear SVM separates classes by their margins; naive Bayes scores how typical every n-gram is
of each class. Pooled with a small weight (chosen on the calibration part, see
:func:`mcu_nlp.classifiers.calibration.choose_evidence_weight`), it mostly sharpens the
confidence of typical appeals, so more of them clear the 95 %-precision threshold. Class priors
are uniform (``fit_prior=False``): the frequent topics must not gain from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax
from sklearn.naive_bayes import MultinomialNB

ABSENT_LOG_PROBA = -30.0


class NaiveBayesEvidence:
    """``log P(label | features)`` of a multinomial NB with uniform class priors."""

    def __init__(self, alpha: float = 0.03) -> None:
        self.alpha = alpha
        self.feature_log_prob_: np.ndarray | None = None  # (n_classes, n_features)
        self.present_: np.ndarray | None = None  # classes seen in training

    def fit(self, features: sp.csr_matrix, y_index: np.ndarray, n_classes: int
            ) -> NaiveBayesEvidence:
        """Fit on non-negative features (TF-IDF)."""
        model = MultinomialNB(alpha=self.alpha, fit_prior=False).fit(features, y_index)
        self.present_ = model.classes_.astype(np.int64)
        weights = np.zeros((n_classes, features.shape[1]), dtype=np.float32)
        weights[self.present_] = model.feature_log_prob_
        self.feature_log_prob_ = weights
        return self

    def log_proba(self, features: sp.csr_matrix) -> np.ndarray:
        """Normalised log posteriors; classes never seen in training get a very low value."""
        assert self.feature_log_prob_ is not None, "NaiveBayesEvidence is not fitted"
        if getattr(self, "_weights_t", None) is None:
            self._weights_t = np.ascontiguousarray(self.feature_log_prob_[self.present_].T)
        out = np.full((features.shape[0], self.feature_log_prob_.shape[0]), ABSENT_LOG_PROBA,
                      dtype=np.float64)
        out[:, self.present_] = log_softmax(np.asarray(features @ self._weights_t), axis=1)
        return out

    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON config and arrays (log-probabilities kept in float16)."""
        assert self.feature_log_prob_ is not None
        return ({"alpha": self.alpha},
                {f"{prefix}log_prob": self.feature_log_prob_.astype(np.float16),
                 f"{prefix}present": self.present_})

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
                   ) -> NaiveBayesEvidence:
        """Rebuild from :meth:`to_state` output."""
        evidence = cls(config["alpha"])
        evidence.feature_log_prob_ = arrays[f"{prefix}log_prob"].astype(np.float32)
        evidence.present_ = arrays[f"{prefix}present"].astype(np.int64)
        return evidence
