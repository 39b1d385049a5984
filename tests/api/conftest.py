"""Fixtures for the storage, routing and API tests: a store on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_bundle import FakeBundle, build_fake_bundle  # noqa: E402

from mcu_nlp.records import Appeal, Channel  # noqa: E402
from mcu_nlp.storage import Store  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver or network error
        return f"PostgreSQL at {PG_SERVER} is not reachable: {exc.__class__.__name__}: {exc}"


@contextlib.contextmanager
def fresh_pg_schema(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL schema (skips when the server is unreachable)."""
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test session, dropped at the end."""
    with fresh_pg_schema("mcu_test") as url:
        yield url


def appeals_of(frame, source="spb_portal"):
    """Real SPb rows as Appeal records (closed cases carry executor_org)."""
    out = []
    for row in frame.itertuples(index=False):
        executor = row.executor_org if isinstance(row.executor_org, str) else None
        out.append(Appeal(id=str(row.id), channel=Channel.PORTAL, source=source,
                          created_at=datetime.fromisoformat(row.created_at), text=row.text,
                          territory=row.district, labels={"category": row.category,
                                                          "department": row.department},
                          metadata={"executor_org": executor, "last_status": row.last_status}))
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on an empty database (a temp SQLite file or a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
        yield engine
        engine.dispose()
        return
    with fresh_pg_schema("mcu_empty") as url:
        engine = sa.create_engine(url)
        yield engine
        engine.dispose()


def _reset(store: Store) -> None:
    """Empty every table (schema and migrations stay)."""
    from mcu_nlp.storage.models import Base

    with store.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated store on SQLite (a temp file) or PostgreSQL (the session's schema)."""
    if request.param == "sqlite":
        store = Store.from_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    else:
        store = Store.from_url(request.getfixturevalue("pg_schema_url"))
        _reset(store)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def bundle_dirs(spb_slice: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Path]:
    """Two fake bundle versions on the real slice (v1: first half by time, v2: all of it)."""
    root = tmp_path_factory.mktemp("bundles")
    half = spb_slice.iloc[: len(spb_slice) // 2]
    return {"fake-v1": build_fake_bundle(half, root / "fake-v1", "fake-v1"),
            "fake-v2": build_fake_bundle(spb_slice, root / "fake-v2", "fake-v2")}


@pytest.fixture(scope="session")
def loaded_bundles(bundle_dirs: dict[str, Path]) -> dict[str, FakeBundle]:
    return {version: FakeBundle.load(path) for version, path in bundle_dirs.items()}


@pytest.fixture(scope="session")
def bundle_loader(bundle_dirs: dict[str, Path], loaded_bundles: dict[str, FakeBundle]):
    """Loads fake bundles, reusing the session's fitted copies."""
    by_path = {path.resolve(): loaded_bundles[version] for version, path in bundle_dirs.items()}

    def load(path: Path) -> FakeBundle:
        path = Path(path).resolve()
        return by_path[path] if path in by_path else FakeBundle.load(path)

    return load


@pytest.fixture
def api(store, bundle_dirs, bundle_loader, tmp_path):
    """A TestClient over the app on ``store`` with fake-v1 active, and a key per role."""
    from fastapi.testclient import TestClient

    from api.main import build_services, create_app
    from mcu_nlp.services.keys import create_key
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import Settings

    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"])
    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v2"], activate=True)
    ModelRegistry(store, loader=bundle_loader).activate("fake-v1")
    settings = Settings(data_dir=tmp_path)
    rules = tmp_path / "routing_rules.yaml"
    rules.write_text((Path(__file__).resolve().parents[2] / "mcu_nlp" / "routing" /
                      "default_rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    services = build_services(settings, store=store, loader=bundle_loader, rules_path=rules)
    app = create_app(settings, services=services, model_sync_seconds=None,
                     max_upload_bytes=2_000_000)
    keys = {role: create_key(store, role=role) for role in ("operator", "analyst", "admin")}
    with TestClient(app) as client:
        client.keys = keys
        client.services = services
        yield client


def app_with_imported(root: Path, rows: pd.DataFrame, bundle_dirs, bundle_loader):
    """An app over a fresh SQLite store in ``root``, fake-v1 active, ``rows`` imported.

    Returns ``(app, store, services, import summary)``; the caller disposes of the store.
    """
    from api.main import build_services, create_app
    from mcu_nlp.services.imports import import_file
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import Settings

    store = Store.from_url(f"sqlite:///{root / 'store.sqlite3'}")
    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"], activate=True)
    settings = Settings(data_dir=root)
    services = build_services(settings, store=store, loader=bundle_loader)
    app = create_app(settings, services=services, model_sync_seconds=None)
    export = root / "export.csv"
    rows.to_csv(export, index=False)
    summary = import_file(store, services.classifier, export, kind="spb_portal")
    return app, store, services, summary


def auth(client, role: str = "operator") -> dict[str, str]:
    return {"X-API-Key": client.keys[role]}
