"""Reading the many ways exports write a timestamp, a whole column at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

# Tried in order on the values the previous format could not read.
_FORMATS = (
    "ISO8601",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d.%m.%y %H:%M",
    "%d.%m.%y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
)
# Anything outside these years is a typo or a wrong column, not a real appeal.
EARLIEST = datetime(1990, 1, 1)
LATEST = datetime(2100, 1, 1)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def _from_number(value: float) -> datetime | None:
    """An Excel serial date (days since 1899-12-30) within the plausible years."""
    if not math.isfinite(value) or not 32874 <= value <= 73051:  # 1990-01-01 .. 2100-01-01
        return None
    return _EXCEL_EPOCH + timedelta(days=value)


def _one(value: str) -> datetime | None:
    """Slow path for a single string the vectorised formats could not read."""
    text = value.strip().replace("г.", "").strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None)


def parse_timestamps(values: Sequence[Any]) -> list[datetime | None]:
    """Parse a column of timestamps; ``None`` where a value is empty, unreadable or implausible.

    Accepts ``datetime``/``date`` objects (from XLSX), Excel serial numbers, ISO 8601 strings and
    Russian day-first strings (``24.12.2025 20:06``). A UTC offset is dropped, keeping the
    wall-clock time as written: exports carry the local time of their region.
    """
    out: list[datetime | None] = [None] * len(values)
    pending: dict[int, str] = {}
    for i, value in enumerate(values):
        if value.__class__ is str:  # the common case first: CSV and JSON cells
            if value:
                pending[i] = value.strip()
        elif isinstance(value, datetime):
            out[i] = value.replace(tzinfo=None)
        elif isinstance(value, date):
            out[i] = datetime(value.year, value.month, value.day)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = _from_number(float(value)) if -1e9 < value < 1e9 else None
        elif isinstance(value, str) and value.strip():
            pending[i] = value.strip()
    for fmt in _FORMATS:
        if not pending:
            break
        series = pd.Series(list(pending.values()), dtype=object)
        try:
            parsed = pd.to_datetime(series, format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):  # e.g. mixed UTC offsets in one column
            continue
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        # Years before 1 (a cell like "0000-…" in some formats) cannot be Python datetimes: such a
        # cell is not a date, and must not sink the others.
        parsed = parsed.where(parsed.dt.year >= 1)
        good = parsed.notna().to_numpy()
        if not good.any():
            continue
        stamps = list(parsed.dt.to_pydatetime())
        still: dict[int, str] = {}
        for (i, value), ok, stamp in zip(pending.items(), good.tolist(), stamps, strict=True):
            if ok:
                out[i] = stamp
            else:
                still[i] = value
        pending = still
    for i, value in pending.items():
        out[i] = _one(value)
    return [v if v is not None and EARLIEST <= v < LATEST else None for v in out]
