"""``score``: classify appeal texts with a model bundle, per label the class and its confidence.

Output columns, per label ``L`` of the bundle: ``L`` (the predicted class), ``L_confidence``,
``L_confident`` (whether the confidence reaches the label's routing threshold, raised by the
precision audit's overrides when the bundle is the store's active version), ``L_top`` and
``L_top_confidence`` (the ``top_k`` classes and their confidences); then ``model_version``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mcu_nlp.batch.job import ERROR_COLUMN, BatchJob
from mcu_nlp.routing.thresholds import apply_overrides
from mcu_nlp.services.models import default_loader

if TYPE_CHECKING:
    import pyarrow as pa

CONTEXT_COLUMNS = ("district", "channel", "created_at")
"""Inputs known at filing time that a bundle's classifiers may use, read when present."""


def active_bundle() -> tuple[Path, dict[str, float]]:
    """The store's active model version: its bundle directory and threshold overrides.

    Raises:
        ValueError: No version is active in the store.
    """
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.services.threshold_overrides import active_overrides
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store

    url = get_settings().store_url
    store = Store.from_url(url)
    try:
        registry = ModelRegistry(store)
        version = registry.active_version()
        if version is None:
            raise ValueError(f"no model version is active in the store at {url}; "
                             "give a bundle directory (--bundle)")
        with store.session() as session:
            overrides = active_overrides(session, version)
        return Path(registry.get(version).path), dict(overrides)
    finally:
        store.dispose()


class ScoreJob(BatchJob):
    """Classify appeals with one model bundle, loaded once per worker.

    Args:
        bundle: Bundle directory (see :class:`mcu_nlp.classifiers.bundle.ModelBundle`);
            ``None``: the store's active version (resolved by :meth:`configure`).
        overrides: Label → threshold floor of the precision audit (see
            :func:`mcu_nlp.routing.thresholds.apply_overrides`).
        top_k: Classes listed per label.
        context: Context columns passed to the bundle when a batch has them.
        **common: ``id_column``, ``text_column``, ``keep`` (see :class:`BatchJob`).
    """

    name = "score"

    def __init__(self, *, bundle: str | Path | None = None,
                 overrides: Mapping[str, float] | None = None, top_k: int = 3,
                 context: Sequence[str] = CONTEXT_COLUMNS, **common: Any) -> None:
        super().__init__(**common)
        if bundle is None:
            bundle, overrides = active_bundle()
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.bundle = default_loader(Path(bundle))
        self.overrides = dict(overrides or {})
        self.top_k = top_k
        self.context = tuple(context)
        self.labels = list(self.bundle.labels)
        self._explain = "explain" in inspect.signature(self.bundle.predict).parameters

    @classmethod
    def configure(cls, available: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
        """Resolve the store's active version here, so workers never open the store."""
        options = dict(options)
        if options.get("bundle") is None:
            options["bundle"], options["overrides"] = active_bundle()
        else:
            bundle = Path(options["bundle"])
            if not (bundle / "manifest.json").is_file():
                raise FileNotFoundError(f"no model bundle at {bundle} (no manifest.json)")
            options["bundle"] = str(bundle.resolve())
        options["context"] = [column for column in CONTEXT_COLUMNS if column in available]
        return options

    @classmethod
    def input_columns(cls, options: dict[str, Any]) -> list[str]:
        """The id, the text, ``keep`` and the context columns present."""
        return list(dict.fromkeys([*super().input_columns(options),
                                   *options.get("context", ())]))

    def output_fields(self) -> list[pa.Field]:
        """Per label: class, confidence, confident, top classes and confidences; the version."""
        import pyarrow as pa

        fields = []
        for label in self.labels:
            fields += [pa.field(label, pa.string()),
                       pa.field(f"{label}_confidence", pa.float64()),
                       pa.field(f"{label}_confident", pa.bool_()),
                       pa.field(f"{label}_top", pa.list_(pa.string())),
                       pa.field(f"{label}_top_confidence", pa.list_(pa.float64()))]
        return [*fields, pa.field("model_version", pa.string()),
                pa.field(ERROR_COLUMN, pa.string())]

    def map_valid(self, rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
        """The bundle's predictions for the checked texts (with the context columns present)."""
        frame = pd.DataFrame({"text": texts})
        for column in self.context:
            if column in rows:
                frame[column] = rows[column].to_numpy()
        kwargs = {"explain": False} if self._explain else {}
        predicted = [apply_overrides(p, self.overrides) or {}
                     for p in self.bundle.predict(frame, top_k=self.top_k, **kwargs)]
        out: dict[str, list[Any]] = {}
        for label in self.labels:
            answers = [p.get(label) for p in predicted]
            out[label] = [a.top[0][0] if a and a.top else None for a in answers]
            out[f"{label}_confidence"] = [float(a.confidence) if a else None for a in answers]
            out[f"{label}_confident"] = [bool(a.confident) if a else None for a in answers]
            out[f"{label}_top"] = [[c for c, _ in a.top] if a else None for a in answers]
            out[f"{label}_top_confidence"] = [[float(s) for _, s in a.top] if a else None
                                              for a in answers]
        out["model_version"] = [str(self.bundle.version)] * len(texts)
        return pd.DataFrame(out)
