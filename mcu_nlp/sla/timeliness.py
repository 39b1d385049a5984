"""Deadlines, overdue and at-risk appeals, as known at a given moment (``as_of``).

Everything here is a pure function over a DataFrame of appeals in the layout of
``mcu_nlp.ingest.appeals_to_frame`` (column names from :class:`~mcu_nlp.sla.config.AppealColumns`).

Definitions (also in ``docs/department_rating.md``):

* ``sla_deadline`` — the **exclusive** end of the answer window: an answer strictly before it is in
  time. Day-based deadlines end at midnight after the last allowed day; calendar-day deadlines
  that end on a day off roll to the next working day when configured (59-ФЗ).
* An appeal is *answered as of* ``as_of`` when its answer timestamp (``answer_column``) is not
  later than ``as_of``; answers written later are treated as not yet given, so a report for a
  past week sees what the curator saw at the end of that week.
* *Overdue*: answered after the deadline, or unanswered with the deadline passed.
* *Open overdue*: unanswered at ``as_of`` and the deadline passed (the backlog to chase).
* *At risk*: unanswered, not yet overdue, and either the elapsed share of the window is at least
  ``at_risk_elapsed_share`` or the forecast answer time (filing time + the median time to first
  answer of the same department and channel, over appeals answered before ``as_of``) is not
  before the deadline.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from mcu_nlp.calendar import ProductionCalendar, default_calendar
from mcu_nlp.sla.config import CLOSED_OUTCOMES, Outcome, SlaConfig, load_sla_config

__all__ = ["annotate_sla", "compute_deadlines", "to_timestamps"]

_DAY = pd.Timedelta(days=1)


def to_timestamps(values: pd.Series) -> pd.Series:
    """Parse a column of ISO strings or datetimes into naive local timestamps (bad → NaT)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_localize(None)
    return values.astype("datetime64[ns]")


def compute_deadlines(frame: pd.DataFrame, config: SlaConfig | None = None,
                      calendar: ProductionCalendar | None = None) -> pd.Series:
    """The exclusive deadline of every appeal, from its channel and filing time.

    Args:
        frame: Appeals with the channel and created-at columns of ``config.columns``.
        config: SLA configuration (packaged defaults when None).
        calendar: Production calendar (the default one when None).

    Returns:
        A ``datetime64[ns]`` Series aligned with ``frame`` (NaT where the filing time is missing).
    """
    config = config or load_sla_config()
    calendar = calendar or default_calendar()
    cols = config.columns
    created = to_timestamps(frame[cols.created_at])
    channels = frame[cols.channel].astype("string").fillna("other") \
        if cols.channel in frame else pd.Series("other", index=frame.index, dtype="string")
    deadlines = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for channel, idx in channels.groupby(channels, sort=False).groups.items():
        rule = config.deadline_for(str(channel))
        when = created.loc[idx]
        valid = when.notna()
        when = when[valid]
        if when.empty:
            continue
        days = when.dt.normalize().values.astype("datetime64[D]")
        if rule.unit == "working_days":
            last_day = calendar.add_working_days_array(days, int(rule.amount))
            due = pd.to_datetime(last_day) + _DAY
        elif rule.unit == "calendar_days":
            last_day = days + np.timedelta64(int(rule.amount), "D")
            if rule.roll_to_working_day:
                last_day = calendar.add_working_days_array(last_day, 0)
            due = pd.to_datetime(last_day) + _DAY
        else:
            due = pd.DatetimeIndex([calendar.add_working_hours(t.to_pydatetime(), rule.amount)
                                    for t in when])
        deadlines.loc[when.index] = np.asarray(due, dtype="datetime64[ns]")
    return deadlines


def _median_hours_by_group(created: pd.Series, answered: pd.Series, keys: list[pd.Series],
                           as_of: pd.Timestamp, min_history: int) -> pd.Series:
    """Median hours to answer per group over appeals answered by ``as_of`` (NaN if too few)."""
    known = answered.notna() & (answered <= as_of)
    hours = (answered - created).dt.total_seconds() / 3600.0
    hist = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})[known]
    hist["hours"] = hours[known]
    grouped = hist.groupby([f"k{i}" for i in range(len(keys))], dropna=False)["hours"]
    stats = grouped.agg(["median", "size"])
    stats.loc[stats["size"] < min_history, "median"] = np.nan
    lookup = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    merged = lookup.merge(stats["median"].reset_index(), how="left",
                          on=[f"k{i}" for i in range(len(keys))])
    return pd.Series(merged["median"].to_numpy(), index=created.index)


def annotate_sla(frame: pd.DataFrame, as_of: datetime | pd.Timestamp,
                 config: SlaConfig | None = None,
                 calendar: ProductionCalendar | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with SLA and quality columns as known at ``as_of``.

    Added columns: ``sla_created_at``, ``sla_deadline``, ``sla_answer_at`` (NaT if not
    answered by ``as_of``), ``sla_answered``, ``sla_in_time`` (answered before the deadline),
    ``sla_overdue``, ``sla_open``, ``sla_open_overdue``, ``sla_at_risk``, ``sla_elapsed_share``,
    ``first_answer_hours``, ``first_answer_working_days``, ``resolution_hours``,
    ``outcome`` (:class:`Outcome` value of the final status), ``status_at``, ``closed``,
    ``rerouted`` (``n_routes > 0``), ``reopened`` (``n_user_messages > 1``).

    Rows filed after ``as_of`` are kept; they are neither open nor overdue.
    """
    config = config or load_sla_config()
    calendar = calendar or default_calendar()
    cols = config.columns
    as_of = pd.Timestamp(as_of)
    out = frame.copy()
    created = to_timestamps(out[cols.created_at])
    answer = to_timestamps(out[config.answer_at_column]) if config.answer_at_column in out \
        else pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    first = to_timestamps(out[cols.first_answer_at]) if cols.first_answer_at in out else answer
    last = to_timestamps(out[cols.last_answer_at]) if cols.last_answer_at in out else answer
    deadline = compute_deadlines(out, config, calendar)

    filed = created.notna() & (created <= as_of)
    answered = answer.notna() & (answer <= as_of)
    out["sla_created_at"] = created
    out["sla_deadline"] = deadline
    out["sla_answer_at"] = answer.where(answered)
    out["sla_answered"] = answered
    out["sla_in_time"] = answered & (answer < deadline)
    passed = deadline.notna() & (deadline <= as_of)
    out["sla_open"] = filed & ~answered
    out["sla_open_overdue"] = out["sla_open"] & passed
    out["sla_overdue"] = (answered & (answer >= deadline)) | out["sla_open_overdue"]

    window = (deadline - created).dt.total_seconds()
    elapsed = (as_of - created).dt.total_seconds()
    out["sla_elapsed_share"] = (elapsed / window).where(filed & (window > 0))

    dept = out[cols.department].astype("string").fillna("—") if cols.department in out \
        else pd.Series("—", index=out.index, dtype="string")
    chan = out[cols.channel].astype("string").fillna("other") if cols.channel in out \
        else pd.Series("other", index=out.index, dtype="string")
    median_h = _median_hours_by_group(created, answer.where(answered), [dept, chan], as_of,
                                      config.at_risk_min_history)
    forecast = created + pd.to_timedelta(median_h, unit="h")
    forecast = forecast.where(forecast > as_of, as_of)
    late_forecast = median_h.notna() & (forecast >= deadline)
    out["sla_at_risk"] = (out["sla_open"] & ~passed
                          & ((out["sla_elapsed_share"] >= config.at_risk_elapsed_share)
                             | late_forecast))

    first_known = first.where(first.notna() & (first <= as_of))
    out["first_answer_hours"] = (first_known - created).dt.total_seconds() / 3600.0
    both = created.notna() & first_known.notna()
    wd = pd.Series(np.nan, index=out.index)
    if both.any():
        wd[both] = calendar.working_days_between_array(
            created[both].values.astype("datetime64[D]"),
            first_known[both].values.astype("datetime64[D]"))
    out["first_answer_working_days"] = wd
    last_known = last.where(last.notna() & (last <= as_of))
    out["resolution_hours"] = (last_known - created).dt.total_seconds() / 3600.0

    status = out[cols.status] if cols.status in out else pd.Series(None, index=out.index)
    mapping = {s: config.status_outcomes.outcome_of(s).value for s in pd.unique(status)}
    out["outcome"] = status.map(mapping).fillna(Outcome.OPEN.value)
    out["status_at"] = to_timestamps(out[cols.status_at]) if cols.status_at in out \
        else pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    out["closed"] = out["outcome"].isin({o.value for o in CLOSED_OUTCOMES})
    routes = pd.to_numeric(out[cols.n_routes], errors="coerce") if cols.n_routes in out \
        else pd.Series(0, index=out.index)
    messages = pd.to_numeric(out[cols.n_user_messages], errors="coerce") \
        if cols.n_user_messages in out else pd.Series(1, index=out.index)
    out["rerouted"] = routes.fillna(0) > 0
    out["reopened"] = messages.fillna(1) > 1
    return out
