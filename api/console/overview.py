"""Console page: overview (placeholder until built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.render import page
from api.console.security import AnalystSession

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, session: AnalystSession) -> HTMLResponse:
    """Placeholder."""
    return page(request, "error.html", session, title="overview", message="Страница в разработке.")
