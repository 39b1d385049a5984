"""Work that replicas on one PostgreSQL store must not do twice at once.

* named advisory locks (:mod:`mcu_nlp.storage.locks`): one holder, released on exit and on error,
  and by the server when the holder's connection dies; a no-op on SQLite;
* the schema migration: several processes upgrading an empty database at once all succeed;
* alert scans (API, periodic, CLI): one at a time, the others refused without reading anything;
* the review queue: two replicas closing the same audit item give one verdict, not two.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import auth, fresh_pg_schema
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mcu_nlp.services import alerts as alert_service
from mcu_nlp.storage import Store
from mcu_nlp.storage.locks import ALERT_SCAN_LOCK, LockBusy, advisory_lock, lock_key
from mcu_nlp.storage.migrate import current_revision, head_revision, upgrade_schema

postgres_only = pytest.mark.parametrize(
    "store", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


def _holders(engine: sa.Engine, name: str) -> int:
    """Sessions holding ``name``'s advisory lock, as the server sees them."""
    key = lock_key(name)
    with engine.connect() as connection:
        return int(connection.scalar(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = (:key & x'ffffffffffffffff'::bigint)"
        ), {"key": key}))


def test_lock_keys_are_stable_signed_64_bit_and_distinct():
    assert lock_key("mcu_nlp:alert-scan") == lock_key("mcu_nlp:alert-scan")
    assert lock_key("a") != lock_key("b")
    assert all(-2**63 <= lock_key(n) < 2**63 for n in ("a", "b", "mcu_nlp:schema-migration"))
    # the same in every process and Python version (BLAKE2b, not hash())
    assert lock_key("mcu_nlp:alert-scan") == 5645031591013667662


def test_sqlite_locks_are_a_no_op(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        with advisory_lock(store.engine, "x"), advisory_lock(store.engine, "x", wait=False):
            pass
    finally:
        store.dispose()


@postgres_only
def test_a_second_session_cannot_take_a_held_lock_until_it_is_released(store):
    name = f"test-{uuid.uuid4().hex}"
    other = sa.create_engine(store.engine.url)  # another replica: its own pool
    try:
        with advisory_lock(store.engine, name):
            assert _holders(store.engine, name) == 1
            with pytest.raises(LockBusy, match="held by another process"):
                with advisory_lock(other, name, wait=False):
                    pass
            started = time.monotonic()
            with pytest.raises(LockBusy, match="after 0.3 s"):
                with advisory_lock(other, name, timeout=0.3):
                    pass
            assert time.monotonic() - started >= 0.3
        assert _holders(store.engine, name) == 0
        with advisory_lock(other, name, wait=False):
            assert _holders(store.engine, name) == 1
    finally:
        other.dispose()


@postgres_only
def test_the_lock_is_released_when_the_work_fails_and_a_waiter_gets_it(store):
    name = f"test-{uuid.uuid4().hex}"
    with pytest.raises(ZeroDivisionError), advisory_lock(store.engine, name):
        _ = 1 / 0
    assert _holders(store.engine, name) == 0

    got: list[float] = []
    with advisory_lock(store.engine, name):
        waiter = threading.Thread(target=lambda: _take_and_note(store.engine, name, got))
        waiter.start()
        time.sleep(0.5)
        assert got == [], "the waiter must wait while the lock is held"
        released = time.monotonic()
    waiter.join(10)
    assert got and got[0] >= released


def _take_and_note(engine: sa.Engine, name: str, got: list[float]) -> None:
    with advisory_lock(engine, name):  # waits
        got.append(time.monotonic())


@postgres_only
def test_a_dead_holder_leaves_no_lock_behind(store):
    name = f"test-{uuid.uuid4().hex}"
    holder = store.engine.raw_connection()  # a replica's session, killed below
    cursor = holder.cursor()
    cursor.execute("SELECT pg_advisory_lock(%s)", (lock_key(name),))
    holder.commit()
    with pytest.raises(LockBusy):
        with advisory_lock(store.engine, name, wait=False):
            pass
    holder.invalidate()  # the connection is closed, as when the process dies
    with advisory_lock(store.engine, name, timeout=5):
        pass


@pytest.fixture
def empty_pg_url():
    """A fresh, empty PostgreSQL schema (nothing migrated)."""
    with fresh_pg_schema("mcu_lock") as url:
        yield url


@pytest.mark.postgres
def test_processes_migrating_an_empty_database_at_once_all_succeed(empty_pg_url):
    # Without the migration lock the losers fail with 'relation "alerts" already exists'.
    engines = [sa.create_engine(empty_pg_url) for _ in range(3)]
    start = threading.Barrier(len(engines))
    revisions: list[str | None] = []
    errors: list[BaseException] = []

    def migrate(engine: sa.Engine) -> None:
        start.wait(10)
        try:
            revisions.append(upgrade_schema(engine))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors
        assert revisions == [head_revision()] * len(engines)
        assert current_revision(engines[0]) == head_revision()
        with engines[0].connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        for engine in engines:
            engine.dispose()


# -- alert scans: one at a time ----------------------------------------------------------------

@pytest.fixture
def scan_lock_held_elsewhere(store):
    """The scan lock, held by another session (a replica scanning) until the test releases it."""
    other = sa.create_engine(store.engine.url)
    held = advisory_lock(other, ALERT_SCAN_LOCK, wait=False)
    held.__enter__()
    state = {"held": True}

    def release() -> None:
        if state["held"]:
            held.__exit__(None, None, None)
            state["held"] = False

    yield release
    release()
    other.dispose()


@postgres_only
def test_a_scan_while_another_runs_is_refused_without_reading_anything(store, monkeypatch,
                                                                        scan_lock_held_elsewhere):
    monkeypatch.setattr(alert_service, "scan_alerts", lambda frame, **_: [])
    read: list[int] = []

    def frame() -> pd.DataFrame:
        read.append(1)
        return pd.DataFrame()

    with pytest.raises(alert_service.ScanBusy, match="another alert scan is running"):
        alert_service.scan_exclusively(store, frame, as_of=date(2021, 3, 10))
    assert read == []
    scan_lock_held_elsewhere()
    outcome = alert_service.scan_exclusively(store, frame, as_of=date(2021, 3, 10))
    assert read == [1] and outcome.created == []


@postgres_only
def test_the_cli_scan_exits_3_while_another_process_scans(store, scan_lock_held_elsewhere,
                                                          monkeypatch, tmp_path):
    from mcu_nlp.cli import app
    from mcu_nlp.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["alerts", "--store", "--date", "2021-03-10",
                                          "--data", str(tmp_path / "never-read.csv")])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 3, result.output
    assert "another alert scan is running" in result.output


@pytest.fixture
def stored_months(api, spb_slice):
    """Two hundred real appeals over several months in the API's store (a scan's history)."""
    from mcu_nlp.services.imports import import_file

    export = api.services.settings.data_dir / "months.csv"
    spb_slice.iloc[:800:4].to_csv(export, index=False)
    summary = import_file(api.services.store, api.services.classifier, export, kind="spb_portal")
    assert summary.stored > 150
    with api.services.store.engine.connect() as connection:
        days = connection.scalar(sa.text("SELECT max(created_at)::date - min(created_at)::date "
                                         "FROM appeals"))
    assert days > 40
    return api


@postgres_only
def test_the_api_answers_409_while_another_replica_scans(stored_months, scan_lock_held_elsewhere):
    api = stored_months
    busy = api.post("/v1/alerts/scan", headers=auth(api, "analyst"))
    assert busy.status_code == 409, busy.text
    assert "another alert scan is running" in busy.json()["detail"]
    assert busy.headers["Retry-After"] == "5"
    scan_lock_held_elsewhere()
    done = api.post("/v1/alerts/scan", headers=auth(api, "analyst"))
    if done.status_code == 202:  # still scanning: poll the job
        for _ in range(600):
            job = api.get(done.headers["Location"], headers=auth(api, "analyst")).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "done", job
    else:
        assert done.status_code == 200, done.text


@postgres_only
def test_the_periodic_scan_skips_while_another_replica_scans(stored_months,
                                                             scan_lock_held_elsewhere):
    from api.main import create_app
    from mcu_nlp.storage.models import AuditRow

    api = stored_months
    store = api.services.store

    def scheduled_scans() -> int:
        with store.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(AuditRow).where(
                AuditRow.action == "alert.scan", AuditRow.actor == "scheduler")) or 0)

    app = create_app(api.services.settings, services=api.services, model_sync_seconds=None,
                     alert_scan_seconds=0.2)
    with TestClient(app):
        time.sleep(1.5)  # several turns, all skipped: the lock is held elsewhere
        assert scheduled_scans() == 0
        scan_lock_held_elsewhere()
        deadline = time.monotonic() + 60
        while scheduled_scans() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduled_scans() >= 1


# -- the review queue: one verdict per audit item -------------------------------------------------

@postgres_only
def test_an_audit_item_two_replicas_close_at_once_gets_one_verdict(api, spb_slice):
    from mcu_nlp.routing.audit_sample import AuditSampler
    from mcu_nlp.services.routing_audit import AuditItemClosed, confirm_audit

    api.services.classifier.audit = AuditSampler(1.0, "replicas")
    store = api.services.store
    audited = None
    for row in spb_slice.iloc[len(spb_slice) // 2:].itertuples(index=False):
        body = {"source_id": f"audit-{row.id}", "text": row.text, "territory": row.district,
                "created_at": pd.Timestamp(row.created_at).isoformat()}
        response = api.post("/v1/appeals", json=body, headers=auth(api))
        if response.status_code != 201:
            continue
        with store.engine.connect() as connection:
            audited = connection.scalar(sa.text(
                "SELECT appeal_id FROM review_queue WHERE audit AND status = 'open' LIMIT 1"))
        if audited is not None:
            break
    assert audited is not None, "no auto-routed appeal was drawn for the audit"

    outcome: list[object] = []

    def confirm() -> None:  # replica B
        try:
            outcome.append(confirm_audit(store, audited, author="replica-b"))
        except AuditItemClosed as exc:
            outcome.append(exc)

    other = sa.create_engine(store.engine.url)
    try:
        with other.connect() as replica_a:  # replica A, in the middle of closing the item
            replica_a.execute(sa.text("SELECT id FROM review_queue WHERE appeal_id = :a "
                                      "FOR UPDATE"), {"a": audited})
            waiting = threading.Thread(target=confirm)
            waiting.start()
            time.sleep(0.5)
            assert waiting.is_alive() and outcome == [], "B must wait for A's transaction"
            replica_a.execute(sa.text("UPDATE review_queue SET status = 'resolved', "
                                      "outcome = 'confirmed' WHERE appeal_id = :a"),
                              {"a": audited})
            replica_a.commit()
        waiting.join(10)
    finally:
        other.dispose()
    assert len(outcome) == 1 and isinstance(outcome[0], AuditItemClosed), outcome
    with store.engine.connect() as connection:
        verdicts = connection.scalar(sa.text(
            "SELECT count(*) FROM routing_audit_verdicts WHERE appeal_id = :a"), {"a": audited})
    assert verdicts == 0  # A's verdicts were not written in this simulation; B wrote none
