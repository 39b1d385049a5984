"""API keys with roles, stored only as SHA-256 hashes.

Keys are 32 random bytes (URL-safe base64), so a plain SHA-256 is enough: there is nothing to
brute-force as there is with passwords, and lookups stay one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from mcu_nlp.services.audit import record_audit
from mcu_nlp.storage import Store
from mcu_nlp.storage.limits import check_length, fit_actor, has_controls
from mcu_nlp.storage.models import ApiKeyRow, utcnow

KEY_PREFIX = "mcu_"


class Role(StrEnum):
    """What a key may do. ``admin`` may do everything; ``operator`` and ``analyst`` may read."""

    OPERATOR = "operator"  # classify, import, correct, work the queue
    ANALYST = "analyst"  # read appeals, queue and analytics
    ADMIN = "admin"  # models, rules, keys


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """Who is calling."""

    key_id: int
    role: Role
    name: str
    prefix: str

    @property
    def actor(self) -> str:
        """How the caller appears in the audit log: ``key:<id>:<name>``, cut to fit its columns.

        A key's name may be longer than the actor columns (``audit_log.actor``...); the key id
        keeps a cut actor unambiguous.
        """
        return fit_actor(f"key:{self.key_id}:{self.name or self.prefix}")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(store: Store, *, role: Role | str, name: str = "", actor: str = "cli") -> str:
    """Create a key and return it in clear (the only time it exists in clear).

    Raises:
        ValueError: The role is unknown, or the name is too long or holds control characters.
    """
    role = Role(role)
    if has_controls(name):
        raise ValueError("a key name may not hold control characters")
    check_length("key name", name, "api_keys", "name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with store.session() as session:
        row = ApiKeyRow(key_hash=hash_key(key), prefix=key[:10], role=role.value, name=name)
        session.add(row)
        session.flush()
        record_audit(session, actor=actor, action="key.create", entity="api_key",
                     entity_id=row.id, details={"role": role.value, "name": name})
    return key


def verify_key(store: Store, key: str) -> ApiKeyIdentity | None:
    """The identity behind ``key``, or ``None`` when it is unknown or revoked."""
    if not key or len(key) > 200:
        return None
    with store.session() as session:
        row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key)))
        if row is None or row.revoked_at is not None:
            return None
        return ApiKeyIdentity(row.id, Role(row.role), row.name, row.prefix)


def revoke_key(store: Store, key_id: int, *, actor: str) -> bool:
    """Revoke a key; ``False`` when no such key exists."""
    with store.session() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            return False
        row.revoked_at = row.revoked_at or utcnow()
        record_audit(session, actor=actor, action="key.revoke", entity="api_key", entity_id=key_id)
    return True
