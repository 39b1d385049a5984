"""The Russian production calendar: working days, holidays and transferred days off.

Built on the maintained ``holidays`` library (``holidays.Russia``), which carries both the public
holidays (ст. 112 ТК РФ) and the government's yearly transfer decrees: extra days off
(``2021-02-22 Day off (substituted from 02/20/2021)``) and the Saturdays made working days in
exchange (``weekend_workdays``, e.g. 2021-02-20 and 2025-11-01). A plain weekday count, or a
``numpy.busday`` calendar with holidays only, gets those Saturdays wrong.

Conventions (all functions):

* A *working day* is a date that is not a holiday or transferred day off and is either a weekday
  or a Saturday/Sunday declared a working day.
* ``add_working_days(start, n)`` counts from the day **after** ``start``: a ПОС message filed on
  Friday with a 10-working-day deadline is due at the end of the 10th working day after Friday.
  ``n = 0`` rolls a non-working ``start`` forward to the next working day.
* ``working_days_between(a, b)`` counts working days in ``(a, b]``, so
  ``working_days_between(a, add_working_days(a, n)) == n`` for every ``n >= 1``.
* Years outside the ones the library knows the decrees for get the statutory holidays only (the
  library has no transfers for them); the calendar logs nothing and stays usable.

Pre-holiday shortened days (one hour shorter) are ignored by the working-hour arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

__all__ = [
    "ProductionCalendar",
    "add_working_days",
    "add_working_hours",
    "default_calendar",
    "is_holiday",
    "is_working_day",
    "working_days_between",
]


def _as_date(value: date | datetime | pd.Timestamp) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    return value


class ProductionCalendar:
    """Working days of the Russian production calendar over a range of years.

    Args:
        first_year: First year covered (earlier dates raise ``ValueError``).
        last_year: Last year covered.
        workday_start: Start of the working day, for working-hour arithmetic.
        workday_end: End of the working day (08:00 hours between the two by default).
    """

    def __init__(self, first_year: int = 2015, last_year: int = 2035, *,
                 workday_start: time = time(9, 0), workday_end: time = time(17, 0)) -> None:
        if last_year < first_year:
            raise ValueError(f"last_year {last_year} is before first_year {first_year}")
        if workday_end <= workday_start:
            raise ValueError("workday_end must be after workday_start")
        self.first_year = first_year
        self.last_year = last_year
        self.workday_start = workday_start
        self.workday_end = workday_end
        self._holidays = holidays.Russia(years=range(first_year, last_year + 1), language="ru")
        days = pd.date_range(date(first_year, 1, 1), date(last_year, 12, 31), freq="D")
        working = np.array([self._holidays.is_working_day(d.date()) for d in days])
        self._days = days.values.astype("datetime64[D]")
        self._working = working
        # Sorted working days: date arithmetic becomes a binary search.
        self._workdays = self._days[working]

    # ------------------------------------------------------------------ single dates
    def _check(self, d: date) -> None:
        if not self.first_year <= d.year <= self.last_year:
            raise ValueError(
                f"{d} is outside the calendar's years {self.first_year}–{self.last_year}"
            )

    def is_holiday(self, d: date | datetime) -> bool:
        """Whether ``d`` is a public holiday or a transferred day off (not plain weekends)."""
        day = _as_date(d)
        self._check(day)
        return day in self._holidays

    def holiday_name(self, d: date | datetime) -> str | None:
        """The holiday's Russian name, or ``None``."""
        day = _as_date(d)
        self._check(day)
        return self._holidays.get(day)

    def is_working_day(self, d: date | datetime) -> bool:
        """Whether ``d`` is a working day (transferred working Saturdays included)."""
        day = _as_date(d)
        self._check(day)
        return bool(self._working[(np.datetime64(day, "D") - self._days[0]).astype(int)])

    def add_working_days(self, start: date | datetime, n: int) -> date | datetime:
        """The date ``n`` working days after ``start`` (before it for negative ``n``).

        A ``datetime`` keeps its time of day; a ``date`` gives a ``date``.
        """
        day = _as_date(start)
        self._check(day)
        result = self.add_working_days_array(np.array([np.datetime64(day, "D")]), n)[0]
        out = result.astype(date)
        if isinstance(start, datetime):
            return datetime.combine(out, start.timetz())
        return out

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days in ``(a, b]``; negative when ``b`` is before ``a``."""
        da, db = _as_date(a), _as_date(b)
        self._check(da)
        self._check(db)
        if db < da:
            return -self.working_days_between(db, da)
        lo = np.searchsorted(self._workdays, np.datetime64(da, "D"), side="right")
        hi = np.searchsorted(self._workdays, np.datetime64(db, "D"), side="right")
        return int(hi - lo)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (ИМ: 8 working hours).

        Time outside the working day does not count: a post at 20:00 on Friday with 8 hours
        is due at the end of the next working day.
        """
        if hours < 0:
            raise ValueError("hours must be non-negative")
        remaining = timedelta(hours=hours)
        current = start
        if not self.is_working_day(current) or current.time() >= self.workday_end:
            current = datetime.combine(self.add_working_days(current.date(), 1), self.workday_start)
        elif current.time() < self.workday_start:
            current = datetime.combine(current.date(), self.workday_start)
        while True:
            end_of_day = datetime.combine(current.date(), self.workday_end)
            left_today = end_of_day - current
            if remaining <= left_today:
                return current + remaining
            remaining -= left_today
            current = datetime.combine(self.add_working_days(current.date(), 1),
                                       self.workday_start)

    # ------------------------------------------------------------------ arrays (vectorized)
    def add_working_days_array(self, days: np.ndarray, n: int) -> np.ndarray:
        """Vectorized :meth:`add_working_days` over ``datetime64[D]`` values."""
        days = np.asarray(days, dtype="datetime64[D]")
        if n > 0:
            idx = np.searchsorted(self._workdays, days, side="right") + n - 1
        elif n == 0:
            idx = np.searchsorted(self._workdays, days, side="left")
        else:
            idx = np.searchsorted(self._workdays, days, side="left") + n
        if np.any(idx < 0) or np.any(idx >= len(self._workdays)):
            raise ValueError(
                f"result falls outside the calendar's years {self.first_year}–{self.last_year}"
            )
        return self._workdays[idx]

    def working_days_between_array(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Vectorized :meth:`working_days_between` (``a`` and ``b`` as ``datetime64[D]``)."""
        lo = np.searchsorted(self._workdays, np.asarray(a, dtype="datetime64[D]"), side="right")
        hi = np.searchsorted(self._workdays, np.asarray(b, dtype="datetime64[D]"), side="right")
        return (hi - lo).astype(np.int64)


@lru_cache(maxsize=1)
def default_calendar() -> ProductionCalendar:
    """The process-wide calendar (2015–2035, working day 09:00–17:00)."""
    return ProductionCalendar()


def is_working_day(d: date | datetime) -> bool:
    """Whether ``d`` is a working day of the Russian production calendar."""
    return default_calendar().is_working_day(d)


def is_holiday(d: date | datetime) -> bool:
    """Whether ``d`` is a public holiday or a transferred day off."""
    return default_calendar().is_holiday(d)


def add_working_days(start: date | datetime, n: int) -> date | datetime:
    """The date ``n`` working days after ``start`` (see the module conventions)."""
    return default_calendar().add_working_days(start, n)


def working_days_between(a: date | datetime, b: date | datetime) -> int:
    """Working days in ``(a, b]``."""
    return default_calendar().working_days_between(a, b)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """The moment ``hours`` working hours after ``start`` (09:00–17:00 working day)."""
    return default_calendar().add_working_hours(start, hours)
