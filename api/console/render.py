"""Templates and the page context every console page shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.console.security import ROLE_NAMES
from mcu_nlp.services.keys import Role
from mcu_nlp.services.users import ConsoleSession

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape is on for .html


def _fmt_int(value: Any) -> str:
    """12 345 — thin-space thousands, as Russian texts write them."""
    try:
        return f"{int(value):,}".replace(",", "\u202f")
    except (TypeError, ValueError):
        return "—"


def _fmt_pct(value: Any, digits: int = 1) -> str:
    try:
        return f"{100 * float(value):.{digits}f}\u202f%".replace(".", ",")
    except (TypeError, ValueError):
        return "—"


templates.env.filters["int"] = _fmt_int
templates.env.filters["pct"] = _fmt_pct

NAV = (  # (path, title, roles that see it)
    ("/console/queue", "Очередь", (Role.OPERATOR, Role.ADMIN)),
    ("/console/overview", "Обзор", (Role.ANALYST, Role.ADMIN)),
    ("/console/search", "Поиск", (Role.OPERATOR, Role.ANALYST, Role.ADMIN)),
    ("/console/admin", "Администрирование", (Role.ADMIN,)),
)


def page(request: Request, template: str, session: ConsoleSession | None,
         status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the user, the navigation and the CSRF token."""
    nav = [] if session is None else [
        {"path": path, "title": title, "active": request.url.path.startswith(path)}
        for path, title, roles in NAV if session.user.role in roles]
    return templates.TemplateResponse(request, template, {
        "session": session,
        "user": None if session is None else session.user,
        "role_name": None if session is None else ROLE_NAMES.get(session.user.role, ""),
        "csrf_token": None if session is None else session.csrf_token,
        "nav": nav,
        **context,
    }, status_code=status_code)


def home_for(role: Role) -> str:
    """Where a user lands after signing in."""
    return "/console/queue" if role in (Role.OPERATOR, Role.ADMIN) else "/console/overview"
