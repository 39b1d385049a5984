"""Day types for count models: Monday … Saturday, and a Sunday type that holidays share.

Citizens write less on Sundays and on public holidays alike (1 January 2021: 103 SPb reports
against about 300 on a working day), so a holiday is modelled as a Sunday. The holiday list comes
from the project's production calendar (:mod:`mcu_nlp.calendar`, on the ``holidays`` library),
transferred days off included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

import numpy as np
import pandas as pd

#: Day-type codes: 0–5 are Monday–Saturday, ``SUNDAY_TYPE`` is a Sunday or a public holiday.
SUNDAY_TYPE = 6
DAY_TYPE_NAMES = ("пн", "вт", "ср", "чт", "пт", "сб", "вс/праздник")


def _default_is_holiday() -> Callable[[date], bool]:
    from mcu_nlp.calendar import is_holiday  # the project's production calendar

    return is_holiday


def is_public_holiday(day: date) -> bool:
    """Whether ``day`` is a Russian public holiday or a transferred day off."""
    return bool(_default_is_holiday()(day))


def day_types(
    days: Iterable[date] | pd.DatetimeIndex,
    is_holiday: Callable[[date], bool] | None = None,
) -> np.ndarray:
    """Day-type code of each day (0–5 Monday–Saturday, 6 Sunday or holiday).

    Args:
        days: Calendar days (dates or a DatetimeIndex).
        is_holiday: Holiday test; defaults to the Russian production calendar.
    """
    check = is_holiday or _default_is_holiday()
    index = pd.DatetimeIndex(pd.to_datetime(list(days) if not isinstance(days, pd.DatetimeIndex)
                                            else days))
    codes = index.day_of_week.to_numpy().copy()
    for position, stamp in enumerate(index):
        if codes[position] != SUNDAY_TYPE and check(stamp.date()):
            codes[position] = SUNDAY_TYPE
    return codes
