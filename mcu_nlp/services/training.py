"""Training job: build a model version (a :class:`ModelBundle`) from labelled appeals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mcu_nlp.classifiers.bundle import ModelBundle
from mcu_nlp.classifiers.factory import DEFAULT_MODEL, make_classifier
from mcu_nlp.classifiers.selection import SMALL_DATA_ROWS, choose_settings
from mcu_nlp.evaluation.certify import (
    CONFIDENCE_LEVEL,
    TARGET_PRECISION,
    certify_model,
    rare_classes,
)
from mcu_nlp.evaluation.metrics import choose_threshold, json_ready, quality_report
from mcu_nlp.evaluation.protocol import certification_rows, labelled_rows, split_by_time
from mcu_nlp.settings import get_settings

DEFAULT_CONTEXT = ("district",)
MIN_ROWS_PER_LABEL = 20
# Routing labels learned through a topic (topic × territory history, the ``routing`` recipe):
# routing label → the topic label whose history it follows. Used only where the training rows
# carry that topic label.
DEFAULT_ROUTING_TOPICS = {"department": "reason", "department_group": "reason"}
# ``prepare_serving(label, classifier, validation_part, *, truth, never_route, target, level)``
# → ``(served classifier, info)``: turns a fitted classifier into the one the bundle serves (the
# transformer's ONNX twin, :mod:`mcu_nlp.services.transformer_job`); it may refuse by raising.
# ``info`` may carry "validation_proba" (the served model's, reused here) and "fallback"
# ({"model": path inside the label's folder, "classifier": the fitted fallback}).
ServingHook = Callable[..., tuple[Any, dict[str, Any]]]


def new_version() -> str:
    """A sortable version name from the current UTC time."""
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")


def train_bundle(
    frame: pd.DataFrame,
    *,
    labels: Sequence[str],
    version: str,
    out_dir: Path,
    validation_frame: pd.DataFrame | None = None,
    context_columns: Sequence[str] = DEFAULT_CONTEXT,
    model: str = DEFAULT_MODEL,
    test_frame: pd.DataFrame | None = None,
    routing_topics: Mapping[str, str] | None = None,
    target: float = TARGET_PRECISION,
    level: float = CONFIDENCE_LEVEL,
    transformer_params: Mapping[str, Any] | None = None,
    prepare_serving: ServingHook | None = None,
) -> ModelBundle:
    """Fit one classifier per label, certify its auto-route threshold, save the bundle.

    The classifier is fitted (and calibrates its stack on its own time tail) on ``frame``
    only; the auto-route threshold is certified on ``validation_frame``, which nothing else
    sees (:mod:`mcu_nlp.evaluation.certify`): the routed share is at least ``target`` precise
    with confidence ``level``. Where nothing can be certified the label routes nothing
    automatically, and the bundle's metrics say why.

    Args:
        frame: Training appeals with ``text``, the label columns and the context columns. If no
            ``validation_frame`` is given, its latest rows by ``created_at`` are held out (10 %,
            more for small data: :func:`mcu_nlp.evaluation.protocol.certification_rows`).
        labels: Label columns to learn; rows missing a label are skipped for that label.
        version: Name of the model version.
        out_dir: Bundle folder to write.
        validation_frame: Held-out appeals for the certified thresholds only.
        context_columns: Categorical inputs known at filing time (missing ones are added empty).
        model: Recipe name (see :func:`mcu_nlp.classifiers.factory.make_classifier`).
        test_frame: Optional later appeals; their figures are recorded in the manifest.
        routing_topics: Routing label → topic label (default :data:`DEFAULT_ROUTING_TOPICS`).
            With the default recipe, such a label gets the ``routing`` recipe when the training
            and validation rows carry the topic label.
        target: Promised precision of the auto-routed appeals.
        level: Confidence of the promise (``1 − δ``).
        transformer_params: Passed to the transformer of the transformer recipes.
        prepare_serving: Turns each fitted classifier into the served one before its threshold
            is certified (see :data:`ServingHook`); a fallback it names gets thresholds
            certified for it alone on the same rows.
    """
    topics = DEFAULT_ROUTING_TOPICS if routing_topics is None else routing_topics
    if validation_frame is None:
        ordered = frame.sort_values("created_at", kind="stable") if "created_at" in frame else frame
        n_hold = certification_rows(len(ordered))
        frame, validation_frame = ordered.iloc[:-n_hold], ordered.iloc[-n_hold:]
    context = [c for c in context_columns if c in frame.columns]
    models, thresholds, class_thresholds, metrics, fallbacks = {}, {}, {}, {}, {}
    for label in labels:
        fit_part = _labelled(frame, label)
        validation_part = _labelled(validation_frame, label)
        if len(fit_part) < MIN_ROWS_PER_LABEL or validation_part.empty:
            raise ValueError(
                f"label {label!r}: {len(fit_part)} training and "
                f"{len(validation_part)} validation rows are too few"
            )
        recipe, topic = recipe_for(label, fit_part, validation_part, model, topics, context)
        classifier = make_classifier(recipe, context_columns=context, topic_column=topic,
                                     transformer_params=transformer_params).fit(
            fit_part, fit_part[label].to_numpy())
        truth = validation_part[label].to_numpy()
        never_route = rare_classes(fit_part[label])
        serving: dict[str, Any] = {}
        if prepare_serving is not None:
            classifier, serving = prepare_serving(label, classifier, validation_part, truth=truth,
                                                  never_route=never_route, target=target,
                                                  level=level)
        validation_proba = serving.pop("validation_proba", None)
        if validation_proba is None:
            validation_proba = classifier.predict_proba(validation_part)
        certificate = certify_model(truth, validation_proba, classifier.classes_,
                                    target=target, level=level, never_route=never_route)
        fallback = serving.pop("fallback", None)
        if fallback is not None:
            fallback_model = fallback["classifier"]
            fallback_cert = certify_model(truth, fallback_model.predict_proba(validation_part),
                                          fallback_model.classes_, target=target, level=level,
                                          never_route=never_route)
            fallbacks[label] = {"model": fallback["model"],
                                "threshold": fallback_cert.threshold,
                                "class_thresholds": fallback_cert.bundle_thresholds()}
            serving["fallback"] = {"model": fallback["model"],
                                   "certificate": fallback_cert.as_dict()}
        thresholds[label] = certificate.threshold
        class_thresholds[label] = certificate.bundle_thresholds()
        metrics[label] = {
            "recipe": recipe if topic is None else f"{recipe} (topic: {topic})",
            "certificate": certificate.as_dict(),
            "yardstick_threshold": json_ready(choose_threshold(
                truth, validation_proba, classifier.classes_, target_precision=target)),
            "validation": _report(validation_part, label, validation_proba, classifier,
                                  certificate),
            **({"serving": serving} if serving else {}),
        }
        if test_frame is not None and not _labelled(test_frame, label).empty:
            test_part = _labelled(test_frame, label)
            metrics[label]["test"] = _report(
                test_part, label, classifier.predict_proba(test_part), classifier, certificate)
        models[label] = classifier
    bundle = ModelBundle(models, version=version, thresholds=thresholds, metrics=metrics,
                         class_thresholds=class_thresholds, fallbacks=fallbacks)
    bundle.save(out_dir)
    return bundle


def recipe_for(
    label: str,
    fit_part: pd.DataFrame,
    validation_part: pd.DataFrame,
    model: str,
    routing_topics: Mapping[str, str],
    context_columns: Sequence[str] = DEFAULT_CONTEXT,
) -> tuple[str, str | None]:
    """The recipe for one label: ``routing`` through its topic where the data allow it.

    On small data (fewer than :data:`~mcu_nlp.classifiers.selection.SMALL_DATA_ROWS` training
    rows) routing through the topic and the direct model are compared by time-ordered
    cross-validation inside the training rows, and the better one is kept.
    """
    topic = routing_topics.get(label)
    if (model != DEFAULT_MODEL or topic is None or topic == label
            or topic not in fit_part.columns or topic not in validation_part.columns):
        return model, None
    if (len(_labelled(fit_part, topic)) < MIN_ROWS_PER_LABEL
            or _labelled(validation_part, topic).empty):
        return model, None
    rows = _labelled(fit_part, label)
    if len(rows) >= SMALL_DATA_ROWS:
        return "routing", topic
    context = [c for c in context_columns if c in rows.columns]
    chosen = choose_settings(
        lambda params: make_classifier(params["recipe"], context_columns=context,
                                       topic_column=topic, tune="off"),
        rows, rows[label].to_numpy(),
        candidates=({"recipe": "routing"}, {"recipe": DEFAULT_MODEL}))
    return (("routing", topic) if chosen.params["recipe"] == "routing"
            else (DEFAULT_MODEL, None))


def _labelled(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    return frame[labelled_rows(frame, label)].reset_index(drop=True)




def _report(part: pd.DataFrame, label: str, proba: Any, classifier: Any, certificate: Any
            ) -> dict[str, Any]:
    report = quality_report(
        part[label].to_numpy(), proba, classifier.classes_, threshold=certificate.threshold,
        routed=certificate.routed_mask(proba, classifier.classes_),
    ).as_dict()
    return {k: json_ready(v) for k, v in report.items()}


def train_reference_bundle(
    *,
    dataset: str,
    labels: Sequence[str],
    version: str | None,
    out: Path | None,
    console: Any = None,
    model: str = DEFAULT_MODEL,
) -> tuple[ModelBundle, Path]:
    """Train on the reference data set's protocol train part; record test figures."""
    if dataset != "spb":
        raise ValueError(f"unknown dataset {dataset!r}; known: spb")
    from mcu_nlp.evaluation.datasets import load_spb

    split = split_by_time(load_spb())
    version = version or new_version()
    path = out or get_settings().model_store / version
    if console is not None:
        console.print(
            f"training {', '.join(labels)} on {len(split.fit)} appeals, "
            f"validating on {len(split.validation)}, testing on {len(split.test)}"
        )
    bundle = train_bundle(
        split.fit,
        labels=labels,
        version=version,
        out_dir=path,
        validation_frame=split.validation,
        test_frame=split.test,
        model=model,
    )
    return bundle, path
