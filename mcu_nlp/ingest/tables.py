"""Turn an export file's bytes into a header and rows of cells, each row with its source line.

Nothing here knows about appeals: this layer only decodes (gzip, UTF-8/UTF-8-BOM/cp1251/UTF-16),
splits (CSV with a sniffed delimiter, XLSX, JSON array, JSON Lines) and remembers where every row
came from, so a rejected row can be reported by its line and its raw text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from mcu_nlp.ingest.result import IngestError, RowError

# Fields of up to 2 GiB: an over-long text must become a row error, not stop the csv module.
csv.field_size_limit(2**31 - 1)

_MAGIC = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\xd0\xcf\x11\xe0": "an old binary Excel (.xls) or Word file; save it as .xlsx or CSV",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
ZIP_MAGIC = b"PK\x03\x04"
GZIP_MAGIC = b"\x1f\x8b"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")


@dataclass
class RawTable:
    """Rows of cells aligned to a header, with their source lines.

    Attributes:
        header: Column names as in the file.
        rows: One list of cells per data row, padded to the header's length.
        lines: 1-based source line of each row.
        errors: Rows that could not even be split into cells (malformed JSON, extra cells).
        blank_rows: Rows without any value, skipped.
        raw_of: Returns the raw source text of ``rows[i]``.
        encoding: Encoding the text was decoded with; ``None`` for XLSX.
        looks_binary: Whether the content looked like binary data (for error messages).
    """

    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    blank_rows: int = 0
    raw_of: Callable[[int], str] = lambda i: ""
    encoding: str | None = None
    looks_binary: bool = False


def _is_blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def unpack(data: bytes) -> bytes:
    """Decompress gzip content and refuse known binary formats with a clear message.

    Raises:
        IngestError: The content is a truncated gzip stream or a known non-table format.
    """
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise IngestError(f"the gzip file is damaged or truncated: {error}") from error
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise IngestError(f"this is {what}, not a table export (CSV, XLSX or JSON)")
    return data


def binary_share(text: str) -> float:
    """Share of control characters and decoding failures in the first 64 KiB of ``text``."""
    head = text[:65536]
    return len(_CONTROL.findall(head)) / max(len(head), 1)


def decode(data: bytes) -> tuple[str, str]:
    """Decode export bytes, detecting UTF-8 (with or without BOM), UTF-16 (BOM) and cp1251.

    A UTF-8 file with a few undecodable bytes stays UTF-8: those bytes become U+FFFD and only
    the rows that hold them are rejected. A file where most non-ASCII bytes fail as UTF-8 is
    cp1251 (Windows Excel exports of the 2000s–2010s).

    Returns:
        The text and the name of the encoding used.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    as_utf8 = data.decode("utf-8", errors="replace")
    failures = as_utf8.count("\ufffd")
    non_ascii = sum(1 for b in data if b >= 0x80) or 1
    # Real cp1251 Cyrillic fails as UTF-8 on about every second-to-every non-ASCII byte; a UTF-8
    # file with one garbage row fails on a small share of them.
    if failures / non_ascii < 0.25:
        return as_utf8, "utf-8"
    return data.decode("cp1251", errors="replace"), "cp1251"


def _sniff_delimiter(first_line: str) -> str:
    """The delimiter used in the header line: the most frequent of ``, ; TAB |`` outside quotes."""
    counts = dict.fromkeys(",;\t|", 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


def read_csv_table(text: str) -> RawTable:
    """Split decoded CSV text into a :class:`RawTable`.

    The delimiter is sniffed from the header line; Excel's ``sep=;`` first line is honoured.
    Quoted cells may span lines; each row reports the line it starts on.
    """
    stream = io.StringIO(text, newline="")
    first = stream.readline()
    offset = 0
    if first.lower().startswith("sep=") and len(first.strip()) == 5:
        delimiter = first.strip()[4]
        offset = 1
    else:
        stream.seek(0)
        delimiter = _sniff_delimiter(first)
    reader = csv.reader(stream, delimiter=delimiter)
    header: list[str] | None = None
    table = RawTable(header=[])
    spans: list[tuple[int, int]] = []
    bad_spans: list[tuple[int, int, str]] = []
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # malformed quoting: report the lines it spans, go on
            bad_spans.append((previous_end + 1, reader.line_num, f"malformed CSV row: {error}"))
            previous_end = reader.line_num
            continue
        start, previous_end = previous_end + 1, reader.line_num
        # csv cells are all strings; the first cell settles it for almost every row
        blank = not (cells and (cells[0].strip() or "".join(cells).strip()))
        if header is None:
            if not blank:
                header = [c.strip() for c in cells]
            continue
        if blank:
            table.blank_rows += 1
            continue
        width = len(header)
        if len(cells) > width and "".join(cells[width:]).strip():
            bad_spans.append((start, previous_end,
                              f"row has {len(cells)} cells but the header has {width} "
                              "(an unquoted delimiter in a text?)"))
            continue
        table.rows.append(cells if len(cells) == width
                          else cells[:width] + [None] * (width - len(cells)))
        spans.append((start, previous_end))
    if header is None:
        raise IngestError("the file is empty: no header row found")
    table.header = header
    table.lines = [start + offset for start, _ in spans]

    all_lines: list[str] = []

    def raw_span(start: int, end: int) -> str:
        if not all_lines:
            all_lines.extend(io.StringIO(text, newline="").readlines())
        return "".join(all_lines[start - 1 + offset:end + offset]).rstrip("\r\n")

    table.raw_of = lambda i: raw_span(*spans[i])
    table.errors = [RowError(start + offset, reason, raw_span(start, end))
                    for start, end, reason in bad_spans]
    return table


def _excel_cell(value: Any) -> Any:
    if isinstance(value, time) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def read_xlsx_table(data: bytes) -> RawTable:
    """Read the first sheet of an XLSX workbook; each row reports its sheet row number.

    Raises:
        IngestError: The content is not a readable XLSX workbook.
    """
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise IngestError(f"not a readable XLSX workbook: {error}") from error
    try:
        sheet = workbook.worksheets[0]
        if hasattr(sheet, "reset_dimensions"):
            # Some exporters write a wrong sheet size; read-only mode would trust it and cut
            # columns or rows off.
            sheet.reset_dimensions()
        header: list[str] | None = None
        table = RawTable(header=[])
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_excel_cell(v) for v in values]
            if header is None:
                if _is_blank(cells):
                    continue
                header = ["" if c is None else str(c).strip() for c in cells]
                continue
            if _is_blank(cells):
                table.blank_rows += 1
                continue
            width = len(header)
            if len(cells) > width and not _is_blank(cells[width:]):
                table.errors.append(RowError(number, f"row has values beyond the header's "
                                                     f"{width} columns", _tab_join(cells)))
                continue
            table.rows.append(cells[:width] + [None] * (width - len(cells)))
            table.lines.append(number)
    finally:
        workbook.close()
    if header is None:
        raise IngestError("the workbook's first sheet is empty: no header row found")
    table.header = header
    table.raw_of = lambda i: _tab_join(table.rows[i])
    return table


def _tab_join(cells: list[Any]) -> str:
    return "\t".join("" if c is None else str(c) for c in cells)


class _LineCounter:
    """1-based line of a position in ``text``, for positions visited in increasing order."""

    def __init__(self, text: str) -> None:
        self.text, self.position, self.line = text, 0, 1

    def __call__(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _objects_to_table(objects: list[tuple[int, Any, str]], table: RawTable) -> RawTable:
    """Fill ``table`` from ``(line, value, raw)`` triples; non-objects become row errors."""
    header: dict[str, None] = {}
    records: list[tuple[int, dict[str, Any], str]] = []
    for line, value, raw in objects:
        if not isinstance(value, dict):
            table.errors.append(RowError(line, f"expected a JSON object, got "
                                               f"{type(value).__name__}", raw))
            continue
        if not value or all(v is None or (isinstance(v, str) and not v.strip())
                            for v in value.values()):
            table.blank_rows += 1
            continue
        header.update(dict.fromkeys(str(k) for k in value))
        records.append((line, value, raw))
    table.header = list(header)
    table.rows = [[record.get(key) for key in table.header] for _, record, _ in records]
    table.lines = [line for line, _, _ in records]
    table.raw_of = lambda i: records[i][2]
    return table


def _json_reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    return "nested too deep" if isinstance(error, RecursionError) else str(error)


def read_json_lines_table(text: str) -> RawTable:
    """Read JSON Lines: one object per line; a line that does not parse is a row error."""
    table = RawTable(header=[])
    objects: list[tuple[int, Any, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            objects.append((number, json.loads(line), line))
        except (ValueError, RecursionError) as error:
            reason = _json_reason(error)
            table.errors.append(RowError(number, f"malformed JSON line: {reason}", line))
    return _objects_to_table(objects, table)


def read_json_table(text: str) -> RawTable:
    """Read a JSON array of objects (or ``{"key": [...]}``); falls back to JSON Lines.

    A truncated or broken array keeps every object before the damage; the rest of the file
    becomes one row error at the line where the damage starts.

    Raises:
        IngestError: The text is not JSON at all.
    """
    body = text.lstrip()
    if not body:
        raise IngestError("the file is empty")
    start = len(text) - len(body)
    if body[0] == "{":
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            return _read_wrapper(text, document)
        try:
            json.loads(body.split("\n", 1)[0])
            return read_json_lines_table(text)  # one object per line
        except (ValueError, RecursionError):
            pass
        # A damaged wrapper object such as {"items": [...]: read its first array.
        match = re.search(r'"[^"\\]*"\s*:\s*\[', text)
        if match is None:
            return read_json_lines_table(text)
        start = match.end() - 1
    elif body[0] != "[":
        raise IngestError("not JSON: the file starts with neither '[' nor '{'")
    return _read_array(text, start)


def _read_wrapper(text: str, document: dict[str, Any]) -> RawTable:
    """A whole-file object: ``{"items": [{...}, ...]}`` is read from its array; else one record."""
    key = next((k for k, v in document.items()
                if isinstance(v, list) and any(isinstance(x, dict) for x in v)), None)
    if key is None:
        return _objects_to_table([(1, document, text)], RawTable(header=[]))
    quoted = re.escape(json.dumps(key, ensure_ascii=False))
    match = re.search(quoted + r"\s*:\s*\[", text)
    if match is not None:
        return _read_array(text, match.end() - 1)
    # The key is escaped differently in the file: read the parsed array, without line numbers.
    return _objects_to_table([(1, value, json.dumps(value, ensure_ascii=False))
                              for value in document[key]], RawTable(header=[]))


def _read_array(text: str, start: int) -> RawTable:
    decoder = json.JSONDecoder()
    line_at = _LineCounter(text)
    table = RawTable(header=[])
    objects: list[tuple[int, Any, str]] = []
    position = start + 1
    whitespace = re.compile(r"[\s,]*")
    while True:
        position = whitespace.match(text, position).end()  # type: ignore[union-attr]
        if position >= len(text):
            table.errors.append(RowError(line_at(position), "the JSON array is not "
                                         "closed: the file looks truncated", ""))
            break
        if text[position] == "]":
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as error:
            reason = _json_reason(error)
            table.errors.append(RowError(line_at(position),
                                         f"malformed JSON ({reason}); the file looks truncated or "
                                         "damaged from here on", text[position:]))
            break
        objects.append((line_at(position), value, text[position:end]))
        position = end
    return _objects_to_table(objects, table)
