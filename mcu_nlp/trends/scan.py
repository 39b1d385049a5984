"""Scan every count series of an appeals frame for rises, as of a day, and explain them.

This is the pure core of the alerts service: it takes a frame and the alerts already known and
returns the updated alerts. Storage and the API call it; it never opens the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import pandas as pd

from mcu_nlp.trends.alerts import (
    AlarmDay,
    AlertStatus,
    TrendAlert,
    alerts_from_alarm_days,
    merge_alerts,
    resolve_quiet,
)
from mcu_nlp.trends.counts import TOTAL, SeriesDimension, count_series, default_dimensions
from mcu_nlp.trends.detector import NegativeBinomialDetector, SeriesDetector
from mcu_nlp.trends.explain import explain_alerts


def usable_dimensions(frame: pd.DataFrame,
                      dimensions: Sequence[SeriesDimension] | None = None
                      ) -> tuple[SeriesDimension, ...]:
    """The given cuts, or the default ones that the frame has columns for."""
    dims = tuple(dimensions) if dimensions is not None else default_dimensions()
    usable = []
    for dim in dims:
        columns = ([dim.column] if dim.column else [f"label_{dim.label}", f"pred_{dim.label}"])
        if any(c in frame.columns for c in columns):
            usable.append(dim)
        elif dimensions is not None:
            raise KeyError(f"cut {dim.name!r}: none of {columns} in the frame")
    return tuple(usable)


def alarm_days_of(assessment: pd.DataFrame) -> list[AlarmDay]:
    """The alarm days of one series' assessment as :class:`AlarmDay` records."""
    alarms = assessment[assessment["alarm"]]
    return [AlarmDay(day=stamp.date(), observed=int(row.observed), expected=float(row.expected),
                     upper=float(row.upper), p_value=float(row.p_value), rule=str(row.rule))
            for stamp, row in alarms.iterrows()]


def scan_alerts(
    frame: pd.DataFrame,
    *,
    as_of: date,
    lookback_days: int = 7,
    dimensions: Sequence[SeriesDimension] | None = None,
    detector: SeriesDetector | None = None,
    existing: Iterable[TrendAlert] = (),
    warmup_days: int = 14,
    min_messages: int = 10,
    gap_days: int = 2,
    quiet_days: int = 3,
    explain: bool = True,
    time_column: str = "created_at",
) -> list[TrendAlert]:
    """Detect rises in the ``lookback_days`` up to ``as_of`` and fold them into ``existing``.

    Args:
        frame: Appeals frame (layout of :func:`mcu_nlp.ingest.appeals_to_frame`).
        as_of: The last day to assess (a partial last day of the data is skipped).
        lookback_days: Days before ``as_of`` to (re-)assess; alarms in them make alerts.
        dimensions: Cuts to count; default all default cuts the frame has.
        detector: Series detector; default :class:`NegativeBinomialDetector`.
        existing: Alerts already known (their status is kept while a rise goes on).
        warmup_days: Extra days assessed before the lookback so the CUSUM has a history.
        min_messages: Series with fewer messages in the scanned period are skipped.
        gap_days: Quiet days that still continue an alert.
        quiet_days: Open alerts with no alarm for this many days up to ``as_of`` get resolved.
        explain: Attach explanations to the alerts that alarmed in the lookback.
        time_column: Filing-time column.

    Returns:
        All alerts, known and new, the open ones first, by excess.
    """
    dims = usable_dimensions(frame, dimensions)
    engine = detector if detector is not None else NegativeBinomialDetector()
    counts = count_series(frame, dims, end=pd.Timestamp(as_of), time_column=time_column)
    first_alarm_day = pd.Timestamp(as_of - timedelta(days=lookback_days - 1))
    start = first_alarm_day - timedelta(days=warmup_days)
    recent = counts.loc[counts.index >= start - timedelta(days=56)]
    fresh: list[TrendAlert] = []
    total = counts[(TOTAL, TOTAL)] if (TOTAL, TOTAL) in counts.columns else None
    for (dimension, value), series in counts.items():
        if int(recent[(dimension, value)].sum()) < min_messages:
            continue
        if dimension != TOTAL and total is not None and series.equals(total):
            continue  # a cut with one value (one channel) repeats the total's alert
        # The other messages of each day are the reference volume: a topic rising relative
        # to everything else, not with it.
        exposure = total - series if dimension != TOTAL and total is not None else None
        assessment = engine.assess(series, start=start, end=pd.Timestamp(as_of),
                                   exposure=exposure)
        days = alarm_days_of(assessment.loc[assessment.index >= first_alarm_day])
        fresh.extend(alerts_from_alarm_days(str(dimension), str(value), days, gap_days=gap_days))
    if explain and fresh:
        fresh = explain_alerts(frame, fresh, dims, time_column=time_column)
    alerts = merge_alerts(existing, fresh, gap_days=gap_days)
    alerts = resolve_quiet(alerts, as_of, quiet_days=quiet_days)
    return sorted(alerts, key=lambda a: (a.status == AlertStatus.RESOLVED, -a.excess))
