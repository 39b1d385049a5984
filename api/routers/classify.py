"""``/v1/classify``: stateless classification and routing."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.convert import classification_out
from api.deps import Operator, Services
from mcu_nlp.services.classify import AppealInput, ClassificationFailure

router = APIRouter(prefix="/v1", tags=["classify"])


def _require_model(services: Services) -> None:
    if not services.classifier.ready:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "no active model: register one (mcu-nlp models register PATH "
                            "--activate) or activate one (POST /v1/models/{version}/activate)")


@router.post("/classify", response_model=schemas.ClassificationOut,
             responses={422: {"model": schemas.ErrorOut}, 503: {"model": schemas.ErrorOut}})
async def classify(body: schemas.ClassifyRequest, services: Services,
             _: Operator) -> schemas.ClassificationOut:
    """Top-k topics, department, confidence, urgency and the routing decision for one text."""
    _require_model(services)
    appeal = AppealInput(body.text, body.channel, body.territory, body.address, body.created_at)
    result = await services.batcher.classify(appeal, top_k=body.top_k)
    if isinstance(result, ClassificationFailure):
        raise HTTPException(422, result.error)
    services.metrics.count(f"classify.{result.decision.decision}")
    return classification_out(result, services.department_label)


@router.post("/classify/batch", response_model=schemas.ClassifyBatchResponse,
             responses={503: {"model": schemas.ErrorOut}})
async def classify_batch(body: schemas.ClassifyBatchRequest, services: Services,
                         _: Operator) -> schemas.ClassifyBatchResponse:
    """Up to 256 texts; a bad item gets an error entry and the others still answer."""
    _require_model(services)
    appeals = [AppealInput(i.text, i.channel, i.territory, i.address, i.created_at)
               for i in body.items]
    results = await run_in_threadpool(services.classifier.classify, appeals, top_k=body.top_k)
    out = []
    for index, result in enumerate(results):
        if isinstance(result, ClassificationFailure):
            out.append(schemas.BatchResultOut(index=index, ok=False, error=result.error))
        else:
            out.append(schemas.BatchResultOut(
                index=index, ok=True, result=classification_out(result, services.department_label)))
    return schemas.ClassifyBatchResponse(results=out)
