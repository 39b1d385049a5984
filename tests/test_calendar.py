"""The Russian production calendar around New Year and May holidays (2021, 2025, 2026)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_nlp.calendar import (
    ProductionCalendar,
    add_working_days,
    add_working_hours,
    default_calendar,
    is_holiday,
    is_working_day,
    working_days_between,
)


# Official production-calendar totals (Минтруд): working days per year, January, May.
@pytest.mark.parametrize("year, total, january, may", [
    (2021, 247, 15, 19),
    (2025, 247, 17, 18),
    (2026, 247, 15, 19),
])
def test_working_day_counts_match_the_official_calendar(year, total, january, may):
    assert working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == total
    assert working_days_between(date(year - 1, 12, 31), date(year, 1, 31)) == january
    assert working_days_between(date(year, 4, 30), date(year, 5, 31)) == may


@pytest.mark.parametrize("start, n, expected", [
    # New Year: 2021-01-01..10 off, the first working day is Monday 11th.
    (date(2020, 12, 30), 1, date(2020, 12, 31)),
    (date(2020, 12, 30), 2, date(2021, 1, 11)),
    (date(2020, 12, 31), 1, date(2021, 1, 11)),
    # 2025: 1..8 January off, Thursday 9th works; 31 December 2025 is a transferred day off.
    (date(2024, 12, 28), 1, date(2025, 1, 9)),   # Saturday 2024-12-28 is a working Saturday
    (date(2025, 12, 30), 1, date(2026, 1, 12)),  # 31.12 and 9.01 transferred: 12th January
    # May: 2021 May 1-3 and 8-10 off; 2025 May 1-4 and 8-11 off; 2026 May 1-3 and 9-11 off.
    (date(2021, 4, 30), 1, date(2021, 5, 4)),
    (date(2021, 5, 7), 1, date(2021, 5, 11)),
    (date(2025, 4, 30), 1, date(2025, 5, 5)),
    (date(2025, 5, 7), 1, date(2025, 5, 12)),
    (date(2026, 4, 30), 1, date(2026, 5, 4)),
    (date(2026, 5, 8), 1, date(2026, 5, 12)),
    # Transfer: Saturday 2021-02-20 works, Monday 22nd and Tuesday 23rd are off.
    (date(2021, 2, 19), 1, date(2021, 2, 20)),
    (date(2021, 2, 19), 2, date(2021, 2, 24)),
    # ПОС deadline: 10 working days from Friday 25 December 2020.
    (date(2020, 12, 25), 10, date(2021, 1, 18)),
    # n = 0 rolls a day off forward; negative n goes back.
    (date(2021, 1, 3), 0, date(2021, 1, 11)),
    (date(2021, 1, 11), 0, date(2021, 1, 11)),
    (date(2021, 1, 11), -1, date(2020, 12, 31)),
    (date(2021, 5, 11), -2, date(2021, 5, 6)),
])
def test_add_working_days(start, n, expected):
    assert add_working_days(start, n) == expected


def test_transfer_days_and_holidays():
    assert is_working_day(date(2021, 2, 20))  # Saturday made a working day
    assert not is_working_day(date(2021, 2, 22)) and is_holiday(date(2021, 2, 22))
    assert is_working_day(date(2025, 11, 1)) and not is_working_day(date(2025, 11, 3))
    assert is_holiday(date(2021, 1, 7)) and default_calendar().holiday_name(date(2021, 1, 7))
    assert not is_holiday(date(2021, 1, 16)) and not is_working_day(date(2021, 1, 16))
    assert is_working_day(date(2020, 12, 31)) and not is_working_day(date(2025, 12, 31))


def test_datetime_keeps_its_time_of_day():
    assert add_working_days(datetime(2021, 4, 30, 15, 20), 1) == datetime(2021, 5, 4, 15, 20)


def test_working_hours_skip_nights_weekends_and_holidays():
    # Friday evening: the next working day is the working Saturday 2021-02-20.
    assert add_working_hours(datetime(2021, 2, 19, 20, 0), 8) == datetime(2021, 2, 20, 17, 0)
    assert add_working_hours(datetime(2021, 4, 30, 16, 0), 8) == datetime(2021, 5, 4, 16, 0)
    assert add_working_hours(datetime(2021, 1, 11, 7, 0), 2) == datetime(2021, 1, 11, 11, 0)
    assert add_working_hours(datetime(2020, 12, 31, 16, 30), 1) == datetime(2021, 1, 11, 9, 30)


def test_out_of_range_and_bad_arguments_fail_clearly():
    cal = ProductionCalendar(2020, 2021)
    with pytest.raises(ValueError, match="outside"):
        cal.is_working_day(date(2019, 5, 1))
    with pytest.raises(ValueError, match="outside"):
        cal.add_working_days(date(2021, 12, 30), 5)
    with pytest.raises(ValueError):
        ProductionCalendar(2022, 2021)
    with pytest.raises(ValueError):
        cal.add_working_hours(datetime(2021, 3, 1, 10), -1)


_days = st.dates(min_value=date(2016, 1, 1), max_value=date(2034, 6, 30))


@settings(max_examples=200, deadline=None)
@given(day=_days, n=st.integers(min_value=1, max_value=60))
def test_add_and_between_are_inverse(day, n):
    result = add_working_days(day, n)
    assert result > day and is_working_day(result)
    assert working_days_between(day, result) == n
    assert working_days_between(result, day) == -n
    # No working day is skipped: the day before the result leaves one to go.
    assert working_days_between(day, result - timedelta(days=1)) == n - 1


@settings(max_examples=100, deadline=None)
@given(day=_days, n=st.integers(min_value=-30, max_value=30))
def test_vectorized_matches_scalar(day, n):
    cal = default_calendar()
    vec = cal.add_working_days_array(np.array([np.datetime64(day, "D")]), n)[0]
    assert vec.astype(date) == add_working_days(day, n)
