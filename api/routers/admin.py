"""Admin endpoints: model versions, curator rules, the label taxonomy, API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_taxonomy as taxonomy_schemas
from api.convert import model_out
from api.deps import Admin, Reader, Services
from api.redact import strip_paths
from mcu_nlp.routing.rules import RulesError, parse_rules_text
from mcu_nlp.services.keys import create_key
from mcu_nlp.services.models import ModelLoadError, ModelNotFound
from mcu_nlp.services.rules_file import put_rules_in_force
from mcu_nlp.services.taxonomy import TaxonomyError, active_taxonomy, add_curated_values

router = APIRouter(prefix="/v1", tags=["admin"])
Version = Annotated[str, PathParam(min_length=1, max_length=100)]
LabelName = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]


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


def _taxonomy_out(services, labels=None) -> taxonomy_schemas.TaxonomyOut:  # noqa: ANN001
    model = services.registry.holder.current
    bundle = model.bundle if model else None
    try:
        curated_labels = set(active_taxonomy(None, [], curated_path=services.settings
                                             .taxonomy_file).curated)
        names = sorted(set(labels) if labels is not None else
                       {*(bundle.labels if bundle else []), *curated_labels})
        taxonomy = active_taxonomy(bundle, names, curated_path=services.settings.taxonomy_file,
                                   model_version=model.version if model else None)
    except TaxonomyError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return taxonomy_schemas.TaxonomyOut(model_version=taxonomy.model_version, labels=[
        taxonomy_schemas.LabelTaxonomyOut(
            label=name, model_values=sorted(taxonomy.model.get(name, ())),
            curated_values=sorted(taxonomy.curated.get(name, ()))) for name in names])


@router.get("/taxonomy", response_model=taxonomy_schemas.TaxonomyOut)
def get_taxonomy(services: Services, _: Reader) -> taxonomy_schemas.TaxonomyOut:
    """The values corrections may set and retraining learns.

    They are the active model version's classes plus the curated list.
    """
    return _taxonomy_out(services)


@router.post("/taxonomy/{label}", response_model=taxonomy_schemas.TaxonomyOut,
             responses={422: {"model": schemas.ErrorOut}, 503: {"model": schemas.ErrorOut}})
def add_taxonomy_values(label: LabelName, body: taxonomy_schemas.TaxonomyAddIn,
                        services: Services, who: Admin) -> taxonomy_schemas.TaxonomyOut:
    """A curator approves new values of a label (audited as ``taxonomy.add``)."""
    try:
        add_curated_values(services.store, services.settings.taxonomy_file, label, body.values,
                           actor=who.actor)
    except TaxonomyError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _taxonomy_out(services, [label])
