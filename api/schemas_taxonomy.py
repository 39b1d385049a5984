"""Schemas of the label taxonomy endpoints (``/v1/taxonomy``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TaxonomyAddIn(BaseModel):
    """Values a curator approves for one label."""

    model_config = ConfigDict(extra="forbid")

    values: list[str] = Field(min_length=1, max_length=500,
                              description="Values to approve (each 1–500 characters)")


class LabelTaxonomyOut(BaseModel):
    """The approved values of one label."""

    label: str
    model_values: list[str] = Field(description="Classes of the active model version")
    curated_values: list[str] = Field(description="Values an admin approved")


class TaxonomyOut(BaseModel):
    """The taxonomy in force: corrections and retraining accept only these values."""

    model_version: str | None
    labels: list[LabelTaxonomyOut]
