"""Trend alerts in the store: scan the stored appeals for a day, keep one row per rise, acknowledge.

The detector and the merge rules are pure (:mod:`mcu_nlp.trends`); this module only maps
:class:`~mcu_nlp.trends.alerts.TrendAlert` records to ``alerts`` rows and back:

* ``dedup_key`` is ``<dimension>=<value>@<first alarm day>``, so re-scanning a day, or scanning
  overlapping windows on later days, updates the same row instead of adding one;
* ``first_seen_at`` / ``last_seen_at`` are the first and last alarm day of the rise (the data's
  time, so the API's ``since``/``until`` filter by when the rise happened);
* ``payload`` holds the alarm days and the explanation, with personal data masked;
* ``status`` is the row's own: a person's acknowledgement survives later scans, and a scan that
  finds a rise over marks it ``resolved`` (``status_changed_by = "scan"``).

``POST /v1/alerts/scan``, ``GET /v1/alerts``, ``POST /v1/alerts/{id}/ack`` and
``mcu-nlp alerts --store`` are thin faces over these functions.

Every scan that stores (the API's, the API's periodic one, the CLI's) goes through
:func:`scan_exclusively`: with several API replicas on one PostgreSQL database only one scan
runs at a time, and a scan asked for meanwhile is refused with :class:`ScanBusy` (the API
answers 409, the periodic scan skips its turn, the CLI exits with code 3) rather than queued,
because the scan already running stores the same alerts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mcu_nlp.services.audit import record_audit
from mcu_nlp.storage import Store
from mcu_nlp.storage.locks import ALERT_SCAN_LOCK, LockBusy, advisory_lock
from mcu_nlp.storage.models import AlertRow
from mcu_nlp.trends.alerts import AlertStatus, TrendAlert
from mcu_nlp.trends.scan import scan_alerts

__all__ = [
    "AlertNotFound",
    "AlertPage",
    "AlertTransitionError",
    "ScanBusy",
    "ScanOutcome",
    "StoredAlert",
    "acknowledge_alert",
    "get_alert",
    "list_alerts",
    "scan_and_store",
    "scan_exclusively",
]

KIND_PREFIX = "trend:"
_KEY_LIMIT = 300  # the column's length
_CUTS_RU = {"topic_group": "группа тем", "topic": "тема", "department": "получатель",
            "territory": "территория", "channel": "канал", "total": "всего"}


class AlertNotFound(LookupError):
    """No stored alert has that id."""


class AlertTransitionError(ValueError):
    """The alert's status does not allow the change (e.g. acknowledging a resolved alert)."""


class ScanBusy(LockBusy):
    """Another process (another API replica, the CLI) is scanning this store right now."""

    def __init__(self) -> None:
        super().__init__(ALERT_SCAN_LOCK, "another alert scan is running on this store (another "
                                          "API replica or the command line); retry when it "
                                          "has finished")


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One stored alert as the API and the CLI show it."""

    id: int
    key: str
    dimension: str
    value: str
    title: str
    status: str
    first_day: date
    last_day: date
    observed: int
    expected: float
    excess: float
    rules: list[str]
    days: list[dict[str, Any]]
    explanation: dict[str, Any] | None
    status_changed_by: str | None


@dataclass(frozen=True, slots=True)
class AlertPage:
    """A page of alerts and how many match the filters."""

    total: int
    items: list[StoredAlert]


@dataclass(slots=True)
class ScanOutcome:
    """What one scan did: the alerts it found (with explanations) and the rows it touched."""

    as_of: date
    alerts: list[TrendAlert]
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def _masker() -> Callable[[str], str]:
    from mcu_nlp.text.masking import mask_personal_data

    return mask_personal_data


def dedup_key(alert: TrendAlert) -> str:
    """``<dimension>=<value>@<first day>``; long values are shortened with a hash."""
    key = f"{alert.key}@{alert.first_day.isoformat()}"
    if len(key) <= _KEY_LIMIT:
        return key
    digest = hashlib.sha1(alert.key.encode()).hexdigest()[:16]
    return f"{alert.key[:_KEY_LIMIT - 40]}#{digest}@{alert.first_day.isoformat()}"


def alert_title(alert: TrendAlert) -> str:
    """Russian title: «Рост: тема «…» (01.03 – 03.03.2021)»."""
    span = (f"{alert.first_day:%d.%m.%Y}" if alert.first_day == alert.last_day
            else f"{alert.first_day:%d.%m} – {alert.last_day:%d.%m.%Y}")
    return f"Рост: {_CUTS_RU.get(alert.dimension, alert.dimension)} «{alert.value}» ({span})"


def _explanation_payload(alert: TrendAlert, mask: Callable[[str], str]) -> dict[str, Any] | None:
    """The explanation as plain data; free text (summary, examples) masked once more."""
    explanation = alert.explanation
    if explanation is None:
        return None
    drivers = {cut: [{"value": d.value, "observed": d.observed, "expected": round(d.expected, 2),
                      "share": round(d.share, 4)} for d in found]
               for cut, found in explanation.drivers.items()}
    words = [{"word": w.word, "z": round(w.z, 3), "alert_messages": w.alert_messages,
              "baseline_messages": w.baseline_messages} for w in explanation.words]
    # examples were masked by the explainer; masking again is idempotent and guards the summary
    return {"summary": mask(explanation.summary()),
            "observed": explanation.observed, "expected": round(explanation.expected, 2),
            "baseline_start": explanation.baseline_start.isoformat(),
            "baseline_end": explanation.baseline_end.isoformat(),
            "drivers": drivers, "words": words,
            "examples": [mask(text) for text in explanation.examples],
            "examples_withheld": bool(explanation.examples_withheld)}


def _to_alert(row: AlertRow) -> TrendAlert:
    data = dict(row.payload["alert"])
    data["status"] = row.status
    return TrendAlert.from_dict(data)


def _day_set(row: AlertRow) -> set[str]:
    return {d["day"] for d in row.payload["alert"]["days"]}


def _write(row: AlertRow, alert: TrendAlert, explanation: dict[str, Any] | None) -> None:
    """Copy an alert's days and figures into a row (the status is the caller's business)."""
    data = alert.as_dict()
    for volatile in ("id", "status"):
        data.pop(volatile)
    row.kind = (KIND_PREFIX + alert.dimension)[:64]
    row.title = alert_title(alert)
    row.severity = float(alert.excess)
    row.first_seen_at = datetime.combine(alert.first_day, datetime.min.time())
    row.last_seen_at = datetime.combine(alert.last_day, datetime.min.time())
    row.occurrences = len(alert.days)
    old = (row.payload or {}).get("explanation")
    row.payload = {"alert": data, "explanation": explanation if explanation is not None else old}


def _union(row: AlertRow, alert: TrendAlert) -> TrendAlert:
    """The row's alert with ``alert``'s days added (a re-detected day takes the new values)."""
    known = _to_alert(row)
    days = {d.day: d for d in known.days}
    days.update({d.day: d for d in alert.days})
    return TrendAlert(dimension=known.dimension, value=known.value,
                      days=tuple(days[k] for k in sorted(days)), status=known.status)


def _insert_or_get(session: Session, alert: TrendAlert) -> tuple[AlertRow, bool]:
    """The row of ``alert``'s dedup key: inserted now (``True``) or already there (``False``).

    ``INSERT ... ON CONFLICT (dedup_key) DO NOTHING`` on SQLite and PostgreSQL alike, so two
    scans that both miss the row cannot both insert it (the second finds the first's row; on
    PostgreSQL it waits for the first to commit).
    """
    key = dedup_key(alert)
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (insert(AlertRow)
                 .values(dedup_key=key, kind=(KIND_PREFIX + alert.dimension)[:64],
                         status=str(alert.status),
                         status_changed_by="scan" if alert.status != "new" else None,
                         payload={})
                 .on_conflict_do_nothing(index_elements=[AlertRow.dedup_key])
                 .returning(AlertRow.id))
    inserted = session.scalar(statement)
    row = session.scalar(select(AlertRow).where(AlertRow.dedup_key == key)
                         .execution_options(populate_existing=True))
    assert row is not None  # inserted now, or committed by the scan that won
    return row, inserted is not None


def scan_and_store(store: Store, frame: pd.DataFrame, *, as_of: date, lookback_days: int = 7,
                   actor: str = "system", **scan_options: Any) -> ScanOutcome:
    """Detect rises up to ``as_of`` in ``frame`` and fold them into the stored alerts.

    Open stored alerts are handed to :func:`~mcu_nlp.trends.scan.scan_alerts` as the known ones,
    so an ongoing rise updates its row and keeps its status; a detected rise that overlaps a row
    already resolved is folded into that row without reopening it (re-scanning a day adds
    nothing). The scan itself is recorded in the audit log.

    Args:
        store: The store holding the ``alerts`` table.
        frame: Appeals frame (e.g. :func:`mcu_nlp.services.reporting.load_appeals_frame`).
        as_of: The day to assess.
        lookback_days: Days up to ``as_of`` whose alarms make alerts.
        actor: Who triggered the scan (audit log).
        **scan_options: Further :func:`~mcu_nlp.trends.scan.scan_alerts` options.
    """
    mask = _masker()
    horizon = datetime.combine(as_of - timedelta(days=lookback_days + 60), datetime.min.time())
    with store.session() as session:
        rows = list(session.scalars(select(AlertRow).where(
            AlertRow.kind.like(f"{KIND_PREFIX}%"), AlertRow.last_seen_at >= horizon)))
        open_rows = [r for r in rows if r.status != AlertStatus.RESOLVED]
        known = [_to_alert(r) for r in open_rows]
        found = scan_alerts(frame, as_of=as_of, lookback_days=lookback_days, existing=known,
                            **scan_options)
        outcome = ScanOutcome(as_of=as_of, alerts=found)
        by_key: dict[str, list[AlertRow]] = {}
        for row in rows:
            by_key.setdefault(row.payload["alert"]["key"], []).append(row)
        by_dedup = {r.dedup_key: r for r in rows}
        touched: set[int] = set()
        for alert in found:
            days = {d.day.isoformat() for d in alert.days}
            candidates = [r for r in by_key.get(alert.key, []) if id(r) not in touched]
            # an open row continued by this alert holds a subset of its days
            row = next((r for r in candidates if r.status != AlertStatus.RESOLVED
                        and _day_set(r) <= days), None)
            if row is None:  # a rise already resolved, seen again: fold it in, keep it resolved
                row = next((r for r in candidates if _day_set(r) & days), None) \
                    or by_dedup.get(dedup_key(alert))
            explanation = _explanation_payload(alert, mask)
            created = False
            if row is None:  # another scan may insert the same key meanwhile: never a 500
                row, created = _insert_or_get(session, alert)
            if created:
                _write(row, alert, explanation)
                session.flush()
                outcome.created.append(row.id)
                rows.append(row)
                by_key.setdefault(alert.key, []).append(row)
            else:
                before = (_day_set(row), row.status)
                if row.status == AlertStatus.RESOLVED:
                    _write(row, _union(row, alert), explanation)
                else:
                    _write(row, alert, explanation)
                    if alert.status == AlertStatus.RESOLVED:
                        row.status, row.status_changed_by = str(alert.status), "scan"
                        outcome.resolved.append(row.id)
                if before != (_day_set(row), row.status) and row.id not in outcome.resolved:
                    outcome.updated.append(row.id)
            touched.add(id(row))
        record_audit(session, actor=actor, action="alert.scan", entity="alert",
                     details={"as_of": as_of.isoformat(), "lookback_days": lookback_days,
                              "created": len(outcome.created), "updated": len(outcome.updated),
                              "resolved": len(outcome.resolved)})
    return outcome


def scan_exclusively(store: Store, frame: pd.DataFrame | Callable[[], pd.DataFrame], *,
                     as_of: date, lookback_days: int = 7, actor: str = "system",
                     **scan_options: Any) -> ScanOutcome:
    """:func:`scan_and_store`, only while no other process scans the same store.

    The lock is :data:`~mcu_nlp.storage.locks.ALERT_SCAN_LOCK`, a PostgreSQL advisory lock
    tried once (not waited for); on SQLite it always succeeds (:mod:`mcu_nlp.storage.locks`).

    Args:
        store: The store holding the ``alerts`` table.
        frame: The appeals frame, or a function that reads it: called only once the lock is
            held, so a refused scan reads nothing.
        as_of: The day to assess.
        lookback_days: Days up to ``as_of`` whose alarms make alerts.
        actor: Who triggered the scan (audit log).
        **scan_options: Further :func:`~mcu_nlp.trends.scan.scan_alerts` options.

    Raises:
        ScanBusy: Another scan of this store is running.
    """
    with ExitStack() as held:
        try:
            held.enter_context(advisory_lock(store.engine, ALERT_SCAN_LOCK, wait=False))
        except LockBusy:
            raise ScanBusy() from None
        data = frame() if callable(frame) else frame
        return scan_and_store(store, data, as_of=as_of, lookback_days=lookback_days, actor=actor,
                              **scan_options)


def _stored(row: AlertRow) -> StoredAlert:
    data = row.payload["alert"]
    return StoredAlert(id=row.id, key=data["key"], dimension=data["dimension"],
                       value=data["value"], title=row.title, status=row.status,
                       first_day=date.fromisoformat(data["first_day"]),
                       last_day=date.fromisoformat(data["last_day"]),
                       observed=int(data["observed"]), expected=float(data["expected"]),
                       excess=round(float(row.severity), 2), rules=list(data["rules"]),
                       days=list(data["days"]), explanation=row.payload.get("explanation"),
                       status_changed_by=row.status_changed_by)


def list_alerts(store: Store, *, status: str | Iterable[str] | None = None,
                since: date | None = None, until: date | None = None,
                dimension: str | None = None, limit: int = 50, offset: int = 0) -> AlertPage:
    """Stored alerts, largest excess first.

    Args:
        store: The store.
        status: Keep these statuses (``new``, ``acknowledged``, ``resolved``).
        since: Keep rises whose last alarm day is on or after this day.
        until: Keep rises whose first alarm day is on or before this day.
        dimension: Keep one cut (``topic``, ``territory``...).
        limit: Page size.
        offset: Rows to skip.
    """
    query = select(AlertRow).where(AlertRow.kind.like(f"{KIND_PREFIX}%"))
    if status is not None:
        query = query.where(AlertRow.status.in_([status] if isinstance(status, str)
                                                else list(status)))
    if since is not None:
        query = query.where(AlertRow.last_seen_at >= datetime.combine(since, datetime.min.time()))
    if until is not None:
        query = query.where(AlertRow.first_seen_at <= datetime.combine(until, datetime.min.time()))
    if dimension is not None:
        query = query.where(AlertRow.kind == KIND_PREFIX + dimension)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(AlertRow.severity.desc(), AlertRow.id)
                               .limit(limit).offset(offset))
        return AlertPage(total=int(total), items=[_stored(r) for r in rows])


def get_alert(store: Store, alert_id: int) -> StoredAlert:
    """One stored alert.

    Raises:
        AlertNotFound: No such alert.
    """
    with store.session() as session:
        row = session.get(AlertRow, alert_id)
        if row is None or not row.kind.startswith(KIND_PREFIX):
            raise AlertNotFound(f"no alert with id {alert_id}")
        return _stored(row)


def acknowledge_alert(store: Store, alert_id: int, *, actor: str, comment: str = ""
                      ) -> StoredAlert:
    """Mark a new alert acknowledged (audited); acknowledging twice changes nothing.

    Raises:
        AlertNotFound: No such alert.
        AlertTransitionError: The alert is already resolved.
    """
    with store.session() as session:
        return _stored(acknowledge_row(session, alert_id, kind_prefix=KIND_PREFIX, actor=actor,
                                       comment=comment))


def acknowledge_row(session: Any, alert_id: int, *, kind_prefix: str, actor: str,
                    comment: str = "", name: str = "alert") -> AlertRow:
    """The acknowledge transition of any alert kind (growth, quality): locked, audited.

    Raises:
        AlertNotFound: No alert of ``kind_prefix`` has that id.
        AlertTransitionError: The alert is already resolved.
    """
    row = session.get(AlertRow, alert_id, with_for_update=True)
    if row is None or not row.kind.startswith(kind_prefix):
        raise AlertNotFound(f"no {name} with id {alert_id}")
    if row.status == AlertStatus.RESOLVED:
        raise AlertTransitionError(f"alert {alert_id} is resolved; only a new alert can be "
                                   "acknowledged")
    if row.status == AlertStatus.NEW:
        row.status, row.status_changed_by = str(AlertStatus.ACKNOWLEDGED), actor
        record_audit(session, actor=actor, action="alert.ack", entity="alert",
                     entity_id=row.id, details={"from": "new", "to": "acknowledged",
                                                "kind": row.kind, "title": row.title,
                                                "comment": comment})
    return row


def alerts_for_note(store: Store, start: date, end: date) -> list[dict[str, Any]]:
    """Stored alerts overlapping ``start``..``end`` as the analytical note reads them."""
    page = list_alerts(store, since=start, until=end, limit=50)
    return [{"title": a.title, "explanation": (a.explanation or {}).get("summary", "")}
            for a in page.items]
