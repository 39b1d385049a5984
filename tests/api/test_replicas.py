"""Two API replicas over one PostgreSQL database behind nginx (``deploy/local_cluster.py``).

The cluster is started once for the module on a database created for it (and dropped after):

* both replicas start at the same moment on the empty database and race to migrate it: both
  come up, and the schema is at head once;
* a model activated through one replica is served by the other within its sync interval;
* a load of appeal submissions through the proxy loses nothing when one replica is killed with
  SIGKILL in the middle of it: every acknowledged (2xx) appeal is stored, exactly once.

The kill test runs after the others on that cluster (it leaves one replica). The last test
starts ``python -m deploy.local_cluster`` itself and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import PG_SERVER, _postgres_reachable
from sqlalchemy.engine import make_url

from mcu_nlp.services.classify import InvalidAppealText, check_text
from mcu_nlp.services.keys import create_key
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.storage import Store
from mcu_nlp.storage.migrate import head_revision

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from deploy.local_cluster import LocalCluster  # noqa: E402

pytestmark = pytest.mark.postgres

MODEL_SYNC_SECONDS = 1.0  # e2e_app.make_app's sync interval
LOAD_SIZE = 400
LOAD_THREADS = 8
KILL_AFTER = 140  # acknowledged appeals before one replica is killed
MAX_ATTEMPTS = 8
SOURCE = "replica-load"


@pytest.fixture(scope="module")
def database():
    """A database of its own (``mcu_replicas_<pid>``), empty, dropped at the end."""
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    server = make_url(os.environ.get("MCU_TEST_POSTGRES_URL", PG_SERVER))
    name = f"mcu_replicas_{os.getpid()}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@dataclass
class Running:
    """The started cluster, the test's own handle on the store, and API keys."""

    cluster: LocalCluster
    store: Store
    keys: dict[str, str]
    started_in: float
    notes: dict[str, object] = field(default_factory=dict)

    def client(self, index: int | None = None, role: str = "operator") -> httpx.Client:
        """A client of replica ``index`` (``None``: the proxy)."""
        base = self.cluster.proxy_url if index is None else self.cluster.api[index].url
        return httpx.Client(base_url=base, headers={"X-API-Key": self.keys[role]}, timeout=30)


def _wait_for_model(running: Running, index: int, version: str, timeout: float) -> float:
    """Seconds until replica ``index`` reports ``version`` active on /ready."""
    started = time.monotonic()
    with running.client(index) as client:
        while time.monotonic() - started < timeout:
            answer = client.get("/ready")
            if answer.json().get("model_version") == version:
                return time.monotonic() - started
            time.sleep(0.05)
    raise AssertionError(f"replica {index + 1} did not serve {version} within {timeout} s")


@pytest.fixture(scope="module")
def running(database, bundle_dirs, bundle_loader, tmp_path_factory):
    """The cluster on the empty database, then fake-v1 active and keys made (by this process)."""
    cluster = LocalCluster(database, app="e2e_app:make_app", pythonpath=[HERE], ray=False,
                           env={"MCU_DATA_DIR": str(tmp_path_factory.mktemp("replicas"))})
    started = time.monotonic()
    cluster.start()  # both replicas at once, on a database nobody migrated
    started_in = time.monotonic() - started
    store = Store.from_url(database, upgrade=False)
    try:
        registry = ModelRegistry(store, loader=bundle_loader)
        registry.register(bundle_dirs["fake-v2"])
        registry.register(bundle_dirs["fake-v1"], activate=True)
        keys = {role: create_key(store, role=role) for role in ("operator", "admin")}
        result = Running(cluster, store, keys, started_in)
        for index in range(len(cluster.api)):
            _wait_for_model(result, index, "fake-v1", timeout=60)
        yield result
    finally:
        cluster.stop()
        store.dispose()


def test_replicas_started_at_once_on_an_empty_database_both_come_up(running):
    assert len(running.cluster.api) == 2
    assert all(member.alive for member in running.cluster.api)
    for index in range(2):
        with running.client(index) as client:
            assert client.get("/health").status_code == 200
    with running.store.engine.connect() as connection:
        versions = list(connection.scalars(sa.text("SELECT version_num FROM alembic_version")))
        tables = set(sa.inspect(connection).get_table_names())
    assert versions == [head_revision()]
    assert {"appeals", "review_queue", "model_versions", "alerts", "audit_log"} <= tables
    for member in running.cluster.api:  # neither replica logged a failed migration
        assert "Traceback" not in member.log_tail(100_000), member.log_tail()


def test_a_model_activated_on_one_replica_is_served_by_the_other(running):
    with running.client(0, "admin") as replica_a:
        answer = replica_a.post("/v1/models/fake-v2/activate")
        assert answer.status_code == 200, answer.text
        assert replica_a.get("/ready").json()["model_version"] == "fake-v2"  # at once
    waited = _wait_for_model(running, 1, "fake-v2", timeout=MODEL_SYNC_SECONDS + 10)
    with running.client(1) as replica_b:
        classified = replica_b.post("/v1/classify", json={"text": "Яма на дороге у дома 5"})
        assert classified.status_code == 200 and classified.json()["model_version"] == "fake-v2"
    # and back, the other way round
    with running.client(1, "admin") as replica_b:
        assert replica_b.post("/v1/models/fake-v1/activate").status_code == 200
    waited_back = _wait_for_model(running, 0, "fake-v1", timeout=MODEL_SYNC_SECONDS + 10)
    running.notes.update(activation_seen_after=round(waited, 2),
                         activation_back_seen_after=round(waited_back, 2))
    print(f"\nactivation reached the other replica after {waited:.2f} s and {waited_back:.2f} s "
          f"(sync every {MODEL_SYNC_SECONDS} s)")


@dataclass
class Sent:
    """One appeal of the load and what became of it."""

    source_id: str
    body: dict
    started: float = 0.0
    acked: float | None = None
    status: int | None = None
    answer: str | None = None  # "stored" | "duplicate"
    attempts: int = 0
    upstreams: list[str] = field(default_factory=list)  # X-Upstream of every attempt
    errors: list[str] = field(default_factory=list)


def _texts(frame: pd.DataFrame, count: int) -> list[dict]:
    rows = []
    for row in frame.itertuples(index=False):
        try:
            check_text(row.text)
        except InvalidAppealText:
            continue
        rows.append({"text": row.text, "territory": row.district,
                     "created_at": pd.Timestamp(row.created_at).isoformat()})
        if len(rows) == count:
            return rows
    raise AssertionError("not enough valid texts in the slice")


def _send(client: httpx.Client, item: Sent) -> None:
    """POST one appeal until a 2xx (bounded): connection errors, 429 and 5xx are retried."""
    item.started = time.monotonic()
    while item.attempts < MAX_ATTEMPTS:
        item.attempts += 1
        try:
            answer = client.post("/v1/appeals", json=item.body)
        except httpx.TransportError as exc:
            item.errors.append(type(exc).__name__)
        else:
            item.upstreams.append(answer.headers.get("x-upstream", ""))
            if answer.is_success:
                item.acked, item.status = time.monotonic(), answer.status_code
                item.answer = answer.json()["status"]
                return
            item.errors.append(str(answer.status_code))
            if answer.status_code != 429 and answer.status_code < 500:
                return  # refused for good: the test fails on it below
        time.sleep(0.05 * item.attempts)


def test_killing_a_replica_mid_load_loses_no_acknowledged_appeal(running, spb_slice):
    cluster = running.cluster
    victim, survivor = cluster.api[1], cluster.api[0]
    victim_addr, survivor_addr = victim.url.removeprefix("http://"), \
        survivor.url.removeprefix("http://")
    items = [Sent(f"load-{n:04d}", {"source": SOURCE, "source_id": f"load-{n:04d}", **fields})
             for n, fields in enumerate(_texts(spb_slice, LOAD_SIZE))]
    todo: queue.Queue[Sent] = queue.Queue()
    for item in items:
        todo.put(item)
    acked = threading.Semaphore(0)
    in_flight = [0]
    lock = threading.Lock()

    def worker() -> None:
        with running.client() as client:
            while True:
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    in_flight[0] += 1
                _send(client, item)
                with lock:
                    in_flight[0] -= 1
                if item.acked is not None:
                    acked.release()

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(LOAD_THREADS)]
    for thread in workers:
        thread.start()
    for _ in range(KILL_AFTER):
        assert acked.acquire(timeout=60), "the load stalled before the kill"
    with lock:
        in_flight_at_kill = in_flight[0]
    killed_at = time.monotonic()
    code = cluster.kill(1, signal.SIGKILL)
    for thread in workers:
        thread.join(180)
    elapsed = time.monotonic() - started

    # The kill happened, in the middle of the load.
    assert code == -signal.SIGKILL and not victim.alive and survivor.alive
    assert in_flight_at_kill > 0
    before = [i for i in items if i.acked is not None and i.acked < killed_at]
    after = [i for i in items if i.acked is not None and i.acked >= killed_at]
    assert len(before) < LOAD_SIZE and after, "the kill did not fall in the middle of the load"
    # Both replicas served before the kill; only the survivor served after it.
    assert {i.upstreams[-1].split(", ")[-1] for i in before} == {victim_addr, survivor_addr}
    sent_after = [i for i in after if i.started >= killed_at]
    assert sent_after and {i.upstreams[-1].split(", ")[-1] for i in sent_after} == {survivor_addr}

    # Every appeal was acknowledged (with retries) and is stored exactly once.
    refused = [(i.source_id, i.errors) for i in items if i.acked is None]
    assert not refused, refused[:5]
    with running.store.engine.connect() as connection:
        stored = dict(connection.execute(sa.text(
            "SELECT source_id, count(*) FROM appeals WHERE source = :s GROUP BY source_id"),
            {"s": SOURCE}).all())
    assert set(stored) == {i.source_id for i in items}
    assert set(stored.values()) == {1}
    # A "duplicate" answer only for an appeal sent more than once (the client's retry, or the
    # proxy's: X-Upstream lists both replicas), whose first copy the killed replica committed.
    repeated = [i for i in items if i.attempts > 1 or any("," in u for u in i.upstreams)]
    assert all(i in repeated for i in items if i.answer == "duplicate")

    first_after = min(i.acked for i in sent_after) - killed_at
    hit = [i for i in items if i.started < killed_at and (i.acked or 0) >= killed_at]
    figures = {
        "sent": len(items), "acknowledged": sum(i.acked is not None for i in items),
        "acknowledged_before_kill": len(before), "acknowledged_after_kill": len(after),
        "in_flight_at_kill": in_flight_at_kill,
        "client_retries": sum(i.attempts - 1 for i in items),
        "proxy_retries": sum(u.count(",") for i in items for u in i.upstreams),
        "duplicates_answered": sum(i.answer == "duplicate" for i in items),
        "first_ack_of_a_request_sent_after_kill_s": round(first_after, 3),
        "slowest_request_in_flight_at_kill_s": round(max(
            (i.acked - i.started for i in hit), default=0.0), 3),
        "load_seconds": round(elapsed, 1), "cluster_started_in_s": round(running.started_in, 1),
        **running.notes,
    }
    print(f"\nreplica kill under load: {figures}")


def test_the_launcher_command_serves_through_the_proxy_and_stops_everything_on_sigterm(
        pg_schema_url, tmp_path):
    from deploy.local_cluster import free_port

    port = free_port()
    env = {**os.environ, "MCU_DATA_DIR": str(tmp_path)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "deploy.local_cluster", "--store-url", pg_schema_url,
         "--proxy-port", str(port), "--no-ray", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("proxy:") or len(lines) > 50:
                break
        assert lines and lines[-1].startswith(f"proxy: http://127.0.0.1:{port}"), lines
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        pids = [int(line.split(" pid ")[1].split()[0]) for line in lines if " pid " in line]
        assert len(pids) == 3  # two replicas and nginx
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=60)
    assert code == 0, "".join(lines) + launcher.stdout.read()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
