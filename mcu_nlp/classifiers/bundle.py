"""A model version as served: one classifier per label plus its routing thresholds.

A bundle directory holds ``manifest.json`` (kind ``bundle``: version, labels, thresholds, metrics)
and one model directory per label. The API loads one bundle as the active version.

A label may name a fallback: a model inside its directory (the sparse member of a
``transformer-ensemble``) with thresholds certified for it alone. When the label's model cannot
be loaded (onnxruntime missing, a damaged graph), the bundle serves the fallback with its own
thresholds and says so in a warning and in :attr:`ModelBundle.fallen_back`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.artifacts import Artifact, load_artifact, save_artifact
from mcu_nlp.classifiers.base import AppealClassifier, as_frame
from mcu_nlp.classifiers.registry import load_classifier
from mcu_nlp.evaluation.certify import OTHER_GROUP

KIND = "bundle"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class LabelPrediction:
    """One label's answer for one appeal."""

    label: str
    top: list[tuple[str, float]]
    confidence: float
    threshold: float | None
    explanation: list[tuple[str, float]] = field(default_factory=list)

    @property
    def value(self) -> str:
        """The most probable class."""
        return self.top[0][0]

    @property
    def confident(self) -> bool:
        """Whether the confidence reaches the label's routing threshold."""
        return self.threshold is not None and self.confidence >= self.threshold


class ModelBundle:
    """Classifiers keyed by label name, with per-label confidence thresholds."""

    def __init__(
        self,
        models: Mapping[str, AppealClassifier],
        *,
        version: str,
        thresholds: Mapping[str, float] | None = None,
        metrics: Mapping[str, Any] | None = None,
        class_thresholds: Mapping[str, Mapping[str, float]] | None = None,
        fallbacks: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not models:
            raise ValueError("a bundle needs at least one label model")
        self.models = dict(models)
        self.version = version
        self.thresholds = {label: float(value) for label, value in (thresholds or {}).items()}
        # Per predicted class: Mondrian certificates (OTHER_GROUP for the pooled classes), and
        # ``inf`` for classes too rare to route; other classes use ``thresholds``.
        self.class_thresholds = {
            label: {str(k): float(v) for k, v in values.items()}
            for label, values in (class_thresholds or {}).items() if values
        }
        self.metrics = dict(metrics or {})
        # label → {"model": path inside the label's directory, "threshold", "class_thresholds"}
        self.fallbacks = {label: dict(value) for label, value in (fallbacks or {}).items()}
        self.fallen_back: dict[str, str] = {}  # label → why its model was not loaded

    def threshold_for(self, label: str, value: str) -> float | None:
        """The auto-route threshold that applies when ``label`` is predicted as ``value``."""
        by_class = self.class_thresholds.get(label) or {}
        threshold = by_class.get(value, by_class.get(OTHER_GROUP, self.thresholds.get(label)))
        return None if threshold is None or not np.isfinite(threshold) else float(threshold)

    @property
    def labels(self) -> list[str]:
        """Label names in training order."""
        return list(self.models)

    def predict(
        self, frame: pd.DataFrame, top_k: int = 3, *, explain: bool = True
    ) -> list[dict[str, LabelPrediction]]:
        """Top-k classes, confidence and explanation of every label, per appeal."""
        frame = as_frame(frame)
        out: list[dict[str, LabelPrediction]] = [{} for _ in range(len(frame))]
        for label, model in self.models.items():
            proba = model.predict_proba(frame)
            k = min(top_k, proba.shape[1])
            order = np.argsort(-proba, axis=1)[:, :k]
            explanations = (
                model.explain(frame, predicted=order[:, 0])
                if explain and hasattr(model, "explain")
                else [[] for _ in range(len(frame))]
            )
            for row in range(len(frame)):
                top = [(str(model.classes_[j]), float(proba[row, j])) for j in order[row]]
                out[row][label] = LabelPrediction(
                    label=label,
                    top=top,
                    confidence=top[0][1],
                    threshold=self.threshold_for(label, top[0][0]),
                    explanation=explanations[row],
                )
        return out

    def save(self, path: str | Path) -> Path:
        """Write the bundle directory."""
        directory = Path(path)
        for label, model in self.models.items():
            model.save(directory / _safe(label))
        thresholds = {k: (v if np.isfinite(v) else None) for k, v in self.thresholds.items()}
        artifact = Artifact(
            kind=KIND,
            config={
                "version": self.version,
                "thresholds": thresholds,
                "class_thresholds": {
                    label: {k: (v if np.isfinite(v) else None) for k, v in values.items()}
                    for label, values in self.class_thresholds.items()
                },
                "models": {lb: _safe(lb) for lb in self.models},
                **({"fallbacks": {label: _fallback_config(value)
                                  for label, value in self.fallbacks.items()}}
                   if self.fallbacks else {}),
            },
            arrays={},
            labels=self.labels,
        )
        return save_artifact(
            directory, artifact, metrics=self.metrics, extra={"version": self.version}
        )

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """Read a bundle directory written by :meth:`save`."""
        directory = Path(path)
        artifact = load_artifact(directory, expected_kind=KIND)
        thresholds = {
            k: (float("inf") if v is None else float(v))
            for k, v in artifact.config["thresholds"].items()
        }
        class_thresholds = {
            label: {k: (float("inf") if v is None else float(v)) for k, v in values.items()}
            for label, values in (artifact.config.get("class_thresholds") or {}).items()
        }
        fallbacks = artifact.config.get("fallbacks") or {}
        models, fallen_back = {}, {}
        for label, sub in artifact.config["models"].items():
            try:
                models[label] = load_classifier(directory / sub)
            except Exception as exc:
                if label not in fallbacks:
                    raise
                fallback = fallbacks[label]
                models[label] = load_classifier(directory / sub / fallback["model"])
                thresholds[label] = _infinite(fallback.get("threshold"))
                class_thresholds[label] = {
                    k: _infinite(v) for k, v in (fallback.get("class_thresholds") or {}).items()}
                fallen_back[label] = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "model version %s, label %r: its model cannot be loaded (%s); serving the "
                    "fallback %s/%s with the thresholds certified for it alone",
                    artifact.config["version"], label, fallen_back[label], sub,
                    fallback["model"])
        bundle = cls(
            models,
            version=artifact.config["version"],
            thresholds=thresholds,
            metrics=artifact.manifest.get("metrics"),
            class_thresholds=class_thresholds,
            fallbacks=fallbacks,
        )
        bundle.fallen_back = fallen_back
        return bundle


def _infinite(value: Any) -> float:
    return float("inf") if value is None else float(value)


def _fallback_config(value: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(value)
    if "threshold" in out:
        out["threshold"] = (float(out["threshold"]) if out["threshold"] is not None
                            and np.isfinite(out["threshold"]) else None)
    out["class_thresholds"] = {
        k: (float(v) if v is not None and np.isfinite(v) else None)
        for k, v in (out.get("class_thresholds") or {}).items()}
    return out


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) or "label"
