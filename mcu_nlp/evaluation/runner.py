"""Run the fixed protocol for one label and one model: fit, choose the threshold, measure."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.classifiers.base import AppealClassifier
from mcu_nlp.evaluation.metrics import QualityReport, choose_threshold, quality_report
from mcu_nlp.evaluation.protocol import ProtocolSplit


@dataclass(slots=True)
class EvaluationResult:
    """Figures for one label and one model on the protocol."""

    label: str
    model: str
    parts: dict[str, QualityReport]
    threshold: float
    train_seconds: float
    texts_per_second: float
    single_texts_per_second: float
    split: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON layout: one key per part (``test``, ``unseen``, ...) plus timings."""
        out: dict[str, Any] = {
            "label": self.label,
            "model": self.model,
            "threshold": _finite(self.threshold),
            "split": self.split,
        }
        for name, report in self.parts.items():
            out[name] = {k: _finite(v) for k, v in report.as_dict().items()}
        out.update(
            train_seconds=round(self.train_seconds, 2),
            texts_per_second=round(self.texts_per_second, 1),
            single_texts_per_second=round(self.single_texts_per_second, 1),
        )
        return out


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def labelled(split: ProtocolSplit, label: str) -> ProtocolSplit:
    """The split without rows whose label is missing."""

    def keep(frame: pd.DataFrame) -> pd.Series:
        return frame[label].notna() & (frame[label].astype(str).str.strip() != "")

    test_keep = keep(split.test).to_numpy()
    return ProtocolSplit(
        train=split.train[keep(split.train)].reset_index(drop=True),
        fit=split.fit[keep(split.fit)].reset_index(drop=True),
        validation=split.validation[keep(split.validation)].reset_index(drop=True),
        test=split.test[test_keep].reset_index(drop=True),
        unseen=split.unseen[test_keep],
    )


def evaluate_model(
    make_model: Callable[[], AppealClassifier],
    split: ProtocolSplit,
    label: str,
    *,
    model_name: str = "model",
    extra_parts: Mapping[str, Callable[[pd.DataFrame], np.ndarray]] | None = None,
    single_sample: int = 300,
) -> tuple[EvaluationResult, AppealClassifier]:
    """Fit on ``fit``, calibrate and pick the 95 %-precision threshold on ``validation``, test.

    ``extra_parts`` names further test subsets by a mask function over the test frame (e.g.
    closed reports only for the routing label).
    """
    split = labelled(split, label)
    started = time.perf_counter()
    model = make_model().fit(
        split.fit,
        split.fit[label].to_numpy(),
        X_calibration=split.validation,
        y_calibration=split.validation[label].to_numpy(),
    )
    train_seconds = time.perf_counter() - started
    threshold = choose_threshold(
        split.validation[label].to_numpy(), model.predict_proba(split.validation), model.classes_
    )

    started = time.perf_counter()
    proba = model.predict_proba(split.test)
    batch_rate = len(split.test) / (time.perf_counter() - started)
    sample = split.test.iloc[:single_sample]
    started = time.perf_counter()
    for row in range(len(sample)):
        model.predict_proba(sample.iloc[row : row + 1])
    single_rate = len(sample) / (time.perf_counter() - started)

    truth = split.test[label].to_numpy()
    masks = {"test": np.ones(len(truth), dtype=bool), "unseen": split.unseen}
    masks.update(
        {name: np.asarray(fn(split.test), dtype=bool) for name, fn in (extra_parts or {}).items()}
    )
    parts = {
        name: quality_report(truth[mask], proba[mask], model.classes_, threshold=threshold)
        for name, mask in masks.items()
        if mask.any()
    }
    result = EvaluationResult(
        label=label,
        model=model_name,
        parts=parts,
        threshold=threshold,
        train_seconds=train_seconds,
        texts_per_second=batch_rate,
        single_texts_per_second=single_rate,
        split=split.summary(),
    )
    return result, model
