"""Response schemas of the precision audit: ``/v1/routing/...``, audit items, quality alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import Strict


class PrecisionOut(BaseModel):
    """Audited items and the precision they show (None where nothing was audited)."""

    audited: int
    correct: int
    estimate: float | None
    interval_95: tuple[float, float] | None = Field(
        description="Two-sided 95 % Clopper–Pearson interval")
    lower_bound: float | None = Field(
        description="One-sided Clopper–Pearson lower bound at the policy's confidence")


class MonthQualityOut(BaseModel):
    """One label in one month of filing time."""

    label: str
    month: str
    auto_routed: int = Field(description="Auto-routed appeals whose label the model set alone")
    audited: int
    audited_correct: int
    audited_wrong: int
    estimate: float | None
    interval_95: tuple[float, float] | None
    lower_bound: float | None
    target: float
    effective_threshold: float | None = Field(description="In force now (active model)")
    override: float | None = Field(description="Raised threshold in force now, if any")
    later_base: int = Field(description="Auto-routed appeals outside the audit sample")
    later_corrected: int = Field(
        description="Of those, corrected afterwards: only noticed errors (biased; not used in "
                    "the estimate)")
    later_corrected_share: float | None


class LabelStateOut(BaseModel):
    """A label's threshold in force and the audit evidence behind it."""

    label: str
    bundle_threshold: float | None
    per_class_thresholds: bool
    override: float | None
    override_reason: str | None
    effective_threshold: float | None
    evidence: PrecisionOut = Field(
        description="Audited items the threshold in force still routes (since the last reset)")
    status: str = Field(description="ok | below_target | insufficient")


class PolicyOut(BaseModel):
    """What auto-routing promises."""

    target: float
    confidence: float
    min_items: int
    min_evidence: int = Field(description="Audited items needed before a decision")
    tighten_step: float
    audit_share: float | None


class RoutingQualityOut(BaseModel):
    """``GET /v1/routing/quality``."""

    model_version: str | None
    policy: PolicyOut
    labels: list[LabelStateOut]
    months: list[MonthQualityOut]


class ThresholdChangeOut(BaseModel):
    """One automatic tightening."""

    label: str
    model_version: str
    before: float
    after: float
    method: str = Field(description="estimate | step")
    audited: int
    correct: int
    lower_bound: float
    alert_id: int


class VerdictOut(BaseModel):
    """A verdict on one label of an audited appeal."""

    label: str
    predicted: str
    confidence: float
    correct: bool


class AuditConfirmOut(BaseModel):
    """``POST /v1/queue/{appeal_id}/confirm``."""

    appeal_id: int
    verdicts: list[VerdictOut]
    threshold_changes: list[ThresholdChangeOut]


class OverrideOut(BaseModel):
    """A stored threshold override (``threshold`` None: reset)."""

    model_version: str
    label: str
    threshold: float | None
    bundle_threshold: float | None
    evidence_since: datetime | None
    reason: str
    updated_by: str
    updated_at: datetime


class OverrideResetIn(Strict):
    """Why an admin resets an override."""

    comment: str = Field(default="", max_length=500)


class QualityAlertOut(BaseModel):
    """A quality alert (auto-routing below its precision promise)."""

    id: int
    kind: str
    title: str
    status: str
    severity: float
    raised_at: datetime
    details: dict[str, Any]
    status_changed_by: str | None


class QualityAlertsOut(BaseModel):
    """A page of quality alerts."""

    total: int
    items: list[QualityAlertOut]
