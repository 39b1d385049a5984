"""Batch retraining from the store (``mcu-nlp retrain``).

Training labels are people's: a correction, or a source label a person confirmed (see
:mod:`mcu_nlp.services.appeals`). Labels that merely arrived with an appeal (an import, the API's
``labels``) train only when retraining is configured to use them (``source_labels``,
``MCU_RETRAIN_SOURCE_LABELS``), and then only the ones the source settled (a closed case's
executor, a moderated topic). Every label must be a value of the taxonomy in force (the active
version's classes plus the curated list, :mod:`mcu_nlp.services.taxonomy`); others are ignored.
The model's own predictions never become labels, so a new version cannot learn the old one's
unconfirmed mistakes.

The comparison that decides ``activate="auto"`` is made on a holdout of labels **confirmed by
people** only: the newest ``holdout_share`` of them by the appeal's time, never source labels, and
source labels used for training are older than that holdout (a time split). The new version is
registered inactive and activated only when asked, or when it wins on that holdout.
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
from mcu_nlp.services.appeals import source_label_final
from mcu_nlp.services.models import ModelBundleLike, ModelRegistry
from mcu_nlp.services.taxonomy import Taxonomy, active_taxonomy
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


_FRAME_COLUMNS = ["appeal_id", "text", "created_at", "district", "channel"]


def labelled_frame(store: Store, labels: Sequence[str], *, taxonomy: Taxonomy | None = None,
                   confirmed: bool = True) -> pd.DataFrame:
    """Appeals with a human value for at least one of ``labels`` (missing ones are NaN).

    Args:
        store: The appeal store.
        labels: Label names, one column each.
        taxonomy: When given, values it does not approve are left out (as if missing).
        confirmed: ``True``: labels people gave or confirmed; ``False``: unconfirmed source
            labels the source settled (see :func:`mcu_nlp.services.appeals.source_label_final`).

    Returns:
        Columns ``appeal_id``, ``text``, ``created_at``, ``district``, ``channel`` and one per
        label; oldest first.
    """
    appeals: dict[int, tuple[Any, ...]] = {}
    values: dict[str, dict[int, str]] = {}
    with store.session() as session:
        for label in labels:
            rows = repo.training_labels(session, label=label, confirmed=confirmed)
            kept = [row for row in rows
                    if (taxonomy is None or taxonomy.allows(label, row[5]))
                    and (confirmed or source_label_final(row[6], label))]
            values[label] = {row[0]: row[5] for row in kept}
            appeals.update({row[0]: row[:5] for row in kept})
    frame = pd.DataFrame(list(appeals.values()), columns=_FRAME_COLUMNS)
    for label in labels:
        frame[label] = frame["appeal_id"].map(values[label])
    return frame.sort_values(["created_at", "appeal_id"]).reset_index(drop=True)


def score_bundle(bundle: ModelBundleLike, frame: pd.DataFrame, labels: Sequence[str]
                 ) -> dict[str, Any]:
    """Accuracy, and auto-route coverage and precision at the bundle's thresholds, per label."""
    if frame.empty:
        return {"rows": 0}
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
    taxonomy: Taxonomy | None = None,
    curated_path: Path | None = None,
    source_labels: bool = False,
    min_holdout_rows: int = 30,
) -> RetrainReport:
    """Train a new version from the store, compare it with the active one, register it.

    Args:
        store: The appeal store.
        registry: Where the new version is registered (and activated, if it wins or is asked to).
        out_root: Folder that receives the new bundle directory.
        labels: Labels to train (default: the active model's, else category and department).
        version: The new version's name (default: ``retrain-<UTC timestamp>``).
        holdout_share: Newest share of the people-confirmed appeals held out for the comparison.
        min_rows: Fewest labelled appeals worth training on.
        activate: ``never``, ``always``, or ``auto`` (when it beats the active version on the
            confirmed holdout).
        train_fn: ``train_bundle(frame, *, labels, version, out_dir, validation_frame)``
            (default: :func:`mcu_nlp.services.training.train_bundle`).
        actor: Who runs it (audit log).
        taxonomy: Approved values per label (default: the active version's classes plus the
            curated list at ``curated_path``).
        curated_path: The curated taxonomy file (``<MCU_DATA_DIR>/label_taxonomy.yaml``).
        source_labels: Also train on unconfirmed source labels (older than the holdout).
        min_holdout_rows: Fewest confirmed holdout appeals for ``auto`` to activate anything.

    Raises:
        RetrainError: Too few approved labels to train on.
    """
    active = registry.holder.current or registry.sync()
    labels = list(labels or (active.bundle.labels if active else ["category", "department"]))
    if taxonomy is None:
        taxonomy = active_taxonomy(active.bundle if active else None, labels,
                                   curated_path=curated_path,
                                   model_version=active.version if active else None)
    confirmed = labelled_frame(store, labels, taxonomy=taxonomy, confirmed=True)
    cut = int(len(confirmed) * (1.0 - holdout_share))
    holdout = confirmed.iloc[cut:]
    train = confirmed.iloc[:cut]
    notes = [f"holdout: the newest {len(holdout)} of {len(confirmed)} appeals with labels "
             "confirmed by people"]
    used_source = 0
    if source_labels:
        source = labelled_frame(store, labels, taxonomy=taxonomy, confirmed=False)
        source = source[~source["appeal_id"].isin(holdout["appeal_id"])]
        if len(holdout):  # a time split: nothing newer than the holdout's start trains
            source = source[source["created_at"] < holdout["created_at"].min()]
        used_source = int((~source["appeal_id"].isin(train["appeal_id"])).sum())
        train = (train.set_index("appeal_id").combine_first(source.set_index("appeal_id"))
                 .reset_index()[list(confirmed.columns)]
                 .sort_values(["created_at", "appeal_id"]).reset_index(drop=True))
        notes.append(f"unconfirmed source labels: {used_source} more training appeals")
    if len(train) + len(holdout) < min_rows:
        raise RetrainError(
            f"only {len(train) + len(holdout)} appeals carry approved human labels for {labels} "
            f"(confirmed by people{', or settled source labels' if source_labels else ''}); "
            f"need at least {min_rows}. Labels outside the taxonomy (the active version's "
            "classes and the curated list) are not counted")
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
    holdout_from = str(holdout["created_at"].min()) if len(holdout) else ""
    if len(holdout) < min_holdout_rows:
        wins = False
        notes.append(f"only {len(holdout)} confirmed holdout appeals (< {min_holdout_rows}): "
                     "no comparison, the new version cannot win")
    elif active_metrics is None:
        wins = True
        notes.append("no active model: the new version wins by default")
    else:
        wins = _mean_accuracy(new_metrics, labels) > _mean_accuracy(active_metrics, labels)
        notes.append(f"mean holdout accuracy {_mean_accuracy(new_metrics, labels):.4f} vs active "
                     f"{_mean_accuracy(active_metrics, labels):.4f}")
    metrics = {"holdout": new_metrics, "train_rows": len(fit_part),
               "validation_rows": len(validation),
               "holdout_from": holdout_from, "holdout_labels": "confirmed by people",
               "source_label_rows": used_source,
               "compared_with": active.version if active else None,
               "active_holdout": active_metrics}
    do_activate = activate == "always" or (activate == "auto" and wins)
    registry.register(out_dir, metrics=metrics, actor=actor, activate=do_activate,
                      preloaded=bundle)
    log.info("retrained %s on %d rows (wins=%s, activated=%s)", version, len(fit_part), wins,
             do_activate)
    return RetrainReport(version, str(out_dir), len(fit_part), len(holdout), holdout_from,
                         new_metrics, active.version if active else None, active_metrics, wins,
                         do_activate, notes)
