"""Named advisory locks: one holder at a time across every process using the same store.

Several API replicas share one PostgreSQL database. Work that must not run twice at once (the
schema migration at start-up, a trend-alert scan) takes a *named* lock first:

* **PostgreSQL**: a session-level advisory lock (``pg_advisory_lock`` /
  ``pg_try_advisory_lock``) on a dedicated connection, keyed by a stable 64-bit hash of the
  name (:func:`lock_key`, the same in every process and Python version). The transaction that
  took it is committed at once, so the connection does not sit "idle in transaction" while the
  work runs; the lock is released on exit, also when the work raised. Should the process die,
  the server ends its session and the lock goes with it: a killed replica never leaves a lock
  behind.
* **SQLite**: a no-op that always acquires. An SQLite store is one file on one machine and not a
  store for replicas: its writers are already serialized by SQLite's own database lock
  (``busy_timeout`` 30 s), and ``mcu-nlp serve --workers N`` migrates once before it starts the
  workers. Work guarded here is also safe to run twice on its own (a scan upserts by its dedup
  key), the lock only keeps replicas from doing it twice at the same time.

For the migration itself see :func:`mcu_nlp.storage.migrate.upgrade_schema`, which takes the
transaction-level variant (``pg_advisory_xact_lock``) on the connection Alembic migrates with.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

__all__ = ["ALERT_SCAN_LOCK", "MIGRATION_LOCK", "LockBusy", "advisory_lock", "lock_key",
           "xact_lock"]

MIGRATION_LOCK = "mcu_nlp:schema-migration"
ALERT_SCAN_LOCK = "mcu_nlp:alert-scan"
_POLL_SECONDS = 0.1


class LockBusy(RuntimeError):
    """Another session holds the named lock (``wait=False``, or the wait timed out)."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"the lock {name!r} is held by another process")
        self.name = name


def lock_key(name: str) -> int:
    """The advisory-lock key of ``name``: a stable signed 64-bit integer (BLAKE2b of the name)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def xact_lock(connection: Connection, name: str) -> None:
    """Wait for ``name``'s lock inside the connection's current transaction (PostgreSQL).

    The lock is released when that transaction commits or rolls back. A no-op on SQLite.
    """
    if _is_postgres(connection):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


@contextmanager
def advisory_lock(engine: Engine, name: str, *, wait: bool = True,
                  timeout: float | None = None) -> Iterator[None]:
    """Hold the named lock for the ``with`` block.

    Args:
        engine: The store's engine; the lock takes one connection of its pool while held.
        name: What is locked (e.g. :data:`ALERT_SCAN_LOCK`); the same name is the same lock in
            every process on the same database.
        wait: Wait for the holder to finish (``True``) or give up at once (``False``).
        timeout: With ``wait``, give up after this many seconds (``None``: wait as long as it
            takes).

    Raises:
        LockBusy: ``wait=False`` and another session holds the lock, or ``timeout`` passed.
    """
    if not _is_postgres(engine):  # SQLite: one machine, one file (see the module doc)
        yield
        return
    key = {"key": lock_key(name)}
    connection = engine.connect()
    held = False
    try:
        if wait and timeout is None:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            held = True
        else:
            deadline = time.monotonic() + (timeout or 0.0)
            while True:
                held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key))
                if held or not wait or time.monotonic() >= deadline:
                    break
                connection.rollback()  # do not sit in a transaction while polling
                time.sleep(_POLL_SECONDS)
        connection.commit()  # a session-level lock outlives the transaction that took it
        if not held:
            raise LockBusy(name) if not wait else LockBusy(
                name, f"the lock {name!r} is still held by another process after {timeout} s")
        yield
    finally:
        try:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()
        except Exception:  # noqa: BLE001 - a dead connection: never return it to the pool
            connection.invalidate()  # closing the session releases the lock on the server
        finally:
            connection.close()
