"""A small, honest stand-in for the lead's ``ModelBundle`` (tests only).

TF-IDF + logistic regression per label, trained on a real SPb slice; thresholds chosen on a later
validation slice for 95 % precision, as the real bundle does. The bundle directory holds a
manifest and the training rows as CSV, and ``load`` refits (deterministic, < 1 s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier


@dataclass
class LabelPrediction:
    label: str
    top: list[tuple[str, float]]
    confidence: float
    threshold: float | None
    explanation: list[tuple[str, float]]

    @property
    def confident(self) -> bool:
        """Whether the confidence reaches the label's routing threshold (as the real bundle)."""
        return self.threshold is not None and self.confidence >= self.threshold


def _inputs(frame: pd.DataFrame) -> list[str]:
    district = frame["district"] if "district" in frame else pd.Series([""] * len(frame))
    return [f"{t} __d_{str(d).replace(' ', '_')}" for t, d in
            zip(frame["text"].fillna(""), district.fillna(""), strict=True)]


def _threshold(confidence: np.ndarray, correct: np.ndarray, target: float = 0.95) -> float | None:
    order = np.argsort(-confidence)
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(hits >= target)[0]
    return None if len(ok) == 0 else float(confidence[order][ok[-1]])


class FakeBundle:
    def __init__(self, version: str, labels: list[str]) -> None:
        self.version, self.labels = version, labels
        self.thresholds: dict[str, float] = {}
        self.models: dict[str, tuple[TfidfVectorizer, SGDClassifier]] = {}

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame) -> FakeBundle:
        for label in self.labels:
            vectorizer = TfidfVectorizer(min_df=1, sublinear_tf=True)
            matrix = vectorizer.fit_transform(_inputs(train))
            model = SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=30, tol=None,
                                  random_state=0).fit(matrix, train[label].astype(str))
            self.models[label] = (vectorizer, model)
            proba = model.predict_proba(vectorizer.transform(_inputs(validation)))
            predicted = model.classes_[proba.argmax(1)]
            threshold = _threshold(proba.max(1), predicted == validation[label].astype(str).values)
            if threshold is not None:
                self.thresholds[label] = threshold
        return self

    def classes(self, label: str) -> list[str]:
        return [str(c) for c in self.models[label][1].classes_]

    def predict(self, frame: pd.DataFrame, top_k: int = 3) -> list[dict[str, LabelPrediction]]:
        inputs = _inputs(frame)
        out: list[dict[str, LabelPrediction]] = [{} for _ in inputs]
        for label, (vectorizer, model) in self.models.items():
            matrix = vectorizer.transform(inputs)
            proba = model.predict_proba(matrix)
            vocab = vectorizer.get_feature_names_out()
            for row, probs in enumerate(proba):
                order = np.argsort(-probs)[:top_k]
                best = order[0]
                coef = model.coef_[best] if model.coef_.shape[0] > 1 else model.coef_[0]
                one = matrix[row]
                contrib = sorted(((vocab[i], float(v * coef[i]))
                                  for i, v in zip(one.indices, one.data, strict=True)),
                                 key=lambda item: -item[1])[:5]
                out[row][label] = LabelPrediction(
                    label, [(str(model.classes_[i]), float(probs[i])) for i in order],
                    float(probs[best]), self.thresholds.get(label), contrib)
        return out

    def save(self, path: Path, train: pd.DataFrame, validation: pd.DataFrame) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        columns = ["text", "district", *self.labels]
        train[columns].to_csv(path / "train.csv", index=False)
        validation[columns].to_csv(path / "validation.csv", index=False)
        (path / "manifest.json").write_text(json.dumps(
            {"version": self.version, "labels": self.labels}, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: Path) -> FakeBundle:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        train = pd.read_csv(Path(path) / "train.csv", keep_default_na=False)
        validation = pd.read_csv(Path(path) / "validation.csv", keep_default_na=False)
        return cls(manifest["version"], manifest["labels"]).fit(train, validation)


def build_fake_bundle(frame: pd.DataFrame, path: Path, version: str,
                      labels: tuple[str, ...] = ("category", "department")) -> Path:
    """Fit on the first 80 % of ``frame`` by time and save the bundle directory."""
    frame = frame.sort_values(["created_at", "id"]).reset_index(drop=True)
    cut = int(len(frame) * 0.8)
    train, validation = frame.iloc[:cut], frame.iloc[cut:]
    bundle = FakeBundle(version, list(labels))
    return bundle.save(path, train, validation)
