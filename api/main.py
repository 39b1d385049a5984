"""The FastAPI app factory: ``create_app(settings)``.

Run it with ``mcu-nlp serve`` or ``uvicorn --factory api.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api import console
from api.analytics import app_analytics
from api.batcher import MicroBatcher
from api.deps import AnyCaller, AppServices, KeyCache, require
from api.metrics import Metrics
from api.middleware import LimitsAndMetrics
from api.routers import (
    admin,
    alerts,
    appeals,
    classify,
    jobs,
    queue,
    reports,
    root_causes,
    routing_quality,
    system,
)
from api.upload_gate import MAX_CONCURRENT_UPLOADS, UploadGate
from mcu_nlp.routing.audit_sample import AuditSampler
from mcu_nlp.routing.rules import load_rules
from mcu_nlp.routing.urgency import load_lexicon
from mcu_nlp.services.classify import ClassifyService, RulesHolder
from mcu_nlp.services.keys import Role
from mcu_nlp.services.models import BundleLoader, ModelRegistry, default_loader
from mcu_nlp.settings import Settings, get_settings
from mcu_nlp.storage import Store
from mcu_nlp.storage.db import describe_db_error

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # JSON bodies: a batch of 256 long texts fits
MAX_UPLOAD_BYTES = 100_000_000  # export files
MODEL_SYNC_SECONDS = 5.0


def _curator_file(explicit: str | Path | None, env: str, data_dir: Path, name: str) -> Path | None:
    """The curator's own file: argument, then environment, then the data folder; else packaged."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(env):
        return Path(os.environ[env])
    candidate = data_dir / name
    return candidate if candidate.exists() else None


def build_services(settings: Settings, *, store: Store | None = None,
                   loader: BundleLoader = default_loader, rules_path: str | Path | None = None,
                   lexicon_path: str | Path | None = None,
                   department_label: str = "department") -> AppServices:
    """Open the store (migrating it), load rules, lexicon and the active model."""
    store = store or Store.from_url(settings.store_url)
    rules_file = _curator_file(rules_path, "MCU_ROUTING_RULES", settings.data_dir,
                               "routing_rules.yaml")
    lexicon_file = _curator_file(lexicon_path, "MCU_URGENCY_LEXICON", settings.data_dir,
                                 "urgency_lexicon.yaml")
    rules = RulesHolder(load_rules(rules_file))
    lexicon = load_lexicon(lexicon_file)
    registry = ModelRegistry(store, loader=loader)
    registry.sync()
    classifier = ClassifyService(models=registry.holder, rules=rules, lexicon=lexicon,
                                 department_label=department_label,
                                 audit=AuditSampler.from_settings(settings))
    metrics = Metrics()
    metrics.gauges["mcu_model_loaded"] = lambda: float(registry.holder.current is not None)
    return AppServices(settings=settings, store=store, registry=registry, classifier=classifier,
                       rules=rules, lexicon=lexicon, keys=KeyCache(store), metrics=metrics,
                       batcher=MicroBatcher(classifier),
                       rules_path=None if rules_file is None else str(rules_file),
                       department_label=department_label)


def create_app(settings: Settings | None = None, *, services: AppServices | None = None,
               loader: BundleLoader = default_loader, rules_path: str | Path | None = None,
               lexicon_path: str | Path | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               max_upload_bytes: int = MAX_UPLOAD_BYTES,
               model_sync_seconds: float | None = MODEL_SYNC_SECONDS,
               max_concurrent_uploads: int | None = None,
               alert_scan_seconds: float | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: Where the store and data live (default: :func:`get_settings`).
        services: Prebuilt services (tests); built from ``settings`` when omitted.
        loader: Loads a model bundle directory.
        rules_path: Curator rules file (default: ``MCU_ROUTING_RULES``, then
            ``<data_dir>/routing_rules.yaml``, then the packaged example).
        lexicon_path: Urgency lexicon (default: ``MCU_URGENCY_LEXICON``, then
            ``<data_dir>/urgency_lexicon.yaml``, then the packaged lexicon).
        max_body_bytes: Limit for JSON request bodies (413 above it).
        max_upload_bytes: Limit for uploaded export files.
        model_sync_seconds: How often to pick up a model another replica activated
            (``None``: never).
        max_concurrent_uploads: Uploads served at once; one more gets 429 with Retry-After
            (default: ``MCU_MAX_CONCURRENT_UPLOADS``, else 2).
        alert_scan_seconds: How often to scan the stored appeals for rises, as
            ``POST /v1/alerts/scan`` does for the newest day (default:
            ``settings.alert_scan_seconds``, ``MCU_ALERT_SCAN_SECONDS``; ``None`` or ``0``:
            never). Replicas on one PostgreSQL store scan one at a time (an advisory lock);
            a replica that finds another scanning skips its turn.
    """
    settings = settings or get_settings()
    if alert_scan_seconds is None:
        alert_scan_seconds = settings.alert_scan_seconds
    services = services or build_services(settings, loader=loader, rules_path=rules_path,
                                          lexicon_path=lexicon_path)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if model_sync_seconds:
            tasks.append(asyncio.create_task(_sync_models(services, model_sync_seconds)))
        if alert_scan_seconds:
            tasks.append(asyncio.create_task(_scan_alerts(app, alert_scan_seconds)))
        yield
        for task in tasks:
            task.cancel()
        analytics = getattr(app.state, "analytics", None)
        if analytics is not None:  # queued analytics jobs are dropped, a running one finishes
            analytics.runner.shutdown()

    app = FastAPI(title="mcu-nlp API", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None,
                  description="Classification, routing and review queue for a municipal "
                              "control center (МЦУ). Send an API key as X-API-Key or "
                              "Authorization: Bearer; only /health is open.")
    app.state.services = services
    for module in (system, classify, appeals, queue, admin, routing_quality, root_causes, alerts,
                   reports, jobs):
        app.include_router(module.router)
    _add_docs(app)
    console.install(app)

    # Store errors are logged scrubbed: str(exc) would carry the statement and, without
    # hide_parameters, the appeal's values (a citizen's name, phone, address).
    @app.exception_handler(OperationalError)
    async def _store_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("store error: %s", describe_db_error(exc))
        return JSONResponse({"detail": "the store is unavailable; retry later"}, status_code=503)

    @app.exception_handler(SQLAlchemyError)
    async def _store_error(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("store error: %s", describe_db_error(exc))
        return JSONResponse({"detail": "the store refused the request; it was not completed"},
                            status_code=500)

    # The key is checked from the headers before an upload's body is read (inside the size
    # limits, so a declared oversize body is refused first and every answer is counted).
    app.add_middleware(UploadGate, identify=services.keys.identity,
                       admit=require(Role.OPERATOR),
                       max_concurrent=max_concurrent_uploads or int(os.environ.get(
                           "MCU_MAX_CONCURRENT_UPLOADS", MAX_CONCURRENT_UPLOADS)))
    app.add_middleware(LimitsAndMetrics, metrics=services.metrics, max_body=max_body_bytes,
                       max_upload=max_upload_bytes)
    return app


def _add_docs(app: FastAPI) -> None:
    """OpenAPI and Swagger UI, behind a key like every endpoint but /health."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: AnyCaller) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(_: AnyCaller) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mcu-nlp API")


async def _sync_models(services: AppServices, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(services.registry.sync)
        except Exception:  # a store hiccup must not kill the loop
            log.exception("model sync failed")


async def _scan_alerts(app: FastAPI, every: float) -> None:
    """The periodic alert scan: one turn every ``every`` seconds, the first after one period."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(alerts.scheduled_scan, app.state.services, app_analytics(app))
        except Exception:  # a failed turn must not end the loop
            log.exception("periodic alert scan failed")
