"""Turn a :class:`~mcu_nlp.ingest.tables.RawTable` into appeals and row errors, column by column."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.ingest.mapping import ColumnMapping, ResolvedMapping, parse_channel
from mcu_nlp.ingest.result import ReadResult, RowError
from mcu_nlp.ingest.tables import RawTable
from mcu_nlp.ingest.timestamps import parse_timestamps
from mcu_nlp.records import Appeal
from mcu_nlp.text.normalize import looks_like_html, strip_html

MAX_TEXT_CHARS = 20_000
"""Longest accepted text; longer ones are rejected (the API applies the same limit)."""

_BINARY_MARK = re.compile(r"[\x00\ufffd]")
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Starts only where a run of spaces starts (else a search rescans long runs: quadratic).
_BLANK_LINES = re.compile(r"(?<![ \t])[ \t]*+\n(?:[ \t]*+\n)+")


def _cell_to_str(value: Any, strip_quote: bool, keep_nested: bool = True) -> Any:
    """A cell as trimmed text; ``None`` for empty cells and NaN.

    Nested JSON values (objects, arrays) stay as they are when ``keep_nested`` (metadata, text —
    which then fails validation), else they become their JSON text.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(int(value)) if value.is_integer() and abs(value) < 2**63 else repr(value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        return value if keep_nested else json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = str(value)
        except ValueError:  # an integer too long to print (Python's 4,300-digit limit)
            text = "<unprintable number>"
    if strip_quote and text.startswith("'"):
        text = text[1:]
    return text.strip() or None


def _clean(column: Sequence[Any], strip_quote: bool, keep_nested: bool = False) -> list[Any]:
    """A column of cells as trimmed text (see :func:`_cell_to_str`)."""
    if not strip_quote:  # fast path for CSV, where every cell is a string
        return [(v.strip() or None) if v.__class__ is str else
                _cell_to_str(v, strip_quote, keep_nested) for v in column]
    return [_cell_to_str(v, strip_quote, keep_nested) for v in column]


def _clean_html(text: str | None) -> str | None:
    if text is None or not isinstance(text, str) or not looks_like_html(text):
        return text
    cleaned = _BLANK_LINES.sub("\n\n", strip_html(text)).strip()
    return cleaned or None


def looks_binary(text: str) -> bool:
    """Whether a text holds binary garbage: NUL bytes, undecodable bytes or many control codes."""
    if _BINARY_MARK.search(text):
        return True
    controls = len(_CONTROL.findall(text)) if _CONTROL.search(text) else 0
    return controls > max(3, len(text) // 50)


def _numbers(values: list[Any], integer: bool) -> list[Any]:
    """Numbers where the cell reads as one; the raw value is kept where it does not."""
    try:
        parsed = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        numbers = parsed.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):  # nested JSON, huge integers: keep as is
        return values
    finite = np.isfinite(numbers)
    whole = finite & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**53)
    as_int = whole if integer else np.zeros_like(finite)
    return [raw if raw is None or not ok else int(x) if is_int else x
            for raw, x, ok, is_int in zip(values, numbers.tolist(), finite.tolist(),
                                          as_int.tolist(), strict=True)]


def _isoformat(values: list[Any]) -> list[Any]:
    """ISO 8601 strings where a cell reads as a timestamp; the raw text is kept elsewhere."""
    stamps = parse_timestamps(values)
    return [raw if stamp is None else stamp.isoformat() for raw, stamp in zip(values, stamps,
                                                                               strict=True)]


def _stable_id(created_at: datetime, text: str) -> str:
    return hashlib.sha1(f"{created_at.isoformat()}\n{text}".encode(), usedforsecurity=False
                        ).hexdigest()[:20]


def _coalesce(columns: Sequence[list[Any]], n: int) -> list[str | None]:
    if not columns:
        return [None] * n
    if len(columns) == 1:
        return columns[0]
    return [next((v for v in values if v is not None), None)
            for values in zip(*columns, strict=True)]


def _join(columns: Sequence[list[Any]], n: int) -> list[str | None]:
    if not columns:
        return [None] * n
    if len(columns) == 1:
        return columns[0]
    return [", ".join(str(v) for v in values if v is not None) or None
            for values in zip(*columns, strict=True)]


def build_appeals(table: RawTable, mapping: ColumnMapping, *, kind: str) -> ReadResult:
    """Validate the rows of ``table`` and turn the good ones into appeals.

    A row is rejected, with every reason that applies, when its id is empty, its text is
    empty, holds binary data or is longer than :data:`MAX_TEXT_CHARS` characters, or its filing
    time is missing, unreadable or outside 1990–2099.

    Raises:
        IngestError: A required column is missing from the header.
    """
    resolved: ResolvedMapping = mapping.resolve(table.header)
    quote = mapping.strip_excel_quote
    n = len(table.rows)
    cells: list[Sequence[Any]] = (list(zip(*table.rows, strict=True)) if n
                                  else [()] * len(table.header))

    def column(position: int, keep_nested: bool = False) -> list[Any]:
        return _clean(cells[position], quote, keep_nested)

    texts = column(resolved.text, keep_nested=True)
    if mapping.html_text:
        texts = [_clean_html(t) for t in texts]
    raw_dates = cells[resolved.created_at]
    created = parse_timestamps(raw_dates)
    ids = column(resolved.id) if resolved.id is not None else None
    territory = _coalesce([column(p) for p in resolved.territory], n)
    address = _join([column(p) for p in resolved.address], n)
    channels = column(resolved.channel) if resolved.channel is not None else [None] * n
    labels = {name: column(p) for name, p in resolved.labels.items()}
    metadata = {key: column(p, keep_nested=True) for key, p in resolved.metadata.items()}
    for key in mapping.html_fields:
        if key in metadata:
            metadata[key] = [_clean_html(v) for v in metadata[key]]
    for keys, convert in ((mapping.date_fields, _isoformat),
                          (mapping.int_fields, lambda v: _numbers(v, integer=True)),
                          (mapping.float_fields, lambda v: _numbers(v, integer=False))):
        for key in keys:
            if key in metadata:
                metadata[key] = convert(metadata[key])
    metadata_keys = list(metadata)
    metadata_rows = list(zip(*metadata.values(), strict=True)) if metadata else [()] * n
    label_names = list(labels)
    label_rows = list(zip(*labels.values(), strict=True)) if labels else [()] * n

    # One scan of all texts together: binary garbage is rare, so most files skip the per-row check.
    joined = "\n".join(t for t in texts if isinstance(t, str))
    check_binary = bool(_BINARY_MARK.search(joined) or _CONTROL.search(joined))
    result = ReadResult(errors=list(table.errors), blank_rows=table.blank_rows, kind=kind,
                        encoding=table.encoding)
    for i, meta_values, label_values in zip(range(n), metadata_rows, label_rows, strict=True):
        text, stamp = texts[i], created[i]
        problems = []
        if ids is not None and ids[i] is None:
            problems.append("empty id")
        if text is None:
            problems.append("empty text")
        elif not isinstance(text, str):
            problems.append(f"text is a {type(text).__name__}, not a string")
        elif check_binary and looks_binary(text):
            problems.append("binary or undecodable bytes in the text")
        elif len(text) > MAX_TEXT_CHARS:
            problems.append(f"text too long: {len(text):,} characters > {MAX_TEXT_CHARS:,}")
        if stamp is None:
            value = raw_dates[i]
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append("empty created_at")
            else:
                problems.append(f"unreadable or implausible created_at {str(value)[:60]!r}")
        if problems:
            result.errors.append(RowError(table.lines[i], "; ".join(problems), table.raw_of(i)))
            continue
        assert text is not None and stamp is not None
        meta = dict(zip(metadata_keys, meta_values, strict=True))
        channel = parse_channel(channels[i], mapping.default_channel)
        if channel is None:
            meta["channel_raw"] = channels[i]
            channel = mapping.default_channel
        result.appeals.append(Appeal(
            id=ids[i] if ids is not None else _stable_id(stamp, text),  # type: ignore[arg-type]
            channel=channel,
            source=mapping.source,
            created_at=stamp,
            text=text,
            territory=territory[i],
            address=address[i],
            labels={k: v for k, v in zip(label_names, label_values, strict=True)
                    if v is not None},
            metadata=meta,
        ))
        result.lines.append(table.lines[i])
    result.errors.sort(key=lambda e: e.line)
    return result
