"""Sign-in and sign-out pages."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.render import home_for, page
from api.console.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, AnySignedIn
from api.deps import Services
from mcu_nlp.services.users import (
    SESSION_LIFETIME,
    SignInRefused,
    authenticate,
    close_session,
    csrf_matches,
    open_session,
)

router = APIRouter(prefix="/console", include_in_schema=False)


def _safe_next(target: str | None) -> str | None:
    """Only a path of this console: never another host (an open redirect)."""
    if not target or len(target) > 500:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/") \
            or target.startswith("//") or "\\" in target:
        return None
    return target


def _login_form(request: Request, *, error: str | None = None, next_path: str | None = None,
                username: str = "", status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status_code=status_code, error=error,
                    login_csrf=token, next_path=_safe_next(next_path) or "", username=username)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/console/login")
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    """The sign-in form (with its own CSRF token in a cookie)."""
    return _login_form(request, next_path=next)


@router.post("/login")
async def login(request: Request, services: Services,
                username: Annotated[str, Form(max_length=200)] = "",
                password: Annotated[str, Form(max_length=1000)] = "",
                csrf_token: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=500)] = "") -> Response:  # noqa: A002
    """Check the password; on success open a session and go to ``next`` or the home page."""
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_form(request, error="Форма устарела, войдите ещё раз.", next_path=next,
                           username=username[:64], status_code=403)
    try:
        user = await run_in_threadpool(authenticate, services.store, username, password)
    except SignInRefused as exc:
        return _login_form(request, error=str(exc).capitalize() + ".", next_path=next,
                           username=username[:64], status_code=401)
    token, _ = await run_in_threadpool(open_session, services.store, user)
    response = RedirectResponse(_safe_next(next) or home_for(user.role), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(request: Request, services: Services, _: AnySignedIn) -> Response:
    """End the session."""
    await run_in_threadpool(close_session, services.store, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(session: AnySignedIn) -> Response:
    """The role's landing page."""
    return RedirectResponse(home_for(session.user.role), status_code=303)
