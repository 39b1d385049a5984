"""Calibrated ensemble: log-linear pooling of member classifiers, weights learned on validation.

``p(k) ∝ Π_m p_m(k) ** w_m``: the weights both choose between the members and act as a temperature,
so the pooled probabilities are calibrated on the same held-out part the members were calibrated on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from mcu_nlp.artifacts import Artifact, load_artifact, save_artifact
from mcu_nlp.classifiers.base import AppealClassifier, as_frame, calibration_parts

KIND = "ensemble"


class EnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Members are fitted on the same data; their pooling weights on the calibration part.

    Args:
        members: Unfitted classifiers that accept ``X_calibration``/``y_calibration`` in ``fit``.
        calibration_share: Tail share of the rows (time order) held out when no calibration set
            is given.
        refit: Once the pooling weights are fitted on the calibration rows (members unaware of
            them), members that can (``refit_on``) learn again from all rows.
    """

    def __init__(self, members: Sequence[Any] = (), *, calibration_share: float = 0.1,
                 refit: bool = True) -> None:
        self.members = members
        self.calibration_share = calibration_share
        self.refit = refit

    def fit(
        self,
        X: Any,
        y: Sequence[Any],
        *,
        X_calibration: Any = None,
        y_calibration: Sequence[Any] | None = None,
    ) -> Self:
        """Fit every member, then the pooling weights on the calibration set."""
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        frame, labels, X_calibration, cal_labels = calibration_parts(
            X, y, X_calibration, y_calibration, self.calibration_share)
        self.members_ = []
        for member in self.members:
            member = clone(member)
            if "refit" in member.get_params(deep=False):
                # Pooling weights need member scores on rows the members never learned from.
                member.set_params(refit=False)
            self.members_.append(
                member.fit(frame, labels, X_calibration=X_calibration, y_calibration=cal_labels))
        self.classes_ = np.array(
            sorted(set().union(*(m.classes_.tolist() for m in self.members_)), key=str),
            dtype=object,
        )
        index = {label: i for i, label in enumerate(self.classes_)}
        self.weights_ = _fit_weights(
            self._member_log_proba(X_calibration), np.array([index[label] for label in cal_labels])
        )
        if self.refit:
            everything = pd.concat([frame, as_frame(X_calibration)], ignore_index=True)
            everything_labels = np.concatenate([labels, np.asarray(cal_labels, dtype=object)])
            for member in self.members_:
                if hasattr(member, "refit_on"):
                    member.refit_on(everything, everything_labels)
        return self

    @classmethod
    def from_fitted(cls, members: Sequence[AppealClassifier], weights: Sequence[float]) -> Self:
        """An ensemble of already fitted members with given weights."""
        ensemble = cls(members=list(members))
        ensemble.members_ = list(members)
        ensemble.classes_ = np.array(
            sorted(set().union(*(m.classes_.tolist() for m in members)), key=str), dtype=object
        )
        ensemble.weights_ = np.asarray(weights, dtype=np.float64)
        return ensemble

    def _member_log_proba(self, X: Any) -> list[np.ndarray]:
        out = []
        for member in self.members_:
            aligned = np.full((len(as_frame(X)), len(self.classes_)), 1e-9)
            columns = np.searchsorted(self.classes_.astype(str), member.classes_.astype(str))
            aligned[:, columns] = np.maximum(member.predict_proba(X), 1e-9)
            out.append(np.log(aligned))
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Pooled probabilities, columns as ``classes_``."""
        check_is_fitted(self, "weights_")
        logs = self._member_log_proba(X)
        return softmax(sum(w * lp for w, lp in zip(self.weights_, logs, strict=True)), axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def explain(
        self, X: Any, *, top_k: int = 5, predicted: np.ndarray | None = None
    ) -> list[list[tuple[str, float]]]:
        """Words behind each prediction, from the first member that can explain itself."""
        check_is_fitted(self, "weights_")
        if predicted is None:
            predicted = self.predict_proba(X).argmax(axis=1)
        labels = self.classes_[np.asarray(predicted)]
        for member in self.members_:
            if hasattr(member, "explain"):
                index = {label: i for i, label in enumerate(member.classes_.tolist())}
                member_predicted = np.array([index.get(label, -1) for label in labels])
                known = member_predicted >= 0
                out: list[list[tuple[str, float]]] = [[] for _ in range(len(labels))]
                if known.any():
                    rows = np.flatnonzero(known)
                    frame = as_frame(X)
                    for row, words in zip(rows, member.explain(
                            frame.iloc[rows], top_k=top_k, predicted=member_predicted[rows]),
                            strict=True):
                        out[row] = words
                return out
        return [[] for _ in range(len(labels))]

    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write the ensemble with one sub-directory per member."""
        check_is_fitted(self, "weights_")
        directory = Path(path)
        for i, member in enumerate(self.members_):
            member.save(directory / f"member_{i}")
        artifact = Artifact(
            kind=KIND,
            config={"weights": self.weights_.tolist(), "members": len(self.members_)},
            arrays={},
            labels=[str(c) for c in self.classes_],
        )
        return save_artifact(directory, artifact, metrics=metrics)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an ensemble directory (members through the registry)."""
        from mcu_nlp.classifiers.registry import load_classifier

        directory = Path(path)
        artifact = load_artifact(directory, expected_kind=KIND)
        members = [
            load_classifier(directory / f"member_{i}") for i in range(artifact.config["members"])
        ]
        return cls.from_fitted(members, artifact.config["weights"])


def _fit_weights(member_log_proba: list[np.ndarray], y_index: np.ndarray) -> np.ndarray:
    rows = np.arange(len(y_index))
    stacked = np.stack(member_log_proba)  # (members, n, classes)

    def loss(weights: np.ndarray) -> float:
        proba = softmax(np.tensordot(weights, stacked, axes=1), axis=1)
        return float(-np.log(np.clip(proba[rows, y_index], 1e-12, None)).mean())

    start = np.full(len(member_log_proba), 1.0 / len(member_log_proba))
    return minimize(loss, start, method="L-BFGS-B", bounds=[(0, 5)] * len(start)).x
