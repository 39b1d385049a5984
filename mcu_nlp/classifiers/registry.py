"""Load any saved classifier by the kind written in its manifest."""

from __future__ import annotations

import importlib
from pathlib import Path

from mcu_nlp.artifacts import ArtifactError, read_manifest
from mcu_nlp.classifiers.base import AppealClassifier

# kind → "module:Class"; modules are imported only when a model of that kind is loaded, so the
# API never imports torch unless it serves a transformer.
KINDS = {
    "sparse-text": "mcu_nlp.classifiers.sparse:SparseTextClassifier",
    "embedding-logreg": "mcu_nlp.classifiers.embedding:EmbeddingClassifier",
    "ensemble": "mcu_nlp.classifiers.ensemble:EnsembleClassifier",
    "topic-territory": "mcu_nlp.classifiers.topic_territory:TopicTerritoryClassifier",
    "transformer_classifier": "mcu_nlp.classifiers.transformer:TransformerClassifier",
    # the fine-tuned transformer as served: ONNX Runtime + tokenizer file, no torch
    "transformer_onnx": "mcu_nlp.classifiers.onnx_serving:OnnxTransformerClassifier",
}


def load_classifier(path: str | Path) -> AppealClassifier:
    """Read a model directory of any known kind."""
    kind = read_manifest(path).get("kind")
    if kind not in KINDS:
        raise ArtifactError(
            f"{path} holds a model of unknown kind {kind!r}; known: {sorted(KINDS)}"
        )
    module_name, class_name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name).load(path)
