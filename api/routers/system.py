"""``/health`` (open), ``/ready`` and ``/metrics`` (any valid key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from api import schemas
from api.deps import AnyCaller, Services

router = APIRouter(tags=["system"])


@router.get("/health", response_model=schemas.HealthOut)
async def health() -> schemas.HealthOut:
    """The process is up (no key needed)."""
    return schemas.HealthOut(status="ok")


@router.get("/ready", response_model=schemas.ReadyOut, responses={503: {"model": schemas.ReadyOut}})
def ready(services: Services, _: AnyCaller):
    """Ready when the store answers and a model is active; else 503."""
    try:
        with services.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        store_ok = True
    except Exception:  # any driver error means not ready
        store_ok = False
    model = services.registry.holder.current
    body = schemas.ReadyOut(status="ready" if store_ok and model else "not-ready", store=store_ok,
                            model_version=model.version if model else None,
                            rules_version=services.rules.rules.version)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: Services, _: AnyCaller) -> PlainTextResponse:
    """Prometheus text exposition."""
    return PlainTextResponse(services.metrics.render(),
                             media_type="text/plain; version=0.0.4; charset=utf-8")
