"""Migration 0003 on a store written by the old import: source labels nobody confirmed lose
``confirmed``; ones a person confirmed (a correction alike, a confirmed audit) keep it.

On SQLite and PostgreSQL (a fresh schema, built at 0002 with the alembic command API).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import command

from mcu_nlp.storage.migrate import alembic_config, current_revision, head_revision
from mcu_nlp.storage.models import (
    AppealRow,
    AuditVerdictRow,
    CorrectionRow,
    HumanLabelRow,
    ReviewItemRow,
)

AT = datetime(2021, 3, 1, 10, 0)


def _upgrade(engine: sa.Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _downgrade(engine: sa.Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _appeal(connection: sa.Connection, source_id: str) -> int:
    return connection.execute(sa.insert(AppealRow.__table__).values(
        source="spb_portal", source_id=source_id, channel="portal", created_at=AT,
        text="Во дворе не вывозят мусор", extra={}, urgency=0.0, urgency_reasons=[],
        recorded_at=AT).returning(AppealRow.__table__.c.id)).scalar_one()


def _label(connection: sa.Connection, appeal_id: int, label: str, value: str, *,
           origin: str = "source", confirmed: bool = True) -> None:
    connection.execute(sa.insert(HumanLabelRow.__table__).values(
        appeal_id=appeal_id, label=label, value=value, origin=origin, confirmed=confirmed,
        recorded_at=AT))


def _correction(connection: sa.Connection, appeal_id: int, label: str, old: str | None,
                new: str) -> None:
    connection.execute(sa.insert(CorrectionRow.__table__).values(
        appeal_id=appeal_id, label=label, old_value=old, new_value=new, author="key:1:operator",
        comment="", recorded_at=AT))
    _label(connection, appeal_id, label, new, origin="correction")


def _audit(connection: sa.Connection, appeal_id: int, outcome: str,
           verdicts: dict[str, tuple[str, bool]]) -> None:
    connection.execute(sa.insert(ReviewItemRow.__table__).values(
        appeal_id=appeal_id, status="resolved", urgency=0.0, reason="audit sample",
        enqueued_at=AT, resolved_at=AT, resolved_by="key:1:operator", audit=True,
        outcome=outcome))
    for label, (predicted, correct) in verdicts.items():
        connection.execute(sa.insert(AuditVerdictRow.__table__).values(
            appeal_id=appeal_id, label=label, model_version="fake-v1", predicted=predicted,
            confidence=0.97, threshold=0.9, correct=correct,
            corrected_to=None if correct else "Другая служба", reviewer="key:1:operator",
            recorded_at=AT))


def _flags(engine: sa.Engine) -> dict[tuple[str, str, str], bool]:
    table, appeals = HumanLabelRow.__table__, AppealRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(appeals.c.source_id, table.c.label, table.c.origin, table.c.confirmed)
            .join(appeals, appeals.c.id == table.c.appeal_id)).all()
    return {(row[0], row[1], row[2]): bool(row[3]) for row in rows}


def test_0003_unconfirms_old_source_labels_nobody_confirmed(empty_engine: sa.Engine) -> None:
    _upgrade(empty_engine, "0002")
    assert current_revision(empty_engine) == "0002"
    with empty_engine.begin() as connection:
        # The old import: every source label stored confirmed.
        plain = _appeal(connection, "old-plain")
        _label(connection, plain, "category", "Мусор")
        _label(connection, plain, "department", "Жилищное агентство")

        same = _appeal(connection, "corrected-same")  # a person set the source's own value
        _label(connection, same, "category", "Мусор")
        _correction(connection, same, "category", "Мусор", "Мусор")

        other = _appeal(connection, "corrected-other")  # a person set another value
        _label(connection, other, "category", "Мусор")
        _correction(connection, other, "category", "Мусор", "Благоустройство")
        # A correction of another label with the same value confirms nothing here.
        _label(connection, other, "department", "Мусор")

        confirmed = _appeal(connection, "audit-confirmed")  # the audit item was confirmed
        _label(connection, confirmed, "department", "Жилищное агентство")
        _label(connection, confirmed, "category", "Мусор")  # the model said something else
        _audit(connection, confirmed, "confirmed", {"department": ("Жилищное агентство", True),
                                                    "category": ("Благоустройство", True)})

        wrong = _appeal(connection, "audit-corrected")  # the audit found the model wrong
        _label(connection, wrong, "department", "Жилищное агентство")
        _audit(connection, wrong, "corrected", {"department": ("Жилищное агентство", False)})

        left = _appeal(connection, "audit-corrected-other-label")  # corrected, yet not this one
        _label(connection, left, "department", "Жилищное агентство")
        _audit(connection, left, "corrected", {"department": ("Жилищное агентство", True)})

        new = _appeal(connection, "new-import")  # written unconfirmed by the new import
        _label(connection, new, "category", "Мусор", confirmed=False)

    _upgrade(empty_engine, "head")
    assert current_revision(empty_engine) == head_revision()
    assert _flags(empty_engine) == {
        ("old-plain", "category", "source"): False,
        ("old-plain", "department", "source"): False,
        ("corrected-same", "category", "source"): True,
        ("corrected-same", "category", "correction"): True,
        ("corrected-other", "category", "source"): False,
        ("corrected-other", "category", "correction"): True,
        ("corrected-other", "department", "source"): False,
        ("audit-confirmed", "department", "source"): True,
        ("audit-confirmed", "category", "source"): False,
        ("audit-corrected", "department", "source"): False,
        # Only confirm_audit confirms source labels; a corrected audit item confirms none.
        ("audit-corrected-other-label", "department", "source"): False,
        ("new-import", "category", "source"): False,
    }

    # Downgrade is a no-op: nothing becomes confirmed again; upgrading again changes nothing.
    before = _flags(empty_engine)
    _downgrade(empty_engine, "0002")
    assert current_revision(empty_engine) == "0002"
    assert _flags(empty_engine) == before
    _upgrade(empty_engine, "head")
    assert _flags(empty_engine) == before
