"""People who sign in to the console: passwords, lock-out, browser sessions.

* Passwords are kept only as argon2id hashes (``argon2-cffi``'s defaults, rehashed on sign-in
  when the parameters change).
* After :data:`MAX_FAILED_LOGINS` wrong passwords in a row the account is locked for
  :data:`LOCKOUT` (audited); a right password during the lock is refused too.
* A session is a random token in an HttpOnly cookie; the store keeps its SHA-256, the user, a
  CSRF token for the session's forms, and an absolute and an idle expiry.

Users have the API's roles (:class:`~mcu_nlp.services.keys.Role`); API keys keep working for
machines.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select

from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.keys import Role
from mcu_nlp.storage import Store
from mcu_nlp.storage.limits import fit_actor
from mcu_nlp.storage.models import ConsoleSessionRow, UserRow, utcnow

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 hashes anything, but an unbounded input is a DoS lever
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
# A hash compared when the user does not exist, so both answers take the same time.
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class SignInRefused(Exception):
    """Unknown user, wrong password, locked or disabled account (one message for all)."""

    def __init__(self, reason: str, *, locked_until: datetime | None = None) -> None:
        super().__init__("неверное имя или пароль" if reason != "locked" else
                         "учётная запись временно заблокирована после неудачных попыток входа")
        self.reason, self.locked_until = reason, locked_until


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A signed-in person, as the console and the services see them."""

    user_id: int
    username: str
    role: Role
    full_name: str = ""

    @property
    def actor(self) -> str:
        """How the person appears in the audit log: ``user:<id>:<username>``."""
        return fit_actor(f"user:{self.user_id}:{self.username}")

    @property
    def display_name(self) -> str:
        """The full name, else the username."""
        return self.full_name or self.username


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in browser: who, and the token every form of the session must carry."""

    user: ConsoleUser
    csrf_token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password_rules(password: str) -> None:
    """Raise ``ValueError`` when a new password is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"пароль короче {MIN_PASSWORD_LENGTH} символов")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"пароль длиннее {MAX_PASSWORD_LENGTH} символов")


def create_user(store: Store, *, username: str, password: str, role: Role | str,
                full_name: str = "", actor: str = "cli") -> ConsoleUser:
    """Create a user (audited).

    Raises:
        ValueError: A bad username (lower-case latin letters, digits, ``._-``, 2–64), a weak
            password, an unknown role, or the username is taken.
    """
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise ValueError("имя пользователя: 2–64 символа, латинские буквы, цифры, . _ -")
    check_password_rules(password)
    role = Role(role)
    full_name = full_name.strip()[:200]
    with store.session() as session:
        if session.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
            raise ValueError(f"пользователь {username!r} уже есть")
        row = UserRow(username=username, password_hash=_hasher.hash(password), role=role.value,
                      full_name=full_name, failed_logins=0)
        session.add(row)
        session.flush()
        record_audit(session, actor=actor, action="user.create", entity="user", entity_id=row.id,
                     details={"username": username, "role": role.value})
        return ConsoleUser(row.id, username, role, full_name)


def set_password(store: Store, username: str, password: str, *, actor: str) -> None:
    """Replace a user's password, unlock the account and end its sessions (audited)."""
    check_password_rules(password)
    with store.session() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username.lower()))
        if row is None:
            raise ValueError(f"нет пользователя {username!r}")
        row.password_hash = _hasher.hash(password)
        row.failed_logins, row.locked_until = 0, None
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == row.id))
        record_audit(session, actor=actor, action="user.password", entity="user",
                     entity_id=row.id)


def set_disabled(store: Store, user_id: int, disabled: bool, *, actor: str) -> bool:
    """Disable (ending its sessions) or enable a user; ``False`` when there is no such user."""
    with store.session() as session:
        row = session.get(UserRow, user_id)
        if row is None:
            return False
        row.disabled_at = utcnow() if disabled else None
        if disabled:
            session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == row.id))
        record_audit(session, actor=actor, action="user.disable" if disabled else "user.enable",
                     entity="user", entity_id=row.id)
        return True


@dataclass(frozen=True, slots=True)
class UserEntry:
    """A user as admins see them (never the hash)."""

    user_id: int
    username: str
    role: str
    full_name: str
    created_at: datetime
    locked_until: datetime | None
    disabled: bool


def list_users(store: Store) -> list[UserEntry]:
    """Every user, by username."""
    with store.session() as session:
        return [UserEntry(r.id, r.username, r.role, r.full_name, r.created_at, r.locked_until,
                          r.disabled_at is not None)
                for r in session.scalars(select(UserRow).order_by(UserRow.username))]


def authenticate(store: Store, username: str, password: str) -> ConsoleUser:
    """The user behind a right password; failures count towards the lock-out (audited).

    Raises:
        SignInRefused: Unknown user, wrong password, locked or disabled account.
    """
    username = (username or "").strip().lower()[:64]
    password = (password or "")[:MAX_PASSWORD_LENGTH + 1]
    now = utcnow()
    refused: SignInRefused | None = None
    # A refusal is raised after the transaction commits: the failure count and its audit row
    # must be stored, not rolled back with the exception.
    with store.session() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username)
                             .with_for_update())
        if row is None:
            _verify(_DUMMY_HASH, password)
            refused = SignInRefused("unknown")
        elif row.locked_until is not None and row.locked_until > now:
            refused = SignInRefused("locked", locked_until=row.locked_until)
        elif row.disabled_at is not None or not _verify(row.password_hash, password):
            row.failed_logins = (row.failed_logins or 0) + 1
            details: dict[str, object] = {"failed_logins": row.failed_logins}
            if row.failed_logins >= MAX_FAILED_LOGINS:
                row.locked_until, row.failed_logins = now + LOCKOUT, 0
                details["locked_until"] = row.locked_until.isoformat()
                refused = SignInRefused("locked", locked_until=row.locked_until)
            else:
                refused = SignInRefused("password")
            record_audit(session, actor=f"user:{row.id}:{row.username}",
                         action="user.login_failed", entity="user", entity_id=row.id,
                         details=details)
        else:
            row.failed_logins, row.locked_until = 0, None
            if _hasher.check_needs_rehash(row.password_hash):
                row.password_hash = _hasher.hash(password)
            user = ConsoleUser(row.id, row.username, Role(row.role), row.full_name)
    if refused is not None:
        raise refused
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def open_session(store: Store, user: ConsoleUser) -> tuple[str, ConsoleSession]:
    """Start a browser session: returns the cookie token (in clear, only now) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + SESSION_LIFETIME
    with store.session() as session:
        session.add(ConsoleSessionRow(token_hash=_token_hash(token), user_id=user.user_id,
                                      csrf_token=csrf, created_at=now, last_seen_at=now,
                                      expires_at=expires))
        # Expired sessions of this user go as a new one starts (the table never grows unbounded).
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.user_id == user.user_id,
                                                        ConsoleSessionRow.expires_at < now))
        record_audit(session, actor=user.actor, action="user.login", entity="user",
                     entity_id=user.user_id)
    return token, ConsoleSession(user, csrf, expires)


def session_for(store: Store, token: str | None) -> ConsoleSession | None:
    """The live session behind a cookie token (``None``: unknown, expired, idle or disabled)."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    with store.session() as session:
        found = session.execute(
            select(ConsoleSessionRow, UserRow)
            .join(UserRow, UserRow.id == ConsoleSessionRow.user_id)
            .where(ConsoleSessionRow.token_hash == _token_hash(token))).first()
        if found is None:
            return None
        row, user = found
        if row.expires_at <= now or row.last_seen_at + SESSION_IDLE <= now \
                or user.disabled_at is not None:
            session.delete(row)
            return None
        if now - row.last_seen_at > timedelta(minutes=1):  # one write a minute, not per request
            row.last_seen_at = now
        return ConsoleSession(ConsoleUser(user.id, user.username, Role(user.role), user.full_name),
                              row.csrf_token, row.expires_at)


def close_session(store: Store, token: str | None) -> None:
    """Sign out: the token stops working at once."""
    if not token or len(token) > 200:
        return
    with store.session() as session:
        session.execute(delete(ConsoleSessionRow)
                        .where(ConsoleSessionRow.token_hash == _token_hash(token)))


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
