"""Expected counts of the days after a baseline window.

A negative-binomial GLM with day-type and trend terms, in the spirit of the Farrington-flexible
method (Noufaily et al. 2013; ``surveillance::farringtonFlexible`` by Höhle et al.):

* an optional exposure: the log of the volume of all *other* messages of the day, as a covariate
  with a fitted coefficient (how much the series follows the city's volume) or as an offset (the
  series' share is modelled), so a day when everybody writes more (after a holiday, in a storm)
  is not a rise of one topic; the exposure carries most of the weekly rhythm, so the day-type
  terms can shrink to a Sunday/holiday flag;
* over-dispersion: the NB dispersion is estimated by moments from a Poisson fit (Cameron and
  Trivedi) and the NB GLM refitted with it; if the NB fit fails, a quasi-Poisson fit
  (Pearson-scaled) takes over;
* past outbreaks in the baseline are down-weighted (weight ``r**-2`` for Pearson residuals above
  2.58), so last week's spike does not raise today's threshold;
* the trend is kept only when significant and when it does not extrapolate above the highest
  baseline count;
* the predictive distribution of one day, or of the sum of several days, adds the estimation
  variance of the mean to the NB variance and is moment-matched to a negative binomial.

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
    """Predictive distribution of one day's count, or of the sum of a few days' counts.

    Attributes:
        mean: Expected count.
        dispersion: NB dispersion ``a`` of the predictive distribution (variance
            ``mean + a * mean**2``); 0 means Poisson.
        method: ``negbin``, ``poisson``, ``quasi-poisson``, ``moments`` or ``sparse``.
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
                  *, trend: bool, weekly: str = "days",
                  covariate: np.ndarray | None = None) -> np.ndarray:
    """Intercept, trend (days relative to the target, per window), covariate and day types.

    The trend column is the second one (whether or not ``trend``: without it, a column of zeros
    that the fit drops). ``covariate`` (e.g. centred log volume of the other messages) comes
    third. ``weekly="days"``: a dummy per day type, the Sunday type being the reference level;
    ``"sunday"``: one Sunday/holiday flag (enough when an exposure carries the weekly rhythm);
    ``"none"``: no day-type term.
    """
    columns = [np.ones(len(day_type))]
    columns.append(offset_days / float(window) if trend else np.zeros(len(day_type)))
    if covariate is not None:
        columns.append(np.asarray(covariate, dtype=float))
    if weekly == "days":
        for code in range(SUNDAY_TYPE):
            columns.append((day_type == code).astype(float))
    elif weekly == "sunday":
        columns.append((day_type == SUNDAY_TYPE).astype(float))
    elif weekly != "none":
        raise ValueError(f"weekly must be 'days', 'sunday' or 'none', got {weekly!r}")
    return np.column_stack(columns)


def _usable_columns(X: np.ndarray) -> np.ndarray:
    # A day type absent from the window (or present every day) has a constant dummy: drop it.
    keep = [0] + [j for j in range(1, X.shape[1]) if np.ptp(X[:, j]) > 0]
    return np.array(keep, dtype=int)


def _moment_dispersion(y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
    # Cameron–Trivedi auxiliary regression of ((y - mu)^2 - y) / mu on mu, no intercept.
    numerator = float(np.sum(weights * ((y - mu) ** 2 - y)))
    denominator = float(np.sum(weights * mu**2))
    return max(numerator / denominator, 0.0) if denominator > 0 else 0.0


def _fit(y: np.ndarray, X: np.ndarray, weights: np.ndarray, offset: np.ndarray | None,
         *, trimmed: bool = False):
    # trimmed: down-weighted days (past outbreaks) do not count in the dispersion at all.
    spread_weights = np.where(weights < 1.0, 0.0, 1.0) if trimmed else weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poisson = sm.GLM(y, X, family=sm.families.Poisson(), var_weights=weights,
                         offset=offset).fit()
        dispersion = _moment_dispersion(y, poisson.fittedvalues, spread_weights)
        if dispersion <= 1e-3:
            return poisson, 0.0, "poisson"
        try:
            family = sm.families.NegativeBinomial(alpha=dispersion)
            result = sm.GLM(y, X, family=family, var_weights=weights, offset=offset).fit(
                start_params=poisson.params)
            if not np.all(np.isfinite(result.params)):
                raise ValueError("non-finite NB coefficients")
            dispersion = _moment_dispersion(y, result.fittedvalues, spread_weights)
            return result, max(dispersion, _MIN_DISPERSION), "negbin"
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            quasi = sm.GLM(y, X, family=sm.families.Poisson(), var_weights=weights,
                           offset=offset).fit(scale="X2")
            return quasi, 0.0, "quasi-poisson"


@dataclass(frozen=True, slots=True)
class BaselineFit:
    """A baseline model fitted on a window, ready to forecast the days that follow it.

    Attributes:
        params: Coefficients of the kept design columns.
        cov: Their covariance matrix.
        keep: Indices of the kept columns of :func:`design_matrix`.
        dispersion: NB dispersion of one day's count (0: Poisson).
        scale: Pearson scale of a quasi-Poisson fit (1 otherwise).
        method: ``negbin``, ``poisson`` or ``quasi-poisson``.
        window: Baseline days.
        weekly: Day-type terms of the design (see :func:`design_matrix`).
        exposure: How the log exposure enters: ``none``, ``offset`` or ``covariate``.
        exposure_center: Window mean of the log exposure (the covariate is centred on it).
        trend: Whether the trend term was kept.
        recent_shift: See :attr:`CountForecast.recent_shift`.
    """

    params: np.ndarray
    cov: np.ndarray
    keep: np.ndarray
    dispersion: float
    scale: float
    method: str
    window: int
    weekly: str
    exposure: str
    exposure_center: float
    trend: bool
    recent_shift: float

    def design(self, day_type: np.ndarray, ahead: np.ndarray, log_exposure: np.ndarray | None,
               *, all_columns: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Design rows (the kept columns) and offsets of days given by position after the window."""
        day_type = np.atleast_1d(np.asarray(day_type))
        ahead = np.asarray(ahead, dtype=float)
        exposure = _exposure_array(log_exposure, self.exposure, len(day_type))
        covariate = exposure - self.exposure_center if self.exposure == "covariate" else None
        X = design_matrix(day_type, ahead, self.window, trend=True, weekly=self.weekly,
                          covariate=covariate)
        if not all_columns:
            X = X[:, self.keep]
        offset = exposure if self.exposure == "offset" else np.zeros(len(day_type))
        return X, offset

    def forecast(self, day_type: np.ndarray, ahead: np.ndarray,
                 log_exposure: np.ndarray | None = None) -> CountForecast:
        """Predictive distribution of the summed counts of some days after the window.

        Args:
            day_type: Day-type code of each day.
            ahead: Position of each day after the window (0 is the first day after it).
            log_exposure: Log exposure of each day, when the model has one.
        """
        X, offset = self.design(day_type, ahead, log_exposure)
        means = np.exp(X @ self.params + offset)
        total = float(means.sum())
        gradient = means @ X  # d(sum of means) / d(params)
        estimation = max(float(gradient @ self.cov @ gradient), 0.0)
        if self.method == "quasi-poisson":
            extra = max(self.scale - 1.0, 0.0) * total
        else:
            extra = self.dispersion * float(np.sum(means**2))
        dispersion = (extra + estimation) / max(total, 1e-9) ** 2
        return CountForecast(mean=total, dispersion=dispersion, method=self.method,
                             window=self.window, trend=self.trend,
                             recent_shift=self.recent_shift)


def _exposure_array(log_exposure: np.ndarray | None, mode: str, size: int) -> np.ndarray:
    if mode == "none":
        return np.zeros(size)
    if log_exposure is None:
        raise ValueError(f"a baseline with an exposure {mode} needs the days' log exposure")
    values = np.atleast_1d(np.asarray(log_exposure, dtype=float))
    if len(values) != size or not np.all(np.isfinite(values)):
        raise ValueError("log exposure needs one finite value per day")
    return values


def fit_baseline(
    counts: np.ndarray,
    day_type: np.ndarray,
    target_type: int,
    *,
    log_exposure: np.ndarray | None = None,
    target_log_exposure: float | None = None,
    exposure: str = "offset",
    weekly: str = "days",
    trend: bool = True,
    reweight: bool = True,
    trend_p: float = 0.05,
    recent_days: int = 14,
    reweight_passes: int = 1,
    trimmed_dispersion: bool = False,
) -> BaselineFit:
    """Fit the baseline model on a window that ends the day before a target day.

    Args:
        counts: Baseline counts, oldest first.
        day_type: Day-type code of each baseline day.
        target_type: Day-type code of the target day (the first day after the window); the
            trend is dropped when it would extrapolate above the highest baseline count there.
        log_exposure: Log exposure of each baseline day (e.g. log volume of all other
            messages), or ``None`` for none.
        target_log_exposure: Log exposure of the target day (needed with ``log_exposure``).
        exposure: ``offset`` (coefficient 1: the series' share is modelled) or ``covariate``
            (a fitted coefficient: how much the series follows the others); ignored without
            ``log_exposure``.
        weekly: Day-type terms (see :func:`design_matrix`).
        trend: Try a log-linear trend term.
        reweight: Down-weight baseline outliers (past outbreaks) and refit.
        trend_p: Keep the trend only below this p-value.
        recent_days: Days at the end of the window that ``recent_shift`` sums over.
        reweight_passes: Most down-weighting rounds (each one refits).
        trimmed_dispersion: Leave down-weighted days out of the dispersion estimate.
    """
    y = np.asarray(counts, dtype=float)
    window = len(y)
    mode = "none" if log_exposure is None else exposure
    if mode not in ("none", "offset", "covariate"):
        raise ValueError(f"exposure must be 'offset' or 'covariate', got {exposure!r}")
    baseline_exposure = _exposure_array(log_exposure, mode, window)
    target_exposure = _exposure_array(
        None if target_log_exposure is None else np.array([target_log_exposure]), mode, 1)
    center = float(baseline_exposure.mean()) if mode == "covariate" else 0.0
    shell = BaselineFit(params=np.zeros(0), cov=np.zeros((0, 0)), keep=np.zeros(0, dtype=int),
                        dispersion=0.0, scale=1.0, method="", window=window, weekly=weekly,
                        exposure=mode, exposure_center=center, trend=False, recent_shift=0.0)
    X_full, offset = shell.design(day_type, np.arange(-window, 0), baseline_exposure,
                                  all_columns=True)
    target_row, target_offset = shell.design(np.array([target_type]), np.array([0]),
                                             target_exposure, all_columns=True)
    usable = _usable_columns(X_full)
    first_weekly = X_full.shape[1] - {"days": SUNDAY_TYPE, "sunday": 1, "none": 0}[weekly]
    if target_row[0, first_weekly:].any() and not np.isin(
            first_weekly + np.flatnonzero(target_row[0, first_weekly:]), usable).all():
        usable = usable[usable < first_weekly]  # the target's day type is unseen: no day terms
    glm_offset = offset if mode == "offset" else None

    def fit_with(use_trend: bool, weights: np.ndarray):
        keep = usable if use_trend else usable[usable != 1]
        result, dispersion, method = _fit(y, X_full[:, keep], weights, glm_offset,
                                          trimmed=trimmed_dispersion)
        return result, dispersion, method, keep

    weights = np.ones(window)
    result, dispersion, method, keep = fit_with(trend, weights)
    for _ in range(reweight_passes if reweight else 0):
        # Repeat: a big past outbreak inflates the dispersion and so hides smaller ones.
        mu = result.fittedvalues
        residual = (y - mu) / np.sqrt(mu + dispersion * mu**2 + 1e-12)
        outliers = residual > _OUTLIER_RESIDUAL
        new_weights = np.where(outliers, np.maximum(residual, _OUTLIER_RESIDUAL) ** -2.0, 1.0)
        new_weights *= window / new_weights.sum()
        if np.allclose(new_weights, weights):
            break
        weights = new_weights
        result, dispersion, method, keep = fit_with(trend, weights)
    kept_trend = trend and 1 in keep
    if kept_trend:
        position = int(np.flatnonzero(keep == 1)[0])
        mean = float(np.exp(target_row[:, keep] @ result.params + target_offset)[0])
        if result.pvalues[position] > trend_p or mean > y.max():
            result, dispersion, method, keep = fit_with(False, weights)
            kept_trend = False
    mu = result.fittedvalues
    scale = float(result.scale) if method == "quasi-poisson" else 1.0
    variance = scale * mu if method == "quasi-poisson" else mu + dispersion * mu**2
    residual = (y - mu) / np.sqrt(variance + 1e-12)
    recent = residual[-recent_days:]
    shift = float(recent.sum() / np.sqrt(len(recent))) if len(recent) else 0.0
    return BaselineFit(params=np.asarray(result.params, dtype=float),
                       cov=np.asarray(result.cov_params(), dtype=float), keep=keep,
                       dispersion=dispersion, scale=scale, method=method, window=window,
                       weekly=weekly, exposure=mode, exposure_center=center, trend=kept_trend,
                       recent_shift=shift)


def forecast_day(
    counts: np.ndarray,
    day_type: np.ndarray,
    target_type: int,
    **options,
) -> CountForecast:
    """Forecast the day after a baseline window (see :func:`fit_baseline` for the options)."""
    fit = fit_baseline(counts, day_type, target_type, **options)
    exposure = options.get("target_log_exposure")
    return fit.forecast(np.array([target_type]), np.array([0]),
                        None if exposure is None else np.array([exposure]))
