"""``/v1/appeals``: store, import, read and correct appeals."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.convert import appeal_out
from api.deps import Operator, Reader, Services
from api.routers.routing_quality import after_verdict
from mcu_nlp.records import Appeal
from mcu_nlp.services.appeal_fields import InvalidAppeal, clean_appeal
from mcu_nlp.services.appeals import (
    AppealNotFound,
    InvalidCorrection,
    correct_appeal,
    get_appeal,
)
from mcu_nlp.services.imports import ImportFileError, import_appeals, import_file
from mcu_nlp.services.personal_data import read_appeal_as
from mcu_nlp.services.taxonomy import TaxonomyError, active_taxonomy

router = APIRouter(prefix="/v1/appeals", tags=["appeals"])

UPLOAD_SUFFIXES = {".csv", ".xlsx", ".json", ".gz", ".jsonl", ".tsv"}
NOT_FOUND = {404: {"model": schemas.ErrorOut}}
AppealId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Stored appeal id")]


@router.post("", response_model=schemas.AppealStored, status_code=201,
             responses={200: {"model": schemas.AppealStored}, 422: {"model": schemas.ErrorOut},
                        503: {"model": schemas.ErrorOut}})
def create_appeal(body: schemas.AppealIn, services: Services, who: Operator):
    """Store, classify and route one appeal; re-sending the same (source, source_id) is a no-op.

    What is stored is the checked appeal: the cleaned text (stray control characters dropped),
    and every field within its column's length; anything else is a 422.
    """
    try:
        appeal = clean_appeal(Appeal(
            id=body.source_id, channel=body.channel, source=body.source,
            created_at=body.created_at, text=body.text, territory=body.territory,
            address=body.address, labels=dict(body.labels), metadata=dict(body.metadata)))
    except InvalidAppeal as exc:
        raise HTTPException(422, str(exc)) from exc
    summary = import_appeals(services.store, services.classifier, [appeal], actor=who.actor)
    if summary.rejected:
        raise HTTPException(422, summary.rejected[0].reason)
    if summary.stored:
        services.metrics.count("appeals.stored")
        view = get_appeal(services.store, summary.stored_ids[0])
        return schemas.AppealStored(status="stored", appeal=appeal_out(view))
    view = read_appeal_as(services.store, summary.duplicate_ids[0], actor=who.actor,
                          role=who.role, via="POST /v1/appeals (duplicate)")
    return JSONResponse(schemas.AppealStored(status="duplicate", appeal=appeal_out(view))
                        .model_dump(mode="json"), status_code=200)


@router.post("/import", response_model=schemas.ImportOut,
             responses={400: {"model": schemas.ErrorOut}, 415: {"model": schemas.ErrorOut}})
async def import_appeals_file(
    services: Services,
    who: Operator,
    file: Annotated[UploadFile, File(description="CSV, XLSX or JSON export")],
    kind: Annotated[str | None, Query(pattern=r"^(spb_portal|im|pos|fz59|generic)$",
                                      description="Export kind; detected when omitted")] = None,
) -> schemas.ImportOut:
    """Import an export file through the readers; idempotent by (source, source id)."""
    suffixes = [s.lower() for s in Path(file.filename or "").suffixes[-2:]]
    suffix = "".join(suffixes)
    if not suffixes or suffixes[-1] not in UPLOAD_SUFFIXES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"unsupported file {file.filename!r}: send .csv, .xlsx or .json")
    with tempfile.TemporaryDirectory(prefix="mcu-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out)
        try:
            summary = await run_in_threadpool(import_file, services.store, services.classifier,
                                              path, kind=kind, actor=who.actor)
        except ImportFileError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                f"cannot read the file: {exc}") from exc
    services.metrics.count("appeals.stored", summary.stored)
    return schemas.ImportOut(
        stored=summary.stored, duplicates=summary.duplicates, rejected=len(summary.rejected),
        rejected_rows=[schemas.RejectedRowOut(line=r.line, source_id=r.source_id, reason=r.reason)
                       for r in summary.rejected[:200]])


@router.get("/{appeal_id}", response_model=schemas.AppealOut, responses=NOT_FOUND)
def read_appeal(appeal_id: AppealId, services: Services, who: Reader) -> schemas.AppealOut:
    """A stored appeal with its predictions, routing, human labels and corrections.

    Operators and admins read the raw text and address, and each read is audited
    (``appeal.read``); analysts read them with personal data masked.
    """
    try:
        return appeal_out(read_appeal_as(services.store, appeal_id, actor=who.actor,
                                         role=who.role))
    except AppealNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/{appeal_id}/correction", response_model=schemas.AppealOut,
             responses={**NOT_FOUND, 422: {"model": schemas.ErrorOut}})
def correct(appeal_id: AppealId, body: schemas.CorrectionIn, services: Services,
            who: Operator) -> schemas.AppealOut:
    """A person sets topic / department; stored for retraining and audited.

    Each value must be approved: a class of the active model version for that label, or a value
    an admin added to the curated taxonomy (``POST /v1/taxonomy/{label}``); else a 422.
    """
    model = services.registry.holder.current
    allowed = {services.department_label, *(model.bundle.labels if model else [])}
    try:
        allowed |= set(get_appeal(services.store, appeal_id).source_labels)
        taxonomy = active_taxonomy(model.bundle if model else None, body.labels,
                                   curated_path=services.settings.taxonomy_file,
                                   model_version=model.version if model else None)
        view = correct_appeal(services.store, appeal_id, body.labels, author=who.actor,
                              allowed_labels=sorted(allowed), comment=body.comment,
                              department_label=services.department_label, taxonomy=taxonomy)
    except AppealNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidCorrection as exc:
        raise HTTPException(422, str(exc)) from exc
    except TaxonomyError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    services.metrics.count("appeals.corrected")
    if view.audit_sample:  # an audit item's correction is a verdict: thresholds may tighten
        after_verdict(services)
    return appeal_out(view)
