"""Trend alerts: plain records with a status and a dedup key, and their pure merge rules.

One ongoing rise is one alert: alarm days of the same series (same dedup key) that follow each
other with at most ``gap_days`` quiet days in between update the open alert instead of opening a
new one. Storage, the API and the CLI keep these records; nothing here touches a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any


class AlertStatus(StrEnum):
    """Life cycle of an alert."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlarmDay:
    """One day on which a series alarmed.

    Attributes:
        day: The day.
        observed: Messages that day.
        expected: The baseline model's expected count.
        upper: The alarm threshold (upper predictive quantile) that day.
        p_value: P(count >= observed) under the baseline model.
        rule: Which rule fired: ``glm`` (one day), ``sum2``/``sum3`` (a 2- or 3-day window sum),
            ``cusum`` (when switched on) or ``sparse``.
    """

    day: date
    observed: int
    expected: float
    upper: float
    p_value: float
    rule: str


@dataclass(frozen=True, slots=True)
class TrendAlert:
    """A rise in one count series (a topic, department, territory or channel).

    Attributes:
        dimension: The cut the series belongs to (``topic``, ``territory``...).
        value: The series value (a topic name, a district...).
        days: The alarm days, oldest first.
        status: ``new``, ``acknowledged`` or ``resolved``.
        explanation: What drives the excess (an :class:`~mcu_nlp.trends.explain.AlertExplanation`),
            filled in by :func:`mcu_nlp.trends.explain.explain_alert`.
    """

    dimension: str
    value: str
    days: tuple[AlarmDay, ...]
    status: AlertStatus = AlertStatus.NEW
    explanation: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("an alert needs at least one alarm day")

    @property
    def key(self) -> str:
        """Dedup key: the series; consecutive alarm days with this key are one alert."""
        return f"{self.dimension}={self.value}"

    @property
    def id(self) -> str:
        """Stable identifier: the series and the day the rise started."""
        digest = hashlib.sha1(f"{self.key}@{self.first_day.isoformat()}".encode()).hexdigest()
        return digest[:16]

    @property
    def first_day(self) -> date:
        """First alarm day."""
        return self.days[0].day

    @property
    def last_day(self) -> date:
        """Latest alarm day."""
        return self.days[-1].day

    @property
    def observed(self) -> int:
        """Messages on the alarm days."""
        return sum(d.observed for d in self.days)

    @property
    def expected(self) -> float:
        """Expected messages on the alarm days."""
        return float(sum(d.expected for d in self.days))

    @property
    def excess(self) -> float:
        """Observed minus expected messages on the alarm days."""
        return self.observed - self.expected

    @property
    def peak(self) -> AlarmDay:
        """The alarm day with the largest excess."""
        return max(self.days, key=lambda d: d.observed - d.expected)

    @property
    def rules(self) -> tuple[str, ...]:
        """Rules that fired, in order of first appearance."""
        return tuple(dict.fromkeys(d.rule for d in self.days))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (the explanation is left out)."""
        return {
            "id": self.id, "key": self.key, "dimension": self.dimension, "value": self.value,
            "status": str(self.status), "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(), "observed": self.observed,
            "expected": round(self.expected, 2), "rules": list(self.rules),
            "days": [{"day": d.day.isoformat(), "observed": d.observed,
                      "expected": d.expected, "upper": d.upper,
                      "p_value": d.p_value, "rule": d.rule} for d in self.days],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrendAlert:
        """Rebuild an alert from :meth:`as_dict` output (the explanation is not restored)."""
        days = tuple(AlarmDay(day=date.fromisoformat(d["day"]), observed=int(d["observed"]),
                              expected=float(d["expected"]), upper=float(d["upper"]),
                              p_value=float(d["p_value"]), rule=str(d["rule"]))
                     for d in data["days"])
        return cls(dimension=data["dimension"], value=data["value"], days=days,
                   status=AlertStatus(data.get("status", AlertStatus.NEW)))


def merge_alerts(existing: Iterable[TrendAlert], new: Iterable[TrendAlert], *,
                 gap_days: int = 2) -> list[TrendAlert]:
    """Fold freshly detected alerts into the known ones, without touching either input.

    A new alert continues an open (new or acknowledged) alert with the same key when it starts at
    most ``gap_days`` quiet days after that alert's last day, or overlaps it: the days are united
    (a re-detected day takes the new values) and the status is kept, so an acknowledged rise stays
    acknowledged while it goes on. Anything else, including a rise after a resolved alert, is a
    new alert.

    Returns:
        All alerts: updated, untouched and added, ordered by first day and key.
    """
    merged: list[TrendAlert] = list(existing)
    for alert in sorted(new, key=lambda a: (a.first_day, a.key)):
        target = _continued(merged, alert, gap_days)
        if target is None:
            merged.append(alert)
            continue
        old = merged[target]
        days = {d.day: d for d in old.days}
        days.update({d.day: d for d in alert.days})
        merged[target] = replace(old, days=tuple(days[k] for k in sorted(days)),
                                 explanation=alert.explanation or old.explanation)
    return sorted(merged, key=lambda a: (a.first_day, a.key))


def resolve_quiet(alerts: Iterable[TrendAlert], as_of: date, *, quiet_days: int = 3
                  ) -> list[TrendAlert]:
    """Mark resolved every open alert with no alarm in the ``quiet_days`` days up to ``as_of``."""
    cutoff = as_of - timedelta(days=quiet_days)
    return [replace(a, status=AlertStatus.RESOLVED)
            if a.status != AlertStatus.RESOLVED and a.last_day <= cutoff else a
            for a in alerts]


def acknowledge(alerts: Sequence[TrendAlert], alert_id: str) -> list[TrendAlert]:
    """Mark the alert ``alert_id`` acknowledged.

    Raises:
        KeyError: When no alert has that id.
    """
    if not any(a.id == alert_id for a in alerts):
        raise KeyError(f"no alert with id {alert_id!r}")
    return [replace(a, status=AlertStatus.ACKNOWLEDGED)
            if a.id == alert_id and a.status == AlertStatus.NEW else a for a in alerts]


def alerts_from_alarm_days(dimension: str, value: str, days: Iterable[AlarmDay], *,
                           gap_days: int = 2) -> list[TrendAlert]:
    """Group one series' alarm days into alerts, split by more than ``gap_days`` quiet days."""
    alerts: list[TrendAlert] = []
    for day in sorted(days, key=lambda d: d.day):
        single = TrendAlert(dimension=dimension, value=value, days=(day,))
        alerts = merge_alerts(alerts, [single], gap_days=gap_days)
    return alerts


def _continued(alerts: list[TrendAlert], alert: TrendAlert, gap_days: int) -> int | None:
    for position, old in enumerate(alerts):
        if old.key != alert.key or old.status == AlertStatus.RESOLVED:
            continue
        if old.first_day - timedelta(days=gap_days + 1) <= alert.first_day \
                <= old.last_day + timedelta(days=gap_days + 1):
            return position
    return None
