"""Fixtures of the console tests: a live server on a loopback port and Debian's chromium.

The server is the real app (uvicorn in a thread) over the ``store`` fixture — SQLite and
PostgreSQL — with the fake bundle active and a real slice of appeals imported, so the queue holds
items. Playwright drives the system browser (``/usr/bin/chromium``, or ``MCU_CHROMIUM``); it never
downloads one.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

PASSWORD = "console-test-pass"
USERS = {"oper1": "operator", "oper2": "operator", "analyst1": "analyst", "admin1": "admin"}
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
IMPORTED_ROWS = 240  # the newest rows of the real slice, for a queue with work in it


def chromium_path() -> str:
    path = os.environ.get("MCU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is needed by the console tests: apt-get install chromium "
                    "(.ci/setup-system.sh does it); never `playwright install`")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveConsole:
    """A running app: its base URL, store and services; ``users`` maps username → role."""

    url: str
    store: object
    services: object
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    password: str = PASSWORD


@pytest.fixture
def console_rows(spb_slice: pd.DataFrame) -> pd.DataFrame:
    return spb_slice.iloc[-IMPORTED_ROWS:].copy()


@pytest.fixture
def live_console(store, bundle_dirs, bundle_loader, console_rows, tmp_path
                 ) -> Iterator[LiveConsole]:
    """The app served on a free loopback port, the slice imported, one user per role."""
    import uvicorn

    from api.main import build_services, create_app
    from mcu_nlp.services.imports import import_file
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.services.users import create_user
    from mcu_nlp.settings import Settings

    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"], activate=True)
    settings = Settings(data_dir=tmp_path)
    services = build_services(settings, store=store, loader=bundle_loader)
    app = create_app(settings, services=services, model_sync_seconds=None)
    export = tmp_path / "export.csv"
    console_rows.to_csv(export, index=False)
    import_file(store, services.classifier, export, kind="spb_portal")
    for username, role in USERS.items():
        create_user(store, username=username, password=PASSWORD, role=role, actor="test")

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        yield LiveConsole(f"http://127.0.0.1:{port}", store, services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian chromium, one per test session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(),
                                              args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser, live_console):  # noqa: ANN201 - returns a factory
    """``new_page(username)``: a fresh browser context signed in as ``username`` (1366×768)."""
    contexts = []

    def open_as(username: str | None = None, viewport=(1366, 768)):  # noqa: ANN202
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                      locale="ru-RU")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if username is not None:
            sign_in(page, live_console, username)
        return page

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page, live: LiveConsole, username: str, password: str | None = None) -> None:
    """Fill the sign-in form and wait for the landing page."""
    page.goto(f"{live.url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or live.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
