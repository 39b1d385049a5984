"""Expected count of one day from a baseline window.

A negative-binomial GLM with day-type and trend terms, in the spirit of the Farrington-flexible
method (Noufaily et al. 2013; ``surveillance::farringtonFlexible`` by Höhle et al.):

* over-dispersion: the NB dispersion is estimated by moments from a Poisson fit (Cameron and
  Trivedi) and the NB GLM refitted with it; if the NB fit fails, a quasi-Poisson fit
  (Pearson-scaled) takes over;
* past outbreaks in the baseline are down-weighted (weight ``r**-2`` for Pearson residuals above
  2.58), so last week's spike does not raise today's threshold;
* the trend is kept only when significant and when it does not extrapolate above the highest
  baseline count;
* the predictive distribution adds the estimation variance of the mean to the NB variance and is
  moment-matched to a negative binomial.

Fitting uses statsmodels; nothing here is a hand-written optimizer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats

from mcu_nlp.trends.daytypes import SUNDAY_TYPE

_OUTLIER_RESIDUAL = 2.58
_MIN_DISPERSION = 1e-4


@dataclass(frozen=True, slots=True)
class CountForecast:
    """Predictive distribution of one day's count.

    Attributes:
        mean: Expected count.
        dispersion: NB dispersion ``a`` of the predictive distribution (variance
            ``mean + a * mean**2``); 0 means Poisson.
        method: ``negbin``, ``poisson``, ``quasi-poisson`` or ``sparse``.
        window: Baseline days used.
        trend: Whether the trend term was kept.
        recent_shift: Sum of the last ``recent_days`` baseline Pearson residuals over the square
            root of their number: about N(0, 1) when the level is stable, large when the
            series has moved away from the window's model in the last days.
    """

    mean: float
    dispersion: float
    method: str
    window: int
    trend: bool
    recent_shift: float = 0.0

    def _frozen(self):  # scipy distribution of the predictive count
        if self.dispersion <= _MIN_DISPERSION:
            return stats.poisson(self.mean)
        size = 1.0 / self.dispersion
        return stats.nbinom(size, size / (size + self.mean))

    def upper(self, alpha: float) -> float:
        """The ``1 - alpha`` predictive quantile."""
        return float(self._frozen().ppf(1.0 - alpha))

    def p_value(self, observed: int) -> float:
        """P(count >= observed) under the forecast."""
        return float(self._frozen().sf(observed - 1))

    def z_score(self, observed: int) -> float:
        """Mid-p normal score of ``observed``: about N(0, 1) when the forecast is right."""
        dist = self._frozen()
        mid = float(dist.cdf(observed - 1)) + 0.5 * float(dist.pmf(observed))
        return float(stats.norm.ppf(min(max(mid, 1e-12), 1 - 1e-12)))


def design_matrix(day_type: np.ndarray, offset_days: np.ndarray, window: int,
                  *, trend: bool) -> np.ndarray:
    """Intercept, optional trend (days relative to the target, per window) and day-type dummies.

    The Sunday type is the reference level, so every dummy compares a day with a Sunday.
    """
    columns = [np.ones(len(day_type))]
    if trend:
        columns.append(offset_days / float(window))
    for code in range(SUNDAY_TYPE):
        columns.append((day_type == code).astype(float))
    return np.column_stack(columns)


def _usable_columns(X: np.ndarray) -> np.ndarray:
    # A day type absent from the window has an all-zero dummy: drop it (its effect is unknown).
    return np.flatnonzero(np.abs(X).sum(axis=0) > 0)


def _moment_dispersion(y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
    # Cameron–Trivedi auxiliary regression of ((y - mu)^2 - y) / mu on mu, no intercept.
    numerator = float(np.sum(weights * ((y - mu) ** 2 - y)))
    denominator = float(np.sum(weights * mu**2))
    return max(numerator / denominator, 0.0) if denominator > 0 else 0.0


def _fit(y: np.ndarray, X: np.ndarray, weights: np.ndarray, *, trimmed: bool = False):
    # trimmed: down-weighted days (past outbreaks) do not count in the dispersion at all.
    spread_weights = np.where(weights < 1.0, 0.0, 1.0) if trimmed else weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poisson = sm.GLM(y, X, family=sm.families.Poisson(), var_weights=weights).fit()
        dispersion = _moment_dispersion(y, poisson.fittedvalues, spread_weights)
        if dispersion <= 1e-3:
            return poisson, 0.0, "poisson"
        try:
            family = sm.families.NegativeBinomial(alpha=dispersion)
            result = sm.GLM(y, X, family=family, var_weights=weights).fit(
                start_params=poisson.params)
            if not np.all(np.isfinite(result.params)):
                raise ValueError("non-finite NB coefficients")
            dispersion = _moment_dispersion(y, result.fittedvalues, spread_weights)
            return result, max(dispersion, _MIN_DISPERSION), "negbin"
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            quasi = sm.GLM(y, X, family=sm.families.Poisson(),
                           var_weights=weights).fit(scale="X2")
            return quasi, 0.0, "quasi-poisson"


def forecast_day(
    counts: np.ndarray,
    day_type: np.ndarray,
    target_type: int,
    *,
    trend: bool = True,
    reweight: bool = True,
    trend_p: float = 0.05,
    recent_days: int = 14,
    reweight_passes: int = 1,
    trimmed_dispersion: bool = False,
) -> CountForecast:
    """Forecast the day after a baseline window.

    Args:
        counts: Baseline counts, oldest first, ending the day before the target.
        day_type: Day-type code of each baseline day.
        target_type: Day-type code of the target day.
        trend: Try a log-linear trend term.
        reweight: Down-weight baseline outliers (past outbreaks) and refit once.
        trend_p: Keep the trend only below this p-value.
        recent_days: Days at the end of the window that ``recent_shift`` sums over.
        reweight_passes: Most down-weighting rounds (each one refits).
        trimmed_dispersion: Leave down-weighted days out of the dispersion estimate.
    """
    y = np.asarray(counts, dtype=float)
    window = len(y)
    offsets = np.arange(-window, 0, dtype=float)
    target_row = design_matrix(np.array([target_type]), np.array([0.0]), window, trend=True)

    def fit_with(use_trend: bool, weights: np.ndarray):
        X_full = design_matrix(day_type, offsets, window, trend=True)
        keep = _usable_columns(X_full)
        if not use_trend:
            keep = keep[keep != 1]
        if target_type < SUNDAY_TYPE and (2 + target_type) not in keep:
            keep = keep[keep < 2]  # the target's day type is unseen: no day-type terms at all
        result, dispersion, method = _fit(y, X_full[:, keep], weights,
                                          trimmed=trimmed_dispersion)
        return result, dispersion, method, keep

    weights = np.ones(window)
    result, dispersion, method, keep = fit_with(trend, weights)
    for _ in range(reweight_passes if reweight else 0):
        # Repeat: a big past outbreak inflates the dispersion and so hides smaller ones.
        mu = result.fittedvalues
        residual = (y - mu) / np.sqrt(mu + dispersion * mu**2 + 1e-12)
        outliers = residual > _OUTLIER_RESIDUAL
        new_weights = np.where(outliers, np.minimum(residual ** -2.0, 1.0), 1.0)
        new_weights *= window / new_weights.sum()
        if np.allclose(new_weights, weights):
            break
        weights = new_weights
        result, dispersion, method, keep = fit_with(trend, weights)
    kept_trend = trend and 1 in keep
    if kept_trend:
        position = int(np.flatnonzero(keep == 1)[0])
        mean = float(np.exp(target_row[:, keep] @ result.params)[0])
        if result.pvalues[position] > trend_p or mean > y.max():
            result, dispersion, method, keep = fit_with(False, weights)
            kept_trend = False
    x = target_row[:, keep]
    eta = float((x @ result.params)[0])
    eta_var = float((x @ result.cov_params() @ x.T)[0, 0])
    mean = float(np.exp(eta))
    if method == "quasi-poisson":
        dispersion = max(float(result.scale) - 1.0, 0.0) / max(mean, 1e-9)
    mu = result.fittedvalues
    residual = (y - mu) / np.sqrt(mu + dispersion * mu**2 + 1e-12)
    recent = residual[-recent_days:]
    shift = float(recent.sum() / np.sqrt(len(recent))) if len(recent) else 0.0
    return CountForecast(mean=mean, dispersion=dispersion + max(eta_var, 0.0), method=method,
                         window=window, trend=kept_trend, recent_shift=shift)

