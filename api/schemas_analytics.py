"""Response bodies of the analytics endpoints: root causes, incidents, alerts, reports, rating."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from mcu_nlp.sla.rating import DepartmentScore


class PeriodOut(BaseModel):
    """The analysed days (inclusive) and territory."""

    since: date
    until: date
    territory: str | None = None


class TrendOut(BaseModel):
    """Whether a root cause grows: its share in the second half of the period vs the first."""

    direction: str = Field(description="growing | stable | falling")
    label_ru: str
    first_half: int
    second_half: int
    share_ratio: float
    p_value: float


class PlaceCount(BaseModel):
    """A place (street, building) and its number of appeals."""

    place: str
    count: int


class TerritoryCount(BaseModel):
    """A territory (district, settlement) and its number of appeals."""

    territory: str
    count: int


class RootCauseBrief(BaseModel):
    """A root-cause card without its weekly counts."""

    id: int
    title: str
    description: str
    keywords: list[str]
    size: int
    share: float
    trend: TrendOut
    first_seen: str
    last_seen: str
    top_places: list[PlaceCount]
    territories: list[TerritoryCount]
    dominant_topic: str | None
    topic_share: float
    department: str | None
    department_share: float
    examples: list[str] = Field(description="Representative messages, personal data masked.")
    # Why it keeps happening; null where the analysis had no answers or places to read.
    rank: int | None = Field(None, description="Place in the ranking by recurrence.")
    rank_basis: str | None = Field(None, description="What the ranking is based on.")
    scope: dict[str, Any] | None = Field(None, description="Districts and places it spans.")
    responsible: dict[str, Any] | None = Field(
        None, description="The body that owns the problem: a department with a majority, else "
                          "its group, else several departments.")
    recurrence: dict[str, Any] | None = Field(
        None, description="Repeats at the same place and topic, repeats after an answer that "
                          "said it was fixed, chronic places with their history.")
    outcomes: list[dict[str, Any]] | None = Field(
        None, description="What the official answers said: type, count, share.")
    fixes_not_holding: list[dict[str, Any]] | None = Field(
        None, description="Departments whose «done» answers were followed by "
                                          "a repeat.")
    planned_not_arrived: list[dict[str, Any]] | None = Field(
        None, description="Planned works whose place had a later appeal.")
    out_of_competence: dict[str, Any] | None = Field(
        None, description="Refusals as out of competence, with a routing rule proposal.")
    follow_up: dict[str, Any] | None = Field(
        None, description="Before/after at its places against comparable places (if asked).")


class RootCauseOut(RootCauseBrief):
    """A full root-cause card."""

    weekly_counts: dict[str, int] = Field(description="Week start (ISO) → appeals.")
    answer_examples: list[dict[str, Any]] | None = Field(
        None, description="Official answers, personal data masked.")
    roadmap: dict[str, Any] | None = Field(
        None, description="Stages from the evidence: title, owner, due date, target, basis.")


class RootCausesOut(BaseModel):
    """The top root causes of a period."""

    period: PeriodOut
    n_appeals: int
    n_root_causes: int
    outlier_share: float = Field(description="Share of appeals left in no root cause.")
    root_causes: list[RootCauseBrief]


class IncidentOut(BaseModel):
    """Near-duplicate appeals merged as one problem."""

    id: int
    size: int
    first_seen: str
    last_seen: str
    appeal_ids: list[str] = Field(description="The appeals' ids in their source system.")
    text: str = Field(description="The longest message, personal data masked.")
    topic: str | None = None
    address: str | None = None
    territory: str | None = None


class IncidentsOut(BaseModel):
    """Incidents of a period, largest first."""

    period: PeriodOut
    n_appeals: int
    n_incidents: int
    n_merged_appeals: int
    incidents: list[IncidentOut]


class AlarmDayOut(BaseModel):
    """One day on which the series alarmed."""

    day: date
    observed: int
    expected: float
    upper: float
    p_value: float
    rule: str = Field(description="glm | cusum | sparse")


class AlertOut(BaseModel):
    """A stored trend alert with its explanation (personal data masked)."""

    id: int
    key: str
    dimension: str
    value: str
    title: str
    status: str = Field(description="new | acknowledged | resolved")
    first_day: date
    last_day: date
    observed: int
    expected: float
    excess: float
    rules: list[str]
    days: list[AlarmDayOut]
    explanation: dict[str, Any] | None = Field(
        description="summary, drivers per cut, words (log-odds z), masked examples")
    status_changed_by: str | None


class AlertsOut(BaseModel):
    """A page of alerts."""

    total: int
    items: list[AlertOut]


class AlertAckIn(BaseModel):
    """Optional comment for the audit log."""

    model_config = {"extra": "forbid"}
    comment: str = Field(default="", max_length=2000)


class ScanOut(BaseModel):
    """What a scan did."""

    as_of: date
    created: list[int]
    updated: list[int]
    resolved: list[int]
    open: list[AlertOut] = Field(description="Alerts still open after the scan.")


class RatingOut(BaseModel):
    """The department rating of a period, every component shown."""

    period: dict[str, str]
    departments: list[DepartmentScore]
