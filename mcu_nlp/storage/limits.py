"""The one place that knows how long every stored string may be, and what it may hold.

Limits are read from the storage rows themselves (``String(n)`` columns of
:mod:`mcu_nlp.storage.models`), so a schema change moves every check with it: the API schemas,
the import's row checks and the audit actor all ask here. PostgreSQL refuses a string over its
column's length and any NUL character; SQLite refuses neither, so the checks must run before the
store, on both.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from functools import cache

from sqlalchemy import String

from mcu_nlp.storage.models import Base

# Columns that name who did something; an API key's actor must fit every one of them.
ACTOR_COLUMNS = (
    ("audit_log", "actor"),
    ("corrections", "author"),
    ("review_queue", "resolved_by"),
    ("review_queue", "claimed_by"),
    ("routing_audit_verdicts", "reviewer"),
    ("routing_thresholds", "updated_by"),
    ("alerts", "status_changed_by"),
)
_KEEP = frozenset("\n\r\t")


class StringTooLong(ValueError):
    """A value longer than its column allows (the message names the field and both lengths)."""


@cache
def string_limits() -> Mapping[str, Mapping[str, int]]:
    """``{table: {column: max length}}`` for every bounded string column of the store."""
    limits: dict[str, dict[str, int]] = {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, String) and column.type.length:
                limits.setdefault(table.name, {})[column.name] = int(column.type.length)
    return limits


def column_limit(table: str, column: str) -> int:
    """The length limit of ``table.column``.

    Raises:
        KeyError: The column does not exist or is not a bounded string.
    """
    try:
        return string_limits()[table][column]
    except KeyError:
        raise KeyError(f"{table}.{column} is not a bounded string column") from None


def actor_limit() -> int:
    """How long an actor name may be: the shortest of the columns that hold one."""
    return min(column_limit(table, column) for table, column in ACTOR_COLUMNS)


def fit_actor(actor: str) -> str:
    """``actor`` clipped to :func:`actor_limit` (the end replaced by ``…``), controls removed."""
    actor = strip_controls(actor, keep_layout=False)
    limit = actor_limit()
    return actor if len(actor) <= limit else actor[: limit - 1] + "…"


def is_control(ch: str) -> bool:
    """Whether ``ch`` is a control, surrogate or private-use character (NUL included)."""
    return unicodedata.category(ch) in ("Cc", "Cs", "Co")


def has_controls(value: str, *, keep_layout: bool = False) -> bool:
    """Whether ``value`` holds a control character (line breaks and tabs allowed on request)."""
    return any(is_control(ch) and not (keep_layout and ch in _KEEP) for ch in value)


def strip_controls(value: str, *, keep_layout: bool = True) -> str:
    """``value`` without control characters (line breaks and tabs kept unless told otherwise)."""
    if not has_controls(value, keep_layout=keep_layout):
        return value
    return "".join(ch for ch in value if not is_control(ch) or (keep_layout and ch in _KEEP))


def check_length(field: str, value: str | None, table: str, column: str) -> None:
    """Raise :class:`StringTooLong` when ``value`` is over ``table.column``'s length."""
    if value is None:
        return
    limit = column_limit(table, column)
    if len(value) > limit:
        raise StringTooLong(f"{field} is {len(value)} characters; the limit is {limit}")
