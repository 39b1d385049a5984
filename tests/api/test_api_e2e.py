"""End to end: uvicorn on loopback in a subprocess, called over HTTP; a kill during an import."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mcu_nlp.services.keys import create_key
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.storage import Store

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MCU_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "e2e_app:make_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("server did not start in 120 s")


@pytest.fixture(scope="module")
def served(tmp_path_factory, bundle_dirs):
    """A store with fake-v1 active and an operator key, and a way to (re)start the server."""
    data_dir = tmp_path_factory.mktemp("e2e")
    store = Store.from_url(f"sqlite:///{data_dir / 'mcu.sqlite3'}")
    from fake_bundle import FakeBundle

    ModelRegistry(store, loader=FakeBundle.load).register(bundle_dirs["fake-v1"], activate=True)
    key = create_key(store, role="operator")
    servers = []

    def start():
        port = free_port()
        servers.append(start_server(data_dir, port))
        return servers[-1], f"http://127.0.0.1:{port}"

    yield store, key, start
    for process in servers:
        if process.poll() is None:
            process.kill()
            process.wait()
    store.dispose()


def test_classify_and_store_over_http(served):
    store, key, start = served
    process, base = start()
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        body = client.post("/v1/classify", json={"text": "Сосульки над входом в парадную",
                                                  "district": "Невский"}).json()
        assert body["model_version"] == "fake-v1" and body["urgency"]["score"] > 0
        assert client.get("/ready").json()["status"] == "ready"
        stored = client.post("/v1/appeals", json={"source_id": "e2e-1", "text": "Мусор во дворе",
                                                   "created_at": "2021-03-01T12:00:00"})
        assert stored.status_code == 201
        again = client.post("/v1/appeals", json={"source_id": "e2e-1", "text": "Мусор во дворе",
                                                  "created_at": "2021-03-01T12:00:00"})
        assert again.json()["status"] == "duplicate"
        assert httpx.get(f"{base}/v1/queue").status_code == 401
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def _appeal_state(store):
    with store.engine.connect() as connection:
        ids = set(connection.scalars(sa.text(
            "SELECT source_id FROM appeals WHERE source = 'spb_portal'")))
        half = connection.scalar(sa.text(
            "SELECT count(*) FROM appeals a WHERE NOT EXISTS (SELECT 1 FROM routing_decisions d "
            "WHERE d.appeal_id = a.id) OR NOT EXISTS (SELECT 1 FROM predictions p "
            "WHERE p.appeal_id = a.id)"))
    return ids, half


def test_killed_import_keeps_committed_rows_and_resumes(served, spb_slice, tmp_path):
    store, key, start = served
    export = tmp_path / "export.csv"
    rows = spb_slice.iloc[:700]
    rows.to_csv(export, index=False)
    process, base = start()
    headers = {"X-API-Key": key}

    def upload():
        try:
            with export.open("rb") as handle:
                httpx.post(f"{base}/v1/appeals/import?kind=spb_portal", headers=headers,
                           files={"file": ("export.csv", handle, "text/csv")}, timeout=600)
        except httpx.HTTPError:
            pass  # the server is killed mid-request

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 300
    committed: set[str] = set()
    while time.monotonic() < deadline and not committed:
        committed, _ = _appeal_state(store)
        time.sleep(0.05)
    assert committed, "no chunk committed within 300 s"
    process.send_signal(signal.SIGKILL)
    process.wait()
    thread.join(timeout=60)
    after_kill, half_written = _appeal_state(store)
    assert half_written == 0
    assert committed <= after_kill
    assert len(after_kill) < len(rows), "the import finished before the kill; nothing tested"

    process, base = start()
    with export.open("rb") as handle:
        summary = httpx.post(f"{base}/v1/appeals/import?kind=spb_portal", headers=headers,
                             files={"file": ("export.csv", handle, "text/csv")},
                             timeout=600).json()
    final, half_written = _appeal_state(store)
    assert half_written == 0
    assert summary["duplicates"] == len(after_kill)
    assert len(final) == len(after_kill) + summary["stored"]
    assert len(final) + summary["rejected"] == len(rows)
    process.kill()
    process.wait()
