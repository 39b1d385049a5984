"""Who is using the console: the session cookie, roles, and CSRF checks on every change.

* The session cookie (:data:`SESSION_COOKIE`) is HttpOnly, SameSite=Strict, Secure over HTTPS,
  and expires with the session (:mod:`mcu_nlp.services.users`).
* Every request that changes something (any method but GET/HEAD) must carry the session's CSRF
  token, as the form field ``csrf_token`` or the ``X-CSRF-Token`` header; scripts read it from the
  page's ``<meta name="csrf-token">``. Without it the request is refused with 403.
* A page for a role the user does not have answers 403; without a session, pages redirect to the
  sign-in form and scripts' requests get 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Services
from mcu_nlp.services.keys import Role
from mcu_nlp.services.users import ConsoleSession, csrf_matches, session_for

SESSION_COOKIE = "mcu_session"
LOGIN_CSRF_COOKIE = "mcu_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ConsoleAuthRequired(Exception):
    """No live session: pages redirect to sign-in, scripts get 401."""


class ConsoleForbidden(Exception):
    """The user's role may not open this page or do this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CsrfRefused(Exception):
    """A change without the session's CSRF token."""


async def console_session(request: Request, services: Services) -> ConsoleSession:
    """The request's live session (cached on the request); checks CSRF on changes."""
    cached = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    session = await run_in_threadpool(session_for, services.store, token) if token else None
    if session is None:
        raise ConsoleAuthRequired()
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            given = (await request.form()).get(CSRF_FIELD)
        if not csrf_matches(session.csrf_token, given if isinstance(given, str) else None):
            raise CsrfRefused()
    request.state.console_session = session
    return session


def console_role(*roles: Role):  # noqa: ANN201 - a FastAPI dependency
    """A dependency that admits the given roles (``admin`` is always admitted)."""
    allowed = {*roles, Role.ADMIN}

    async def check(session: Annotated[ConsoleSession, Depends(console_session)]
                    ) -> ConsoleSession:
        if session.user.role not in allowed:
            raise ConsoleForbidden("эта страница недоступна для роли «"
                                   f"{ROLE_NAMES.get(session.user.role, session.user.role)}»")
        return session

    return check


ROLE_NAMES = {Role.OPERATOR: "оператор", Role.ANALYST: "аналитик", Role.ADMIN: "администратор"}

AnySignedIn = Annotated[ConsoleSession, Depends(console_session)]
OperatorSession = Annotated[ConsoleSession, Depends(console_role(Role.OPERATOR))]
AnalystSession = Annotated[ConsoleSession, Depends(console_role(Role.ANALYST))]
ReaderSession = Annotated[ConsoleSession, Depends(console_role(Role.OPERATOR, Role.ANALYST))]
AdminSession = Annotated[ConsoleSession, Depends(console_role())]
