"""Check an appeal's fields against what the store can hold, before anything is written.

:func:`clean_appeal` is the single gate every stored appeal passes (the API's ``POST
/v1/appeals`` and every import row): the text is the :func:`~mcu_nlp.services.classify.check_text`
result, short fields are free of control characters, and every string fits its column
(:mod:`mcu_nlp.storage.limits`). A refused appeal raises :class:`InvalidAppeal` with the reason,
which the import reports for its row alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mcu_nlp.records import Appeal
from mcu_nlp.services.classify import InvalidAppealText, check_text
from mcu_nlp.storage.limits import (
    StringTooLong,
    check_length,
    column_limit,
    has_controls,
    strip_controls,
)


class InvalidAppeal(ValueError):
    """An appeal the store cannot hold as it is, with the reason in the message."""


def _identifier(field: str, value: Any, table: str, column: str) -> str:
    """An identifier-like field: control characters refused (stripping could merge two ids)."""
    text = str(value)
    if not text.strip():
        raise InvalidAppeal(f"{field} is empty")
    if has_controls(text):
        raise InvalidAppeal(f"{field} holds control characters")
    check_length(field, text, table, column)
    return text


def _place(field: str, value: str | None, column: str) -> str | None:
    """Territory or address: control characters dropped, blank becomes ``None``."""
    if value is None:
        return None
    text = strip_controls(str(value), keep_layout=False).strip()
    if not text:
        return None
    check_length(field, text, "appeals", column)
    return text


def _scrubbed(value: Any) -> Any:
    """JSON-like metadata with control characters removed from every string in it."""
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, dict):
        return {strip_controls(str(k)): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def _labels(labels: dict[str, Any]) -> dict[str, str]:
    name_limit = column_limit("human_labels", "label")
    value_limit = column_limit("human_labels", "value")
    out: dict[str, str] = {}
    for name, value in labels.items():
        name = str(name)
        if not name.strip() or has_controls(name):
            raise InvalidAppeal(f"label name {name[:40]!r} is empty or holds control characters")
        if len(name) > name_limit:
            raise InvalidAppeal(f"label name is {len(name)} characters; the limit is {name_limit}")
        if value is None:
            continue
        # A source's label text longer than the column is kept cut, as it always was.
        out[name] = strip_controls(str(value), keep_layout=False)[:value_limit]
    return out


def clean_appeal(appeal: Appeal) -> Appeal:
    """The appeal as it will be stored, or :class:`InvalidAppeal` saying what is wrong.

    Raises:
        InvalidAppeal: The text is not an appeal text, an identifier holds control characters,
            or a field is longer than its column.
    """
    try:
        text = check_text(appeal.text)
        return replace(
            appeal,
            id=_identifier("source_id", appeal.id, "appeals", "source_id"),
            source=_identifier("source", appeal.source, "appeals", "source"),
            channel=appeal.channel,
            text=text,
            territory=_place("territory", appeal.territory, "territory"),
            address=_place("address", appeal.address, "address"),
            labels=_labels(dict(appeal.labels)),
            metadata=_scrubbed(dict(appeal.metadata)),
        )
    except (InvalidAppealText, StringTooLong) as exc:
        raise InvalidAppeal(str(exc)) from exc
