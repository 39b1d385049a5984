"""Console page: admin (placeholder until built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.render import page
from api.console.security import AdminSession

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, session: AdminSession) -> HTMLResponse:
    """Placeholder."""
    return page(request, "error.html", session, title="admin", message="Страница в разработке.")
