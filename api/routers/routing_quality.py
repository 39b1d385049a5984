"""``/v1/routing/...``: the realized precision of auto-routing and its threshold overrides.

Until ``api/main.py`` includes this router itself (``app.include_router(router, prefix="/v1")``),
:mod:`api.routers.admin` carries it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from api import schemas
from api import schemas_routing as out
from api.analytics import Analyst
from api.deps import Admin, AppServices, Services
from mcu_nlp.routing.precision import PrecisionEstimate, PrecisionPolicy
from mcu_nlp.services.routing_quality import (
    RoutingQuality,
    ThresholdChange,
    routing_quality,
    tighten_thresholds,
)
from mcu_nlp.services.threshold_overrides import NoOverride, list_overrides, reset_override

router = APIRouter(prefix="/v1/routing", tags=["routing quality"])
Label = Annotated[str, PathParam(min_length=1, max_length=64)]


def policy_of(services: AppServices) -> PrecisionPolicy:
    """The precision policy of the app's settings (``MCU_AUDIT_*``)."""
    return PrecisionPolicy.from_settings(services.settings)


def after_verdict(services: AppServices) -> list[ThresholdChange]:
    """Tighten thresholds the new audit verdicts show too lax (called after each verdict)."""
    return tighten_thresholds(services.registry, policy_of(services))


def change_out(change: ThresholdChange) -> out.ThresholdChangeOut:
    """A tightening as the API returns it."""
    return out.ThresholdChangeOut(
        label=change.label, model_version=change.model_version, before=change.before,
        after=change.after, method=change.method, audited=change.audited,
        correct=change.correct, lower_bound=change.lower_bound, alert_id=change.alert_id)


def _precision(found: PrecisionEstimate) -> out.PrecisionOut:
    return out.PrecisionOut(audited=found.audited, correct=found.correct,
                            estimate=found.estimate, interval_95=found.interval,
                            lower_bound=found.lower_bound)


def quality_out(quality: RoutingQuality) -> out.RoutingQualityOut:
    """The figures as the API returns them."""
    policy = quality.policy
    states = {s.label: s for s in quality.labels}
    months = []
    for m in quality.months:
        state = states.get(m.label)
        months.append(out.MonthQualityOut(
            label=m.label, month=m.month, auto_routed=m.auto_routed, audited=m.audit.audited,
            audited_correct=m.audit.correct, audited_wrong=m.audit.audited - m.audit.correct,
            estimate=m.audit.estimate, interval_95=m.audit.interval,
            lower_bound=m.audit.lower_bound, target=policy.target,
            effective_threshold=state.effective_threshold if state else None,
            override=state.override if state else None, later_base=m.later_base,
            later_corrected=m.later_corrected, later_corrected_share=m.later_corrected_share))
    return out.RoutingQualityOut(
        model_version=quality.model_version,
        policy=out.PolicyOut(target=policy.target, confidence=policy.confidence,
                             min_items=policy.min_items, min_evidence=policy.min_evidence,
                             tighten_step=policy.step, audit_share=quality.audit_share),
        labels=[out.LabelStateOut(
            label=s.label, bundle_threshold=s.bundle_threshold,
            per_class_thresholds=s.per_class_thresholds, override=s.override,
            override_reason=s.override_reason, effective_threshold=s.effective_threshold,
            evidence=_precision(s.evidence), status=s.status) for s in quality.labels],
        months=months)


@router.get("/quality", response_model=out.RoutingQualityOut,
            responses={422: {"model": schemas.ErrorOut}})
def quality(services: Services, _: Analyst,
            since: Annotated[date | None, Query(description="First filing day counted.")] = None,
            until: Annotated[date | None, Query(description="Last filing day counted.")] = None,
            label: Annotated[str | None, Query(max_length=64)] = None) -> out.RoutingQualityOut:
    """Realized precision of auto-routing per label and month (audit sample), with thresholds.

    The estimate, its 95 % Clopper–Pearson interval and the lower bound come from the random audit
    sample only; later corrections of other auto-routed appeals are shown beside them (they count
    only the errors someone noticed).
    """
    if since and until and since > until:
        raise HTTPException(422, f"since ({since}) is after until ({until})")
    found = routing_quality(services.store, services.registry.holder.current,
                            policy_of(services), department_label=services.department_label,
                            since=since, until=until, label=label,
                            audit_share=getattr(services.classifier.audit, "share", None))
    return quality_out(found)


@router.post("/quality/review", response_model=list[out.ThresholdChangeOut])
async def review(services: Services, _: Admin) -> list[out.ThresholdChangeOut]:
    """Check every label's audit evidence now and tighten where it falls below the target."""
    changes = await run_in_threadpool(after_verdict, services)
    return [change_out(c) for c in changes]


@router.get("/overrides", response_model=list[out.OverrideOut])
def overrides(services: Services, _: Analyst,
              model_version: Annotated[str | None, Query(max_length=100)] = None
              ) -> list[out.OverrideOut]:
    """Threshold overrides (default: of the active model), newest change first."""
    current = services.registry.holder.current
    version = model_version or (current.version if current else None)
    return [out.OverrideOut(**asdict(view)) for view in list_overrides(services.store, version)]


@router.post("/overrides/{label}/reset", response_model=out.OverrideOut,
             responses={404: {"model": schemas.ErrorOut}, 409: {"model": schemas.ErrorOut}})
def reset(label: Label, services: Services, who: Admin,
          body: Annotated[out.OverrideResetIn | None, Body()] = None) -> out.OverrideOut:
    """Take a label's raised threshold out of force (audited); the audit starts counting anew."""
    current = services.registry.holder.current
    if current is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "no active model")
    try:
        view = reset_override(services.store, version=current.version, label=label,
                              actor=who.actor, comment=body.comment if body else "")
    except NoOverride as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    services.registry.refresh_overrides()
    return out.OverrideOut(**asdict(view))
