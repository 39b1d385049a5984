"""Admin endpoints: model versions, curator rules, API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.convert import model_out
from api.deps import Admin, Reader, Services
from api.redact import strip_paths
from mcu_nlp.routing.rules import RulesError, parse_rules_text
from mcu_nlp.services.keys import create_key
from mcu_nlp.services.models import ModelLoadError, ModelNotFound
from mcu_nlp.services.rules_file import put_rules_in_force

router = APIRouter(prefix="/v1", tags=["admin"])
Version = Annotated[str, PathParam(min_length=1, max_length=100)]


@router.get("/models", response_model=list[schemas.ModelVersionOut])
def list_models(services: Services, _: Reader) -> list[schemas.ModelVersionOut]:
    """Registered model versions, newest first; ``active`` marks the one serving."""
    return [model_out(view) for view in services.registry.list()]


@router.post("/models/{version}/activate", response_model=schemas.ModelVersionOut,
             responses={404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut}})
async def activate_model(version: Version, services: Services,
                         who: Admin) -> schemas.ModelVersionOut:
    """Switch the active model; requests in flight finish on the old one, none is dropped."""
    try:
        view = await run_in_threadpool(services.registry.activate, version, actor=who.actor)
    except ModelNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except ModelLoadError as exc:  # the message names the bundle's folder: shown without its path
        raise HTTPException(status.HTTP_409_CONFLICT, strip_paths(str(exc))) from exc
    return model_out(view)


@router.get("/rules", response_model=schemas.RulesOut)
def get_rules(services: Services, _: Admin) -> schemas.RulesOut:
    """The curator rules in force."""
    source = services.rules.rules.source
    return schemas.RulesOut(version=source.version,
                            rules=[rule.model_dump(by_alias=True) for rule in source.rules])


@router.put("/rules", response_model=schemas.RulesOut, responses={422: {"model": schemas.ErrorOut}})
def put_rules(body: schemas.RulesIn, services: Services, who: Admin) -> schemas.RulesOut:
    """Validate a new rules file and put it in force (and in the rules file, when configured)."""
    try:
        book = parse_rules_text(body.yaml, origin="uploaded rules")
    except RulesError as exc:
        raise HTTPException(422, str(exc)) from exc
    put_rules_in_force(services.store, services.rules, book, body.yaml,
                       path=services.rules_path, actor=who.actor)
    return get_rules(services, who)


@router.post("/keys", response_model=schemas.KeyCreatedOut, status_code=201)
def new_key(body: schemas.KeyCreateIn, services: Services, who: Admin) -> schemas.KeyCreatedOut:
    """Create an API key; it is shown only in this response."""
    key = create_key(services.store, role=body.role, name=body.name, actor=who.actor)
    return schemas.KeyCreatedOut(key=key, role=body.role, name=body.name)
