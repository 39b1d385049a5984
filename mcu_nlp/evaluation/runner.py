"""Run the fixed protocol for one label and one model: fit, certify the threshold, measure.

The model is fitted on the protocol's ``fit`` part only; whatever it calibrates (stack, pooling
weights, components) it takes from that part's own time tail. The ``validation`` part is then
used for thresholds alone:

* the product's auto-route threshold, certified with a finite-sample precision bound
  (:mod:`mcu_nlp.evaluation.certify`) — the figures of every part (``coverage_at_95``,
  ``precision_at_threshold`` with its 95 % interval) are at this threshold;
* the EVAL.md yardstick threshold (lowest validation threshold with precision ≥ 0.95, no bound),
  reported beside as ``yardstick`` so figures stay comparable with earlier versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.classifiers.base import AppealClassifier
from mcu_nlp.evaluation.certify import (
    CONFIDENCE_LEVEL,
    TARGET_PRECISION,
    certify_model,
    rare_classes,
)
from mcu_nlp.evaluation.guards import check_features, check_threshold_rows
from mcu_nlp.evaluation.metrics import (
    QualityReport,
    choose_threshold,
    json_ready,
    quality_report,
    ranked_coverage,
)
from mcu_nlp.evaluation.protocol import ProtocolSplit, labelled_rows


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
    certificate: dict[str, Any] = field(default_factory=dict)
    yardstick: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON layout: one key per part (``test``, ``unseen``, ...) plus timings."""
        out: dict[str, Any] = {
            "label": self.label,
            "model": self.model,
            "threshold": json_ready(self.threshold),
            "split": self.split,
            "skipped_rows": self.skipped,
            "certificate": {k: json_ready(v) for k, v in self.certificate.items()},
        }
        for name, report in self.parts.items():
            out[name] = {k: json_ready(v) for k, v in report.as_dict().items()}
            if name in self.yardstick:
                out[name]["yardstick"] = self.yardstick[name]
        out.update(
            train_seconds=round(self.train_seconds, 2),
            texts_per_second=round(self.texts_per_second, 1),
            single_texts_per_second=round(self.single_texts_per_second, 1),
        )
        return out




def labelled(split: ProtocolSplit, label: str) -> ProtocolSplit:
    """The split without rows whose label or text is missing (empty rows of an export)."""

    def keep(frame: pd.DataFrame) -> pd.Series:
        return labelled_rows(frame, label)

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
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
    feature_columns: tuple[str, ...] = (),
) -> tuple[EvaluationResult, AppealClassifier]:
    """Fit on ``fit``, certify the auto-route threshold on ``validation``, test.

    ``extra_parts`` names further test subsets by a mask function over the test frame (e.g.
    closed reports only for the routing label). ``feature_columns`` are the inputs the model
    reads besides the text; a column written after filing is refused (see
    :mod:`mcu_nlp.evaluation.guards`).
    """
    check_features(feature_columns, label)
    before = split.summary()
    split = labelled(split, label)
    after = split.summary()
    skipped = {part: before[part] - after[part] for part in ("fit", "validation", "test")
               if before[part] != after[part]}
    started = time.perf_counter()
    model = make_model().fit(split.fit, split.fit[label].to_numpy())
    train_seconds = time.perf_counter() - started
    validation_truth = split.validation[label].to_numpy()
    validation_proba = model.predict_proba(split.validation)
    check_threshold_rows(split.validation, split.test)
    certificate = certify_model(validation_truth, validation_proba, model.classes_,
                                target=target, level=level,
                                never_route=rare_classes(split.fit[label]))
    yardstick_threshold = choose_threshold(validation_truth, validation_proba, model.classes_,
                                           target_precision=target)
    threshold = certificate.threshold

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
    routed = certificate.routed_mask(proba, model.classes_)
    parts = {
        name: quality_report(truth[mask], proba[mask], model.classes_, threshold=threshold,
                             routed=routed[mask])
        for name, mask in masks.items()
        if mask.any()
    }
    yardstick = {}
    for name, mask in masks.items():
        if mask.any():
            plain = quality_report(truth[mask], proba[mask], model.classes_,
                                   threshold=yardstick_threshold)
            yardstick[name] = {"threshold": json_ready(yardstick_threshold),
                               "coverage": plain.coverage_at_95,
                               "precision": json_ready(plain.precision_at_threshold),
                               "ranked_coverage_chosen_on_test": ranked_coverage(
                                   truth[mask], proba[mask], model.classes_, target)}
    result = EvaluationResult(
        label=label,
        model=model_name,
        parts=parts,
        threshold=threshold,
        train_seconds=train_seconds,
        texts_per_second=batch_rate,
        single_texts_per_second=single_rate,
        split=split.summary(),
        certificate=certificate.as_dict(),
        yardstick=yardstick,
        skipped=skipped,
    )
    return result, model
