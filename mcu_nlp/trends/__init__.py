"""Trend alerts: counts by topic × territory × day, spike detection and alert explanations.

* :mod:`~mcu_nlp.trends.counts` — daily/weekly counts per cut (topic group, topic, department,
  territory, channel) from an appeals frame;
* :mod:`~mcu_nlp.trends.detector` — the :class:`SeriesDetector` protocol and the default
  :class:`NegativeBinomialDetector` (NB GLM day and window-sum rules, optional CUSUM, sparse
  rule), with
  :mod:`~mcu_nlp.trends.baseline` fitting the baseline model;
* :mod:`~mcu_nlp.trends.explain` — drivers, words and masked examples of an alert;
* :mod:`~mcu_nlp.trends.alerts` — :class:`TrendAlert` records and their pure merge rules;
* :mod:`~mcu_nlp.trends.scan` — all of it for one day: :func:`scan_alerts`.
"""

from mcu_nlp.trends.alerts import AlarmDay, AlertStatus, TrendAlert, merge_alerts, resolve_quiet
from mcu_nlp.trends.counts import SeriesDimension, count_series, default_dimensions
from mcu_nlp.trends.detector import NegativeBinomialDetector, SeriesDetector
from mcu_nlp.trends.explain import AlertExplanation, explain_alerts
from mcu_nlp.trends.scan import scan_alerts

__all__ = [
    "AlarmDay",
    "AlertExplanation",
    "AlertStatus",
    "NegativeBinomialDetector",
    "SeriesDetector",
    "SeriesDimension",
    "TrendAlert",
    "count_series",
    "default_dimensions",
    "explain_alerts",
    "merge_alerts",
    "resolve_quiet",
    "scan_alerts",
]
