"""Request and response bodies of the HTTP API (separate from storage rows and records)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from mcu_nlp.records import Channel
from mcu_nlp.services.keys import Role
from mcu_nlp.storage.limits import column_limit, has_controls

MAX_TEXT = 20_000
MAX_BATCH = 256


def _no_controls(value: str) -> str:
    """Refuse NUL and other control characters in a short field (the store cannot hold NUL)."""
    if has_controls(value):
        raise ValueError("holds control characters (NUL, escape codes...)")
    return value


def stored(table: str, column: str, *, min_length: int = 0, **field: Any) -> Any:
    """A short string as long as ``table.column`` may hold, free of control characters.

    The length is read from the storage row (:mod:`mcu_nlp.storage.limits`), so the edge refuses
    with 422 what the store would refuse with an error.
    """
    return Annotated[str, Field(min_length=min_length, max_length=column_limit(table, column),
                                **field), AfterValidator(_no_controls)]


Territory = stored("appeals", "territory")
Address = stored("appeals", "address")
SourceId = stored("appeals", "source_id", min_length=1)
LabelName = stored("human_labels", "label", min_length=1)
LabelValue = stored("human_labels", "value")
KeyName = stored("api_keys", "name")


class Strict(BaseModel):
    """Unknown fields are refused with a 422 naming them."""

    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(Strict):
    """One appeal to classify. Nothing is stored."""

    text: str = Field(max_length=MAX_TEXT, description="The citizen's text, in Russian.",
                      examples=["Во дворе не вывозят мусор уже неделю"])
    channel: Channel | None = None
    territory: Territory | None = Field(default=None,
                                        validation_alias=AliasChoices("territory", "district"),
                                        description="District or settlement (also accepted as "
                                                    "district).")
    address: Address | None = None
    created_at: datetime | None = Field(default=None, description="Filing time; default: now.")
    top_k: int = Field(default=3, ge=1, le=20)


class BatchItem(Strict):
    """One item of a batch; a bad text makes only this item an error."""

    text: str = Field(max_length=5 * MAX_TEXT)
    channel: Channel | None = None
    territory: Territory | None = Field(default=None,
                                        validation_alias=AliasChoices("territory", "district"))
    address: Address | None = None
    created_at: datetime | None = None


class ClassifyBatchRequest(Strict):
    """Up to 256 appeals."""

    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    top_k: int = Field(default=3, ge=1, le=20)


class ClassScore(BaseModel):
    """A class and its probability."""

    value: str
    probability: float


class WordWeight(BaseModel):
    """A word and how much it pushed the prediction."""

    word: str
    weight: float


class LabelPredictionOut(BaseModel):
    """The model's answer for one label."""

    label: str
    top: list[ClassScore]
    confidence: float
    threshold: float | None
    explanation: list[WordWeight]


class RoutingOut(BaseModel):
    """Auto vs review, and what decided it."""

    decision: Literal["auto", "review", "manual"]
    department: str | None
    priority: str | None
    decided_by: str = Field(description="rule:<id>, threshold:<label>, review:<why> or human:<who>")
    reason: str
    rules_fired: list[str] = Field(default_factory=list)


class UrgencyReasonOut(BaseModel):
    """One matched urgency lexicon entry."""

    id: str
    description: str
    phrase: str
    weight: float


class UrgencyOut(BaseModel):
    """Urgency score 0..1 and its reasons."""

    score: float
    reasons: list[UrgencyReasonOut]


class ClassificationOut(BaseModel):
    """Topics, department, confidence, urgency and routing of one appeal."""

    model_version: str | None
    rules_version: str
    department: str | None
    confidence: float | None = Field(description="Confidence of the department prediction.")
    predictions: dict[str, LabelPredictionOut]
    urgency: UrgencyOut
    routing: RoutingOut


class BatchResultOut(BaseModel):
    """One batch item: a classification or an error."""

    index: int
    ok: bool
    result: ClassificationOut | None = None
    error: str | None = None


class ClassifyBatchResponse(BaseModel):
    """Results in the order of the request's items."""

    results: list[BatchResultOut]


class AppealIn(Strict):
    """An appeal to store, classify and route; idempotent by (source, source_id)."""

    source: str = Field(default="api", min_length=1,
                        max_length=column_limit("appeals", "source"), pattern=r"^[\w.:-]+$")
    source_id: SourceId
    channel: Channel = Channel.OTHER
    created_at: datetime
    text: str = Field(max_length=MAX_TEXT)
    territory: Territory | None = Field(default=None,
                                        validation_alias=AliasChoices("territory", "district"))
    address: Address | None = None
    labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict, max_length=20,
        description="Labels the source already carries (human labels).")
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=100)


class CorrectionIn(Strict):
    """A person's labels for an appeal (e.g. category and department)."""

    labels: dict[LabelName, LabelValue] = Field(min_length=1, max_length=20)
    comment: str = Field(default="", max_length=2000)


class PredictionOut(BaseModel):
    """A stored prediction."""

    label: str
    value: str
    confidence: float
    threshold: float | None
    top: list[Any]
    explanation: list[Any]
    model_version: str


class CorrectionOut(BaseModel):
    """A stored correction."""

    label: str
    old_value: str | None
    new_value: str
    author: str
    comment: str
    at: datetime


class AppealOut(BaseModel):
    """A stored appeal with predictions, routing and human labels."""

    id: int
    source: str
    source_id: str
    channel: str
    created_at: datetime
    text: str
    territory: str | None
    address: str | None
    urgency: float
    urgency_reasons: list[dict[str, Any]]
    source_labels: dict[str, str]
    corrected_labels: dict[str, str]
    predictions: list[PredictionOut]
    routing: RoutingOut | None
    review_status: str | None
    corrections: list[CorrectionOut]
    audit_sample: bool = Field(default=False, description=(
        "Auto-routed and drawn for the precision audit: a person confirms or corrects it"))
    audit_outcome: str | None = Field(default=None, description="confirmed | corrected")


class AppealStored(BaseModel):
    """What happened to a posted appeal."""

    status: Literal["stored", "duplicate"]
    appeal: AppealOut


class RejectedRowOut(BaseModel):
    """A row of an import that was not stored."""

    line: int | None
    source_id: str | None
    reason: str


class ImportOut(BaseModel):
    """Stored / duplicate / rejected counts of an import."""

    stored: int
    duplicates: int
    rejected: int
    rejected_rows: list[RejectedRowOut] = Field(description="The first 200 rejected rows.")


class QueueItemOut(BaseModel):
    """An appeal in the review queue."""

    appeal_id: int
    status: str
    urgency: float
    urgency_reasons: list[dict[str, Any]]
    priority: str | None
    reason: str
    suggested_department: str | None
    enqueued_at: datetime
    text: str
    channel: str
    territory: str | None
    created_at: datetime
    audit: bool = Field(default=False, description=(
        "An audit item: already routed automatically; confirm (POST /v1/queue/{appeal_id}/"
        "confirm) or correct it"))
    outcome: str | None = Field(default=None, description="confirmed | corrected (audit items)")


class QueueOut(BaseModel):
    """A page of the review queue."""

    total: int
    items: list[QueueItemOut]


class ModelVersionOut(BaseModel):
    """A registered model version."""

    version: str
    path: str = Field(description="The bundle directory's name; where it lies on the server is "
                                  "not shown.")
    labels: list[str]
    metrics: dict[str, Any]
    active: bool
    registered_at: datetime
    activated_at: datetime | None


class KeyCreateIn(Strict):
    """A new API key's role and a name to tell it apart."""

    role: Role
    name: KeyName = ""


class KeyCreatedOut(BaseModel):
    """The new key, shown once."""

    key: str
    role: Role
    name: str


class RulesOut(BaseModel):
    """The curator rules in force."""

    version: str
    rules: list[dict[str, Any]]


class RulesIn(Strict):
    """A new curator rules file (YAML text), validated before it takes effect."""

    yaml: str = Field(min_length=1, max_length=1_000_000)


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyOut(BaseModel):
    """Readiness: the store answers and a model is active."""

    status: Literal["ready", "not-ready"]
    store: bool
    model_version: str | None
    rules_version: str


class ErrorOut(BaseModel):
    """An error with its reason."""

    detail: Any
