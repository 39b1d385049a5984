"""Spike detectors for one daily count series, behind a :class:`SeriesDetector` protocol.

:class:`NegativeBinomialDetector` is the default. For every assessed day it

1. forecasts the count from a sliding baseline window (see :mod:`mcu_nlp.trends.baseline`:
   NB GLM, day type with holidays as Sundays, trend, outlier down-weighting); given the daily
   volume of all *other* messages (``exposure``), the model also regresses on its log, so a
   day when the whole city writes more is not taken for a rise of a topic that follows the
   city's volume (and the residual over-dispersion is lower);
2. adapts the window: 56 days normally, 28 days when the series has moved away from the long
   window's model in the last two weeks (a season starting or ending), so a seasonal topic such
   as snow clearing alarms when the season starts, not every day of it;
3. alarms when the count exceeds the ``1 - alpha`` predictive quantile (``rule="glm"``);
4. alarms when the sum of the last ``w`` days (``w`` in ``windows``) exceeds the
   ``1 - window_alpha`` quantile of the predictive distribution of that sum, forecast from the
   baseline before the first of those days, and the day itself is above its expectation
   (``rule="sum<w>"``). A rise spread over a few days is much stronger evidence in the sum
   than on any single day;
5. optionally runs a one-sided CUSUM on mid-p normal scores of the counts (Page 1954; as in
   Höhle's ``surveillance`` package; ``rule="cusum"``). The window sums detect multi-day rises
   better at the same false-alarm rate (``bench/trends_eval.py``), so by default the CUSUM is
   only reported (column ``cusum``), not a rule;
6. uses a plain rule for sparse series whose baseline mean is below ``sparse_mean``: an exact
   Poisson test of the day's count against the baseline mean, and at least ``min_count``
   messages (``rule="sparse"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy import stats

from mcu_nlp.trends.baseline import BaselineFit, CountForecast, fit_baseline
from mcu_nlp.trends.daytypes import day_types

ASSESSMENT_COLUMNS = ("observed", "expected", "upper", "p_value", "z", "cusum", "alarm", "rule",
                      "method", "window")


def window_rule(days: int) -> str:
    """Rule name of the window-sum rule over ``days`` days."""
    return f"sum{days}"


@runtime_checkable
class SeriesDetector(Protocol):
    """What the alert scan needs from a detector: a verdict for each day of one series."""

    def assess(self, counts: pd.Series, *, start: date | str | None = None,
               end: date | str | None = None,
               exposure: pd.Series | None = None) -> pd.DataFrame:
        """Assess the days ``start``..``end`` of a daily count series.

        Args:
            counts: Daily counts indexed by consecutive days (zero-filled), oldest first.
            start: First day to assess; default the first day with enough history.
            end: Last day to assess; default the last day of ``counts``.
            exposure: Daily volume of all other messages (e.g. the total minus this series),
                on the same days; a detector may use it as a reference or ignore it.

        Returns:
            One row per assessed day, columns :data:`ASSESSMENT_COLUMNS`.
        """
        ...


@dataclass(frozen=True, slots=True)
class _Sparse:
    mean: float  # baseline mean per day
    window: int


class NegativeBinomialDetector:
    """Farrington-flexible-style NB GLM alarm plus window-sum rules, with a sparse-series rule.

    Args:
        alpha: One-sided level of the daily alarm (upper predictive quantile ``1 - alpha``).
        windows: Lengths (days, at least 2) of the window-sum rules; empty for none.
        window_alpha: One-sided level of each window-sum rule.
        max_window: Baseline days normally used.
        min_window: Baseline days after a level shift; also the least history to assess a day.
        recent_days: Days at the window's end checked for a level shift.
        shift_z: Level-shift threshold on the summed recent residuals (N(0, 1) when stable).
        trend: Include a log-linear trend term (kept only when significant).
        weekly: Day-type terms without an exposure (see
            :func:`mcu_nlp.trends.baseline.design_matrix`).
        exposure_weekly: Day-type terms with an exposure, which carries most of the weekly
            rhythm itself.
        exposure_mode: How the exposure enters the model: ``offset`` (the series' share of
            the other messages) or ``covariate`` (a fitted elasticity).
        min_exposure: Least mean daily exposure in the baseline for it to be used (a tiny
            reference volume is noise, not a reference).
        cusum_k: CUSUM reference value, in standard deviations (half the shift to detect).
        cusum_h: CUSUM decision limit; ``None`` reports the CUSUM without alarming on it.
        cusum_cap: Largest daily score the CUSUM adds, so that one outlier day alone never
            makes a CUSUM alarm (the daily rule handles single days).
        sparse_mean: Baseline mean per day below which the sparse rule is used.
        sparse_alpha: Level of the sparse rule's exact Poisson test.
        min_count: Fewest messages on a day (in a window, for the window rules) for an alarm.
        reweight_passes: Rounds of down-weighting baseline outliers (Farrington uses one; more
            unmask smaller outbreaks hidden behind a big one).
        trimmed_dispersion: Leave down-weighted (outbreak) days out of the dispersion estimate.
        is_holiday: Holiday test; default the Russian production calendar.
    """

    def __init__(self, *, alpha: float = 3e-4, windows: Sequence[int] = (2, 3),
                 window_alpha: float = 3e-4, max_window: int = 56, min_window: int = 28,
                 recent_days: int = 14, shift_z: float = 3.0, trend: bool = True,
                 weekly: str = "days", exposure_weekly: str = "sunday",
                 exposure_mode: str = "covariate", min_exposure: float = 20.0,
                 cusum_k: float = 0.5, cusum_h: float | None = None, cusum_cap: float = 3.0,
                 sparse_mean: float = 2.0, sparse_alpha: float = 0.001, min_count: int = 5,
                 reweight_passes: int = 3, trimmed_dispersion: bool = True,
                 is_holiday: Callable[[date], bool] | None = None) -> None:
        if any(int(w) < 2 for w in windows):
            raise ValueError(f"window-sum rules need windows of 2 days or more, got {windows}")
        self.alpha = alpha
        self.windows = tuple(sorted({int(w) for w in windows}))
        self.window_alpha = window_alpha
        self.max_window = max_window
        self.min_window = min_window
        self.recent_days = recent_days
        self.shift_z = shift_z
        self.trend = trend
        self.weekly = weekly
        self.exposure_weekly = exposure_weekly
        self.exposure_mode = exposure_mode
        self.min_exposure = min_exposure
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
               end: date | str | None = None, cusum_start: float = 0.0,
               exposure: pd.Series | None = None) -> pd.DataFrame:
        """Assess each day from ``start`` to ``end`` (see :class:`SeriesDetector`).

        ``cusum_start`` carries the CUSUM over from an earlier assessment that ended the day
        before ``start`` (its last ``cusum`` value); by default the CUSUM starts at zero.
        ``exposure`` must cover the days of ``counts``.
        """
        series = _validated(counts)
        values = series.to_numpy(dtype=float)
        log_exposure = None if exposure is None else _log_exposure(exposure, series.index)
        types = day_types(series.index, self.is_holiday)
        first = self.min_window
        if start is not None:
            first = max(first, int(series.index.searchsorted(pd.Timestamp(start))))
        last = len(series) - 1
        if end is not None:
            last = min(last, int(series.index.searchsorted(pd.Timestamp(end), side="right")) - 1)
        longest = max(self.windows, default=1)
        fits = {position: self._fit(values, types, log_exposure, position)
                for position in range(max(self.min_window, first - longest + 1), last + 1)}
        rows = []
        cusum = float(cusum_start)
        for position in range(first, last + 1):
            observed = int(values[position])
            fit = fits[position]
            if isinstance(fit, _Sparse):
                dist = stats.poisson(fit.mean)
                p_value = float(dist.sf(observed - 1))
                alarm = observed >= self.min_count and p_value < self.sparse_alpha
                upper = float(dist.ppf(1 - self.sparse_alpha))
                rows.append((observed, fit.mean, upper, p_value, float("nan"), 0.0, alarm,
                             "sparse" if alarm else "", "sparse", fit.window))
                cusum = 0.0
                continue
            daily = _forecast(fit, types, log_exposure, position, position)
            p_value = daily.p_value(observed)
            upper = daily.upper(self.alpha)
            z = daily.z_score(observed)
            cusum = max(0.0, cusum + min(z, self.cusum_cap) - self.cusum_k)
            rule = ""
            if observed > upper and observed >= self.min_count:
                rule = "glm"
            elif observed > daily.mean:  # a window alarms while its rise goes on, not after
                rule, window_p = self._window_rule(values, types, log_exposure, fits, position)
                p_value = window_p if rule else p_value
            if not rule and self.cusum_h is not None and cusum > self.cusum_h:
                rule = "cusum"
            alarm = bool(rule)
            if alarm:
                cusum = 0.0  # restart after a signal, as a classical CUSUM does
            rows.append((observed, daily.mean, upper, p_value, z, cusum, alarm, rule,
                         daily.method, daily.window))
        index = series.index[first:last + 1]
        return pd.DataFrame(rows, index=index, columns=list(ASSESSMENT_COLUMNS))

    def _window_rule(self, values: np.ndarray, types: np.ndarray,
                     log_exposure: np.ndarray | None, fits: dict, position: int
                     ) -> tuple[str, float]:
        """The first window-sum rule that fires on the window ending at ``position``."""
        for days in self.windows:
            origin = position - days + 1
            fit = fits.get(origin)
            if fit is None or isinstance(fit, _Sparse):
                continue
            observed = int(values[origin:position + 1].sum())
            if observed < self.min_count:
                continue
            p_value = _forecast(fit, types, log_exposure, origin, position).p_value(observed)
            if p_value < self.window_alpha:
                return window_rule(days), p_value
        return "", 1.0

    def _fit(self, values: np.ndarray, types: np.ndarray, log_exposure: np.ndarray | None,
             position: int) -> BaselineFit | _Sparse:
        window = min(self.max_window, position)
        lo = position - window
        baseline = values[lo:position]
        if baseline.mean() < self.sparse_mean:
            # Jeffreys-style half count keeps a never-seen topic's mean above zero.
            return _Sparse(mean=(baseline.sum() + 0.5) / window, window=window)
        fit = self._glm(values, types, log_exposure, lo, position)
        if fit.window > self.min_window and abs(fit.recent_shift) > self.shift_z:
            fit = self._glm(values, types, log_exposure, position - self.min_window, position)
        return fit

    def _glm(self, values: np.ndarray, types: np.ndarray, log_exposure: np.ndarray | None,
             lo: int, position: int) -> BaselineFit:
        reference = None  # the exposure, when there is enough of it to be a reference
        if (log_exposure is not None
                and float(np.exp(log_exposure[lo:position]).mean()) >= self.min_exposure):
            reference = log_exposure
        try:
            return fit_baseline(
                values[lo:position], types[lo:position], int(types[position]),
                log_exposure=None if reference is None else reference[lo:position],
                target_log_exposure=None if reference is None else float(reference[position]),
                exposure=self.exposure_mode,
                weekly=self.weekly if reference is None else self.exposure_weekly,
                trend=self.trend, recent_days=self.recent_days,
                reweight_passes=self.reweight_passes,
                trimmed_dispersion=self.trimmed_dispersion)
        except (ValueError, np.linalg.LinAlgError):  # degenerate window: a flat mean
            baseline = values[lo:position]
            mean = max(float(baseline.mean()), 0.5 / len(baseline))
            variance = float(baseline.var(ddof=1)) if len(baseline) > 1 else mean
            return BaselineFit(params=np.array([np.log(mean)]), cov=np.zeros((1, 1)),
                               keep=np.array([0]),
                               dispersion=max(variance - mean, 0.0) / mean**2, scale=1.0,
                               method="moments", window=len(baseline), weekly=self.weekly,
                               exposure="none", exposure_center=0.0, trend=False,
                               recent_shift=0.0)


def _forecast(fit: BaselineFit, types: np.ndarray, log_exposure: np.ndarray | None,
              origin: int, position: int) -> CountForecast:
    """Predictive distribution of the summed counts of days ``origin..position``."""
    days = np.arange(origin, position + 1)
    exposure = None if fit.exposure == "none" or log_exposure is None else log_exposure[days]
    return fit.forecast(types[days], days - origin, exposure)


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


def _log_exposure(exposure: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    if not isinstance(exposure, pd.Series) or not isinstance(exposure.index, pd.DatetimeIndex):
        raise TypeError("exposure must be a pandas Series indexed by days")
    aligned = exposure.set_axis(exposure.index.normalize()).reindex(index)
    if aligned.isna().any():
        raise ValueError("exposure must cover every day of counts")
    if (aligned < 0).any():
        raise ValueError("exposure must be non-negative")
    # Half a message keeps the log finite on a day with no other messages.
    return np.log(np.maximum(aligned.to_numpy(dtype=float), 0.5))
