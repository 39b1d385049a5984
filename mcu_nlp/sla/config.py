"""SLA configuration: deadlines per channel, status outcomes, rating weights, column names.

Defaults live in ``defaults.yaml`` beside this module; :func:`load_sla_config` reads another file
(same layout) and validates it, so a bad configuration fails loudly at start-up.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")


class Outcome(StrEnum):
    """What the final status says about the appeal's fate."""

    SATISFIED = "satisfied"
    AUTO_CLOSED = "auto_closed"
    DISSATISFIED = "dissatisfied"
    ANSWERED = "answered"
    OPEN = "open"


CLOSED_OUTCOMES = frozenset({Outcome.SATISFIED, Outcome.AUTO_CLOSED, Outcome.DISSATISFIED})


class Deadline(BaseModel):
    """An answer deadline: ``amount`` units after filing."""

    model_config = ConfigDict(extra="forbid")

    amount: float = Field(gt=0)
    unit: Literal["calendar_days", "working_days", "working_hours"]
    roll_to_working_day: bool = False

    @model_validator(mode="after")
    def _whole_days(self) -> Deadline:
        if self.unit != "working_hours" and not float(self.amount).is_integer():
            raise ValueError(f"{self.unit} deadline must be a whole number, got {self.amount}")
        return self

    def describe(self) -> str:
        """Russian wording for reports, e.g. «10 рабочих дней», «1 рабочий день»."""
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        forms = {"calendar_days": ("календарный день", "календарных дня", "календарных дней"),
                 "working_days": ("рабочий день", "рабочих дня", "рабочих дней"),
                 "working_hours": ("рабочий час", "рабочих часа", "рабочих часов")}[self.unit]
        if not isinstance(amount, int):
            return f"{amount} {forms[1]}"
        if amount % 10 == 1 and amount % 100 != 11:
            word = forms[0]
        elif 2 <= amount % 10 <= 4 and not 12 <= amount % 100 <= 14:
            word = forms[1]
        else:
            word = forms[2]
        return f"{amount} {word}"


class StatusOutcomes(BaseModel):
    """Status text → :class:`Outcome`, by exact match then by prefix."""

    model_config = ConfigDict(extra="forbid")

    exact: dict[str, Outcome] = Field(default_factory=dict)
    prefix: dict[str, Outcome] = Field(default_factory=dict)

    def outcome_of(self, status: object) -> Outcome:
        """The outcome of one status value (missing or unknown → open)."""
        if not isinstance(status, str):
            return Outcome.OPEN
        text = status.strip()
        if text in self.exact:
            return self.exact[text]
        for prefix, outcome in self.prefix.items():
            if text.startswith(prefix):
                return outcome
        return Outcome.OPEN


class RatingConfig(BaseModel):
    """Weights of the department rating components and the minimum volume to be ranked."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float]
    min_appeals: int = Field(default=20, ge=1)

    @field_validator("weights")
    @classmethod
    def _positive_total(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"timeliness", "satisfaction", "routing", "backlog"}
        if unknown:
            raise ValueError(f"unknown rating components: {sorted(unknown)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("rating weights must be non-negative with a positive sum")
        return value


class AppealColumns(BaseModel):
    """Column names of the appeal frame (layout of ``mcu_nlp.ingest.appeals_to_frame``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = "id"
    channel: str = "channel"
    created_at: str = "created_at"
    territory: str = "territory"
    department: str = "label_department"
    topic: str = "label_category"
    status: str = "last_status"
    status_at: str = "last_status_dt"
    first_answer_at: str = "first_answer_dt"
    last_answer_at: str = "last_answer_dt"
    n_routes: str = "n_routes"
    n_user_messages: str = "n_user_messages"


class SlaConfig(BaseModel):
    """Everything the SLA, quality and rating functions need to know."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    deadlines: dict[str, Deadline]
    answer_column: Literal["first_answer_dt", "last_answer_dt"] = "first_answer_dt"
    at_risk_elapsed_share: float = Field(default=0.7, gt=0, le=1)
    at_risk_min_history: int = Field(default=20, ge=1)
    status_outcomes: StatusOutcomes
    rating: RatingConfig
    columns: AppealColumns = Field(default_factory=AppealColumns)

    def deadline_for(self, channel: str) -> Deadline:
        """The deadline of ``channel``, falling back to ``other``."""
        try:
            return self.deadlines[str(channel)]
        except KeyError:
            if "other" in self.deadlines:
                return self.deadlines["other"]
            raise KeyError(f"no deadline configured for channel {channel!r} and no 'other'") \
                from None

    @property
    def answer_at_column(self) -> str:
        """The frame column holding the answer timestamp that timeliness uses."""
        if self.answer_column == "first_answer_dt":
            return self.columns.first_answer_at
        return self.columns.last_answer_at


def load_sla_config(path: str | Path | None = None) -> SlaConfig:
    """Read and validate an SLA configuration (the packaged defaults when ``path`` is None).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        pydantic.ValidationError: the file does not follow the layout of ``defaults.yaml``.
    """
    source = Path(path) if path is not None else DEFAULTS_PATH
    if not source.exists():
        raise FileNotFoundError(f"SLA configuration not found: {source}")
    with source.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return SlaConfig.model_validate(raw)
