"""The web console: server-rendered pages for operators, analysts and admins.

Served by the API app under ``/console`` (``install(app)``); every asset — scripts, styles,
charts — comes from ``api/console/static``, nothing from a CDN. Pages sign people in with a
password and a session cookie (:mod:`api.console.security`); API keys keep working for machines
under ``/v1``.

Each page lives in its own module and registers its router here.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api.console import admin, auth, overview, queue, search
from api.console.render import HERE, page
from api.console.security import ConsoleAuthRequired, ConsoleForbidden, CsrfRefused

log = logging.getLogger(__name__)

# No inline script or style anywhere: the policy forbids them, so an injected <script> is inert.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


class ConsoleHeaders(BaseHTTPMiddleware):
    """Security headers on every console response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Add the headers to console responses."""
        response = await call_next(request)
        if request.url.path.startswith("/console"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
            if not request.url.path.startswith("/console/static"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    """Add the console's pages, assets, error pages and headers to ``app``."""
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")),
              name="console-static")
    for module in (auth, queue, overview, search, admin):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    @app.exception_handler(ConsoleAuthRequired)
    async def _sign_in(request: Request, _: ConsoleAuthRequired) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/console/login?next={quote(target, safe='')}",
                                    status_code=303)
        return JSONResponse({"detail": "войдите в консоль"}, status_code=401)

    @app.exception_handler(ConsoleForbidden)
    async def _forbidden(request: Request, exc: ConsoleForbidden) -> Response:
        if _wants_html(request):
            return page(request, "error.html", getattr(request.state, "console_session", None),
                        status_code=403, title="Доступ запрещён", message=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        log.warning("console: a change without the session's CSRF token refused (%s %s)",
                    request.method, request.url.path)
        return JSONResponse({"detail": "запрос без CSRF-токена сессии отклонён"},
                            status_code=403)

    app.add_middleware(ConsoleHeaders)

