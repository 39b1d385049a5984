"""Precision audit of auto-routing: audit-sample flags, verdicts, threshold overrides.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the change."""
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_sample", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table("review_queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))

    op.create_table(
        "routing_audit_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("predicted", sa.String(length=500), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("corrected_to", sa.String(length=500), nullable=True),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"],
            ["appeals.id"],
            name=op.f("fk_routing_audit_verdicts_appeal_id_appeals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_audit_verdicts")),
        sa.UniqueConstraint("appeal_id", "label", name="uq_routing_audit_verdicts_key"),
    )
    with op.batch_alter_table("routing_audit_verdicts", schema=None) as batch_op:
        batch_op.create_index("ix_routing_audit_verdicts_model_label", ["model_version", "label"],
                              unique=False)

    op.create_table(
        "routing_thresholds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("bundle_threshold", sa.Float(), nullable=True),
        sa.Column("evidence_since", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_thresholds")),
        sa.UniqueConstraint("model_version", "label", name="uq_routing_thresholds_key"),
    )


def downgrade() -> None:
    """Revert the change."""
    op.drop_table("routing_thresholds")
    with op.batch_alter_table("routing_audit_verdicts", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_audit_verdicts_model_label")

    op.drop_table("routing_audit_verdicts")
    with op.batch_alter_table("review_queue", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("audit")

    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_column("audit_sample")
