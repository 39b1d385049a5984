"""Turn an export file's bytes into a header and rows of cells, each row with its source line.

Nothing here knows about appeals: this layer only decodes (gzip, UTF-8/UTF-8-BOM/cp1251/UTF-16),
splits (CSV with a sniffed delimiter, XLSX, JSON array, JSON Lines) and remembers where every row
came from, so a rejected row can be reported by its line and its raw text. Every reader holds the
file to :class:`~mcu_nlp.ingest.limits.IngestLimits` while it reads (decompressed size, rows,
columns, characters in a cell).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from mcu_nlp.ingest.limits import EXCEL_MAX_ROWS, IngestLimits, current_limits
from mcu_nlp.ingest.result import IngestError, RowError

# Fields of up to 2 GiB: an over-long cell must become a row error (see IngestLimits), not stop
# the csv module; the file as a whole is already held to IngestLimits.max_bytes.
csv.field_size_limit(2**31 - 1)
_CHUNK = 1 << 20  # gzip output is produced (and counted) a mebibyte at a time
_HIGH_BYTES = bytes(range(0x80, 0x100))

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
        rows: One list of cells per data row, padded (or, for XLSX, cut) to the header's
            length.
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


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _too_big(what: str, limits: IngestLimits, allowed: int) -> IngestError:
    name = "max_bytes" if allowed == limits.max_bytes else "max_ratio"
    return IngestError(f"{what} is larger than the {_mib(allowed)} allowed "
                       f"({limits.describe(name)}); split the export into smaller files")


def gunzip(data: bytes, limits: IngestLimits | None = None) -> bytes:
    """Decompress gzip content (one or more members) a chunk at a time, up to the size allowed.

    Raises:
        IngestError: The stream is damaged or truncated, or unpacks to more than
            :meth:`IngestLimits.allowed_bytes` (a decompression bomb stops there).
    """
    limits = limits or current_limits()
    allowed = limits.allowed_bytes(len(data))
    pieces: list[bytes] = []
    total = 0
    rest = data
    try:
        while rest:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = rest
            while not member.eof:
                piece = member.decompress(pending, _CHUNK)
                pending = member.unconsumed_tail
                if not pending and not member.eof:
                    piece += member.flush()
                    if not member.eof:
                        raise IngestError("the gzip file is damaged or truncated: the stream "
                                          "ends before its last block")
                total += len(piece)
                if total > allowed:
                    raise _too_big("the unpacked gzip content", limits, allowed)
                pieces.append(piece)
            rest = member.unused_data
            if rest and not rest.startswith(GZIP_MAGIC):
                if rest.strip(b"\x00"):
                    raise IngestError("the gzip file is damaged: unexpected data after the end "
                                      "of the compressed stream")
                break  # zero padding after the last member
    except zlib.error as error:
        raise IngestError(f"the gzip file is damaged or truncated: {error}") from error
    return b"".join(pieces)


def unpack(data: bytes, limits: IngestLimits | None = None) -> bytes:
    """Decompress gzip content and refuse known binary formats with a clear message.

    Raises:
        IngestError: The content is a truncated gzip stream, a known non-table format, or over
            the size limits (:class:`~mcu_nlp.ingest.limits.IngestLimits`).
    """
    limits = limits or current_limits()
    if len(data) > limits.max_bytes:
        raise _too_big(f"the file ({_mib(len(data))})", limits, limits.max_bytes)
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data, limits)
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
    non_ascii = (len(data) - len(data.translate(None, _HIGH_BYTES))) or 1
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


def _header_width(header: list[Any], limits: IngestLimits) -> int:
    """The header's width; trailing unnamed columns are dropped only when it is over the limit.

    Raises:
        IngestError: The header names more columns than ``limits.max_columns``.
    """
    width = len(header)
    if width <= limits.max_columns:
        return width
    while width and _is_blank([header[width - 1]]):
        width -= 1
    if width > limits.max_columns:
        raise IngestError(f"the header has {width:,} columns, more than "
                          f"{limits.describe('max_columns')} allow")
    return width


def _too_many_rows(limits: IngestLimits) -> IngestError:
    return IngestError(f"the file has more rows than {limits.describe('max_rows')} allow; "
                       "split the export into smaller files")


def _long_cell(cells: list[Any], header: list[str], limits: IngestLimits) -> str | None:
    """Why the row is rejected when one of its text cells is longer than the limit, else None."""
    for position, cell in enumerate(cells):
        if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
            name = header[position] if position < len(header) else f"#{position + 1}"
            return (f"cell {name!r} has {len(cell):,} characters, more than "
                    f"{limits.describe('max_cell_chars')} allow")
    return None


def read_csv_table(text: str, limits: IngestLimits | None = None) -> RawTable:
    """Split decoded CSV text into a :class:`RawTable`.

    The delimiter is sniffed from the header line; Excel's ``sep=;`` first line is honoured.
    Quoted cells may span lines; each row reports the line it starts on. A row with a cell over
    ``limits.max_cell_chars`` is a row error.

    Raises:
        IngestError: No header; more columns or rows than the limits allow.
    """
    limits = limits or current_limits()
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
    width = 0
    records = 0  # records read, the header and blank ones included
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # malformed quoting: report the lines it spans, go on
            bad_spans.append((previous_end + 1, reader.line_num, f"malformed CSV row: {error}"))
            previous_end = reader.line_num
            cells = None
        records += 1
        if records > limits.max_rows + 1:
            raise _too_many_rows(limits)
        if cells is None:
            continue
        start, previous_end = previous_end + 1, reader.line_num
        # csv cells are all strings; the first cell settles it for almost every row
        blank = not (cells and (cells[0].strip() or "".join(cells).strip()))
        if header is None:
            if not blank:
                width = _header_width(cells, limits)
                header = [c.strip() for c in cells[:width]]
            continue
        if blank:
            table.blank_rows += 1
            continue
        if len(cells) > width and "".join(cells[width:]).strip():
            bad_spans.append((start, previous_end,
                              f"row has {len(cells)} cells but the header has {width} "
                              "(an unquoted delimiter in a text?)"))
            continue
        if max(map(len, cells)) > limits.max_cell_chars:
            bad_spans.append((start, previous_end, _long_cell(cells, header, limits) or ""))
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


def _check_zip(data: bytes, limits: IngestLimits) -> None:
    """Refuse a workbook whose parts unpack to more than the limits allow (a ZIP bomb).

    The sizes are those the ZIP directory declares; :mod:`zipfile` never returns more than the
    declared size of a part, so the check holds even when they lie.

    Raises:
        IngestError: The content is not a ZIP archive, or unpacks to too much.
    """
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(max(info.file_size, 0) for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise IngestError(f"not a readable XLSX workbook: {error}") from error
    allowed = limits.allowed_bytes(len(data))
    if total > allowed:
        raise _too_big(f"the unpacked workbook ({_mib(total)})", limits, allowed)


def _column_name(number: int) -> str:
    """Excel's name of a 1-based column: 1 → A, 27 → AA, 16384 → XFD."""
    name = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        name = chr(65 + remainder) + name
    return name


SparseRow = tuple[int, list[tuple[int, Any]]]


def _sparse_rows(workbook: Any, sheet: Any) -> Iterator[SparseRow]:
    """``(row number, [(column, value), ...])`` for each row the sheet stores, in file order.

    Only the cells present in the file are listed: a header cell styled at column XFD, or a row
    numbered 1,000,000, costs one entry, where openpyxl's ``iter_rows`` would pad every row to
    16,384 values and yield every missing row. Falls back to ``iter_rows`` when openpyxl's
    parser is not where this version expects it.
    """
    try:
        from openpyxl.worksheet._reader import WorkSheetParser

        source = sheet._get_source()
        parser = WorkSheetParser(source, sheet._shared_strings, data_only=workbook.data_only,
                                 epoch=workbook.epoch, date_formats=workbook._date_formats,
                                 timedelta_formats=workbook._timedelta_formats)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other openpyxl
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()  # a wrong stored size would cut columns or rows off
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [(i, v) for i, v in enumerate(values, start=1) if v is not None]
        return
    with source:
        for number, cells in parser.parse():
            yield number, [(cell["column"], cell["value"]) for cell in cells]


def read_xlsx_table(data: bytes, limits: IngestLimits | None = None) -> RawTable:
    """Read the first sheet of an XLSX workbook; each row reports its sheet row number.

    The workbook is streamed (read-only mode) and only the cells stored in the file are looked
    at: rows are cut to the header's width, a value right of the header rejects its row, and
    rows missing from the file count as blank rows without being built.

    Raises:
        IngestError: The content is not a readable XLSX workbook, or is over the limits (unpacked
            size, header columns, data rows, sheet row numbers beyond Excel's 1,048,576).
    """
    import zipfile

    from openpyxl import load_workbook

    limits = limits or current_limits()
    _check_zip(data, limits)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise IngestError(f"not a readable XLSX workbook: {error}") from error
    try:
        return _read_sheet(_sparse_rows(workbook, workbook.worksheets[0]), limits)
    except IngestError:
        raise
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        raise IngestError(f"not a readable XLSX workbook: {error}") from error
    finally:
        workbook.close()


def _read_sheet(rows: Iterator[SparseRow], limits: IngestLimits) -> RawTable:
    """Build the table from sparse sheet rows (see :func:`_sparse_rows`)."""
    header: list[str] | None = None
    width = 0
    table = RawTable(header=[])
    expected = 1  # the next row number; openpyxl skips rows listed out of order, so do we
    for number, stored in rows:
        if number > EXCEL_MAX_ROWS:
            raise IngestError(f"the sheet has rows numbered beyond {EXCEL_MAX_ROWS:,}, the most "
                              "an Excel sheet holds; the workbook is damaged")
        if number < expected:
            continue
        if header is not None:
            table.blank_rows += number - expected  # rows missing from the file are empty
        expected = number + 1
        if header is None:
            if _is_blank([value for _, value in stored]):
                continue
            values: list[Any] = [None] * max(column for column, _ in stored)
            for column, value in stored:
                values[column - 1] = value
            width = _header_width(values, limits)
            header = ["" if c is None else str(c).strip() for c in values[:width]]
            continue
        cells: list[Any] = [None] * width
        beyond: list[str] = []
        for column, value in stored:
            if column <= width:
                cells[column - 1] = _excel_cell(value)
            elif not _is_blank([value]):
                beyond.append(f"[{_column_name(column)}] {value}")
        if not beyond and _is_blank(cells):
            table.blank_rows += 1
            continue
        if len(table.rows) + len(table.errors) >= limits.max_rows:
            raise _too_many_rows(limits)
        if beyond:
            table.errors.append(RowError(number, f"row has values beyond the header's {width} "
                                                 "columns", "\t".join([_tab_join(cells), *beyond])))
            continue
        reason = _long_cell(cells, header, limits)
        if reason is not None:
            table.errors.append(RowError(number, reason, _tab_join(cells)))
            continue
        table.rows.append(cells)
        table.lines.append(number)
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


def _long_json_cell(record: dict[str, Any], raw: str, limits: IngestLimits) -> str | None:
    """Why a JSON record is rejected when one of its values is over ``max_cell_chars``."""
    if len(raw) <= limits.max_cell_chars:  # no value can be longer than its whole record
        return None
    for key, value in record.items():
        size = (len(value) if isinstance(value, str) else
                len(json.dumps(value, ensure_ascii=False)) if isinstance(value, dict | list)
                else 0)
        if size > limits.max_cell_chars:
            return (f"cell {str(key)!r} has {size:,} characters, more than "
                    f"{limits.describe('max_cell_chars')} allow")
    return None


def _objects_to_table(objects: list[tuple[int, Any, str]], table: RawTable,
                      limits: IngestLimits) -> RawTable:
    """Fill ``table`` from ``(line, value, raw)`` triples; non-objects become row errors.

    Raises:
        IngestError: More objects than ``max_rows`` or more distinct keys than ``max_columns``
            (every row holds a cell per key: many keys times many rows would not fit in memory).
    """
    if len(objects) + len(table.errors) > limits.max_rows:
        raise _too_many_rows(limits)
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
        reason = _long_json_cell(value, raw, limits)
        if reason is not None:
            table.errors.append(RowError(line, reason, raw))
            continue
        header.update(dict.fromkeys(str(k) for k in value))
        if len(header) > limits.max_columns:
            raise IngestError(f"the objects have more than {limits.describe('max_columns')} "
                              "distinct keys")
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


def read_json_lines_table(text: str, limits: IngestLimits | None = None) -> RawTable:
    """Read JSON Lines: one object per line; a line that does not parse is a row error.

    Raises:
        IngestError: More lines, or keys, than the limits allow.
    """
    limits = limits or current_limits()
    table = RawTable(header=[])
    objects: list[tuple[int, Any, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number > limits.max_rows:
            raise _too_many_rows(limits)
        if not line.strip():
            continue
        try:
            objects.append((number, json.loads(line), line))
        except (ValueError, RecursionError) as error:
            reason = _json_reason(error)
            table.errors.append(RowError(number, f"malformed JSON line: {reason}", line))
    return _objects_to_table(objects, table, limits)


def read_json_table(text: str, limits: IngestLimits | None = None) -> RawTable:
    """Read a JSON array of objects (or ``{"key": [...]}``); falls back to JSON Lines.

    A truncated or broken array keeps every object before the damage; the rest of the file
    becomes one row error at the line where the damage starts.

    Raises:
        IngestError: The text is not JSON at all, or holds more objects or keys than the limits
            allow.
    """
    limits = limits or current_limits()
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
            return _read_wrapper(text, document, limits)
        try:
            json.loads(body.split("\n", 1)[0])
            return read_json_lines_table(text, limits)  # one object per line
        except (ValueError, RecursionError):
            pass
        # A damaged wrapper object such as {"items": [...]: read its first array.
        match = re.search(r'"[^"\\]*"\s*:\s*\[', text)
        if match is None:
            return read_json_lines_table(text, limits)
        start = match.end() - 1
    elif body[0] != "[":
        raise IngestError("not JSON: the file starts with neither '[' nor '{'")
    return _read_array(text, start, limits)


def _read_wrapper(text: str, document: dict[str, Any], limits: IngestLimits) -> RawTable:
    """A whole-file object: ``{"items": [{...}, ...]}`` is read from its array; else one record."""
    key = next((k for k, v in document.items()
                if isinstance(v, list) and any(isinstance(x, dict) for x in v)), None)
    if key is None:
        return _objects_to_table([(1, document, text)], RawTable(header=[]), limits)
    quoted = re.escape(json.dumps(key, ensure_ascii=False))
    match = re.search(quoted + r"\s*:\s*\[", text)
    if match is not None:
        return _read_array(text, match.end() - 1, limits)
    # The key is escaped differently in the file: read the parsed array, without line numbers.
    return _objects_to_table([(1, value, json.dumps(value, ensure_ascii=False))
                              for value in document[key]], RawTable(header=[]), limits)


def _read_array(text: str, start: int, limits: IngestLimits) -> RawTable:
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
        if len(objects) > limits.max_rows:
            raise _too_many_rows(limits)
        position = end
    return _objects_to_table(objects, table, limits)
