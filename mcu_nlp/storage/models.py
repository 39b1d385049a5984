"""Storage rows (SQLAlchemy 2 declarative). API schemas and records are separate on purpose.

Times are naive UTC for system events (``recorded_at``...) and the source's own local time for
``Appeal.created_at`` (portals export local time without an offset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current UTC time, naive (SQLite keeps no offsets)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AppealRow(Base):
    """One citizen appeal, unique by ``(source, source_id)``."""

    __tablename__ = "appeals"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_appeals_source_id"),
                      Index("ix_appeals_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    text: Mapped[str] = mapped_column(Text)
    territory: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    urgency_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    labels: Mapped[list[HumanLabelRow]] = relationship(back_populates="appeal",
                                                       cascade="all, delete-orphan")
    predictions: Mapped[list[PredictionRow]] = relationship(back_populates="appeal",
                                                            cascade="all, delete-orphan")
    decisions: Mapped[list[RoutingDecisionRow]] = relationship(back_populates="appeal",
                                                               cascade="all, delete-orphan")
    review: Mapped[ReviewItemRow | None] = relationship(cascade="all, delete-orphan",
                                                        uselist=False)


# SQLite's full-text index is fed from Python: FTS5 has no Russian stemmer (PostgreSQL indexes
# the text itself). See mcu_nlp.storage.search_index.
@event.listens_for(AppealRow, "after_insert")
def _index_new_appeal(_mapper: Any, connection: Any, target: AppealRow) -> None:
    if connection.dialect.name == "sqlite":
        from mcu_nlp.storage.search_index import index_appeal

        index_appeal(connection, target.id, target.text)


@event.listens_for(AppealRow, "after_update")
def _reindex_changed_appeal(_mapper: Any, connection: Any, target: AppealRow) -> None:
    if connection.dialect.name == "sqlite" and inspect(target).attrs.text.history.has_changes():
        from mcu_nlp.storage.search_index import reindex_appeal

        reindex_appeal(connection, target.id, target.text)


class HumanLabelRow(Base):
    """A label a person gave: the source's own (``origin='source'``) or a correction."""

    __tablename__ = "human_labels"
    __table_args__ = (UniqueConstraint("appeal_id", "label", "origin", name="uq_human_labels_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(16))  # source | correction
    # A source label counts as a people's label only once a person confirmed it (a correction
    # with the same value, a confirmed audit item); migration 0003 unconfirmed older ones.
    confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    appeal: Mapped[AppealRow] = relationship(back_populates="labels")


class PredictionRow(Base):
    """What one model version predicted for one label of one appeal."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_appeal_label", "appeal_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"))
    model_version: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(500))
    confidence: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    probabilities: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[class, p], ...]
    explanation: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[word, weight], ...]
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    appeal: Mapped[AppealRow] = relationship(back_populates="predictions")


class RoutingDecisionRow(Base):
    """Where an appeal went and which rule or threshold sent it there."""

    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # auto | review
    department: Mapped[str | None] = mapped_column(String(500))
    priority: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[str] = mapped_column(String(200))  # rule:<id> | threshold:<label> | review:…
    reason: Mapped[str] = mapped_column(Text, default="")
    model_version: Mapped[str | None] = mapped_column(String(100))
    rules_version: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # An auto decision drawn into the audit sample (a person checks it after the fact).
    audit_sample: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    appeal: Mapped[AppealRow] = relationship(back_populates="decisions")


class ReviewItemRow(Base):
    """An appeal waiting for a person, ordered by urgency."""

    __tablename__ = "review_queue"
    __table_args__ = (Index("ix_review_queue_status_urgency", "status", "urgency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"),
                                           unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    urgency: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    suggested_department: Mapped[str | None] = mapped_column(String(500))
    enqueued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    # An audit item: the appeal was routed automatically and is checked after the fact.
    audit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    outcome: Mapped[str | None] = mapped_column(String(16))  # confirmed | corrected (audit items)
    # An operator of the console holds the item until ``claimed_until`` (others do not see it).
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)


class CorrectionRow(Base):
    """A person's change of a label: the audit trail behind ``human_labels``."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(String(500))
    new_value: Mapped[str] = mapped_column(String(500))
    author: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditVerdictRow(Base):
    """A person's verdict on one label the model decided alone, for an audit-sample appeal."""

    __tablename__ = "routing_audit_verdicts"
    __table_args__ = (UniqueConstraint("appeal_id", "label", name="uq_routing_audit_verdicts_key"),
                      Index("ix_routing_audit_verdicts_model_label", "model_version", "label"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(100))
    predicted: Mapped[str] = mapped_column(String(500))
    confidence: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)  # effective when the model decided
    correct: Mapped[bool] = mapped_column(Boolean)
    corrected_to: Mapped[str | None] = mapped_column(String(500))
    reviewer: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ThresholdOverrideRow(Base):
    """A label's threshold raised by the precision audit, per model version (router's floor).

    ``threshold`` is None after an admin reset; ``evidence_since`` then makes the audit count only
    verdicts recorded after the reset.
    """

    __tablename__ = "routing_thresholds"
    __table_args__ = (UniqueConstraint("model_version", "label", name="uq_routing_thresholds_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float | None] = mapped_column(Float)
    bundle_threshold: Mapped[float | None] = mapped_column(Float)
    evidence_since: Mapped[datetime | None] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ModelVersionRow(Base):
    """A registered model bundle; at most one is active."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(String(1000))
    labels: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)


class ApiKeyRow(Base):
    """An API key, stored only as its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists so people can tell keys apart
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserRow(Base):
    """A person who signs in to the console; the password is kept only as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)


class ConsoleSessionRow(Base):
    """A signed-in browser: the cookie holds a random token, the store only its SHA-256."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class AuditRow(Base):
    """Who did what, when: corrections, activations, key changes, imports."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlertRow(Base):
    """A trend alert; ``dedup_key`` keeps one row per (kind, topic, territory, window)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")  # new|acknowledged|resolved
    severity: Mapped[float] = mapped_column(Float, default=0.0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    status_changed_by: Mapped[str | None] = mapped_column(String(100))
