"""Console page times on the reference store, and the README's screenshots.

    make run                                    # the 60 k reference appeals in var/mcu.sqlite3
    .venv/bin/python bench/console.py [--store sqlite:///var/mcu.sqlite3] [--requests 30] \
        [--screenshots docs/img]

Serves the real app (uvicorn on a loopback port, the active model version) over the store that
``mcu-nlp run`` filled, signs in an operator and an analyst made for the bench, and times what a
person waits for, over HTTP on this machine:

* ``queue``: the page, the claim of the screen's items, and the first item opened (its
  suggestions, highlighted words and history) — the three requests before the operator can act,
  summed, and each apart (``queue page``, ``queue claim``, ``queue open``);
* ``overview``: the page for a week, a month and a quarter, once their figures are computed
  (they are cached per store data version, as in production; the first visit of each period,
  which computes them in a background job behind «Идёт расчёт», is reported apart);
* ``search``: full-text queries with and without filters.

The screenshots of the operator's queue are masked like an analyst's view before they are taken
(every text node of the page goes through :func:`mcu_nlp.text.masking.mask_many`): a picture in
the docs leaves the system.

Prints p50/p95 per page in milliseconds (target: under 300 ms each on SQLite on 2 cores).
With ``--screenshots DIR`` it also drives Debian's chromium (Playwright, ``executable_path``) to
save ``console-queue.png``, ``console-overview.png`` and ``console-search.png`` of the same run.
The bench users' claims are released at the end; their decisions are never stored (nothing is
decided).
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcu_nlp.settings import get_settings  # noqa: E402

SEARCH_QUERIES = ("уборка подъезда", "яма на дороге", "мусор", "освещение во дворе",
                  "снег не убран", "протечка кровли")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _ensure_user(store, username: str, role: str) -> str:  # noqa: ANN001
    from mcu_nlp.services.users import create_user, list_users, set_password

    password = secrets.token_urlsafe(16)
    if any(u.username == username for u in list_users(store)):
        set_password(store, username, password, actor="bench")
    else:
        create_user(store, username=username, password=password, role=role, actor="bench",
                    full_name="Стенд замеров")
    return password


def _serve(app) -> tuple[str, object, threading.Thread]:  # noqa: ANN001
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def _sign_in(base: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=600)
    form = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post("/console/login", data={"username": username, "password": password,
                                                   "csrf_token": token})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in of {username} failed: {response.status_code}")
    page = client.get("/console/search").text
    client.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"',
                                               page).group(1)
    return client


def _timed(call) -> float:  # noqa: ANN001
    start = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url} answered "
                           f"{response.status_code}: {response.text[:300]}")
    return elapsed


def _until_computed(client: httpx.Client, url: str, limit: float = 600.0) -> float:
    """Open ``url`` until its figures and root causes are there; the wall time it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        response = client.get(url)
        response.raise_for_status()
        if "Идёт расчёт" not in response.text:  # figures and root causes both there
            return (time.perf_counter() - start) * 1000
        time.sleep(1.0)
    raise RuntimeError(f"{url}: figures not computed in {limit:.0f} s")


def _queue_round(client: httpx.Client, parts: dict[str, list[float]]) -> float:
    """The page, the claim of the screen and the first item opened; their sum in ms."""
    page = _timed(lambda: client.get("/console/queue"))
    start = time.perf_counter()
    claimed = client.post("/console/queue/claim", json={})
    claim = (time.perf_counter() - start) * 1000
    claimed.raise_for_status()
    items = claimed.json()["items"]
    opened = _timed(lambda: client.post(f"/console/queue/item/{items[0]['appeal_id']}/open")) \
        if items else 0.0
    for name, value in (("queue page", page), ("queue claim", claim),
                        ("queue open", opened)):
        parts.setdefault(name, []).append(value)
    return page + claim + opened


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=None, help="Store URL (default: the settings' store).")
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per page.")
    parser.add_argument("--screenshots", type=Path, default=None, help="Save PNGs here.")
    args = parser.parse_args()

    from api.main import build_services, create_app
    from mcu_nlp.storage import Store

    settings = get_settings()
    url = args.store or settings.store_url
    store = Store.from_url(url)
    services = build_services(settings, store=store)
    app = create_app(settings, services=services, model_sync_seconds=None)
    passwords = {"bench-operator": _ensure_user(store, "bench-operator", "operator"),
                 "bench-analyst": _ensure_user(store, "bench-analyst", "analyst")}
    base, server, thread = _serve(app)
    operator = _sign_in(base, "bench-operator", passwords["bench-operator"])
    analyst = _sign_in(base, "bench-analyst", passwords["bench-analyst"])
    figures: dict[str, list[float]] = {"queue": [], "overview": [], "search": []}
    parts: dict[str, list[float]] = {}
    try:
        overview_urls = ["/console/overview", "/console/overview?period=month",
                         "/console/overview?period=quarter"]
        cold = {url_: _until_computed(analyst, url_) for url_ in overview_urls}
        for i in range(args.requests):
            figures["queue"].append(_queue_round(operator, parts))
            figures["overview"].append(_timed(
                lambda i=i: analyst.get(overview_urls[i % len(overview_urls)])))
            query = SEARCH_QUERIES[i % len(SEARCH_QUERIES)]
            params = {"q": query} if i % 2 == 0 else {"q": query, "channel": "spb_portal"}
            figures["search"].append(_timed(lambda p=params: analyst.get("/console/search",
                                                                          params=p)))
        print(f"store: {store.engine.url.render_as_string(hide_password=True)}")
        for url_, ms in cold.items():
            print(f"overview first visit (frame and figures computed): {url_} {ms:.0f} ms")
        print(f"{'page':<12}{'p50 ms':>10}{'p95 ms':>10}{'n':>6}")
        for name, values in {**figures, **parts}.items():
            print(f"{name:<12}{_pct(values, 50):>10.0f}{_pct(values, 95):>10.0f}{len(values):>6}")
        if args.screenshots:
            _screenshots(base, passwords, args.screenshots)
    finally:
        operator.close()
        analyst.close()
        server.should_exit = True
        thread.join(timeout=10)
        from sqlalchemy import update

        from mcu_nlp.storage.models import ReviewItemRow

        with store.session() as session:  # the bench's claims go back to the queue
            session.execute(update(ReviewItemRow)
                            .where(ReviewItemRow.claimed_by.like("user:%:bench-%"))
                            .values(claimed_by=None, claimed_until=None))
        store.dispose()


_TEXT_NODES = """(values) => {
  const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  const out = []; let node; let i = 0;
  while ((node = walker.nextNode())) {
    if (values) { node.nodeValue = values[i++]; } else { out.push(node.nodeValue); }
  }
  return out;
}"""


def _mask_page(page) -> None:  # noqa: ANN001
    """Mask personal data in every text node of the page (names, phones, e-mails...)."""
    from mcu_nlp.text.masking import mask_many

    texts = page.evaluate(_TEXT_NODES, None)
    page.evaluate(_TEXT_NODES, mask_many(texts))


def _screenshots(base: str, passwords: dict[str, str], out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    browser_path = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        for username, path, name, wait_for in (
                ("bench-operator", "/console/queue", "console-queue.png",
                 "#appeal-body:not([hidden])"),
                ("bench-analyst", "/console/overview?period=month", "console-overview.png",
                 "svg"),
                ("bench-analyst", "/console/search?q=" + "уборка подъезда",
                 "console-search.png", "main")):
            context = browser.new_context(viewport={"width": 1366, "height": 768},
                                          locale="ru-RU")
            page = context.new_page()
            page.goto(f"{base}/console/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", passwords[username])
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{base}{path}")
            page.wait_for_selector(wait_for, timeout=60_000)
            page.wait_for_timeout(500)
            if username == "bench-operator":  # operators read raw text; a picture leaves the system
                _mask_page(page)
            page.screenshot(path=str(out / name), full_page=False)
            context.close()
            print(f"screenshot: {out / name}")
        browser.close()


if __name__ == "__main__":
    main()
