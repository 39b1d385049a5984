"""The note's section «Точность автоматической маршрутизации» as plain data.

Built by :func:`mcu_nlp.services.routing_quality.note_section` from the store, rendered by
:mod:`mcu_nlp.reports.layout`. Only counts, shares, thresholds and label values: no appeal text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["RoutingPrecisionRow", "RoutingPrecisionSection", "ThresholdNote"]


class RoutingPrecisionRow(BaseModel):
    """One label in one month: the audit sample's estimate and the later corrections."""

    label: str
    month: str = Field(description="YYYY-MM of the appeals' filing time")
    auto_routed: int
    audited: int
    audited_correct: int
    estimate: float | None
    interval_low: float | None = Field(description="two-sided 95 % Clopper–Pearson")
    interval_high: float | None
    lower_bound: float | None = Field(description="one-sided, at the policy's confidence")
    target: float
    later_base: int = Field(description="auto-routed appeals outside the audit sample")
    later_corrected: int = Field(description="of those, corrected afterwards (biased)")
    later_corrected_share: float | None


class ThresholdNote(BaseModel):
    """A label's threshold in force for the active model."""

    label: str
    bundle_threshold: float | None
    override: float | None
    effective_threshold: float | None
    status: str
    reason: str | None = None


class RoutingPrecisionSection(BaseModel):
    """Everything the section shows."""

    model_version: str | None
    target: float
    confidence: float
    min_evidence: int
    audit_share: float | None
    rows: list[RoutingPrecisionRow]
    thresholds: list[ThresholdNote]
