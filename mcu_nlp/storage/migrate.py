"""Schema migrations, run programmatically at start-up and by ``mcu-nlp db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from mcu_nlp.storage.locks import MIGRATION_LOCK, xact_lock

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_schema(engine: Engine, revision: str = "head") -> str | None:
    """Bring the store's schema to ``revision``; return the revision it is at afterwards.

    Safe when several processes start at once on one PostgreSQL database (API replicas): the
    migration transaction first takes a transaction-level advisory lock
    (``pg_advisory_xact_lock``, :data:`~mcu_nlp.storage.locks.MIGRATION_LOCK`), so one process
    migrates while the others wait; each waiter then reads the version the first one committed
    and has nothing left to do. The lock goes with the transaction (commit, rollback, or the
    process dying). On SQLite there is no lock (see :mod:`mcu_nlp.storage.locks`).
    """
    config = alembic_config()
    with engine.begin() as connection:
        xact_lock(connection, MIGRATION_LOCK)  # before Alembic reads the current version
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the store is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
