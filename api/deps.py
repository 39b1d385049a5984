"""Dependencies: the services behind the API and the caller's identity (``Annotated`` aliases)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.batcher import MicroBatcher
from api.metrics import Metrics
from mcu_nlp.routing.urgency import UrgencyLexicon
from mcu_nlp.services.classify import ClassifyService, RulesHolder
from mcu_nlp.services.keys import ApiKeyIdentity, Role, verify_key
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.settings import Settings
from mcu_nlp.storage import Store

KEY_CACHE_SECONDS = 30.0


class KeyCache:
    """Verified keys for a short while, so a busy client does not cost a query per request.

    Revocation therefore takes up to ``KEY_CACHE_SECONDS`` to reach a running replica.
    """

    def __init__(self, store: Store, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.store, self.ttl = store, ttl
        self._entries: dict[str, tuple[float, ApiKeyIdentity | None]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, ApiKeyIdentity | None]:
        """``(True, identity)`` when ``key`` was verified lately, else ``(False, None)``.

        Never touches the store, so an async caller may use it on the event loop.
        """
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return True, entry[1]
        return False, None

    def identity(self, key: str) -> ApiKeyIdentity | None:
        """The identity behind ``key`` (``None`` for unknown or revoked keys).

        May query the store: call it from a worker thread in async code.
        """
        hit, identity = self.cached(key)
        if hit:
            return identity
        now = time.monotonic()
        identity = verify_key(self.store, key)
        with self._lock:
            if len(self._entries) > 10_000:  # unknown keys must not grow memory without bound
                self._entries.clear()
            self._entries[key] = (now, identity)
        return identity

    def clear(self) -> None:
        """Forget every cached key (after a revocation in this process)."""
        with self._lock:
            self._entries.clear()


@dataclass
class AppServices:
    """Everything a request handler may use, built once at start-up."""

    settings: Settings
    store: Store
    registry: ModelRegistry
    classifier: ClassifyService
    rules: RulesHolder
    lexicon: UrgencyLexicon
    keys: KeyCache
    metrics: Metrics
    batcher: MicroBatcher
    rules_path: str | None = None
    department_label: str = "department"
    started_at: float = field(default_factory=time.time)


async def get_services(request: Request) -> AppServices:
    """The app's services."""
    return request.app.state.services


Services = Annotated[AppServices, Depends(get_services)]

_header_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                           description="API key (or send it as Authorization: Bearer <key>)")
_bearer = HTTPBearer(auto_error=False)


async def caller(
    services: Services,
    header_key: Annotated[str | None, Depends(_header_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyIdentity:
    """The identity of the calling key; 401 without a valid key."""
    key = header_key or (bearer.credentials if bearer else None)
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "send an API key as X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})
    hit, identity = services.keys.cached(key)
    if not hit:  # the store is queried in a worker thread, never on the event loop
        identity = await run_in_threadpool(services.keys.identity, key)
    if identity is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return identity


def require(*roles: Role):  # noqa: ANN201 - a FastAPI dependency
    """A dependency that admits the given roles (``admin`` is always admitted)."""
    allowed = {*roles, Role.ADMIN}

    async def check(identity: Annotated[ApiKeyIdentity, Depends(caller)]) -> ApiKeyIdentity:
        if identity.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {identity.role.value!r} may not do this; needs one of "
                                f"{sorted(r.value for r in allowed)}")
        return identity

    return check


AnyCaller = Annotated[ApiKeyIdentity, Depends(caller)]
Operator = Annotated[ApiKeyIdentity, Depends(require(Role.OPERATOR))]
Reader = Annotated[ApiKeyIdentity, Depends(require(Role.OPERATOR, Role.ANALYST))]
Admin = Annotated[ApiKeyIdentity, Depends(require())]
