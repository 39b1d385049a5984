"""Timeliness and satisfaction figures for a period, overall or by department, topic, territory.

Input is the output of :func:`mcu_nlp.sla.timeliness.annotate_sla` computed with
``as_of = end`` of the period. Each figure has its own population, chosen so that it is known at
the end of the period:

=====================  ==========================================================================
figure                 population
=====================  ==========================================================================
``received``           appeals filed in the period
``due``                appeals whose deadline falls in the period (``answered_in_time`` among them)
``answered``           appeals whose (first) answer came in the period: median times to answer
``closed``             appeals with a closing status dated in the period: satisfaction shares
``open_end``           appeals unanswered at the end of the period (``overdue_open``, ``at_risk``)
``rerouted/reopened``  appeals filed in the period (``n_routes``/``n_user_messages`` as exported)
=====================  ==========================================================================
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from mcu_nlp.sla.config import Outcome

__all__ = ["QUALITY_COLUMNS", "quality_summary", "quality_table"]

QUALITY_COLUMNS = (
    "received", "rerouted", "rerouted_share", "reopened", "reopened_share",
    "due", "answered_in_time", "in_time_share",
    "answered", "median_first_answer_days", "median_first_answer_working_days",
    "median_resolution_days",
    "closed", "satisfied", "auto_closed", "dissatisfied", "satisfied_share",
    "open_end", "overdue_open", "at_risk",
)


def _bounds(start: date | datetime | pd.Timestamp,
            end: date | datetime | pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Inclusive start, exclusive end; a plain ``end`` date means the whole day."""
    lo = pd.Timestamp(start)
    if isinstance(end, datetime):  # pd.Timestamp is a datetime too: an exact exclusive moment
        return lo, pd.Timestamp(end)
    return lo, pd.Timestamp(end) + pd.Timedelta(days=1)


def _within(values: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    return values.notna() & (values >= lo) & (values < hi)


def _share(num: pd.Series | float, den: pd.Series | float) -> pd.Series | float:
    if isinstance(den, pd.Series):
        return (num / den.where(den > 0)).astype(float)
    return float(num) / den if den else float("nan")


def quality_table(annotated: pd.DataFrame, start: date | datetime, end: date | datetime,
                  by: str | list[str] | None = None) -> pd.DataFrame:
    """Quality figures for the period ``[start, end]`` (``end`` date inclusive), by group.

    Args:
        annotated: Output of ``annotate_sla(frame, as_of=end of period)``.
        start: First day (or moment) of the period.
        end: Last day of the period (a ``date`` covers the whole day; a timestamp is exclusive).
        by: Column(s) to group by; None gives one row labelled ``"Всего"``.

    Returns:
        One row per group with :data:`QUALITY_COLUMNS`; shares are in [0, 1] or NaN when their
        population is empty. Groups with no appeal in any population are left out.
    """
    lo, hi = _bounds(start, end)
    a = annotated
    flags = pd.DataFrame(index=a.index)
    received = _within(a["sla_created_at"], lo, hi)
    flags["received"] = received
    flags["rerouted"] = received & a["rerouted"]
    flags["reopened"] = received & a["reopened"]
    due = _within(a["sla_deadline"] - pd.Timedelta(microseconds=1), lo, hi) \
        & (a["sla_created_at"] < hi)
    flags["due"] = due
    flags["answered_in_time"] = due & a["sla_in_time"]
    answered = _within(a["sla_answer_at"], lo, hi)
    flags["answered"] = answered
    closed = a["closed"] & _within(a["status_at"], lo, hi)
    flags["closed"] = closed
    flags["satisfied"] = closed & (a["outcome"] == Outcome.SATISFIED.value)
    flags["auto_closed"] = closed & (a["outcome"] == Outcome.AUTO_CLOSED.value)
    flags["dissatisfied"] = closed & (a["outcome"] == Outcome.DISSATISFIED.value)
    flags["open_end"] = a["sla_open"]
    flags["overdue_open"] = a["sla_open_overdue"]
    flags["at_risk"] = a["sla_at_risk"]
    flags = flags.astype(int)
    # Medians only over their own population (NaN elsewhere, skipped by median()).
    flags["_fa_days"] = (a["sla_answer_at"] - a["sla_created_at"]).dt.total_seconds() \
        .div(86400.0).where(answered)
    flags["_fa_wd"] = a["first_answer_working_days"].where(answered)
    resolved = answered & a["resolution_hours"].notna()
    flags["_res_days"] = (a["resolution_hours"] / 24.0).where(resolved)

    if by is None:
        keys: list[pd.Series] | pd.Series = pd.Series("Всего", index=a.index, name="group")
    else:
        names = [by] if isinstance(by, str) else list(by)
        keys = [a[n].astype("string").fillna("—").rename(n) for n in names]
    grouped = flags.groupby(keys, sort=False)
    counts = grouped[[c for c in flags.columns if not c.startswith("_")]].sum()
    table = counts.assign(
        median_first_answer_days=grouped["_fa_days"].median(),
        median_first_answer_working_days=grouped["_fa_wd"].median(),
        median_resolution_days=grouped["_res_days"].median(),
    )
    table["rerouted_share"] = _share(table["rerouted"], table["received"])
    table["reopened_share"] = _share(table["reopened"], table["received"])
    table["in_time_share"] = _share(table["answered_in_time"], table["due"])
    table["satisfied_share"] = _share(table["satisfied"], table["closed"])
    active = table[["received", "due", "answered", "closed", "open_end"]].sum(axis=1) > 0
    table = table.loc[active, list(QUALITY_COLUMNS)]
    return table.sort_values("received", ascending=False)


def quality_summary(annotated: pd.DataFrame, start: date | datetime,
                    end: date | datetime) -> dict[str, float | int | None]:
    """The period's overall quality figures as a plain dict (NaN → None)."""
    table = quality_table(annotated, start, end)
    if table.empty:
        return {c: (0 if not c.startswith(("median", "in_time", "satisfied_share",
                                           "rerouted_share", "reopened_share")) else None)
                for c in QUALITY_COLUMNS}
    out: dict[str, float | int | None] = {}
    for col in QUALITY_COLUMNS:
        value = table[col].iloc[0]
        if pd.api.types.is_integer_dtype(table[col]):
            out[col] = int(value)
        else:
            out[col] = None if pd.isna(value) else float(value)
    return out
