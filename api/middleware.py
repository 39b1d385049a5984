"""Pure ASGI middleware: request size limits and per-route metrics (cheap on the hot path)."""

from __future__ import annotations

import json
import time

from api.metrics import Metrics

ASGIApp = object  # any ASGI callable


class BodyTooLarge(Exception):
    """The request body passed its limit while streaming."""


class LimitsAndMetrics:
    """Refuse bodies over their limit with 413 and time every HTTP request."""

    def __init__(self, app, *, metrics: Metrics, max_body: int, max_upload: int,  # noqa: ANN001
                 upload_paths: tuple[str, ...] = ("/v1/appeals/import",)) -> None:
        self.app, self.metrics = app, metrics
        self.max_body, self.max_upload, self.upload_paths = max_body, max_upload, upload_paths

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"] in self.upload_paths else self.max_body
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}

        async def send_wrapper(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                status_holder["status"], status_holder["sent"] = message["status"], True
            await send(message)

        declared = _content_length(scope)
        try:
            if declared is not None and declared > limit:
                raise BodyTooLarge
            received = 0

            async def limited_receive():  # noqa: ANN202
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge
                return message

            await self.app(scope, limited_receive, send_wrapper)
        except BodyTooLarge:
            if status_holder["sent"]:
                raise
            body = json.dumps({"detail": f"request body is over the limit of {limit} bytes"})
            await send_wrapper({"type": "http.response.start", "status": 413,
                                "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body.encode()})
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status_holder["status"],
                                 time.perf_counter() - started)


def _content_length(scope) -> int | None:  # noqa: ANN001
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
