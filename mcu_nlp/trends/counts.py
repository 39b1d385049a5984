"""Daily and weekly message counts by topic, department, territory and channel.

Input is an appeals frame in the layout of :func:`mcu_nlp.ingest.appeals_to_frame`: columns
``id``, ``channel``, ``source``, ``created_at``, ``text``, ``territory``, ``address``, a
``label_<name>`` column per human label and, for appeals a model has labelled, ``pred_<name>``.
A human label wins over a prediction. Which labels make the topic and department series is a
parameter, so a municipality with its own rubricator needs no code change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

HUMAN_PREFIX = "label_"
PREDICTED_PREFIX = "pred_"
MISSING_VALUE = "(не указано)"
TOTAL = "total"


@dataclass(frozen=True, slots=True)
class SeriesDimension:
    """One way of cutting appeals into count series.

    Attributes:
        name: The analyst-facing name of the cut (``topic``, ``territory``...).
        column: A plain frame column to group by (``territory``, ``channel``); or ``None``.
        label: A label name, resolved as ``label_<label>`` else ``pred_<label>``; or ``None``.
    """

    name: str
    column: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if (self.column is None) == (self.label is None):
            raise ValueError(f"dimension {self.name!r} needs exactly one of column= or label=")


def default_dimensions(
    *,
    topic_group: str | None = "category",
    topic: str | None = "reason",
    department: str | None = "department",
    territory_column: str | None = "territory",
    channel_column: str | None = "channel",
) -> tuple[SeriesDimension, ...]:
    """The usual cuts: topic group, fine topic, department, territory and channel.

    Pass ``None`` to leave a cut out. Defaults name the labels of the SPb portal data.
    """
    dims = [
        SeriesDimension("topic_group", label=topic_group) if topic_group else None,
        SeriesDimension("topic", label=topic) if topic else None,
        SeriesDimension("department", label=department) if department else None,
        SeriesDimension("territory", column=territory_column) if territory_column else None,
        SeriesDimension("channel", column=channel_column) if channel_column else None,
    ]
    return tuple(d for d in dims if d is not None)


def effective_label(frame: pd.DataFrame, name: str) -> pd.Series:
    """The human label ``label_<name>`` where present, else the prediction ``pred_<name>``.

    Raises:
        KeyError: When the frame has neither column.
    """
    human, predicted = HUMAN_PREFIX + name, PREDICTED_PREFIX + name
    if human not in frame.columns and predicted not in frame.columns:
        raise KeyError(f"no {human!r} or {predicted!r} column; have {list(frame.columns)}")
    result = _blank_to_na(frame[human]) if human in frame.columns else None
    if predicted in frame.columns:
        prediction = _blank_to_na(frame[predicted])
        result = prediction if result is None else result.fillna(prediction)
    assert result is not None
    return result


def dimension_values(frame: pd.DataFrame, dimension: SeriesDimension) -> pd.Series:
    """Each appeal's value on ``dimension`` as strings; missing values become ``(не указано)``."""
    if dimension.label is not None:
        values = effective_label(frame, dimension.label)
    else:
        if dimension.column not in frame.columns:
            raise KeyError(f"dimension {dimension.name!r}: no column {dimension.column!r}")
        values = _blank_to_na(frame[dimension.column])
    return values.astype("object").where(values.notna(), MISSING_VALUE).astype(str)


def appeal_days(frame: pd.DataFrame, time_column: str = "created_at") -> pd.Series:
    """The calendar day (midnight timestamp, local time as stored) each appeal was filed on."""
    return filing_times(frame, time_column).dt.floor("D")


def filing_times(frame: pd.DataFrame, time_column: str = "created_at") -> pd.Series:
    """Filing times as naive timestamps; unreadable values become NaT (and are not counted)."""
    if time_column not in frame.columns:
        raise KeyError(f"no time column {time_column!r}")
    values = frame[time_column]
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        try:  # ISO 8601 with or without fractions, as exports and the store write it
            stamps = pd.to_datetime(values, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps


def complete_day_range(
    frame: pd.DataFrame,
    time_column: str = "created_at",
    *,
    start_before: str = "03:00",
    end_after: str = "21:00",
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last fully covered day of the data.

    An edge day is partial when the data start late in it (after ``start_before``) or stop
    early (before ``end_after``).

    A partial day looks like a collapse, and a day in progress like a drop, so the detector
    must not see them.
    """
    stamps = filing_times(frame, time_column).dropna()
    if stamps.empty:
        raise ValueError("no valid timestamps in the appeals frame")
    first, last = stamps.min(), stamps.max()
    first_day, last_day = first.floor("D"), last.floor("D")
    if first - first_day > pd.Timedelta(start_before + ":00"):
        first_day += pd.Timedelta(days=1)
    if last - last_day < pd.Timedelta(end_after + ":00"):
        last_day -= pd.Timedelta(days=1)
    return first_day, last_day


def count_series(
    frame: pd.DataFrame,
    dimensions: Sequence[SeriesDimension] | None = None,
    *,
    freq: str = "D",
    time_column: str = "created_at",
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    include_total: bool = True,
    complete_days_only: bool = True,
) -> pd.DataFrame:
    """Counts per period, one column per (dimension, value) series, zero-filled.

    Args:
        frame: Appeals frame (see the module docstring).
        dimensions: Cuts to count; default :func:`default_dimensions` restricted to what the
            frame has.
        freq: ``"D"`` for days or ``"W"`` for ISO weeks (labelled by their Monday).
        time_column: Column with the filing time.
        start: First day to keep (inclusive); default the first complete day.
        end: Last day to keep (inclusive); default the last complete day.
        include_total: Add a ``("total", "total")`` series of all appeals.
        complete_days_only: Drop partial first/last days (see :func:`complete_day_range`).

    Returns:
        Frame indexed by period start with two-level columns ``(dimension, value)``.
    """
    if freq not in ("D", "W"):
        raise ValueError(f"freq must be 'D' or 'W', got {freq!r}")
    dims = list(dimensions) if dimensions is not None else _available_defaults(frame)
    days = appeal_days(frame, time_column)
    valid = days.notna()
    lo, hi = (complete_day_range(frame, time_column) if complete_days_only
              else (days[valid].min(), days[valid].max()))
    lo = max(lo, pd.Timestamp(start)) if start is not None else lo
    hi = min(hi, pd.Timestamp(end)) if end is not None else hi
    calendar = pd.date_range(lo, hi, freq="D")
    keep = valid & days.between(lo, hi)
    periods = days[keep]
    if freq == "W":
        periods = periods.dt.to_period("W-SUN").dt.start_time
        calendar = pd.DatetimeIndex(calendar.to_period("W-SUN").start_time.unique())
    pieces: dict[tuple[str, str], pd.Series] = {}
    if include_total:
        pieces[(TOTAL, TOTAL)] = periods.value_counts()
    for dim in dims:
        values = dimension_values(frame.loc[keep], dim)
        table = pd.crosstab(periods, values)
        for value in table.columns:
            pieces[(dim.name, str(value))] = table[value]
    if not pieces:
        raise ValueError("no dimensions to count")
    counts = pd.DataFrame(pieces).reindex(calendar, fill_value=0).fillna(0).astype("int64")
    counts.columns = pd.MultiIndex.from_tuples(counts.columns, names=["dimension", "value"])
    counts.index.name = "day" if freq == "D" else "week"
    return counts


def _available_defaults(frame: pd.DataFrame) -> list[SeriesDimension]:
    usable = []
    for dim in default_dimensions():
        if dim.column is not None and dim.column in frame.columns:
            usable.append(dim)
        elif dim.label is not None and (HUMAN_PREFIX + dim.label in frame.columns
                                        or PREDICTED_PREFIX + dim.label in frame.columns):
            usable.append(dim)
    return usable


def _blank_to_na(values: pd.Series) -> pd.Series:
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        stripped = values.astype("object").where(values.isna(), values.astype(str).str.strip())
        return stripped.where(stripped != "", None).astype("object")
    return values
