"""Routing from topic × territory history: ``P(dept | x) = Σ_t P(t | text) · P(dept | t, place)``.

Who handles an appeal depends on what it is about and where: the same topic goes to a different
district body in every district, and the same district body handles many topics. A direct text
model must learn every (topic, place) pair from the text alone; this model splits the problem
into two parts that each have plenty of data:

1. a topic model (the default sparse classifier, no context) trained on a *topic label* of the
   training rows (e.g. the fine topic ``reason``), used only as a training target, never as an
   input;
2. a routing table ``P(dept | topic, place)`` counted on the training rows, smoothed towards
   ``P(dept | topic)`` for rare or unseen places.

Its probabilities are a mixture over the topic posterior, so they are calibrated as far as the
topic model is. On its own it already routes better than the direct model; pooled with it in an
:class:`~mcu_nlp.classifiers.ensemble.EnsembleClassifier` (weights on validation) it is the
``routing`` recipe. Any label sets work; the place is any tuple of categorical context columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from mcu_nlp.artifacts import Artifact, load_artifact, save_artifact
from mcu_nlp.classifiers.base import as_frame, calibration_parts, label_classes
from mcu_nlp.classifiers.context import _missing

KIND = "topic-territory"
TOPIC_MODEL_DIR = "topic_model"


class TopicTerritoryClassifier(ClassifierMixin, BaseEstimator):
    """Topic model × routing table learned from the history of topic × place → label.

    Args:
        topic_column: Training-only column holding the topic label (rows without one are left
            out of the topic model and of the table).
        context_columns: Categorical place columns known at filing time (e.g. ``("district",)``).
        smoothing: Pseudo-count pulling a (topic, place) cell towards ``P(label | topic)``.
        calibration_share: Tail share of the rows held out when no calibration set is given.
        refit: Once the topic model is calibrated, learn it and the table again from the
            training and calibration rows together (see :meth:`refit_on`).
    """

    def __init__(
        self,
        *,
        topic_column: str = "reason",
        context_columns: Sequence[str] = (),
        smoothing: float = 0.5,
        calibration_share: float = 0.1,
        refit: bool = True,
    ) -> None:
        self.topic_column = topic_column
        self.context_columns = context_columns
        self.smoothing = smoothing
        self.calibration_share = calibration_share
        self.refit = refit

    # ------------------------------------------------------------------ training
    def fit(
        self,
        X: Any,
        y: Sequence[Any],
        *,
        X_calibration: Any = None,
        y_calibration: Sequence[Any] | None = None,
    ) -> Self:
        """Fit the topic model and count the routing table on ``X`` (which needs the topic)."""
        from mcu_nlp.classifiers.sparse import SparseTextClassifier

        frame, labels, calibration, calibration_labels = calibration_parts(
            X, y, X_calibration, y_calibration, self.calibration_share, self.context_columns)
        for part, name in ((frame, "training"), (calibration, "calibration")):
            if self.topic_column not in part.columns:
                raise ValueError(
                    f"the {name} rows need the topic column {self.topic_column!r} "
                    f"(a training label, e.g. the fine topic); got {list(part.columns)}")
        self.classes_ = label_classes(labels, calibration_labels)

        has_topic = _present(frame[self.topic_column])
        cal_topic = _present(calibration[self.topic_column])
        if has_topic.sum() < 2 or cal_topic.sum() < 1:
            raise ValueError(f"too few rows with a {self.topic_column!r} topic to learn from")
        topic_rows = frame[has_topic]
        self.topic_model_ = SparseTextClassifier(refit=False).fit(
            topic_rows, topic_rows[self.topic_column].astype(str).to_numpy(),
            X_calibration=calibration[cal_topic],
            y_calibration=calibration[self.topic_column][cal_topic].astype(str).to_numpy(),
        )
        self._fit_table(topic_rows, labels[has_topic])
        if self.refit:
            self.refit_on(pd.concat([frame, calibration], ignore_index=True),
                          np.concatenate([labels, calibration_labels]))
        return self

    def refit_on(self, X: Any, y: Sequence[Any]) -> Self:
        """Learn the topic model's components and the routing table again from ``X``/``y``.

        The topic model keeps its calibration; rows without a topic or with a label outside
        ``classes_`` are left out.
        """
        check_is_fitted(self, "table_")
        frame, labels = as_frame(X, self.context_columns), np.asarray(y, dtype=object)
        known = set(self.classes_.tolist())
        keep = _present(frame[self.topic_column]) & np.array([lb in known for lb in labels],
                                                              dtype=bool)
        rows, labels = frame[keep].reset_index(drop=True), labels[keep]
        self.topic_model_.refit_on(rows, rows[self.topic_column].astype(str).to_numpy())
        topics = set(self.topic_model_.classes_.tolist())
        in_model = rows[self.topic_column].astype(str).isin(topics).to_numpy()
        self._fit_table(rows[in_model], labels[in_model])
        return self

    def _fit_table(self, rows: Any, labels: np.ndarray) -> None:
        topics = {t: i for i, t in enumerate(self.topic_model_.classes_.tolist())}
        classes = {c: i for i, c in enumerate(self.classes_.tolist())}
        places = [self._place(values) for values in self._place_values(rows)]
        self.places_ = {}
        for place in places:
            if place is not None:
                self.places_.setdefault(place, len(self.places_))
        topic_index = np.array([topics[str(t)] for t in rows[self.topic_column].tolist()])
        label_index = np.array([classes[label] for label in labels])
        place_index = np.array([-1 if p is None else self.places_[p] for p in places])
        n_topics, n_classes = len(topics), len(classes)

        by_topic = np.zeros((n_topics, n_classes))
        np.add.at(by_topic, (topic_index, label_index), 1.0)
        overall = np.bincount(label_index, minlength=n_classes) + 1.0
        overall /= overall.sum()
        # Topics never seen with a label (only in the calibration part) fall back to the overall
        # label distribution.
        topic_prior = (by_topic + self.smoothing * overall) / (
            by_topic.sum(axis=1, keepdims=True) + self.smoothing)
        cells = np.zeros((len(self.places_), n_topics, n_classes))
        known = place_index >= 0
        np.add.at(cells, (place_index[known], topic_index[known], label_index[known]), 1.0)
        table = (cells + self.smoothing * topic_prior) / (
            cells.sum(axis=2, keepdims=True) + self.smoothing)
        self.topic_prior_ = topic_prior.astype(np.float32)
        self.table_ = table.astype(np.float32)  # (places, topics, classes)

    def _place_values(self, frame: Any) -> list[tuple[Any, ...]]:
        if not self.context_columns:
            return [()] * len(frame)
        return list(zip(*(frame[c].tolist() for c in self.context_columns), strict=True))

    @staticmethod
    def _place(values: tuple[Any, ...]) -> str | None:
        if values and any(_missing(v) for v in values):
            return None
        return "\x1f".join(str(v) for v in values)

    # ---------------------------------------------------------------- prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Mixture of the place's routing rows, weighted by the topic posterior."""
        check_is_fitted(self, "table_")
        frame = as_frame(X, self.context_columns)
        topic_proba = self.topic_model_.predict_proba(frame).astype(np.float32)
        place_index = np.array([
            self.places_.get(p, -1) if (p := self._place(v)) is not None else -1
            for v in self._place_values(frame)
        ])
        out = np.empty((len(frame), len(self.classes_)), dtype=np.float64)
        for place in np.unique(place_index):
            rows = place_index == place
            table = self.topic_prior_ if place < 0 else self.table_[place]
            out[rows] = topic_proba[rows] @ table
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per appeal."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # --------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write the table and the topic model (a sub-directory)."""
        check_is_fitted(self, "table_")
        directory = Path(path)
        self.topic_model_.save(directory / TOPIC_MODEL_DIR)
        config = {
            "params": {
                "topic_column": self.topic_column,
                "context_columns": list(self.context_columns),
                "smoothing": self.smoothing,
                "calibration_share": self.calibration_share,
            },
            "places": sorted(self.places_, key=self.places_.__getitem__),
        }
        artifact = Artifact(
            kind=KIND, config=config,
            arrays={"table": self.table_, "topic_prior": self.topic_prior_},
            labels=[str(c) for c in self.classes_],
        )
        return save_artifact(directory, artifact, metrics=metrics,
                             training_data_hash=self.topic_model_.training_data_hash_)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a directory written by :meth:`save`."""
        from mcu_nlp.classifiers.sparse import SparseTextClassifier

        directory = Path(path)
        artifact = load_artifact(directory, expected_kind=KIND)
        params = dict(artifact.config["params"])
        params["context_columns"] = tuple(params["context_columns"])
        model = cls(**params)
        model.classes_ = np.array(artifact.labels, dtype=object)
        model.places_ = {place: i for i, place in enumerate(artifact.config["places"])}
        model.table_ = artifact.arrays["table"]
        model.topic_prior_ = artifact.arrays["topic_prior"]
        model.topic_model_ = SparseTextClassifier.load(directory / TOPIC_MODEL_DIR)
        return model


def _present(values: Any) -> np.ndarray:
    return np.array([not _missing(v) and str(v).strip() != "" for v in values.tolist()],
                    dtype=bool)
