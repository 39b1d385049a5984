"""Source labels nobody confirmed are unconfirmed: they stop counting as people's labels.

Before this revision an import stored the labels that arrive with an appeal (``origin='source'``)
with ``confirmed=True``, so retraining took them as people's labels. Now a source label is
confirmed only when a person confirms it (:mod:`mcu_nlp.services.appeals`):

- a correction of the same appeal and label with the same value, or
- the confirmation of the appeal's audit item (``review_queue.outcome = 'confirmed'``) with a
  correct verdict whose model value is the source label's value.

This revision sets ``confirmed = false`` on every source label with neither; labels with one
keep ``confirmed = true``. Corrections (``origin='correction'``) are not touched. No schema
change.

Downgrade is a no-op on purpose: which rows the old import had marked confirmed cannot be told
apart from the source labels written unconfirmed since, and marking source labels confirmed again
would let labels nobody checked train the next model version.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-11 12:00:00.000000
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

_labels = sa.table(
    "human_labels",
    sa.column("appeal_id", sa.Integer()),
    sa.column("label", sa.String()),
    sa.column("value", sa.String()),
    sa.column("origin", sa.String()),
    sa.column("confirmed", sa.Boolean()),
)
_corrections = sa.table(
    "corrections",
    sa.column("appeal_id", sa.Integer()),
    sa.column("label", sa.String()),
    sa.column("new_value", sa.String()),
)
_verdicts = sa.table(
    "routing_audit_verdicts",
    sa.column("appeal_id", sa.Integer()),
    sa.column("label", sa.String()),
    sa.column("predicted", sa.String()),
    sa.column("correct", sa.Boolean()),
)
_queue = sa.table(
    "review_queue",
    sa.column("appeal_id", sa.Integer()),
    sa.column("audit", sa.Boolean()),
    sa.column("outcome", sa.String()),
)


def unconfirm_statement() -> sa.Update:
    """``UPDATE human_labels``: source labels no person confirmed become unconfirmed."""
    corrected_alike = sa.exists().where(
        _corrections.c.appeal_id == _labels.c.appeal_id,
        _corrections.c.label == _labels.c.label,
        _corrections.c.new_value == _labels.c.value,
    )
    audit_confirmed = sa.exists().where(
        _verdicts.c.appeal_id == _labels.c.appeal_id,
        _verdicts.c.label == _labels.c.label,
        _verdicts.c.predicted == _labels.c.value,
        _verdicts.c.correct.is_(sa.true()),
        _queue.c.appeal_id == _labels.c.appeal_id,
        _queue.c.audit.is_(sa.true()),
        _queue.c.outcome == "confirmed",
    )
    return (
        sa.update(_labels)
        .where(
            _labels.c.origin == "source",
            _labels.c.confirmed.is_(sa.true()),
            ~corrected_alike,
            ~audit_confirmed,
        )
        .values(confirmed=sa.false())
    )


def upgrade() -> None:
    """Apply the change."""
    result = op.get_bind().execute(unconfirm_statement())
    log.info("0003: %s source labels nobody confirmed are now unconfirmed", result.rowcount)


def downgrade() -> None:
    """Nothing to revert: source labels stay unconfirmed (see the module doc)."""
