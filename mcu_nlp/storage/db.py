"""Engine and session factory for the appeal store.

SQLite (a file in the data directory) is the default; PostgreSQL is chosen by ``DATABASE_URL``.
A plain ``postgresql://`` URL is upgraded to the psycopg 3 driver, the one the project installs.
SQLite runs in WAL mode with foreign keys on, so readers never block the importer and a row can
never point at a missing appeal.

Engines hide statement parameters in their errors (``hide_parameters=True``): a failed INSERT of an
appeal would otherwise carry the citizen's name, phone and address into every log that prints
the error. Log a store error through :func:`describe_db_error`, and a URL through
:func:`redact_url`, which hides the password.
"""

from __future__ import annotations

import re
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


# user:password@ in a URL that does not even parse
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^@/\s]*@")
# quoted values in a driver's message: 'invalid input syntax for type integer: "Иванов"'
_QUOTED = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")
_WRITE = re.compile(r"\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\"?[\w.]+\"?)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL: hide what looks like a password
        return _URL_PASSWORD.sub(r"\1***@", url)


def describe_db_error(error: BaseException) -> str:
    """A store error in words fit for a log: no parameters, no values, no personal data.

    Kept: the exception's class, the driver's class and SQLSTATE, the first line of the driver's
    message with quoted values replaced by ``"…"``, and the kind of statement (``INSERT INTO
    appeals``). Dropped: the statement's parameters and the driver's DETAIL lines, where a
    rejected row's values (a citizen's name, phone, address) would appear.
    """
    from mcu_nlp.text.normalize import EMAIL_RE, PHONE_RE

    original = getattr(error, "orig", None)
    message = str(original if original is not None else error).strip()
    first = _QUOTED.sub('"…"', message.splitlines()[0] if message else "")[:300]
    first = PHONE_RE.sub("[ТЕЛЕФОН]", EMAIL_RE.sub("[EMAIL]", first))
    parts = [type(error).__name__]
    if original is not None:
        parts.append(f"({type(original).__module__}.{type(original).__name__})")
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if code:
        parts.append(f"SQLSTATE {code}")
    description = " ".join(parts) + (f": {first}" if first else "")
    statement = getattr(error, "statement", None)
    write = _WRITE.match(statement) if isinstance(statement, str) else None
    if write is not None:
        description += f" [{' '.join(write.group(1).upper().split())} {write.group(2)}]"
    elif isinstance(statement, str) and statement.strip():
        description += f" [{statement.split(None, 1)[0].upper()}]"
    return description


def normalize_url(url: str) -> str:
    """Pick the installed driver for a store URL (``postgresql://`` → ``postgresql+psycopg://``).

    Returns:
        The URL to connect with (password included: never log it, see :func:`redact_url`).

    Raises:
        StoreConfigError: The URL does not parse or names another database; the message shows
            the URL without its password.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        shown = redact_url(url)
        reason = str(exc).replace(url, shown)
        raise StoreConfigError(f"cannot parse the store URL {shown!r}: {reason}") from None
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
                               hide_parameters=True,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         hide_parameters=True)


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
