"""Engine and session factory for the appeal store.

SQLite (a file in the data directory) is the default; PostgreSQL is chosen by ``DATABASE_URL``.
A plain ``postgresql://`` URL is upgraded to the psycopg 3 driver, the one the project installs.
SQLite runs in WAL mode with foreign keys on, so readers never block the importer and a row can
never point at a missing appeal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


class StoreConfigError(ValueError):
    """The store URL cannot be used."""


def normalize_url(url: str) -> str:
    """Pick the installed driver for a store URL (``postgresql://`` → ``postgresql+psycopg://``)."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreConfigError(f"cannot parse the store URL {url!r}: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise StoreConfigError(
            f"unsupported store {parsed.drivername!r}: use an sqlite:/// file or postgresql:// URL")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable across process kills in WAL mode (only an OS crash can lose the tail).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with the store's connection settings."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, poolclass=NullPool if not database else None,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass(slots=True)
class Store:
    """An engine and its session factory: the only handle services need."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def from_url(cls, url: str, *, upgrade: bool = True) -> Store:
        """Open the store at ``url``, bringing its schema up to date unless ``upgrade`` is off."""
        engine = make_engine(url)
        if upgrade:
            from mcu_nlp.storage.migrate import upgrade_schema

            upgrade_schema(engine)
        return cls(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
