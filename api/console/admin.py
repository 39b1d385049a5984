"""Console pages for admins: model versions, curator rules, users and API keys.

* ``/console/admin`` — registered model versions with their evaluation figures (coverage,
  precision, macro-F1 per label where recorded); one is activated with a POST (audited as
  ``model.activate`` by :meth:`~mcu_nlp.services.models.ModelRegistry.activate`, as
  ``POST /v1/models/{version}/activate`` does).
* ``/console/admin/rules`` — the curator rules' YAML in an editor. «Проверить» validates it
  (:func:`~mcu_nlp.routing.rules.parse_rules_text`) and shows the dry run: how many of the last
  month's appeals each rule would have caught (:func:`~mcu_nlp.services.admin_console
  .dry_run_rules`); only then is «Сохранить» offered, and it saves exactly the text that was
  checked (a changed text is checked again instead), through
  :func:`~mcu_nlp.services.rules_file.put_rules_in_force` like ``PUT /v1/rules``.
* ``/console/admin/users`` — create, disable/enable, set a new password
  (:mod:`mcu_nlp.services.users`; an admin cannot disable their own account).
* ``/console/admin/keys`` — create an API key (shown once, in that response only), revoke one.

Every page and every POST needs an admin session; every POST needs the session's CSRF token
(:mod:`api.console.security`). A successful POST redirects (303) to its page with a fixed
message code; a refused one shows the page again with the reason.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.render import page
from api.console.security import ROLE_NAMES, AdminSession
from api.deps import AppServices, Services
from api.redact import strip_paths
from mcu_nlp.routing.rules import DEFAULT_RULES_PATH, RulesError, load_rules, parse_rules_text
from mcu_nlp.services.admin_console import dry_run_rules, list_keys, model_figures
from mcu_nlp.services.keys import Role, create_key, revoke_key
from mcu_nlp.services.models import ModelLoadError, ModelNotFound
from mcu_nlp.services.rules_file import put_rules_in_force
from mcu_nlp.services.users import (
    ConsoleSession,
    create_user,
    list_users,
    set_disabled,
    set_password,
)
from mcu_nlp.storage.limits import has_controls

router = APIRouter(prefix="/console/admin", include_in_schema=False)

MAX_ID = 2**31 - 1
MAX_RULES_CHARS = 200_000
Version = Annotated[str, PathParam(min_length=1, max_length=100)]
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
SECTIONS = (("/console/admin", "Модели"), ("/console/admin/rules", "Правила"),
            ("/console/admin/users", "Пользователи"), ("/console/admin/keys", "API-ключи"))
DONE = {  # ?done=<code> after a successful POST: fixed texts, nothing from the request
    "activated": "Версия модели активирована.",
    "rules": "Правила сохранены и действуют.",
    "user-created": "Пользователь создан.",
    "user-disabled": "Пользователь отключён, его сессии закрыты.",
    "user-enabled": "Пользователь снова может входить.",
    "password": "Пароль изменён, сессии пользователя закрыты.",
    "key-revoked": "Ключ отозван.",
}


def _admin_page(request: Request, template: str, session: ConsoleSession, *,
                status_code: int = 200, **context: Any) -> HTMLResponse:
    done = DONE.get(request.query_params.get("done", ""))
    path = request.url.path
    current = max((p for p, _ in SECTIONS if path == p or path.startswith(p + "/")), key=len,
                  default="")
    return page(request, template, session, status_code=status_code, sections=SECTIONS,
                current=current, done=done, role_names=ROLE_NAMES, **context)


def _back(path: str, code: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={code}", status_code=303)


# --- model versions ------------------------------------------------------------------------


def _versions(services: AppServices) -> list[dict[str, Any]]:
    return [{"view": view, "name": Path(view.path).name,
             "figures": model_figures(view.metrics, view.labels)}
            for view in services.registry.list()]


@router.get("", response_class=HTMLResponse)
async def models_page(request: Request, services: Services,
                      session: AdminSession) -> HTMLResponse:
    """Registered model versions with their figures; activate one."""
    versions = await run_in_threadpool(_versions, services)
    return _admin_page(request, "admin.html", session, versions=versions)


@router.post("/models/{version}/activate")
async def activate_model(request: Request, version: Version, services: Services,
                         session: AdminSession) -> Response:
    """Make ``version`` the serving model (audited)."""
    try:
        if has_controls(version):
            raise ModelNotFound("a version name holds no control characters")
        await run_in_threadpool(services.registry.activate, version, actor=session.user.actor)
    except (ModelNotFound, ModelLoadError) as exc:
        versions = await run_in_threadpool(_versions, services)
        return _admin_page(request, "admin.html", session, versions=versions,
                           status_code=404 if isinstance(exc, ModelNotFound) else 409,
                           error=strip_paths(str(exc)))
    return _back("/console/admin", "activated")


# --- curator rules -------------------------------------------------------------------------


def _rules_text(services: AppServices) -> str:
    """The YAML of the rules in force: the rules file, the packaged file, or a dump."""
    source = services.rules.rules.source
    if services.rules_path:
        try:
            return Path(services.rules_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    if load_rules().source == source:
        return DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    return yaml.safe_dump(source.model_dump(by_alias=True, exclude_defaults=True),
                          allow_unicode=True, sort_keys=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalized(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _rules_page(request: Request, services: AppServices, session: ConsoleSession, *,
                text: str | None = None, status_code: int = 200, **context: Any) -> HTMLResponse:
    book = services.rules.rules
    return _admin_page(request, "admin_rules.html", session, status_code=status_code,
                       text=_rules_text(services) if text is None else text,
                       version=book.version, rules=book.source.rules,
                       persisted=services.rules_path is not None, **context)


RulesText = Annotated[str, Form(max_length=MAX_RULES_CHARS)]


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, services: Services,
                     session: AdminSession) -> HTMLResponse:
    """The rules in force in an editor."""
    return _rules_page(request, services, session)


async def _check(request: Request, services: AppServices, session: ConsoleSession, text: str,
                 *, notice: str | None = None) -> HTMLResponse:
    try:
        book = parse_rules_text(text, origin="правила")
    except RulesError as exc:
        return _rules_page(request, services, session, text=text, status_code=422,
                           error=str(exc))
    dry_run = await run_in_threadpool(dry_run_rules, services.store, book,
                                      current=services.rules.rules)
    return _rules_page(request, services, session, text=text, dry_run=dry_run,
                       checked=_digest(text), new_version=book.version, notice=notice)


@router.post("/rules/check", response_class=HTMLResponse)
async def check_rules(request: Request, services: Services, session: AdminSession,
                      yaml_text: Annotated[str, Form(alias="yaml", max_length=MAX_RULES_CHARS)]
                      ) -> HTMLResponse:
    """Validate the edited rules and show the dry run (nothing is saved)."""
    return await _check(request, services, session, _normalized(yaml_text))


@router.post("/rules")
async def save_rules(request: Request, services: Services, session: AdminSession,
                     yaml_text: Annotated[str, Form(alias="yaml", max_length=MAX_RULES_CHARS)],
                     checked: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Put the checked rules in force (audited as ``rules.update``)."""
    text = _normalized(yaml_text)
    if checked != _digest(text):
        return await _check(request, services, session, text,
                            notice="Текст изменился после проверки: проверьте результат и "
                                   "сохраните ещё раз.")
    try:
        book = parse_rules_text(text, origin="правила")
    except RulesError as exc:
        return _rules_page(request, services, session, text=text, status_code=422,
                           error=str(exc))
    await run_in_threadpool(put_rules_in_force, services.store, services.rules, book, text,
                            path=services.rules_path, actor=session.user.actor)
    return _back("/console/admin/rules", "rules")


# --- users ---------------------------------------------------------------------------------


def _users_page(request: Request, services: AppServices, session: ConsoleSession, *,
                status_code: int = 200, **context: Any) -> HTMLResponse:
    return _admin_page(request, "admin_users.html", session, status_code=status_code,
                       users=list_users(services.store), roles=[r.value for r in Role],
                       **context)


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, services: Services,
                     session: AdminSession) -> HTMLResponse:
    """Console users."""
    return await run_in_threadpool(_users_page, request, services, session)


@router.post("/users")
async def new_user(request: Request, services: Services, session: AdminSession,
                   username: Annotated[str, Form(max_length=200)],
                   password: Annotated[str, Form(max_length=1000)],
                   role: Annotated[str, Form(max_length=20)],
                   full_name: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Create a user (audited)."""
    if has_controls(full_name):
        return await run_in_threadpool(_users_page, request, services, session, status_code=422,
                                       error="ФИО не может содержать управляющие символы.")
    try:
        await run_in_threadpool(create_user, services.store, username=username,
                                password=password, role=role, full_name=full_name,
                                actor=session.user.actor)
    except ValueError as exc:
        message = str(exc) if role in {r.value for r in Role} else "неизвестная роль"
        return await run_in_threadpool(_users_page, request, services, session, status_code=422,
                                       error=message, form={"username": username[:64],
                                                            "full_name": full_name[:200],
                                                            "role": role})
    return _back("/console/admin/users", "user-created")


@router.post("/users/{user_id}/disable")
async def disable_user(request: Request, user_id: ItemId, services: Services,
                       session: AdminSession) -> Response:
    """Disable a user and end their sessions (audited); not one's own account."""
    if user_id == session.user.user_id:
        return await run_in_threadpool(_users_page, request, services, session, status_code=409,
                                       error="Нельзя отключить собственную учётную запись.")
    if not await run_in_threadpool(set_disabled, services.store, user_id, True,
                                   actor=session.user.actor):
        return await run_in_threadpool(_users_page, request, services, session, status_code=404,
                                       error="Нет такого пользователя.")
    return _back("/console/admin/users", "user-disabled")


@router.post("/users/{user_id}/enable")
async def enable_user(request: Request, user_id: ItemId, services: Services,
                      session: AdminSession) -> Response:
    """Let a disabled user sign in again (audited)."""
    if not await run_in_threadpool(set_disabled, services.store, user_id, False,
                                   actor=session.user.actor):
        return await run_in_threadpool(_users_page, request, services, session, status_code=404,
                                       error="Нет такого пользователя.")
    return _back("/console/admin/users", "user-enabled")


@router.post("/users/{user_id}/password")
async def reset_password(request: Request, user_id: ItemId, services: Services,
                         session: AdminSession,
                         password: Annotated[str, Form(max_length=1000)]) -> Response:
    """Set a new password: unlocks the account and ends its sessions (audited)."""
    users = {u.user_id: u for u in await run_in_threadpool(list_users, services.store)}
    if user_id not in users:
        return await run_in_threadpool(_users_page, request, services, session, status_code=404,
                                       error="Нет такого пользователя.")
    try:
        await run_in_threadpool(set_password, services.store, users[user_id].username, password,
                                actor=session.user.actor)
    except ValueError as exc:
        return await run_in_threadpool(_users_page, request, services, session, status_code=422,
                                       error=f"{users[user_id].username}: {exc}")
    return _back("/console/admin/users", "password")


# --- API keys ------------------------------------------------------------------------------


def _keys_page(request: Request, services: AppServices, session: ConsoleSession, *,
               status_code: int = 200, **context: Any) -> HTMLResponse:
    return _admin_page(request, "admin_keys.html", session, status_code=status_code,
                       keys=list_keys(services.store), roles=[r.value for r in Role], **context)


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request, services: Services,
                    session: AdminSession) -> HTMLResponse:
    """API keys."""
    return await run_in_threadpool(_keys_page, request, services, session)


@router.post("/keys", response_class=HTMLResponse)
async def new_key(request: Request, services: Services, session: AdminSession,
                  role: Annotated[str, Form(max_length=20)],
                  name: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    """Create a key and show it once, in this response only (audited)."""
    try:
        key = await run_in_threadpool(create_key, services.store, role=role, name=name.strip(),
                                      actor=session.user.actor)
    except ValueError as exc:
        message = str(exc) if role in {r.value for r in Role} else "неизвестная роль"
        return await run_in_threadpool(_keys_page, request, services, session, status_code=422,
                                       error=message)
    return await run_in_threadpool(_keys_page, request, services, session, created=key,
                                   created_role=role, created_name=name.strip())


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, key_id: ItemId, services: Services,
                 session: AdminSession) -> Response:
    """Revoke a key (audited); it stops working at once in this process."""
    if not await run_in_threadpool(revoke_key, services.store, key_id, actor=session.user.actor):
        return await run_in_threadpool(_keys_page, request, services, session, status_code=404,
                                       error="Нет такого ключа.")
    services.keys.clear()
    return _back("/console/admin/keys", "key-revoked")
