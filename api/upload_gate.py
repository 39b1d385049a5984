"""Pure ASGI gate in front of the upload endpoints: who may send a body, and how many at once.

FastAPI parses a multipart body (spooling files over 1 MB to disk) before it runs any
dependency, so the key check of ``POST /v1/appeals/import`` used to come after the upload had
been written to a temporary file. This gate reads the headers only: a request without a valid
key is answered 401 (a key without the role, 403) before one body byte is read, and at most
``max_concurrent`` uploads run at a time; one more is answered 429 with ``Retry-After``.
The endpoint's own dependencies still check the key as for every route.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from mcu_nlp.services.keys import ApiKeyIdentity

ASGIApp = Callable[..., Awaitable[None]]
Admit = Callable[[ApiKeyIdentity], Awaitable[ApiKeyIdentity]]
UPLOAD_PATHS = ("/v1/appeals/import",)
MAX_CONCURRENT_UPLOADS = 2
RETRY_AFTER_SECONDS = 10


def key_from_headers(scope: dict) -> str | None:
    """The API key of a request, from ``X-API-Key`` or ``Authorization: Bearer``."""
    bearer = None
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key" and value:
            return value.decode("latin-1")
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                bearer = credentials.strip()
    return bearer


async def _answer(send: Callable[[dict], Awaitable[None]], status: int, detail: str,
                  headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class UploadGate:
    """Authenticate upload requests from their headers and cap how many run at once.

    Args:
        app: The wrapped ASGI app.
        identify: Key → identity (``None`` for unknown or revoked keys); may query the store,
            so it runs in a worker thread.
        admit: The route's role check (raises ``HTTPException`` 403), e.g.
            ``require(Role.OPERATOR)``.
        paths: The upload paths (``POST`` only).
        max_concurrent: Uploads allowed at once in this process.
        retry_after: Seconds a refused client is told to wait.
    """

    def __init__(self, app: ASGIApp, *, identify: Callable[[str], ApiKeyIdentity | None],
                 admit: Admit, paths: tuple[str, ...] = UPLOAD_PATHS,
                 max_concurrent: int = MAX_CONCURRENT_UPLOADS,
                 retry_after: int = RETRY_AFTER_SECONDS) -> None:
        self.app, self.identify, self.admit, self.paths = app, identify, admit, paths
        self.max_concurrent, self.retry_after = max(1, max_concurrent), retry_after
        self.active = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        key = key_from_headers(scope)
        challenge = {"WWW-Authenticate": "Bearer"}
        if not key:
            await _answer(send, 401, "send an API key as X-API-Key or Authorization: Bearer",
                          challenge)
            return
        identity = await run_in_threadpool(self.identify, key)
        if identity is None:
            await _answer(send, 401, "unknown or revoked API key", challenge)
            return
        try:
            await self.admit(identity)
        except HTTPException as exc:
            await _answer(send, exc.status_code, str(exc.detail))
            return
        if not self._enter():
            await _answer(send, 429, f"{self.max_concurrent} uploads are running; retry later",
                          {"Retry-After": str(self.retry_after)})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.active -= 1

    def _enter(self) -> bool:
        with self._lock:
            if self.active >= self.max_concurrent:
                return False
            self.active += 1
            return True
