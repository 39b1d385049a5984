"""Department rating (рейтингование ответственных получателей), п. 8.2 of the Положение.

A transparent weighted score; every component is shown beside the score so a department can see
why it stands where it does. The formula (also in ``docs/department_rating.md``)::

    timeliness   = answered_in_time / due            (appeals due in the period)
    satisfaction = satisfied / closed                 (appeals closed in the period)
    routing      = 1 - rerouted / received            (appeals filed in the period)
    backlog      = 1 - overdue_open / open_end        (unanswered at the end; 1 if none open)
    score        = 100 * sum(w_c * c) / sum(w_c)      over the components that are defined

A component with an empty population (no appeal due, none closed) is left out of both sums rather
than counted as 0 or 1, and ``components_used`` says which ones entered. Departments with fewer
than ``min_appeals`` appeals across the populations are listed but not ranked.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mcu_nlp.sla.config import RatingConfig, SlaConfig, load_sla_config
from mcu_nlp.sla.quality import quality_table

__all__ = ["COMPONENTS", "DepartmentScore", "department_rating", "rating_records"]

COMPONENTS = ("timeliness", "satisfaction", "routing", "backlog")


class DepartmentScore(BaseModel):
    """One department's line of the rating (plain data for the API and the report)."""

    department: str
    rank: int | None
    score: float | None
    timeliness: float | None
    satisfaction: float | None
    routing: float | None
    backlog: float | None
    components_used: list[str]
    received: int
    due: int
    answered_in_time: int
    closed: int
    satisfied: int
    rerouted: int
    open_end: int
    overdue_open: int
    at_risk: int
    median_first_answer_days: float | None
    ranked: bool


def department_rating(annotated: pd.DataFrame, start: date | datetime, end: date | datetime,
                      config: SlaConfig | RatingConfig | None = None,
                      department_column: str | None = None) -> pd.DataFrame:
    """The rating table for the period, best first (unranked departments last).

    Args:
        annotated: Output of ``annotate_sla(frame, as_of=end of period)``.
        start: First day of the period.
        end: Last day of the period (inclusive when a ``date``).
        config: SLA configuration or just its rating part (packaged defaults when None).
        department_column: Column naming the department (``config.columns.department``).

    Returns:
        A DataFrame indexed by department with the quality counts, the four components, ``score``,
        ``components_used``, ``ranked`` and ``rank``.
    """
    sla = config if isinstance(config, SlaConfig) else load_sla_config()
    rating = config if isinstance(config, RatingConfig) else sla.rating
    column = department_column or sla.columns.department
    table = quality_table(annotated, start, end, by=column)
    comp = pd.DataFrame(index=table.index)
    comp["timeliness"] = table["in_time_share"]
    comp["satisfaction"] = table["satisfied_share"]
    comp["routing"] = 1.0 - table["rerouted_share"]
    comp["backlog"] = np.where(table["open_end"] > 0,
                               1.0 - table["overdue_open"] / table["open_end"].where(
                                   table["open_end"] > 0), 1.0)
    weights = pd.Series({c: float(rating.weights.get(c, 0.0)) for c in COMPONENTS})
    values = comp[list(COMPONENTS)]
    defined = values.notna() & (weights > 0)
    num = (values.fillna(0.0) * weights).sum(axis=1)
    den = (defined * weights).sum(axis=1)
    result = table.join(comp)
    result["score"] = (100.0 * num / den.where(den > 0)).round(1)
    result["components_used"] = defined.apply(lambda r: [c for c in COMPONENTS if r[c]], axis=1)
    volume = table[["received", "due", "closed"]].max(axis=1)
    result["ranked"] = (volume >= rating.min_appeals) & result["score"].notna()
    ranked = result[result["ranked"]].sort_values(["score", "received"], ascending=[False, False])
    result["rank"] = pd.Series(range(1, len(ranked) + 1), index=ranked.index, dtype="Int64")
    unranked = result[~result["ranked"]].sort_values("received", ascending=False)
    result = pd.concat([result.loc[ranked.index], unranked])
    result.index.name = "department"
    return result


def rating_records(rating: pd.DataFrame) -> list[DepartmentScore]:
    """The rating table as :class:`DepartmentScore` records (NaN → None)."""

    def _f(value: Any) -> float | None:
        return None if value is None or pd.isna(value) else round(float(value), 4)

    counts = ("received", "due", "answered_in_time", "closed", "satisfied", "rerouted",
              "open_end", "overdue_open", "at_risk")
    records = []
    for dept, row in rating.iterrows():
        fields: dict[str, Any] = {c: _f(row[c]) for c in COMPONENTS}
        fields.update({k: int(row[k]) for k in counts})
        records.append(DepartmentScore(
            department=str(dept),
            rank=None if pd.isna(row["rank"]) else int(row["rank"]),
            score=_f(row["score"]),
            components_used=list(row["components_used"]),
            median_first_answer_days=_f(row["median_first_answer_days"]),
            ranked=bool(row["ranked"]),
            **fields,
        ))
    return records
