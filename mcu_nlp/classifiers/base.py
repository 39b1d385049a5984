"""The estimator contract every appeal classifier follows.

Inputs are a :class:`pandas.DataFrame` with a ``text`` column and, optionally, categorical columns
known at filing time (``district``, ``channel``...), or a plain sequence of texts. Outputs follow
scikit-learn: ``predict_proba`` columns are in the order of ``classes_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

TEXT_COLUMN = "text"
MIN_CALIBRATION_ROWS = 500
MAX_SMALL_DATA_SHARE = 0.2


@runtime_checkable
class AppealClassifier(Protocol):
    """What the API, jobs and notebooks need from a classifier."""

    classes_: np.ndarray

    def fit(self, X: Any, y: Sequence[Any]) -> Self:
        """Learn from appeals ``X`` and their labels ``y``."""
        ...

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, one row per appeal, columns as ``classes_``."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as a model directory."""
        ...


def as_frame(X: Any, extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Turn a DataFrame, a sequence of texts or a 2-D array into a frame with a ``text`` column.

    A plain sequence or a one-column array is taken as texts. Missing optional columns are added
    as empty, so a model trained with ``district`` still answers when it is not given.
    """
    if isinstance(X, pd.DataFrame):
        frame = X
        if TEXT_COLUMN not in frame.columns:
            raise ValueError(
                f"input frame needs a {TEXT_COLUMN!r} column; got {list(frame.columns)}"
            )
    elif isinstance(X, pd.Series):
        frame = pd.DataFrame({TEXT_COLUMN: X.to_numpy()})
    elif isinstance(X, str):
        raise TypeError("expected a sequence of texts or a DataFrame, got a single string")
    else:
        array = np.asarray(X, dtype=object)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"expected a sequence of texts, got an array of shape {array.shape}")
        frame = pd.DataFrame({TEXT_COLUMN: array})
    missing = [column for column in extra_columns if column not in frame.columns]
    if missing:
        frame = frame.assign(**{column: None for column in missing})
    return frame


def texts_of(frame: pd.DataFrame) -> list[str]:
    """The texts of a frame as ``str`` (missing values become empty strings)."""
    return [
        "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        for value in frame[TEXT_COLUMN].tolist()
    ]


def calibration_parts(
    X: Any, y: Sequence[Any], X_calibration: Any, y_calibration: Sequence[Any] | None,
    share: float, columns: Sequence[str] = (),
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Training rows and calibration rows: the given calibration set, or the tail of ``X``.

    Both come back as frames (with ``columns`` added empty where missing, see :func:`as_frame`)
    and labels as object arrays. Rows are expected in time order, so the tail is the most recent
    part (as in ``EVAL.md``). The tail is ``share`` of the rows, but on small data at least
    :data:`MIN_CALIBRATION_ROWS` (never more than a fifth of them).
    """
    frame, labels = as_frame(X, columns), np.asarray(y, dtype=object)
    if len(frame) != len(labels):
        raise ValueError(f"X has {len(frame)} rows, y has {len(labels)}")
    if X_calibration is not None:
        if y_calibration is None:
            raise ValueError("X_calibration needs y_calibration")
        return (frame, labels, as_frame(X_calibration, columns),
                np.asarray(y_calibration, dtype=object))
    n_hold = max(int(round(len(frame) * share)),
                 min(MIN_CALIBRATION_ROWS, int(len(frame) * MAX_SMALL_DATA_SHARE)))
    if n_hold < 1 or len(frame) - n_hold < 2:
        raise ValueError("too few rows to hold out a calibration part")
    return frame.iloc[:-n_hold], labels[:-n_hold], frame.iloc[-n_hold:], labels[-n_hold:]


def label_classes(labels: np.ndarray, calibration_labels: np.ndarray, *, minimum: int = 2
                  ) -> np.ndarray:
    """The sorted classes of the training and calibration labels (at least ``minimum``)."""
    classes = np.array(
        sorted(set(labels.tolist()) | set(calibration_labels.tolist()), key=str), dtype=object
    )
    if len(classes) < minimum:
        raise ValueError(f"need at least {minimum} classes")
    return classes
