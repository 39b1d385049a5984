"""Queries and writes on the store, used only by :mod:`mcu_nlp.services`.

Functions take the caller's session, so one service call can put an appeal, its labels, its
predictions, its routing decision and its queue entry into one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from mcu_nlp.storage.models import (
    AppealRow,
    CorrectionRow,
    HumanLabelRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
    utcnow,
)

_ID_BATCH = 500  # keeps IN lists well under SQLite's bound-parameter limit


def existing_source_ids(session: Session, source: str, source_ids: Iterable[str]) -> set[str]:
    """Which of ``source_ids`` are already stored for ``source``."""
    wanted = list(dict.fromkeys(source_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), _ID_BATCH):
        batch = wanted[start:start + _ID_BATCH]
        found.update(session.scalars(select(AppealRow.source_id).where(
            AppealRow.source == source, AppealRow.source_id.in_(batch))))
    return found


def find_by_source(session: Session,
                   pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Map ``(source, source_id)`` pairs that are stored to their appeal ids."""
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(pairs), _ID_BATCH):
        batch = pairs[start:start + _ID_BATCH]
        rows = session.execute(select(AppealRow.source, AppealRow.source_id, AppealRow.id).where(
            tuple_(AppealRow.source, AppealRow.source_id).in_(batch)))
        found.update({(row.source, row.source_id): row.id for row in rows})
    return found


def add_appeal(
    session: Session,
    *,
    appeal: AppealRow,
    labels: Iterable[HumanLabelRow] = (),
    predictions: Iterable[PredictionRow] = (),
    decision: RoutingDecisionRow | None = None,
    review: ReviewItemRow | None = None,
) -> AppealRow:
    """Add an appeal with everything known about it (not flushed, so a chunk inserts in batches)."""
    appeal.labels.extend(labels)
    appeal.predictions.extend(predictions)
    if decision is not None:
        appeal.decisions.append(decision)
    appeal.review = review
    session.add(appeal)
    return appeal


def get_appeal(session: Session, appeal_id: int) -> AppealRow | None:
    """An appeal with its labels, predictions and decisions loaded."""
    return session.scalar(select(AppealRow).where(AppealRow.id == appeal_id).options(
        selectinload(AppealRow.labels), selectinload(AppealRow.predictions),
        selectinload(AppealRow.decisions)))


def review_item(session: Session, appeal_id: int, *, lock: bool = False) -> ReviewItemRow | None:
    """The queue entry of an appeal, if it ever went to review.

    ``lock``: for a change that depends on the entry's status (resolving it). On PostgreSQL the
    row is locked (``FOR UPDATE``) until the transaction ends, so a second replica resolving
    the same entry waits and then reads it resolved, instead of resolving it twice. SQLite
    serializes writers by itself and ignores the lock.
    """
    query = select(ReviewItemRow).where(ReviewItemRow.appeal_id == appeal_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def corrections_of(session: Session, appeal_id: int) -> list[CorrectionRow]:
    """An appeal's corrections, oldest first."""
    return list(session.scalars(select(CorrectionRow).where(CorrectionRow.appeal_id == appeal_id)
                                .order_by(CorrectionRow.id)))


def upsert_human_label(session: Session, *, appeal_id: int, label: str, value: str, origin: str,
                       confirmed: bool = True) -> HumanLabelRow:
    """Set a human label, replacing the previous one of the same origin."""
    row = session.scalar(select(HumanLabelRow).where(
        HumanLabelRow.appeal_id == appeal_id, HumanLabelRow.label == label,
        HumanLabelRow.origin == origin))
    if row is None:
        row = HumanLabelRow(appeal_id=appeal_id, label=label, origin=origin)
        session.add(row)
    row.value, row.confirmed, row.recorded_at = value, confirmed, utcnow()
    return row


def queue_query(
    *,
    status: str | None = "open",
    department: str | None = None,
    territory: str | None = None,
    channel: str | None = None,
    priority: str | None = None,
    min_urgency: float | None = None,
    audit: bool | None = None,
) -> Select[Any]:
    """The review queue, most urgent first, then oldest first (``audit``: audit items or not)."""
    query = select(ReviewItemRow, AppealRow).join(AppealRow,
                                                  AppealRow.id == ReviewItemRow.appeal_id)
    if status is not None:
        query = query.where(ReviewItemRow.status == status)
    if department is not None:
        query = query.where(ReviewItemRow.suggested_department == department)
    if territory is not None:
        query = query.where(AppealRow.territory == territory)
    if channel is not None:
        query = query.where(AppealRow.channel == channel)
    if priority is not None:
        query = query.where(ReviewItemRow.priority == priority)
    if min_urgency is not None:
        query = query.where(ReviewItemRow.urgency >= min_urgency)
    if audit is not None:
        query = query.where(ReviewItemRow.audit.is_(audit))
    return query.order_by(ReviewItemRow.urgency.desc(), ReviewItemRow.enqueued_at,
                          ReviewItemRow.id)


def count(session: Session, query: Select[Any]) -> int:
    """Rows a query would return."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def training_labels(
    session: Session, *, label: str, since: datetime | None = None, confirmed: bool = True,
) -> list[tuple[int, str, datetime, str | None, str | None, str, dict[str, Any]]]:
    """Appeals with a human value for ``label``.

    ``confirmed=True``: values people gave or confirmed (a correction beats a confirmed source
    label). ``confirmed=False``: source labels nobody has confirmed yet (only for a retraining
    configured to use them). The model's own predictions are never returned, so a retrained
    model cannot learn its unconfirmed mistakes. Rows: ``(appeal id, text, created_at,
    territory, channel, value, extra)``.
    """
    query = (select(AppealRow.id, AppealRow.text, AppealRow.created_at, AppealRow.territory,
                    AppealRow.channel, HumanLabelRow.origin, HumanLabelRow.value,
                    AppealRow.extra)
             .join(HumanLabelRow, HumanLabelRow.appeal_id == AppealRow.id)
             .where(HumanLabelRow.label == label, HumanLabelRow.confirmed.is_(confirmed))
             .order_by(AppealRow.created_at, AppealRow.id))
    if not confirmed:
        query = query.where(HumanLabelRow.origin == "source")
    if since is not None:
        query = query.where(AppealRow.created_at >= since)
    best: dict[int, tuple[int, str, datetime, str | None, str | None, str, dict[str, Any]]] = {}
    for row in session.execute(query):
        if row.id in best and row.origin != "correction":
            continue  # a person's correction beats what the source said
        best[row.id] = (row.id, row.text, row.created_at, row.territory, row.channel, row.value,
                        dict(row.extra or {}))
    return sorted(best.values(), key=lambda item: (item[2], item[0]))


def labels_by_origin(rows: Iterable[HumanLabelRow]) -> Mapping[str, dict[str, str]]:
    """``{origin: {label: value}}`` for an appeal's human labels."""
    result: dict[str, dict[str, str]] = {}
    for row in rows:
        result.setdefault(row.origin, {})[row.label] = row.value
    return result
