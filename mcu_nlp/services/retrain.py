"""Batch retraining from the store (``mcu-nlp retrain``).

Training labels are people's: a correction, else a label the source confirmed (a closed case's
executor, a moderated topic). The model's own predictions never become labels, so a new version
cannot learn the old one's unconfirmed mistakes. The newest part of the store by time is held out;
the new version and the active one are both scored on it; the new one is registered inactive and
activated only when asked, or (``activate="auto"``) when it wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mcu_nlp.evaluation.protocol import certification_rows
from mcu_nlp.services.models import ModelBundleLike, ModelRegistry
from mcu_nlp.storage import Store
from mcu_nlp.storage import repositories as repo

log = logging.getLogger(__name__)

TrainFn = Callable[..., ModelBundleLike]
Activation = Literal["never", "auto", "always"]


class RetrainError(RuntimeError):
    """Retraining cannot run (too few labelled appeals, no labels)."""


@dataclass(frozen=True, slots=True)
class RetrainReport:
    """What a retraining run did."""

    version: str
    path: str
    train_rows: int
    holdout_rows: int
    holdout_from: str
    new_metrics: dict[str, Any]
    active_version: str | None
    active_metrics: dict[str, Any] | None
    wins: bool
    activated: bool
    notes: list[str] = field(default_factory=list)


def labelled_frame(store: Store, labels: Sequence[str]) -> pd.DataFrame:
    """Appeals with a trusted value for at least one of ``labels`` (missing ones are NaN).

    Columns: ``appeal_id``, ``text``, ``created_at``, ``district``, ``channel`` and one column per
    label; oldest first. See the module doc for which labels are trusted.
    """
    appeals: dict[int, tuple[Any, ...]] = {}
    values: dict[str, dict[int, str]] = {}
    with store.session() as session:
        for label in labels:
            rows = repo.training_labels(session, label=label)
            values[label] = {row[0]: row[5] for row in rows}
            appeals.update({row[0]: row[:5] for row in rows})
    frame = pd.DataFrame(list(appeals.values()),
                         columns=["appeal_id", "text", "created_at", "district", "channel"])
    for label in labels:
        frame[label] = frame["appeal_id"].map(values[label])
    return frame.sort_values(["created_at", "appeal_id"]).reset_index(drop=True)


def score_bundle(bundle: ModelBundleLike, frame: pd.DataFrame, labels: Sequence[str]
                 ) -> dict[str, Any]:
    """Accuracy, and auto-route coverage and precision at the bundle's thresholds, per label."""
    predictions = bundle.predict(frame[["text", "district", "channel", "created_at"]].reset_index(
        drop=True), top_k=1)
    metrics: dict[str, Any] = {"rows": len(frame)}
    for label in labels:
        known = frame[label].notna().to_numpy()
        if label not in bundle.labels or not known.any():
            continue
        truth = frame[label].astype(str).to_numpy()[known]
        top = np.array([str(p[label].top[0][0]) for p in predictions])[known]
        # Each prediction carries the threshold that applies to its class (per-class
        # certificates, rare classes never routed).
        auto = np.array([bool(p[label].confident) for p in predictions], dtype=bool)[known]
        correct = top == truth
        metrics[label] = {
            "rows": int(known.sum()),
            "accuracy": round(float(correct.mean()), 4),
            "auto_coverage": round(float(auto.mean()), 4) if len(frame) else 0.0,
            "auto_precision": round(float(correct[auto].mean()), 4) if auto.any() else None,
        }
    return metrics


def _mean_accuracy(metrics: dict[str, Any], labels: Sequence[str]) -> float:
    values = [metrics[label]["accuracy"] for label in labels if label in metrics]
    return float(np.mean(values)) if values else 0.0


def retrain(
    store: Store,
    registry: ModelRegistry,
    *,
    out_root: Path,
    labels: Sequence[str] | None = None,
    version: str | None = None,
    holdout_share: float = 0.15,
    min_rows: int = 200,
    activate: Activation = "auto",
    train_fn: TrainFn | None = None,
    actor: str = "retrain",
) -> RetrainReport:
    """Train a new version from the store, compare it with the active one, register it.

    Args:
        store: The appeal store.
        registry: Where the new version is registered (and activated, if it wins or is asked to).
        out_root: Folder that receives the new bundle directory.
        labels: Labels to train (default: the active model's, else category and department).
        version: The new version's name (default: ``retrain-<UTC timestamp>``).
        holdout_share: Newest share of the labelled appeals held out for the comparison.
        min_rows: Fewest labelled appeals worth training on.
        activate: ``never``, ``always``, or ``auto`` (when it beats the active version).
        train_fn: ``train_bundle(frame, *, labels, version, out_dir, validation_frame)``
            (default: :func:`mcu_nlp.services.training.train_bundle`).
        actor: Who runs it (audit log).
    """
    active = registry.holder.current or registry.sync()
    labels = list(labels or (active.bundle.labels if active else ["category", "department"]))
    frame = labelled_frame(store, labels)
    if len(frame) < min_rows:
        raise RetrainError(f"only {len(frame)} appeals carry trusted labels for {labels}; "
                           f"need at least {min_rows}")
    cut = int(len(frame) * (1.0 - holdout_share))
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    # The certified thresholds' rows: the newest 10 % of train (more on small data).
    validation_cut = len(train) - certification_rows(len(train))
    fit_part, validation = train.iloc[:validation_cut], train.iloc[validation_cut:]
    version = version or f"retrain-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    if train_fn is None:
        from mcu_nlp.services.training import train_bundle as train_fn
    out_dir = Path(out_root) / version
    bundle = train_fn(fit_part.reset_index(drop=True), labels=labels, version=version,
                      out_dir=out_dir, validation_frame=validation.reset_index(drop=True))
    new_metrics = score_bundle(bundle, holdout, labels)
    active_metrics = score_bundle(active.bundle, holdout, labels) if active else None
    notes = []
    if active_metrics is None:
        wins = True
        notes.append("no active model: the new version wins by default")
    else:
        wins = _mean_accuracy(new_metrics, labels) > _mean_accuracy(active_metrics, labels)
        notes.append(f"mean holdout accuracy {_mean_accuracy(new_metrics, labels):.4f} vs active "
                     f"{_mean_accuracy(active_metrics, labels):.4f}")
    metrics = {"holdout": new_metrics, "train_rows": len(fit_part),
               "validation_rows": len(validation),
               "holdout_from": str(holdout["created_at"].min()),
               "compared_with": active.version if active else None,
               "active_holdout": active_metrics}
    do_activate = activate == "always" or (activate == "auto" and wins)
    registry.register(out_dir, metrics=metrics, actor=actor, activate=do_activate,
                      preloaded=bundle)
    log.info("retrained %s on %d rows (wins=%s, activated=%s)", version, len(fit_part), wins,
             do_activate)
    return RetrainReport(version, str(out_dir), len(fit_part), len(holdout),
                         str(holdout["created_at"].min()), new_metrics,
                         active.version if active else None, active_metrics, wins, do_activate,
                         notes)
