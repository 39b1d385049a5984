"""Reporting periods: a week or a quarter ending on a given date, and the one before it.

The console's overview also reads a calendar month (:func:`month_period`) and any run of days
(:func:`custom_period`); the API's reports stay on weeks and quarters (:data:`PeriodKind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import pandas as pd

__all__ = ["AnyPeriodKind", "Period", "PeriodKind", "custom_period", "month_period",
           "previous_period", "report_period"]

PeriodKind = Literal["week", "quarter"]
AnyPeriodKind = Literal["week", "month", "quarter", "custom"]

_MONTH_NAMES = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
                "сентябрь", "октябрь", "ноябрь", "декабрь")

_QUARTER_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True, slots=True)
class Period:
    """Days ``start``..``end``, both inclusive.

    Attributes:
        kind: ``week`` or ``quarter`` (``month`` and ``custom`` in the console).
        start: First day.
        end: Last day.
    """

    kind: AnyPeriodKind
    start: date
    end: date

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days + 1

    @property
    def as_of(self) -> pd.Timestamp:
        """The moment the period closes (midnight after ``end``): figures are as known then."""
        return pd.Timestamp(self.end) + pd.Timedelta(days=1)

    def title(self) -> str:
        """Russian caption, e.g. «неделя 15.03.2021 – 21.03.2021» or «I квартал 2021 г.»."""
        span = f"{self.start:%d.%m.%Y} – {self.end:%d.%m.%Y}"
        if self.kind == "month":
            label = f"{_MONTH_NAMES[self.start.month - 1]} {self.start.year} г."
            full = self.start.day == 1 and self.end == _month_end(self.end.year, self.end.month)
            return label if full else f"{label} ({span})"
        if self.kind == "custom":
            return f"период {span}"
        if self.kind == "quarter":
            q = (self.start.month - 1) // 3 + 1
            full = self.start == _quarter_start(self.start) and \
                self.end == _quarter_end(self.start)
            label = f"{_QUARTER_NAMES[q]} квартал {self.start.year} г."
            return label if full else f"{label} ({span})"
        return f"неделя {span}"

    def to_dict(self) -> dict[str, str]:
        """Plain data: kind and ISO dates."""
        return {"kind": self.kind, "start": self.start.isoformat(), "end": self.end.isoformat()}


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _quarter_end(d: date) -> date:
    start = _quarter_start(d)
    nxt = date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    return nxt - timedelta(days=1)


def report_period(kind: PeriodKind, end: date | datetime | str) -> Period:
    """The period of ``kind`` ending on ``end``.

    A week is the 7 days ending on ``end`` (pass a Sunday for a calendar week). A quarter is the
    calendar quarter holding ``end``, up to ``end`` (quarter-to-date if ``end`` is mid-quarter).

    Raises:
        ValueError: Unknown ``kind`` or a date that does not parse.
    """
    last = pd.Timestamp(end).date()
    if kind == "week":
        return Period("week", last - timedelta(days=6), last)
    if kind == "quarter":
        return Period("quarter", _quarter_start(last), last)
    raise ValueError(f"unknown period kind {kind!r}; use 'week' or 'quarter'")


def month_period(end: date | datetime | str) -> Period:
    """The calendar month holding ``end``, up to ``end`` (month-to-date if mid-month)."""
    last = pd.Timestamp(end).date()
    return Period("month", last.replace(day=1), last)


def custom_period(start: date | datetime | str, end: date | datetime | str) -> Period:
    """The days ``start``..``end``; compared with as many days right before ``start``.

    Raises:
        ValueError: ``start`` after ``end``, or a date that does not parse.
    """
    first, last = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if first > last:
        raise ValueError(f"the period starts ({first}) after it ends ({last})")
    return Period("custom", first, last)


def _month_end(year: int, month: int) -> date:
    return _quarter_end(date(year, month, 1)) if month % 3 == 0 else \
        date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)


def previous_period(period: Period) -> Period:
    """The period to compare with.

    For a week: the previous 7 days. For a quarter: the same part of the previous quarter — the
    same month of the quarter and day of the month, a month's last day mapping to the last day
    (so a full quarter compares with the full previous quarter, 31 March with 31 December). For a
    month: the same part of the previous month, by the same rule. For custom days: as many days
    right before them.
    """
    if period.kind == "week":
        return Period("week", period.start - timedelta(days=7), period.end - timedelta(days=7))
    if period.kind == "custom":
        return Period("custom", period.start - timedelta(days=period.days),
                      period.start - timedelta(days=1))
    if period.kind == "month":
        prev_start = (period.start - timedelta(days=1)).replace(day=1)
        last = _month_end(prev_start.year, prev_start.month)
        if period.end == _month_end(period.end.year, period.end.month):
            return Period("month", prev_start, last)
        return Period("month", prev_start, prev_start.replace(day=min(period.end.day, last.day)))
    prev_start = _quarter_start(period.start - timedelta(days=1))
    month = prev_start.month + (period.end.month - period.start.month)
    last = _month_end(prev_start.year, month)
    if period.end == _month_end(period.end.year, period.end.month):
        prev_end = last
    else:
        prev_end = date(prev_start.year, month, min(period.end.day, last.day))
    return Period("quarter", prev_start, prev_end)
