"""Spike detectors for one daily count series, behind a :class:`SeriesDetector` protocol.

:class:`NegativeBinomialDetector` is the default. For every assessed day it

1. forecasts the count from a sliding baseline window (see :mod:`mcu_nlp.trends.baseline`:
   NB GLM, day type with holidays as Sundays, trend, outlier down-weighting);
2. adapts the window: 56 days normally, 28 days when the series has moved away from the long
   window's model in the last two weeks (a season starting or ending), so a seasonal topic such
   as snow clearing alarms when the season starts, not every day of it;
3. alarms when the count exceeds the ``1 - alpha`` predictive quantile (``rule="glm"``);
4. runs a one-sided CUSUM on mid-p normal scores of the counts (Page 1954; as in Höhle's
   ``surveillance`` package), which catches sustained moderate rises that no single day shows
   (``rule="cusum"``);
5. uses a plain rule for sparse series whose baseline mean is below ``sparse_mean``: an exact
   Poisson test of the day's count against the baseline mean, and at least ``min_count``
   messages (``rule="sparse"``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy import stats

from mcu_nlp.trends.baseline import CountForecast, forecast_day
from mcu_nlp.trends.daytypes import day_types

ASSESSMENT_COLUMNS = ("observed", "expected", "upper", "p_value", "z", "cusum", "alarm", "rule",
                      "method", "window")


@runtime_checkable
class SeriesDetector(Protocol):
    """What the alert scan needs from a detector: a verdict for each day of one series."""

    def assess(self, counts: pd.Series, *, start: date | str | None = None,
               end: date | str | None = None) -> pd.DataFrame:
        """Assess the days ``start``..``end`` of a daily count series.

        Args:
            counts: Daily counts indexed by consecutive days (zero-filled), oldest first.
            start: First day to assess; default the first day with enough history.
            end: Last day to assess; default the last day of ``counts``.

        Returns:
            One row per assessed day, columns :data:`ASSESSMENT_COLUMNS`.
        """
        ...


class NegativeBinomialDetector:
    """Farrington-flexible-style NB GLM alarm plus a CUSUM, with a sparse-series rule.

    Args:
        alpha: One-sided level of the daily alarm (upper predictive quantile ``1 - alpha``).
        max_window: Baseline days normally used.
        min_window: Baseline days after a level shift; also the least history to assess a day.
        recent_days: Days at the window's end checked for a level shift.
        shift_z: Level-shift threshold on the summed recent residuals (N(0, 1) when stable).
        trend: Include a log-linear trend term (kept only when significant).
        cusum_k: CUSUM reference value, in standard deviations (half the shift to detect).
        cusum_h: CUSUM decision limit.
        cusum_cap: Largest daily score the CUSUM adds, so that one outlier day alone never
            makes a CUSUM alarm (the daily rule handles single days).
        sparse_mean: Baseline mean per day below which the sparse rule is used.
        sparse_alpha: Level of the sparse rule's exact Poisson test.
        min_count: Fewest messages on a day for any daily alarm.
        reweight_passes: Rounds of down-weighting baseline outliers (Farrington uses one; more
            unmask smaller outbreaks hidden behind a big one).
        trimmed_dispersion: Leave down-weighted (outbreak) days out of the dispersion estimate.
        is_holiday: Holiday test; default the Russian production calendar.
    """

    def __init__(self, *, alpha: float = 0.002, max_window: int = 56, min_window: int = 28,
                 recent_days: int = 14, shift_z: float = 3.0, trend: bool = True,
                 cusum_k: float = 0.5, cusum_h: float = 6.0, cusum_cap: float = 3.0,
                 sparse_mean: float = 2.0, sparse_alpha: float = 0.001, min_count: int = 5,
                 reweight_passes: int = 3, trimmed_dispersion: bool = True,
                 is_holiday: Callable[[date], bool] | None = None) -> None:
        self.alpha = alpha
        self.max_window = max_window
        self.min_window = min_window
        self.recent_days = recent_days
        self.shift_z = shift_z
        self.trend = trend
        self.cusum_k = cusum_k
        self.cusum_h = cusum_h
        self.cusum_cap = cusum_cap
        self.sparse_mean = sparse_mean
        self.sparse_alpha = sparse_alpha
        self.min_count = min_count
        self.reweight_passes = reweight_passes
        self.trimmed_dispersion = trimmed_dispersion
        self.is_holiday = is_holiday

    def assess(self, counts: pd.Series, *, start: date | str | None = None,
               end: date | str | None = None, cusum_start: float = 0.0) -> pd.DataFrame:
        """Assess each day from ``start`` to ``end`` (see :class:`SeriesDetector`).

        ``cusum_start`` carries the CUSUM over from an earlier assessment that ended the day
        before ``start`` (its last ``cusum`` value); by default the CUSUM starts at zero.
        """
        series = _validated(counts)
        values = series.to_numpy(dtype=float)
        types = day_types(series.index, self.is_holiday)
        first = self.min_window
        if start is not None:
            first = max(first, int(series.index.searchsorted(pd.Timestamp(start))))
        last = len(series) - 1
        if end is not None:
            last = min(last, int(series.index.searchsorted(pd.Timestamp(end), side="right")) - 1)
        rows = []
        cusum = float(cusum_start)
        for position in range(first, last + 1):
            observed = int(values[position])
            forecast = self._forecast(values, types, position)
            if forecast.method == "sparse":
                p_value = float(stats.poisson(forecast.mean).sf(observed - 1))
                alarm = observed >= self.min_count and p_value < self.sparse_alpha
                upper = float(stats.poisson(forecast.mean).ppf(1 - self.sparse_alpha))
                z, cusum, rule = float("nan"), 0.0, "sparse" if alarm else ""
            else:
                p_value = forecast.p_value(observed)
                upper = forecast.upper(self.alpha)
                z = forecast.z_score(observed)
                cusum = max(0.0, cusum + min(z, self.cusum_cap) - self.cusum_k)
                rule = ""
                if observed > upper and observed >= self.min_count:
                    rule = "glm"
                elif cusum > self.cusum_h:
                    rule = "cusum"
                alarm = bool(rule)
                if alarm:
                    cusum = 0.0  # restart after a signal, as a classical CUSUM does
            rows.append((observed, forecast.mean, upper, p_value, z, cusum, alarm, rule,
                         forecast.method, forecast.window))
        index = series.index[first:last + 1]
        return pd.DataFrame(rows, index=index, columns=list(ASSESSMENT_COLUMNS))

    def _forecast(self, values: np.ndarray, types: np.ndarray, position: int) -> CountForecast:
        window = min(self.max_window, position)
        lo = position - window
        baseline = values[lo:position]
        if baseline.mean() < self.sparse_mean:
            # Jeffreys-style half count keeps a never-seen topic's mean above zero.
            mean = (baseline.sum() + 0.5) / window
            return CountForecast(mean=mean, dispersion=0.0, method="sparse", window=window,
                                 trend=False)
        forecast = self._glm(values, types, lo, position)
        if (forecast.window > self.min_window
                and abs(forecast.recent_shift) > self.shift_z):
            forecast = self._glm(values, types, position - self.min_window, position)
        return forecast

    def _glm(self, values: np.ndarray, types: np.ndarray, lo: int, position: int) -> CountForecast:
        try:
            return forecast_day(values[lo:position], types[lo:position], int(types[position]),
                                trend=self.trend, recent_days=self.recent_days,
                                reweight_passes=self.reweight_passes,
                                trimmed_dispersion=self.trimmed_dispersion)
        except (ValueError, np.linalg.LinAlgError) as error:  # degenerate window
            baseline = values[lo:position]
            mean = max(float(baseline.mean()), 0.5 / len(baseline))
            variance = float(baseline.var(ddof=1)) if len(baseline) > 1 else mean
            dispersion = max(variance - mean, 0.0) / mean**2
            _ = error
            return CountForecast(mean=mean, dispersion=dispersion, method="moments",
                                 window=len(baseline), trend=False)


def _validated(counts: pd.Series) -> pd.Series:
    if not isinstance(counts, pd.Series):
        raise TypeError(f"counts must be a pandas Series, got {type(counts).__name__}")
    if not isinstance(counts.index, pd.DatetimeIndex):
        raise TypeError("counts must be indexed by days (a DatetimeIndex)")
    if counts.isna().any() or (counts < 0).any():
        raise ValueError("counts must be non-negative with no gaps (zero-fill missing days)")
    index = counts.index.normalize()
    if len(index) > 1 and not ((index[1:] - index[:-1]) == pd.Timedelta(days=1)).all():
        raise ValueError("counts must cover consecutive days with no gaps (zero-fill them)")
    return pd.Series(counts.to_numpy(), index=index)
