"""The operator's review queue in the console: claims, decisions, undo, bulk corrections, history.

Several operators work the queue at once. Each one *claims* the items on their screen
(:func:`claim_items`): a claim lasts :data:`CLAIM_TTL` and is renewed while the operator works;
nobody else sees or decides a claimed item. On PostgreSQL the claim locks candidate rows with
``SELECT … FOR UPDATE SKIP LOCKED`` (concurrent claimers pass each other's rows by); on SQLite,
one writer at a time, each claim is an atomic conditional ``UPDATE``.

The order is the urgency of the appeal, then its deadline risk on the working-day calendar
(:mod:`mcu_nlp.sla`: overdue, at risk, in time), then its age; or the lowest model confidence
first.

A decision (:func:`decide`) is stored as a correction (:func:`~mcu_nlp.services.appeals.
correct_appeal`: human labels, correction rows, an ``appeal.correct`` audit row with the labels
before, the model version and its scores) and resolves the item; accepting an audit-sample item
unchanged confirms it (:func:`~mcu_nlp.services.routing_audit.confirm_audit`). Each decision also
writes a ``queue.decision`` audit row that records what the decision changed, so the operator's
last :data:`RECENT_LIMIT` decisions can be undone (:func:`undo`): labels restored, item reopened
and claimed by the same operator, a ``queue.undo`` audit row written.

A bulk correction (:func:`bulk_correct`) applies one value to every open item that matches a
filter; the caller says how many it showed the operator and the store re-counts under the same
filter: a different count refuses the change (:class:`StaleBulk`).

Every appeal whose raw text this module hands out gets an ``appeal.read`` audit row, in the same
transaction that reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from mcu_nlp.calendar import default_calendar
from mcu_nlp.services.appeals import AppealNotFound, InvalidCorrection, correct_appeal
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.personal_data import READ_ACTION
from mcu_nlp.services.routing_audit import AuditItemClosed, NotAnAuditItem, confirm_audit
from mcu_nlp.services.taxonomy import Taxonomy
from mcu_nlp.sla import SlaConfig, compute_deadlines, load_sla_config
from mcu_nlp.storage import Store
from mcu_nlp.storage.limits import column_limit, fit_actor
from mcu_nlp.storage.models import (
    AppealRow,
    AuditRow,
    AuditVerdictRow,
    CorrectionRow,
    HumanLabelRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
    utcnow,
)

__all__ = [
    "CLAIM_TTL",
    "DECISION_ACTION",
    "MAX_BULK",
    "RECENT_LIMIT",
    "UNDO_ACTION",
    "BulkResult",
    "ClaimResult",
    "Decision",
    "InvalidDecision",
    "ItemNotFound",
    "QueueConflict",
    "QueueEntry",
    "QueueFilter",
    "StaleBulk",
    "bulk_correct",
    "bulk_count",
    "claim_items",
    "decide",
    "open_item",
    "recent_decisions",
    "release",
    "territories",
    "undo",
]

CLAIM_TTL = timedelta(minutes=10)
SCREEN_SIZE = 12  # items on an operator's screen (claimed together)
MAX_SCREEN = 50
# Open items read to order the screen: the most urgent (then oldest) first in SQL; deadline risk
# then orders them within equal urgency. An item past the first 500 reaches the screen only when
# more than 500 items tie on the top urgency. 2,000 cost 150 ms a claim on 60 k; 500 cost 40.
CANDIDATES = 500
RECENT_LIMIT = 10  # decisions an operator can still undo
MAX_BULK = 1000
MAX_EXCLUDE = 500
HISTORY_LIMIT = 8
HISTORY_DAYS = 30
SNIPPET = 200
DEFAULT_TOPIC_LABEL = "category"
DECISION_ACTION = "queue.decision"
UNDO_ACTION = "queue.undo"
BULK_ACTION = "queue.bulk"
VIA = "console /console/queue"
# Appeals carry the source's local time; Saint Petersburg keeps UTC+3 all year.
LOCAL_OFFSET = timezone(timedelta(hours=3))
RISK_ORDER = {"overdue": 2, "at_risk": 1, "ok": 0, "unknown": 0}


class QueueConflict(Exception):
    """The item is someone else's, already decided, or changed since (HTTP 409)."""


class StaleBulk(QueueConflict):
    """The filter matches another number of open items than the operator was shown."""

    def __init__(self, expected: int, found: int) -> None:
        super().__init__(f"под фильтр сейчас попадает {found}, а не {expected} обращений: "
                         "обновите число и подтвердите ещё раз")
        self.expected, self.found = expected, found


class ItemNotFound(LookupError):
    """No review item (or decision) with that id (HTTP 404)."""


class InvalidDecision(ValueError):
    """A label or value the queue does not accept (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which open items an operator works on, and in which order."""

    channel: str | None = None
    topic: str | None = None  # the model's topic (``topic_label``) of the appeal
    department: str | None = None  # the suggested department of the item
    territory: str | None = None
    audit: bool | None = None  # True: audit-sample items only; False: routing items only
    sort: str = "urgency"  # urgency | confidence (lowest first)

    def as_dict(self) -> dict[str, Any]:
        """The filter as JSON-safe details (for audit rows)."""
        return {"channel": self.channel, "topic": self.topic, "department": self.department,
                "territory": self.territory, "audit": self.audit, "sort": self.sort}


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One claimed item as the list beside the appeal shows it (no text: not a read)."""

    appeal_id: int
    channel: str
    territory: str | None
    created_at: datetime
    urgency: float
    priority: str | None
    audit: bool
    suggested: dict[str, str | None]
    confidence: float | None
    deadline: datetime | None
    risk: str
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The operator's screen: claimed items in order, and how many match the filter."""

    items: list[QueueEntry]
    matching: int  # open items under the filter, whoever holds them
    held_by_others: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision the operator took (the id of its ``queue.decision`` audit row)."""

    id: int
    appeal_id: int
    kind: str  # correct | confirm
    labels: dict[str, str]
    before: dict[str, str | None]
    at: datetime
    audit: bool = False  # an audit-sample item: the decision is a verdict on the model


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk correction changed."""

    changed: int
    appeal_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Candidate:
    item_id: int
    appeal_id: int
    urgency: float
    channel: str
    created_at: datetime
    confidence: float | None


# ----------------------------------------------------------------------------- helpers


@lru_cache(maxsize=1)
def _sla_config() -> SlaConfig:
    return load_sla_config()


def local_now() -> datetime:
    """Now in the appeals' local time (naive), for deadlines."""
    return datetime.now(LOCAL_OFFSET).replace(tzinfo=None)


def deadlines(rows: Sequence[tuple[str, datetime]], as_of: datetime | None = None
              ) -> list[tuple[datetime | None, str, float | None]]:
    """``(deadline, risk, elapsed share)`` per ``(channel, created_at)``, at ``as_of``.

    The deadline is the channel's answer deadline on the working-day calendar (exclusive end,
    :func:`mcu_nlp.sla.compute_deadlines`); the risk is ``overdue``, ``at_risk`` (the elapsed
    share of the window reached the SLA configuration's threshold) or ``ok``.
    """
    if not rows:
        return []
    config = _sla_config()
    as_of = as_of or local_now()
    frame = pd.DataFrame({config.columns.channel: [r[0] for r in rows],
                          config.columns.created_at: [r[1] for r in rows]})
    due = compute_deadlines(frame, config, default_calendar())
    out: list[tuple[datetime | None, str, float | None]] = []
    for (_, created), deadline in zip(rows, due.tolist(), strict=True):
        if deadline is None or pd.isna(deadline):
            out.append((None, "unknown", None))
            continue
        deadline = pd.Timestamp(deadline).to_pydatetime()
        window = (deadline - created).total_seconds()
        share = (as_of - created).total_seconds() / window if window > 0 else None
        if as_of >= deadline:
            risk = "overdue"
        elif share is not None and share >= config.at_risk_elapsed_share:
            risk = "at_risk"
        else:
            risk = "ok"
        out.append((deadline, risk, share))
    return out


def _claimable(actor: str, now: datetime) -> Any:
    return or_(ReviewItemRow.claimed_by.is_(None), ReviewItemRow.claimed_until.is_(None),
               ReviewItemRow.claimed_until < now, ReviewItemRow.claimed_by == actor)


def _matching(flt: QueueFilter, topic_label: str) -> list[Any]:
    """Conditions on ``review_queue`` alone (subqueries for the appeal), usable in an UPDATE."""
    conditions: list[Any] = [ReviewItemRow.status == "open"]
    if flt.department is not None:
        conditions.append(ReviewItemRow.suggested_department == flt.department)
    if flt.audit is not None:
        conditions.append(ReviewItemRow.audit.is_(flt.audit))
    inner = aliased(AppealRow)  # the outer query may join appeals too
    appeal: list[Any] = []
    if flt.channel is not None:
        appeal.append(inner.channel == flt.channel)
    if flt.territory is not None:
        appeal.append(inner.territory == flt.territory)
    if appeal:
        conditions.append(exists().where(inner.id == ReviewItemRow.appeal_id, *appeal)
                          .correlate(ReviewItemRow))
    if flt.topic is not None:
        conditions.append(exists().where(PredictionRow.appeal_id == ReviewItemRow.appeal_id,
                                         PredictionRow.label == topic_label,
                                         PredictionRow.value == flt.topic)
                          .correlate(ReviewItemRow))
    return conditions


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _order(candidates: Iterable[_Candidate], sort: str,
           as_of: datetime | None = None) -> list[_Candidate]:
    items = list(candidates)
    risks = deadlines([(c.channel, c.created_at) for c in items], as_of)
    risk_of = {c.item_id: RISK_ORDER[r[1]] for c, r in zip(items, risks, strict=True)}
    if sort == "confidence":
        return sorted(items, key=lambda c: (c.confidence is None, c.confidence or 0.0,
                                            -c.urgency, -risk_of[c.item_id], c.created_at,
                                            c.item_id))
    return sorted(items, key=lambda c: (-c.urgency, -risk_of[c.item_id], c.created_at,
                                        c.item_id))


def _candidates(session: Session, *, actor: str, flt: QueueFilter, now: datetime,
                topic_label: str, department_label: str, exclude: Sequence[int],
                keep: int | None) -> list[_Candidate]:
    confidence = (select(func.min(PredictionRow.confidence))
                  .where(PredictionRow.appeal_id == ReviewItemRow.appeal_id,
                         PredictionRow.label.in_([topic_label, department_label]))
                  .correlate(ReviewItemRow).scalar_subquery())
    by_confidence = flt.sort == "confidence"
    # Ordered by urgency, the confidence is read afterwards for the candidates only: computed in
    # the query, it would be evaluated for every open item before the sort (the whole queue).
    columns = [ReviewItemRow.id, ReviewItemRow.appeal_id, ReviewItemRow.urgency,
               AppealRow.channel, AppealRow.created_at]
    query = (select(*columns, *([confidence] if by_confidence else []))
             .join(AppealRow, AppealRow.id == ReviewItemRow.appeal_id)
             .where(*_matching(flt, topic_label), _claimable(actor, now)))
    if exclude:
        query = query.where(ReviewItemRow.appeal_id.not_in(list(exclude)))
    if by_confidence:
        query = query.order_by(confidence.asc(), ReviewItemRow.urgency.desc(),
                               AppealRow.created_at, ReviewItemRow.id)
    else:
        query = query.order_by(ReviewItemRow.urgency.desc(), AppealRow.created_at,
                               ReviewItemRow.id)
    found = list(session.execute(query.limit(CANDIDATES)))
    if keep is not None and all(r[1] != keep for r in found):
        kept = session.execute(query.where(ReviewItemRow.appeal_id == keep)).first()
        if kept is not None:
            found.append(kept)
    if by_confidence:
        lowest = {r[1]: r[5] for r in found}
    else:
        lowest = {}
        ids = [r[1] for r in found]
        for start in range(0, len(ids), 500):  # bound the IN list
            lowest.update(session.execute(
                select(PredictionRow.appeal_id, func.min(PredictionRow.confidence))
                .where(PredictionRow.appeal_id.in_(ids[start:start + 500]),
                       PredictionRow.label.in_([topic_label, department_label]))
                .group_by(PredictionRow.appeal_id)).all())
    return [_Candidate(r[0], r[1], float(r[2] or 0.0), r[3], r[4],
                       None if lowest.get(r[1]) is None else float(lowest[r[1]]))
            for r in found]


def _take(session: Session, item_ids: Sequence[int], *, actor: str, now: datetime,
          until: datetime, need: int) -> list[int]:
    """Claim up to ``need`` of ``item_ids`` (in their order) for ``actor``; the ids claimed.

    PostgreSQL: lock what no other transaction holds (``FOR UPDATE SKIP LOCKED``), re-checked
    against the claim columns, then claim the first ``need``. SQLite: one conditional UPDATE per
    item (the first one takes the single write lock until commit).
    """
    taken: list[int] = []
    if need <= 0 or not item_ids:
        return taken
    if _is_postgres(session):
        start = 0
        while start < len(item_ids) and len(taken) < need:
            # Lock only as many as still needed: a concurrent claimer skips exactly those.
            ids = list(item_ids[start:start + need - len(taken)])
            start += len(ids)
            locked = set(session.scalars(
                select(ReviewItemRow.id)
                .where(ReviewItemRow.id.in_(ids), ReviewItemRow.status == "open",
                       _claimable(actor, now))
                .with_for_update(skip_locked=True)))
            picked = [i for i in ids if i in locked][:need - len(taken)]
            if picked:
                session.execute(update(ReviewItemRow).where(ReviewItemRow.id.in_(picked))
                                .values(claimed_by=actor, claimed_until=until))
                taken.extend(picked)
        return taken
    for item_id in item_ids:
        result = session.execute(
            update(ReviewItemRow)
            .where(ReviewItemRow.id == item_id, ReviewItemRow.status == "open",
                   _claimable(actor, now))
            .values(claimed_by=actor, claimed_until=until))
        if result.rowcount:
            taken.append(item_id)
            if len(taken) >= need:
                break
    return taken


def _suggestions(session: Session, appeal_ids: Sequence[int], *, topic_label: str,
                 department_label: str) -> dict[int, dict[str, Any]]:
    """Per appeal: the newest prediction of each label and the item's suggested department."""
    out: dict[int, dict[str, Any]] = {a: {} for a in appeal_ids}
    if not appeal_ids:
        return out
    for row in session.scalars(select(PredictionRow).where(
            PredictionRow.appeal_id.in_(list(appeal_ids)),
            PredictionRow.label.in_([topic_label, department_label]))
            .order_by(PredictionRow.id)):
        out[row.appeal_id][row.label] = row  # the newest wins
    return out


def _actor(actor: str) -> str:
    return fit_actor(actor)


# ----------------------------------------------------------------------------- claims


def claim_items(store: Store, *, actor: str, flt: QueueFilter, size: int = SCREEN_SIZE,
                exclude: Sequence[int] = (), keep: int | None = None,
                topic_label: str = DEFAULT_TOPIC_LABEL, department_label: str = "department",
                now: datetime | None = None, ttl: timedelta = CLAIM_TTL) -> ClaimResult:
    """Claim (or renew) the ``size`` most urgent open items under ``flt`` for ``actor``.

    The operator's other claims are released (they left the screen). ``exclude``: appeals the
    operator skipped; ``keep``: the appeal on screen, kept claimed even when more urgent items
    arrived (if nobody else holds it).
    """
    actor = _actor(actor)
    size = max(1, min(int(size), MAX_SCREEN))
    exclude = list(dict.fromkeys(int(e) for e in exclude))[:MAX_EXCLUDE]
    now = now or utcnow()
    until = now + ttl
    with store.session() as session:
        candidates = _candidates(session, actor=actor, flt=flt, now=now, topic_label=topic_label,
                                 department_label=department_label, exclude=exclude, keep=keep)
        ordered = _order(candidates, flt.sort)
        rank = {c.item_id: n for n, c in enumerate(ordered)}
        if keep is not None:
            ordered.sort(key=lambda c: c.appeal_id != keep)  # stable: the rest keeps its order
        taken = _take(session, [c.item_id for c in ordered], actor=actor, now=now, until=until,
                      need=size)
        # Release what left the screen. Only live claims: an expired one is free already, and
        # another claimer may hold its row locked (waiting for it could deadlock).
        release_query = update(ReviewItemRow).where(ReviewItemRow.claimed_by == actor,
                                                    ReviewItemRow.claimed_until >= now)
        if taken:
            release_query = release_query.where(ReviewItemRow.id.not_in(taken))
        session.execute(release_query.values(claimed_by=None, claimed_until=None))
        matching = session.scalar(select(func.count()).select_from(ReviewItemRow)
                                  .where(*_matching(flt, topic_label))) or 0
        others = session.scalar(select(func.count()).select_from(ReviewItemRow).where(
            *_matching(flt, topic_label), ReviewItemRow.claimed_by.is_not(None),
            ReviewItemRow.claimed_by != actor, ReviewItemRow.claimed_until >= now)) or 0
        by_id = {c.item_id: c for c in ordered}
        chosen = sorted((by_id[i] for i in taken), key=lambda c: rank[c.item_id])
        rows = {item.id: (item, appeal) for item, appeal in session.execute(
            select(ReviewItemRow, AppealRow).join(AppealRow, AppealRow.id ==
                                                  ReviewItemRow.appeal_id)
            .where(ReviewItemRow.id.in_(taken)))} if taken else {}
        predictions = _suggestions(session, [c.appeal_id for c in chosen],
                                   topic_label=topic_label, department_label=department_label)
    risks = deadlines([(c.channel, c.created_at) for c in chosen])
    items = []
    for candidate, (deadline, risk, _) in zip(chosen, risks, strict=True):
        item, appeal = rows[candidate.item_id]
        preds = predictions[candidate.appeal_id]
        topic = preds.get(topic_label)
        dept = preds.get(department_label)
        items.append(QueueEntry(
            appeal_id=appeal.id, channel=appeal.channel, territory=appeal.territory,
            created_at=appeal.created_at, urgency=item.urgency, priority=item.priority,
            audit=item.audit,
            suggested={topic_label: topic.value if topic else None,
                       department_label: item.suggested_department
                       or (dept.value if dept else None)},
            confidence=candidate.confidence, deadline=deadline, risk=risk, claimed_until=until))
    return ClaimResult(items, int(matching), int(others))


def release(store: Store, *, actor: str, appeal_ids: Sequence[int] | None = None) -> int:
    """Give up ``actor``'s claims (on ``appeal_ids`` only, when given); how many were released."""
    actor = _actor(actor)
    query = update(ReviewItemRow).where(ReviewItemRow.claimed_by == actor)
    if appeal_ids is not None:
        query = query.where(ReviewItemRow.appeal_id.in_(list(appeal_ids)))
    with store.session() as session:
        return session.execute(query.values(claimed_by=None, claimed_until=None)).rowcount or 0


def _hold(session: Session, appeal_id: int, *, actor: str, now: datetime,
          ttl: timedelta = CLAIM_TTL) -> ReviewItemRow:
    """Claim (or renew) one open item for ``actor``, or say why not."""
    taken = session.execute(
        update(ReviewItemRow)
        .where(ReviewItemRow.appeal_id == appeal_id, ReviewItemRow.status == "open",
               _claimable(actor, now))
        .values(claimed_by=actor, claimed_until=now + ttl)).rowcount
    item = session.scalar(select(ReviewItemRow).where(ReviewItemRow.appeal_id == appeal_id))
    if item is None:
        raise ItemNotFound(f"обращения {appeal_id} нет в очереди")
    if not taken:
        if item.status != "open":
            raise QueueConflict(f"обращение {appeal_id} уже разобрано")
        raise QueueConflict(f"обращение {appeal_id} взял в работу другой оператор")
    return item


# ----------------------------------------------------------------------------- one item


def _label_view(prediction: PredictionRow | None, suggested: str | None) -> dict[str, Any]:
    top = [[str(c), float(p)] for c, p in (prediction.probabilities if prediction else [])]
    if suggested is None and prediction is not None:
        suggested = prediction.value
    probability = dict((c, p) for c, p in top)
    alternatives = [[c, p] for c, p in top if c != suggested]
    return {"suggested": suggested, "top": top,
            "confidence": probability.get(suggested) if suggested is not None else None,
            "alternatives": alternatives,
            "explanation": [[str(w), float(s)] for w, s in
                            (prediction.explanation if prediction else [])],
            "model_version": prediction.model_version if prediction else None}


def _system_decision(appeal: AppealRow) -> RoutingDecisionRow | None:
    system = [d for d in appeal.decisions if not d.decided_by.startswith("human:")]
    return max(system, key=lambda d: d.id, default=None)


def _view_labels(session: Session, appeal: AppealRow, item: ReviewItemRow, *, topic_label: str,
                 department_label: str) -> dict[str, dict[str, Any]]:
    preds = _suggestions(session, [appeal.id], topic_label=topic_label,
                         department_label=department_label)[appeal.id]
    humans: dict[str, dict[str, str]] = {}
    for row in appeal.labels:
        humans.setdefault(row.origin, {})[row.label] = row.value
    out = {}
    for label in (department_label, topic_label):
        suggested = item.suggested_department if label == department_label else None
        view = _label_view(preds.get(label), suggested)
        view["source"] = humans.get("source", {}).get(label)
        view["corrected"] = humans.get("correction", {}).get(label)
        out[label] = view
    return out


def _history(session: Session, appeal: AppealRow, topic: str | None, *,
             topic_label: str, department_label: str) -> dict[str, list[dict[str, Any]]]:
    """Earlier appeals from the same address; recent ones of the same territory and topic."""
    def entries(query: Any) -> list[AppealRow]:
        return list(session.scalars(query.order_by(AppealRow.created_at.desc(), AppealRow.id.desc())
                                    .limit(HISTORY_LIMIT)))

    same_address: list[AppealRow] = []
    if appeal.address and appeal.address.strip():
        same_address = entries(select(AppealRow).where(
            AppealRow.address == appeal.address, AppealRow.id != appeal.id,
            AppealRow.created_at <= appeal.created_at))
    same_topic: list[AppealRow] = []
    if appeal.territory and topic:
        seen = [a.id for a in same_address] + [appeal.id]
        same_topic = entries(select(AppealRow).where(
            AppealRow.territory == appeal.territory, AppealRow.id.not_in(seen),
            AppealRow.created_at <= appeal.created_at,
            AppealRow.created_at >= appeal.created_at - timedelta(days=HISTORY_DAYS),
            exists().where(PredictionRow.appeal_id == AppealRow.id,
                           PredictionRow.label == topic_label, PredictionRow.value == topic)))
    ids = [a.id for a in same_address + same_topic]
    labels: dict[int, dict[str, str]] = {i: {} for i in ids}
    statuses: dict[int, str] = {}
    if ids:
        for pred in session.scalars(select(PredictionRow).where(
                PredictionRow.appeal_id.in_(ids),
                PredictionRow.label.in_([topic_label, department_label]))
                .order_by(PredictionRow.id)):
            labels[pred.appeal_id][pred.label] = pred.value
        for row in session.scalars(select(RoutingDecisionRow).where(
                RoutingDecisionRow.appeal_id.in_(ids)).order_by(RoutingDecisionRow.id)):
            if row.department:
                labels[row.appeal_id][department_label] = row.department
        for row in session.scalars(select(HumanLabelRow).where(
                HumanLabelRow.appeal_id.in_(ids), HumanLabelRow.origin == "correction")):
            labels[row.appeal_id][row.label] = row.value
        for item in session.scalars(select(ReviewItemRow).where(
                ReviewItemRow.appeal_id.in_(ids))):
            statuses[item.appeal_id] = item.status

    def out(rows: list[AppealRow]) -> list[dict[str, Any]]:
        return [{"appeal_id": a.id, "created_at": a.created_at.isoformat(),
                 "channel": a.channel, "territory": a.territory,
                 "snippet": a.text[:SNIPPET] + ("…" if len(a.text) > SNIPPET else ""),
                 "topic": labels[a.id].get(topic_label),
                 "department": labels[a.id].get(department_label),
                 "queue": statuses.get(a.id)} for a in rows]

    return {"same_address": out(same_address), "same_topic": out(same_topic)}


def open_item(store: Store, appeal_id: int, *, actor: str,
              topic_label: str = DEFAULT_TOPIC_LABEL, department_label: str = "department",
              now: datetime | None = None) -> dict[str, Any]:
    """One appeal for the operator to decide: text, deadline, suggestions, rule, history.

    The item must be open and free (it is claimed for ``actor``) or already held by ``actor``.
    The raw text of the appeal and of the history shown beside it is a read of personal data:
    one ``appeal.read`` audit row each, in the same transaction.

    Raises:
        ItemNotFound: The appeal has no review item.
        QueueConflict: Another operator holds it, or it was decided.
    """
    actor = _actor(actor)
    now = now or utcnow()
    with store.session() as session:
        item = _hold(session, appeal_id, actor=actor, now=now)
        appeal = session.get(AppealRow, appeal_id)
        assert appeal is not None  # the foreign key
        labels = _view_labels(session, appeal, item, topic_label=topic_label,
                              department_label=department_label)
        system = _system_decision(appeal)
        rule = None
        if system is not None and system.decided_by.startswith("rule:"):
            rule = {"id": system.decided_by.removeprefix("rule:"), "reason": system.reason}
        history = _history(session, appeal, labels[topic_label]["suggested"],
                           topic_label=topic_label, department_label=department_label)
        read = [appeal.id] + [h["appeal_id"] for part in history.values() for h in part]
        for read_id in dict.fromkeys(read):
            record_audit(session, actor=actor, action=READ_ACTION, entity="appeal",
                         entity_id=read_id,
                         details={"via": VIA, "fields": ["text", "address"]
                                  if read_id == appeal.id else ["text"]})
        deadline, risk, share = deadlines([(appeal.channel, appeal.created_at)])[0]
        rule_text = _sla_config().deadline_for(appeal.channel).describe()
        return {
            "appeal_id": appeal.id, "source_id": appeal.source_id, "channel": appeal.channel,
            "territory": appeal.territory, "address": appeal.address,
            "created_at": appeal.created_at.isoformat(), "text": appeal.text,
            "urgency": item.urgency, "priority": item.priority,
            "urgency_reasons": list(appeal.urgency_reasons or []),
            "deadline": None if deadline is None else deadline.isoformat(),
            "deadline_rule": rule_text, "risk": risk,
            "elapsed_share": share, "audit": item.audit, "reason": item.reason,
            "decided_by": None if system is None else system.decided_by,
            "rule": rule, "labels": labels, "label_order": [department_label, topic_label],
            "claimed_until": None if item.claimed_until is None
            else item.claimed_until.isoformat(),
            "history": history,
        }


# ----------------------------------------------------------------------------- decisions


def _check_labels(labels: Mapping[str, str], *, topic_label: str, department_label: str,
                  taxonomy: Taxonomy | None) -> dict[str, str]:
    if not labels:
        raise InvalidDecision("укажите хотя бы одну метку")
    allowed = (topic_label, department_label)
    out = {}
    for name, value in labels.items():
        if name not in allowed:
            raise InvalidDecision(f"метка {str(name)[:64]!r} не разбирается в очереди; "
                                  f"можно: {', '.join(allowed)}")
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise InvalidDecision(f"значение метки {name!r}: непустая строка до 500 символов")
        if taxonomy is not None and not taxonomy.allows(name, value):
            raise InvalidDecision(f"{value.strip()[:100]!r} — не класс метки {name!r}")
        out[name] = value.strip()
    return out


def _decision_row(session: Session, *, actor: str, appeal_id: int,
                  details: dict[str, Any]) -> AuditRow:
    limit = column_limit("audit_log", "entity_id")
    row = AuditRow(actor=actor, action=DECISION_ACTION, entity="appeal",
                   entity_id=str(appeal_id)[:limit], details=details)
    session.add(row)
    session.flush()
    return row


def decide(store: Store, appeal_id: int, labels: Mapping[str, str], *, actor: str,
           taxonomy: Taxonomy | None, topic_label: str = DEFAULT_TOPIC_LABEL,
           department_label: str = "department", now: datetime | None = None) -> Decision:
    """Store the operator's decision on one open item and resolve it.

    Accepting an audit-sample item unchanged confirms it; anything else is a correction
    (labels, correction rows, ``appeal.correct`` audit row with the labels before, the model
    version and the scores). A ``queue.decision`` audit row records what changed, for
    :func:`undo`.

    Raises:
        InvalidDecision: A label the queue does not decide, or a value outside ``taxonomy``.
        ItemNotFound: The appeal has no review item.
        QueueConflict: Someone else holds the item, or it was decided already.
    """
    actor = _actor(actor)
    chosen = _check_labels(labels, topic_label=topic_label, department_label=department_label,
                           taxonomy=taxonomy)
    now = now or utcnow()
    with store.session() as session:
        item = _hold(session, appeal_id, actor=actor, now=now)
        appeal = session.get(AppealRow, appeal_id)
        assert appeal is not None
        views = _view_labels(session, appeal, item, topic_label=topic_label,
                             department_label=department_label)
        suggested = {name: views[name]["suggested"] for name in chosen}
        before = {name: views[name]["corrected"] or views[name]["source"]
                  or views[name]["suggested"] for name in chosen}
        corrected_before = {name: views[name]["corrected"] for name in chosen}
        scores = {name: dict(views[name]["top"]).get(value) for name, value in chosen.items()}
        versions = {views[name]["model_version"] for name in chosen} - {None}
        model_version = next(iter(versions)) if len(versions) == 1 else (
            sorted(versions)[-1] if versions else None)
        unconfirmed = [row.id for row in appeal.labels
                       if row.origin == "source" and not row.confirmed]
        last_correction = session.scalar(select(func.max(CorrectionRow.id)).where(
            CorrectionRow.appeal_id == appeal_id)) or 0
        last_decision = max((d.id for d in appeal.decisions), default=0)
        verdicts_before = set(session.scalars(select(AuditVerdictRow.id).where(
            AuditVerdictRow.appeal_id == appeal_id)))
        outcome_before, audit_item = item.outcome, item.audit
    accept = all(chosen[name] == suggested[name] for name in chosen)
    details = {"via": VIA, "before": before, "suggested": suggested,
               "model_version": model_version, "scores": scores}
    try:
        if audit_item and accept:
            kind = "confirm"
            confirm_audit(store, appeal_id, author=actor, department_label=department_label)
        else:
            kind = "correct"
            correct_appeal(store, appeal_id, chosen, author=actor,
                           allowed_labels=[topic_label, department_label],
                           department_label=department_label, taxonomy=taxonomy,
                           comment="консоль: очередь", audit_details=details)
    except (NotAnAuditItem, AuditItemClosed) as exc:
        raise QueueConflict(str(exc)) from exc
    except AppealNotFound as exc:
        raise ItemNotFound(str(exc)) from exc
    except InvalidCorrection as exc:
        raise InvalidDecision(str(exc)) from exc
    with store.session() as session:
        corrections = list(session.scalars(select(CorrectionRow.id).where(
            CorrectionRow.appeal_id == appeal_id, CorrectionRow.id > last_correction,
            CorrectionRow.author == actor)))
        decisions = list(session.scalars(select(RoutingDecisionRow.id).where(
            RoutingDecisionRow.appeal_id == appeal_id, RoutingDecisionRow.id > last_decision,
            RoutingDecisionRow.decided_by == f"human:{actor}")))
        # Anything newer than these on the appeal is a later change: undo then refuses.
        seen_correction = session.scalar(select(func.max(CorrectionRow.id)).where(
            CorrectionRow.appeal_id == appeal_id)) or 0
        seen_decision = session.scalar(select(func.max(RoutingDecisionRow.id)).where(
            RoutingDecisionRow.appeal_id == appeal_id)) or 0
        verdicts = [v for v in session.scalars(select(AuditVerdictRow.id).where(
            AuditVerdictRow.appeal_id == appeal_id)) if v not in verdicts_before]
        confirmed = list(session.scalars(select(HumanLabelRow.id).where(
            HumanLabelRow.id.in_(unconfirmed), HumanLabelRow.confirmed.is_(True)))) \
            if unconfirmed else []
        session.execute(update(ReviewItemRow).where(ReviewItemRow.appeal_id == appeal_id)
                        .values(claimed_by=None, claimed_until=None))
        row = _decision_row(session, actor=actor, appeal_id=appeal_id, details={
            **details, "kind": kind, "labels": chosen,
            "undo": {"corrected_before": corrected_before, "corrections": corrections,
                     "decisions": decisions, "verdicts": verdicts, "confirmed": confirmed,
                     "outcome": outcome_before, "last_correction": seen_correction,
                     "last_decision": seen_decision}, "audit": audit_item})
        return Decision(row.id, appeal_id, kind, chosen, before, row.at or now, audit_item)


def _undone(session: Session, actor: str, decision_ids: Iterable[int]) -> set[int]:
    ids = {int(i) for i in decision_ids}
    if not ids:
        return set()
    undone = set()
    for details in session.scalars(select(AuditRow.details).where(
            AuditRow.actor == actor, AuditRow.action == UNDO_ACTION)
            .order_by(AuditRow.id.desc()).limit(500)):
        decision = (details or {}).get("decision")
        if isinstance(decision, int) and decision in ids:
            undone.add(decision)
    return undone


def _recent_rows(session: Session, actor: str) -> list[AuditRow]:
    rows = list(session.scalars(select(AuditRow).where(
        AuditRow.actor == actor, AuditRow.action == DECISION_ACTION)
        .order_by(AuditRow.id.desc()).limit(RECENT_LIMIT * 4)))
    undone = _undone(session, actor, [r.id for r in rows])
    return [r for r in rows if r.id not in undone][:RECENT_LIMIT]


def recent_decisions(store: Store, *, actor: str) -> list[Decision]:
    """``actor``'s last :data:`RECENT_LIMIT` decisions not undone, newest first."""
    actor = _actor(actor)
    with store.session() as session:
        return [Decision(r.id, int(r.entity_id or 0), str(r.details.get("kind", "")),
                         dict(r.details.get("labels") or {}), dict(r.details.get("before") or {}),
                         r.at, bool(r.details.get("audit"))) for r in _recent_rows(session, actor)]


def undo(store: Store, *, actor: str, decision_id: int | None = None,
         now: datetime | None = None, ttl: timedelta = CLAIM_TTL) -> Decision:
    """Undo one of ``actor``'s recent decisions (the last one by default).

    The labels before the decision come back, the rows it added (corrections, the routing
    decision, audit verdicts) go, source labels it confirmed are unconfirmed again, and the item
    reopens, claimed by ``actor``. Audited as ``queue.undo``.

    Raises:
        ItemNotFound: No such decision among ``actor``'s recent ones.
        QueueConflict: The appeal changed after the decision (another correction or decision).
    """
    actor = _actor(actor)
    now = now or utcnow()
    with store.session() as session:
        recent = _recent_rows(session, actor)
        if not recent:
            raise ItemNotFound("нет решений, которые можно отменить")
        row = recent[0] if decision_id is None else next(
            (r for r in recent if r.id == decision_id), None)
        if row is None:
            raise ItemNotFound(f"решение {decision_id} не из {RECENT_LIMIT} последних ваших")
        appeal_id = int(row.entity_id or 0)
        details = dict(row.details or {})
        plan = dict(details.get("undo") or {})
        item = session.scalar(select(ReviewItemRow).where(ReviewItemRow.appeal_id == appeal_id)
                              .with_for_update())
        if item is None:
            raise ItemNotFound(f"обращения {appeal_id} нет в очереди")
        corrections = [int(i) for i in plan.get("corrections") or []]
        decisions = [int(i) for i in plan.get("decisions") or []]
        later_corrections = session.scalar(select(func.count()).select_from(CorrectionRow).where(
            CorrectionRow.appeal_id == appeal_id,
            CorrectionRow.id > int(plan.get("last_correction") or 0))) or 0
        later_decisions = session.scalar(select(func.count()).select_from(RoutingDecisionRow)
                                         .where(RoutingDecisionRow.appeal_id == appeal_id,
                                                RoutingDecisionRow.id
                                                > int(plan.get("last_decision") or 0))) or 0
        if item.status != "resolved" or later_corrections or later_decisions:
            raise QueueConflict(f"обращение {appeal_id} изменено после решения — отмена "
                                "невозможна, исправьте его заново")
        if corrections:
            session.execute(delete(CorrectionRow).where(CorrectionRow.id.in_(corrections)))
        if decisions:
            session.execute(delete(RoutingDecisionRow).where(
                RoutingDecisionRow.id.in_(decisions)))
        verdicts = [int(i) for i in plan.get("verdicts") or []]
        if verdicts:
            session.execute(delete(AuditVerdictRow).where(AuditVerdictRow.id.in_(verdicts)))
        confirmed = [int(i) for i in plan.get("confirmed") or []]
        if confirmed:
            session.execute(update(HumanLabelRow).where(HumanLabelRow.id.in_(confirmed))
                            .values(confirmed=False))
        if details.get("kind") == "correct":
            for name, value in dict(plan.get("corrected_before") or {}).items():
                current = session.scalar(select(HumanLabelRow).where(
                    HumanLabelRow.appeal_id == appeal_id, HumanLabelRow.label == name,
                    HumanLabelRow.origin == "correction"))
                if value is None:
                    if current is not None:
                        session.delete(current)
                elif current is None:
                    session.add(HumanLabelRow(appeal_id=appeal_id, label=name, value=value,
                                              origin="correction", confirmed=True))
                else:
                    current.value = value
        item.status, item.resolved_at, item.resolved_by = "open", None, None
        item.outcome = plan.get("outcome")
        item.claimed_by, item.claimed_until = actor, now + ttl
        labels = dict(details.get("labels") or {})
        before = dict(details.get("before") or {})
        record_audit(session, actor=actor, action=UNDO_ACTION, entity="appeal",
                     entity_id=appeal_id,
                     details={"via": VIA, "decision": row.id, "kind": details.get("kind"),
                              "reverted": labels, "restored": before})
        return Decision(row.id, appeal_id, str(details.get("kind", "")), labels, before, row.at,
                        bool(details.get("audit")))


# ----------------------------------------------------------------------------- bulk


def bulk_count(store: Store, *, actor: str, flt: QueueFilter,
               topic_label: str = DEFAULT_TOPIC_LABEL, now: datetime | None = None) -> int:
    """Open items under ``flt`` that ``actor`` may change now (not held by another operator)."""
    actor = _actor(actor)
    now = now or utcnow()
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(ReviewItemRow).where(
            *_matching(flt, topic_label), _claimable(actor, now))) or 0)


def bulk_correct(store: Store, *, actor: str, flt: QueueFilter, label: str, value: str,
                 expected: int, taxonomy: Taxonomy | None,
                 topic_label: str = DEFAULT_TOPIC_LABEL, department_label: str = "department",
                 now: datetime | None = None, ttl: timedelta = CLAIM_TTL) -> BulkResult:
    """Set ``label = value`` on every open item under ``flt``: exactly ``expected`` of them.

    The items are claimed for ``actor`` first, in one transaction, under the same filter
    (PostgreSQL: ``FOR UPDATE SKIP LOCKED``); when that finds another number than ``expected``
    nothing changes. Then each is corrected (:func:`correct_appeal`). Audited as ``queue.bulk``
    plus one ``appeal.correct`` row per appeal.

    Raises:
        InvalidDecision: Unknown label or value, or ``expected`` out of range.
        StaleBulk: The filter matches another number of items now.
    """
    actor = _actor(actor)
    chosen = _check_labels({label: value}, topic_label=topic_label,
                           department_label=department_label, taxonomy=taxonomy)
    if not 1 <= int(expected) <= MAX_BULK:
        raise InvalidDecision(f"массовая правка: от 1 до {MAX_BULK} обращений")
    now = now or utcnow()
    until = now + ttl
    conditions = [*_matching(flt, topic_label), _claimable(actor, now)]
    with store.session() as session:
        if _is_postgres(session):
            ids = list(session.scalars(select(ReviewItemRow.id).where(*conditions)
                                       .order_by(ReviewItemRow.id)
                                       .with_for_update(skip_locked=True)))
            if len(ids) != expected:
                raise StaleBulk(expected, len(ids))
            session.execute(update(ReviewItemRow).where(ReviewItemRow.id.in_(ids))
                            .values(claimed_by=actor, claimed_until=until))
        else:
            found = session.execute(update(ReviewItemRow).where(*conditions)
                                    .values(claimed_by=actor, claimed_until=until)).rowcount
            if found != expected:
                raise StaleBulk(expected, int(found or 0))
        appeal_ids = list(session.scalars(select(ReviewItemRow.appeal_id).where(
            *_matching(flt, topic_label), ReviewItemRow.claimed_by == actor,
            ReviewItemRow.claimed_until == until).order_by(ReviewItemRow.appeal_id)))
    changed: list[int] = []
    details = {"via": VIA, "bulk": True, "filter": flt.as_dict()}
    try:
        for appeal_id in appeal_ids:
            try:
                correct_appeal(store, appeal_id, chosen, author=actor,
                               allowed_labels=[topic_label, department_label],
                               department_label=department_label, taxonomy=taxonomy,
                               comment="консоль: массовая правка", audit_details=details)
            except AppealNotFound:
                continue
            changed.append(appeal_id)
    finally:
        with store.session() as session:
            session.execute(update(ReviewItemRow).where(ReviewItemRow.appeal_id.in_(appeal_ids))
                            .where(ReviewItemRow.claimed_by == actor)
                            .values(claimed_by=None, claimed_until=None))
            record_audit(session, actor=actor, action=BULK_ACTION, entity="review_queue",
                         details={**details, "labels": chosen, "expected": expected,
                                  "changed": len(changed), "appeal_ids": changed[:MAX_BULK]})
    return BulkResult(len(changed), changed)


# ----------------------------------------------------------------------------- filters


def territories(store: Store) -> list[str]:
    """Territories of the appeals waiting in the queue (for the filter)."""
    with store.session() as session:
        return [t for t in session.scalars(
            select(AppealRow.territory).join(ReviewItemRow, ReviewItemRow.appeal_id == AppealRow.id)
            .where(ReviewItemRow.status == "open", AppealRow.territory.is_not(None))
            .distinct().order_by(AppealRow.territory).limit(500)) if t]
