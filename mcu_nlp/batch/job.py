"""What every batch job is: a class built once per worker that maps a batch of appeals.

A job loads its model in ``__init__`` and maps a :class:`pandas.DataFrame` of appeals to one of
results in ``__call__``: the id column (and any ``keep`` columns) as they came, the job's own
columns, and ``error``. Both engines (:mod:`mcu_nlp.batch.engines`) run the same class, so the
logic lives here once.

A row whose text is no appeal text (:func:`mcu_nlp.services.classify.check_text`: not a string,
empty, over 20,000 characters, binary, not Russian) gets the reason in ``error`` and empty
outputs; so does a row the model raises on. Rows are never dropped: a batch of ``n`` rows maps
to ``n`` rows, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from mcu_nlp.services.classify import InvalidAppealText, check_text

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

ERROR_COLUMN = "error"


class BatchJob:
    """Base of the batch jobs: row checks, rejected rows, the id and ``keep`` columns.

    Subclasses set :attr:`name`, load their model in ``__init__`` (calling this one) and
    implement :meth:`map_valid` and :meth:`output_fields`.

    Args:
        id_column: Column that identifies an appeal; copied to the output unchanged.
        text_column: Column with the appeal text.
        keep: Further input columns copied to the output unchanged (``created_at``, ``reason``:
            whatever the next step needs beside the job's results).
    """

    name: ClassVar[str] = ""

    def __init__(self, *, id_column: str = "id", text_column: str = "text",
                 keep: Sequence[str] = ()) -> None:
        self.id_column = id_column
        self.text_column = text_column
        self.keep = tuple(column for column in keep if column not in (id_column,))

    @classmethod
    def configure(cls, available: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
        """The constructor's options for an input with columns ``available`` (driver side).

        Runs once, where the job is started, before any worker: it resolves what workers must
        not look up themselves (the store's active model) and drops optional inputs the data
        does not have, so every worker builds the same output schema.
        """
        return dict(options)

    @classmethod
    def input_columns(cls, options: dict[str, Any]) -> list[str]:
        """Columns the job reads for ``options`` (after :meth:`configure`)."""
        id_column, text_column = options.get("id_column", "id"), options.get("text_column", "text")
        return list(dict.fromkeys([id_column, text_column, *options.get("keep", ())]))

    @property
    def passthrough(self) -> tuple[str, ...]:
        """The input columns the output carries unchanged: the id, then ``keep``."""
        return (self.id_column, *self.keep)

    def output_fields(self) -> list[pa.Field]:
        """The job's own output columns (without the passthrough ones), ``error`` last."""
        raise NotImplementedError

    def map_valid(self, rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
        """The job's outputs for rows whose text passed the check (one output row per row).

        Args:
            rows: The input rows (all read columns), index reset.
            texts: Their checked texts (stripped, stray control characters removed).

        Returns:
            A frame with the job's output columns except ``error``, ``len(rows)`` rows in order.
        """
        raise NotImplementedError

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Map a batch: passthrough columns, the job's outputs and ``error``, row for row."""
        batch = batch.reset_index(drop=True)
        errors: list[str | None] = [None] * len(batch)
        good: list[int] = []
        texts: list[str] = []
        for position, text in enumerate(batch[self.text_column].tolist()):
            try:
                if _missing(text):
                    raise InvalidAppealText("text is missing")
                texts.append(check_text(text))
                good.append(position)
            except InvalidAppealText as exc:
                errors[position] = str(exc)
        names = [field.name for field in self.output_fields() if field.name != ERROR_COLUMN]
        columns = {name: np.full(len(batch), None, dtype=object) for name in names}
        if good:
            mapped = self._map_rows(batch.iloc[good].reset_index(drop=True), texts, names,
                                    errors, good)
            for name in names:
                values = np.empty(len(good), dtype=object)
                values[:] = list(mapped[name])  # cells may be arrays: never broadcast them
                columns[name][good] = values
        out = pd.DataFrame(columns)
        out[ERROR_COLUMN] = pd.Series(errors, dtype=object)
        passthrough = batch[list(self.passthrough)]
        return pd.concat([passthrough, out], axis=1)

    def _map_rows(self, rows: pd.DataFrame, texts: list[str], names: list[str],
                  errors: list[str | None], positions: list[int]) -> pd.DataFrame:
        """:meth:`map_valid` on the batch; if it raises, row by row, rejecting the rows that do."""
        try:
            return self._checked(self.map_valid(rows, texts), len(rows))
        except Exception as batch_error:  # one row the model cannot take must not sink the batch
            log.warning("%s: the batch failed (%s); mapping its %d rows one by one",
                        self.name, batch_error, len(rows))
        parts, failures = [], []
        for i, position in enumerate(positions):
            try:
                parts.append(self._checked(self.map_valid(rows.iloc[[i]].reset_index(drop=True),
                                                          [texts[i]]), 1))
            except Exception as exc:
                failures.append(exc)
                errors[position] = f"{type(exc).__name__}: {exc}"
                parts.append(pd.DataFrame({name: pd.Series([None], dtype=object)
                                           for name in names}))
        if len(failures) == len(positions) > 1:  # not bad rows: the job itself is broken
            raise failures[0]
        return pd.concat(parts, ignore_index=True)

    @staticmethod
    def _checked(mapped: pd.DataFrame, rows: int) -> pd.DataFrame:
        if len(mapped) != rows:
            raise RuntimeError(f"the job mapped {rows} rows to {len(mapped)}")
        return mapped.reset_index(drop=True)


def _missing(value: object) -> bool:
    """``None``, NaN or ``pd.NA``: a null cell, however the batch's dtype shows it."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
