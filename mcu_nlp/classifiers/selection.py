"""Settings of the sparse model chosen by time-ordered cross-validation inside the training part.

On a few thousand rows with a long tail of topics, one held-out tail is too small and too noisy
to choose regularisation or class weights, and the settings that suit 50,000 reference appeals
do not suit a small export. So on small data (fewer than :data:`SMALL_DATA_ROWS` rows) the
training job scores a few candidate settings by forward-chaining cross-validation — the rows, in
time order, are cut into ``folds + 1`` blocks; fold ``k`` learns from blocks ``0..k`` and is
scored on block ``k + 1`` — and keeps the best mean macro-F1. Only training rows take part: the
rows that certify the auto-route threshold are never seen here. On large data the defaults stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

SMALL_DATA_ROWS = 20_000
FOLDS = 2
# Candidate settings (keyword arguments of SparseTextClassifier); the first is the default.
CANDIDATES: tuple[dict[str, Any], ...] = (
    {"C": 0.5, "class_weight": None},
    {"C": 0.5, "class_weight": "balanced"},
    {"C": 0.2, "class_weight": "balanced"},
)


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen settings and the cross-validated score of every candidate."""

    params: dict[str, Any]
    scores: list[tuple[dict[str, Any], float]]
    folds: int

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {"params": self.params, "folds": self.folds,
                "scores": [{"params": p, "macro_f1": round(s, 4)} for p, s in self.scores]}


def time_folds(n_rows: int, folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward-chaining folds over rows in time order: (learn rows, score rows)."""
    edges = np.linspace(0, n_rows, folds + 2).astype(int)
    return [(np.arange(0, edges[k + 1]), np.arange(edges[k + 1], edges[k + 2]))
            for k in range(folds)]


def choose_settings(
    make_model: Callable[[dict[str, Any]], Any],
    frame: Any,
    labels: Sequence[Any],
    *,
    candidates: Sequence[dict[str, Any]] = CANDIDATES,
    folds: int = FOLDS,
) -> Selection:
    """Score ``candidates`` by forward-chaining cross-validation; the best mean macro-F1 wins.

    ``make_model(params)`` returns an unfitted classifier. Ties keep the earlier candidate, so
    the default wins unless another setting is better.
    """
    labels = np.asarray(labels, dtype=object)
    splits = time_folds(len(labels), folds)
    scores: list[tuple[dict[str, Any], float]] = []
    for params in candidates:
        fold_scores = []
        for learn, score in splits:
            if len(set(labels[learn].tolist())) < 2 or len(score) == 0:
                continue
            model = make_model(dict(params)).fit(frame.iloc[learn], labels[learn])
            predicted = model.predict(frame.iloc[score])
            truth = labels[score]
            present = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
            fold_scores.append(f1_score(truth, predicted, labels=present, average="macro",
                                        zero_division=0))
        scores.append((dict(params), float(np.mean(fold_scores)) if fold_scores else 0.0))
    best = max(range(len(scores)), key=lambda i: (scores[i][1], -i))
    return Selection(params=dict(scores[best][0]), scores=scores, folds=folds)
