"""Attack: large uploads without a key, and more uploads at once than the server should take.

Before: an unauthenticated ``POST /v1/appeals/import`` had its 43 MB multipart body parsed and
spooled to a temporary file before the 401. Now the key is checked from the headers and the
body is never read; at most ``max_concurrent_uploads`` run at once, one more gets 429 with
Retry-After, and ``/health`` keeps answering. The app is driven as raw ASGI so the test sees
exactly how many body bytes the server pulled.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from conftest import auth

CHUNK = b"x" * 65_536
BIG = 43_000_000  # the reported attack's size


def _scope(path: str, headers: dict[str, str], method: str = "POST") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


class Body:
    """A streamed request body that counts what the app pulled (``hold`` pauses it)."""

    def __init__(self, size: int, hold: asyncio.Event | None = None) -> None:
        self.left, self.pulled, self.hold = size, 0, hold

    async def receive(self) -> dict:
        if self.hold is not None:
            await self.hold.wait()
        if self.left <= 0:
            return {"type": "http.disconnect"}
        chunk = CHUNK[: min(len(CHUNK), self.left)]
        self.left -= len(chunk)
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self.left > 0}


async def _call(app, scope: dict, receive) -> tuple[int, dict[str, str], dict]:
    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body or b"{}")


def _upload_headers(key: str | None, *, length: int | None = None) -> dict[str, str]:
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    if length is not None:
        headers["content-length"] = str(length)
    if key:
        headers["x-api-key"] = key
    return headers


@pytest.mark.parametrize("who", ["none", "bogus", "bearer-bogus", "analyst"])
def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_read(api, who):
    key = {"none": None, "bogus": "mcu_not-a-key", "bearer-bogus": None,
           "analyst": api.keys["analyst"]}[who]
    headers = _upload_headers(key)  # no Content-Length: a chunked 43 MB stream
    if who == "bearer-bogus":
        headers["authorization"] = "Bearer mcu_not-a-key"
    body = Body(BIG)
    started = time.perf_counter()
    status, response_headers, out = asyncio.run(
        _call(api.app, _scope("/v1/appeals/import", headers), body.receive))
    assert status == (403 if who == "analyst" else 401), out
    assert body.pulled == 0, f"the server read {body.pulled} bytes of an unauthenticated body"
    assert time.perf_counter() - started < 2.0
    if status == 401:
        assert response_headers["www-authenticate"] == "Bearer"
    assert api.get("/health").status_code == 200


def test_a_declared_oversize_upload_is_refused_unread(api):
    body = Body(BIG)
    status, _, _ = asyncio.run(_call(api.app, _scope(
        "/v1/appeals/import", _upload_headers(None, length=BIG)), body.receive))
    assert status in (401, 413) and body.pulled == 0


def test_a_valid_key_still_uploads(api, spb_slice):
    data = spb_slice.iloc[:20].to_csv(index=False).encode()
    files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}
    for headers in (auth(api), {"Authorization": f"Bearer {api.keys['operator']}"}):
        response = api.post("/v1/appeals/import?kind=spb_portal", files=files, headers=headers)
        assert response.status_code == 200, response.text
        files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}


def test_uploads_over_the_cap_get_429_and_health_still_answers(api, tmp_path):
    from api.main import create_app

    app = create_app(api.services.settings, services=api.services, model_sync_seconds=None,
                     max_upload_bytes=2_000_000, max_concurrent_uploads=1)
    headers = _upload_headers(api.keys["operator"])

    async def scenario() -> tuple[int, dict[str, str], int, int]:
        hold = asyncio.Event()
        first_body = Body(200_000, hold)
        first = asyncio.create_task(_call(app, _scope("/v1/appeals/import", headers),
                                          first_body.receive))
        for _ in range(200):  # until the first upload is inside, waiting for its body
            await asyncio.sleep(0.01)
            if app.middleware_stack is not None and _active(app) == 1:
                break
        second_body = Body(200_000)
        status, second_headers, _ = await _call(app, _scope("/v1/appeals/import", headers),
                                                second_body.receive)
        health, _, _ = await _call(app, _scope("/health", {}, "GET"),
                                   Body(0).receive)
        hold.set()
        first_status, _, _ = await first
        return status, second_headers, health, first_status

    status, headers_out, health, first_status = asyncio.run(scenario())
    assert status == 429 and int(headers_out["retry-after"]) > 0
    assert health == 200
    assert first_status in (400, 422)  # the held body was no export file: read, then refused
    assert _active(app) == 0  # the slot is given back


def _active(app) -> int:
    layer = app.middleware_stack
    while layer is not None and type(layer).__name__ != "UploadGate":
        layer = getattr(layer, "app", None)
    return -1 if layer is None else layer.active
