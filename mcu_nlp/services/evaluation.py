"""The evaluation job: load labelled data, split as EVAL.md says, fit, measure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mcu_nlp.classifiers.factory import DEFAULT_MODEL, make_classifier
from mcu_nlp.evaluation.datasets import load_spb, load_table
from mcu_nlp.evaluation.protocol import ProtocolSplit, split_by_column, split_by_time
from mcu_nlp.evaluation.runner import evaluate_model
from mcu_nlp.services.training import DEFAULT_ROUTING_TOPICS, recipe_for

SPB_CONTEXT = ("district",)
ROUTING_LABELS = ("department",)


@dataclass(frozen=True, slots=True)
class EvaluationRequest:
    """What to evaluate: a data set or file, how to split it, which label and model."""

    label: str
    dataset: str | None = None
    data: Path | None = None
    text_col: str = "text"
    split_col: str | None = None
    time_col: str | None = None
    cutoff: str | None = None
    context: tuple[str, ...] = ()
    model: str = "sparse"
    topic_col: str | None = None


def build_split(request: EvaluationRequest) -> tuple[ProtocolSplit, tuple[str, ...]]:
    """The protocol split and the context columns for a request."""
    if (request.dataset is None) == (request.data is None):
        raise ValueError("give exactly one of --dataset or --data")
    if request.dataset is not None:
        if request.dataset != "spb":
            raise ValueError(f"unknown dataset {request.dataset!r}; known: spb")
        frame = load_spb()
        split = split_by_time(frame)
        context = request.context or SPB_CONTEXT
    else:
        frame = load_table(request.data)
        frame = _with_text_column(frame, request.text_col)
        if request.split_col:
            split = split_by_column(frame, split_col=request.split_col, time_col=request.time_col)
        elif request.time_col and request.cutoff:
            split = split_by_time(
                frame,
                time_col=request.time_col,
                cutoff=request.cutoff,
                id_col="id" if "id" in frame.columns else None,
            )
        else:
            raise ValueError("give --split-col, or --time-col with --cutoff")
        context = request.context
    for column in (request.label, *context):
        if column not in split.train.columns:
            raise KeyError(
                f"column {column!r} not in the data; columns: {list(split.train.columns)}"
            )
    return split, tuple(context)


def _with_text_column(frame: pd.DataFrame, text_col: str) -> pd.DataFrame:
    if text_col not in frame.columns:
        raise KeyError(f"text column {text_col!r} not in the data; columns: {list(frame.columns)}")
    if text_col != "text":
        frame = frame.drop(columns=["text"], errors="ignore").rename(columns={text_col: "text"})
    return frame


def run_evaluation(request: EvaluationRequest, *, save_model: Path | None = None) -> dict[str, Any]:
    """Run the protocol and return the JSON-ready figures."""
    split, context = build_split(request)
    recipe, topic = request.model, request.topic_col
    if request.model == DEFAULT_MODEL:
        # The product's choice: a routing label follows its topic's history where there is one.
        topics = ({request.label: topic} if topic else
                  DEFAULT_ROUTING_TOPICS if request.dataset is not None else {})
        recipe, topic = recipe_for(request.label, split.fit, split.validation, request.model,
                                   topics, context)
    elif topic and request.model != "routing":
        raise ValueError("--topic-col is for the sparse (default) and routing models")
    if recipe == "routing" and not topic:
        raise ValueError("the routing model needs --topic-col (a topic label of the data)")
    extra = {}
    if request.label in ROUTING_LABELS and "executor_org" in split.test.columns:
        # EVAL.md: department means the final executor only for closed reports.
        extra["closed"] = lambda test: test["executor_org"].notna().to_numpy()
    result, model = evaluate_model(
        lambda: make_classifier(recipe, context_columns=context, topic_column=topic),
        split,
        request.label,
        model_name=recipe if topic is None else f"{recipe} (topic: {topic})",
        extra_parts=extra,
        feature_columns=tuple(context),
    )
    figures = result.as_dict()
    figures["context_columns"] = list(context)
    figures["topic_column"] = topic
    if save_model is not None:
        model.save(save_model, metrics={k: figures[k] for k in ("test", "unseen") if k in figures})
    return figures
