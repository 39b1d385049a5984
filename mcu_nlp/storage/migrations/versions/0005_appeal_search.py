"""Full-text search over appeal texts.

- PostgreSQL: an expression GIN index ``ix_appeals_text_fts`` on ``to_tsvector('russian',
  text)``, built over the appeals already stored.
- SQLite: ``appeal_search`` (the Russian search terms of each appeal, computed in Python as
  PostgreSQL's ``russian`` configuration makes its lexemes), the external-content FTS5 table
  ``appeal_fts`` over it, and the triggers that keep both in sync; every stored appeal is indexed
  here (see :mod:`mcu_nlp.storage.search_index`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

from mcu_nlp.storage.search_index import (
    create_pg_index,
    create_sqlite_index,
    drop_pg_index,
    drop_sqlite_index,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the index (PostgreSQL) or the FTS5 tables and triggers, filled (SQLite)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        create_pg_index(bind)
    elif bind.dialect.name == "sqlite":
        create_sqlite_index(bind)


def downgrade() -> None:
    """Drop the search index."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        drop_pg_index(bind)
    elif bind.dialect.name == "sqlite":
        drop_sqlite_index(bind)
