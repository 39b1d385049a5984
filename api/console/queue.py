"""Console page: queue (placeholder until built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.render import page
from api.console.security import OperatorSession

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, session: OperatorSession) -> HTMLResponse:
    """Placeholder."""
    return page(request, "error.html", session, title="queue", message="Страница в разработке.")
