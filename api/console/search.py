"""Console page: search (placeholder until built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.render import page
from api.console.security import ReaderSession

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, session: ReaderSession) -> HTMLResponse:
    """Placeholder."""
    return page(request, "error.html", session, title="search", message="Страница в разработке.")
