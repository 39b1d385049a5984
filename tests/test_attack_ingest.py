"""Attack: compressed, padded and oversized exports are refused early, in bounded time and memory.

Before the limits a 0.41 MB ``.csv.gz`` took 4.8 GB to read and a 0.11 MB ``.xlsx`` with a
header out to column XFD took 132 s and 5.7 GB. Each test below plants such a file, checks the
clear :class:`IngestError` (or the per-row :class:`RowError` for an over-long cell), that it
comes fast and within a memory bound (:mod:`tracemalloc`), and that no good row is lost.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcu_nlp.ingest import (
    IngestError,
    IngestLimits,
    ReadResult,
    current_limits,
    read_appeals,
    read_appeals_bytes,
)
from mcu_nlp.ingest.tables import gunzip

MiB = 1 << 20
HEADER = "id,created_at,text"


def _row(i: int, text: str | None = None) -> str:
    return f"{i},2024-05-01 10:00,{text or f'Обращение номер {i} про двор'}"


def _csv(n: int, *, start: int = 1) -> str:
    return "\n".join([HEADER, *(_row(i) for i in range(start, start + n))]) + "\n"


@dataclass
class Measured:
    """Elapsed seconds and peak traced memory of a block."""

    seconds: float = 0.0
    peak_mib: float = 0.0


@contextmanager
def measured(trace: bool = True) -> Iterator[Measured]:
    """Time a block and trace its peak Python memory (tracing slows Python code several times,
    so time-critical checks run a second time with ``trace=False``)."""
    result = Measured()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        if trace:
            result.peak_mib = tracemalloc.get_traced_memory()[1] / MiB
            tracemalloc.stop()


def _bomb(content_unit: bytes, total_bytes: int) -> bytes:
    """A gzip stream of ``total_bytes`` of repeated ``content_unit``, built a chunk at a time."""
    chunk = content_unit * (MiB // len(content_unit))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(chunk) for _ in range(total_bytes // len(chunk))]
    return b"".join([*parts, compressor.flush()])


# --- gzip ---------------------------------------------------------------------------------------

def test_gzip_bomb_is_refused_early_with_default_limits(tmp_path: Path) -> None:
    """256 MiB of CSV in a ~250 KB gzip: refused after 64 MiB (the ratio floor), not read."""
    header = (HEADER + "\n").encode()
    data = gzip.compress(header) + _bomb(b"1,2024-05-01 10:00,text\n", 256 * MiB)
    assert len(data) < MiB
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(data)
    with measured() as cost, pytest.raises(IngestError, match=r"larger than the 64\.0 MiB"):
        read_appeals(path)
    assert cost.seconds < 10
    assert cost.peak_mib < 160, f"peak {cost.peak_mib:.0f} MiB"


def test_gzip_within_the_limits_loses_no_row() -> None:
    """Two gzip members and zero padding: every row of both members is read."""
    data = gzip.compress(_csv(300).encode()) + gzip.compress(
        "\n".join(_row(i) for i in range(301, 401)).encode() + b"\n") + b"\x00" * 64
    result = read_appeals_bytes(data, filename="x.csv.gz")
    assert [a.id for a in result.appeals] == [str(i) for i in range(1, 401)]
    assert not result.errors


def test_gzip_over_max_bytes_names_the_limit() -> None:
    limits = IngestLimits(max_bytes=MiB, ratio_floor=MiB)
    data = gzip.compress(_csv(40_000).encode())
    with pytest.raises(IngestError, match="MCU_INGEST_MAX_BYTES"):
        read_appeals_bytes(data, filename="x.csv.gz", limits=limits)
    small = gzip.compress(_csv(1_000).encode())
    assert len(read_appeals_bytes(small, filename="x.csv.gz", limits=limits).appeals) == 1_000


@pytest.mark.parametrize(("data", "message"), [
    (gzip.compress(_csv(2_000).encode())[:-40], "truncated"),
    (gzip.compress(_csv(10).encode()) + b"garbage", "unexpected data"),
    (b"\x1f\x8b\x08\x00" + b"\xff" * 64, "damaged"),
])
def test_damaged_gzip_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(IngestError, match=message):
        read_appeals_bytes(data, filename="x.csv.gz")


def test_gunzip_streams_in_chunks() -> None:
    """The bomb is stopped once past the allowance: memory stays near the allowance."""
    data = _bomb(b"\x00", 512 * MiB)
    limits = IngestLimits(max_bytes=8 * MiB, ratio_floor=8 * MiB)
    with measured() as cost, pytest.raises(IngestError, match="larger than"):
        gunzip(data, limits)
    assert cost.peak_mib < 32 and cost.seconds < 5


def test_uncompressed_file_over_max_bytes_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(_csv(50_000))
    limits = IngestLimits(max_bytes=MiB)
    with measured() as cost, pytest.raises(IngestError, match="MCU_INGEST_MAX_BYTES"):
        read_appeals(path, limits=limits)
    assert cost.peak_mib < 8


# --- CSV rows, columns, cells ------------------------------------------------------------------

def test_csv_rows_over_max_rows_are_refused_exactly_at_the_limit() -> None:
    limits = IngestLimits(max_rows=500)
    result = read_appeals_bytes(_csv(500).encode(), filename="a.csv", limits=limits)
    assert len(result.appeals) == 500
    with pytest.raises(IngestError, match="MCU_INGEST_MAX_ROWS"):
        read_appeals_bytes(_csv(501).encode(), filename="a.csv", limits=limits)


def test_csv_of_blank_lines_is_refused_fast() -> None:
    """3 million empty lines (3 MB; a few KB gzipped): refused at max_rows, not read to the end."""
    data = (HEADER + "\n" + "\n" * 3_000_000).encode()
    with measured(trace=False) as cost, pytest.raises(IngestError, match="max_rows"):
        read_appeals_bytes(data, filename="a.csv")
    assert cost.seconds < 5


def test_csv_header_of_absurd_width_is_refused() -> None:
    header = ",".join(f"c{i}" for i in range(20_000))
    with measured() as cost, pytest.raises(IngestError, match=r"20,000 columns.*MAX_COLUMNS"):
        read_appeals_bytes(f"{header}\n1,2\n".encode(), filename="a.csv")
    assert cost.seconds < 5


def test_csv_header_with_trailing_empty_columns_is_trimmed() -> None:
    """Excel's trailing delimiters out to a far column do not count as columns."""
    lines = [HEADER + "," * 5_000, *(_row(i) + "," * 5_000 for i in range(1, 51))]
    result = read_appeals_bytes(("\n".join(lines) + "\n").encode(), filename="a.csv")
    assert len(result.appeals) == 50 and not result.errors


def test_csv_over_long_cell_rejects_only_its_row() -> None:
    limits = current_limits()
    long_text = "ж" * (limits.max_cell_chars + 1)
    data = "\n".join([HEADER, _row(1), _row(2, long_text), _row(3)]) + "\n"
    with measured() as cost:
        result = read_appeals_bytes(data.encode(), filename="a.csv")
    assert [a.id for a in result.appeals] == ["1", "3"]
    [error] = result.errors
    assert error.line == 3 and "'text'" in error.reason
    assert "MCU_INGEST_MAX_CELL_CHARS" in error.reason
    assert long_text in error.raw  # the row is kept for the curator to fix and re-send
    assert cost.seconds < 5


def test_csv_over_long_metadata_cell_rejects_its_row() -> None:
    limits = IngestLimits(max_cell_chars=1_000)
    data = "id,created_at,text,note\n1,2024-05-01,Текст,ok\n2,2024-05-01,Текст," + "x" * 1_001
    result = read_appeals_bytes(data.encode(), filename="a.csv", limits=limits)
    assert [a.id for a in result.appeals] == ["1"]
    assert "'note'" in result.errors[0].reason


# --- XLSX ---------------------------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def _cell(ref: str, value: object | None) -> str:
    if value is None:
        return f'<c r="{ref}"/>'  # a formatted but empty cell, as Excel writes for styled ranges
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _sheet_row(number: int, cells: list[tuple[str, object | None]]) -> str:
    cells_xml = "".join(_cell(f"{col}{number}", v) for col, v in cells)
    return f'<row r="{number}">{cells_xml}</row>'


def _xlsx(rows: list[str], extra: dict[str, bytes] | None = None) -> bytes:
    """A minimal workbook (inline strings) whose first sheet holds the given ``<row>`` elements."""
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
             'openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + "".join(rows)
             + "</sheetData></worksheet>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _data_cells(i: int) -> list[tuple[str, object | None]]:
    return [("A", i), ("B", "2024-05-01 10:00"), ("C", f"Обращение {i}")]


HEADER_CELLS = [("A", "id"), ("B", "created_at"), ("C", "text")]


def _read_xlsx(data: bytes, **kwargs: Any) -> ReadResult:
    return read_appeals_bytes(data, filename="a.xlsx", **kwargs)


def _padded_xlsx(n: int) -> bytes:
    rows = [_sheet_row(1, [*HEADER_CELLS, ("XFD", None)])]
    rows += [_sheet_row(i + 1, [*_data_cells(i), ("XFD", None)]) for i in range(1, n + 1)]
    return _xlsx(rows)


def test_xlsx_padded_to_column_xfd_reads_fast_in_bounded_memory() -> None:
    """Header and every row styled out to XFD (16,384 columns): nothing is padded.

    Padded, 2,000 such rows held 2,000 × 16,384 cells (over 250 MB) and 20,000 took minutes.
    """
    data = _padded_xlsx(20_000)
    assert len(data) < MiB
    with measured(trace=False) as cost:
        result = _read_xlsx(data)
    assert len(result.appeals) == 20_000 and not result.errors
    assert cost.seconds < 20, f"{cost.seconds:.1f} s"
    with measured() as cost:
        result = _read_xlsx(_padded_xlsx(2_000))
    assert len(result.appeals) == 2_000 and not result.errors
    assert cost.peak_mib < 40, f"peak {cost.peak_mib:.0f} MiB"


def test_xlsx_header_named_out_to_xfd_is_refused() -> None:
    rows = [_sheet_row(1, [*HEADER_CELLS, ("XFD", "far")]), _sheet_row(2, _data_cells(1))]
    with measured() as cost, pytest.raises(IngestError, match=r"16,384 columns.*MAX_COLUMNS"):
        _read_xlsx(_xlsx(rows))
    assert cost.seconds < 5 and cost.peak_mib < 50


def test_xlsx_value_far_right_of_the_header_rejects_only_its_row() -> None:
    rows = [_sheet_row(1, HEADER_CELLS), _sheet_row(2, _data_cells(1)),
            _sheet_row(3, [*_data_cells(2), ("XFD", "спрятано")]), _sheet_row(4, _data_cells(3))]
    result = _read_xlsx(_xlsx(rows))
    assert [a.id for a in result.appeals] == ["1", "3"]
    [error] = result.errors
    assert error.line == 3 and "beyond the header" in error.reason
    assert "[XFD] спрятано" in error.raw and "Обращение 2" in error.raw


def test_xlsx_far_row_numbers() -> None:
    """A row numbered 1,000,000 is counted blank rows without building them; past Excel: refused."""
    rows = [_sheet_row(1, HEADER_CELLS), _sheet_row(2, _data_cells(1)),
            _sheet_row(1_000_000, _data_cells(2))]
    with measured() as cost:
        result = _read_xlsx(_xlsx(rows))
    assert [a.id for a in result.appeals] == ["1", "2"]
    assert result.blank_rows == 1_000_000 - 3
    assert result.lines == [2, 1_000_000]
    assert cost.seconds < 5 and cost.peak_mib < 50
    rows[-1] = _sheet_row(2_000_000_000, _data_cells(2))
    with measured() as cost, pytest.raises(IngestError, match="1,048,576"):
        _read_xlsx(_xlsx(rows))
    assert cost.seconds < 5


def test_xlsx_zip_bomb_is_refused_before_unpacking() -> None:
    """A 100 MiB shared-strings part compressed to ~100 KB: refused on its declared size."""
    rows = [_sheet_row(1, HEADER_CELLS), _sheet_row(2, _data_cells(1))]
    data = _xlsx(rows, extra={"xl/sharedStrings.xml": b" " * (100 * MiB)})
    assert len(data) < MiB
    with measured() as cost, pytest.raises(IngestError, match="unpacked workbook"):
        _read_xlsx(data)
    assert cost.seconds < 5 and cost.peak_mib < 50


def test_xlsx_rows_over_max_rows_and_long_cells() -> None:
    rows = [_sheet_row(1, HEADER_CELLS)] + [_sheet_row(i + 1, _data_cells(i)) for i in range(1, 6)]
    with pytest.raises(IngestError, match="MCU_INGEST_MAX_ROWS"):
        _read_xlsx(_xlsx(rows), limits=IngestLimits(max_rows=4))
    rows.append(_sheet_row(7, [("A", 6), ("B", "2024-05-01"), ("C", "щ" * 2_001)]))
    result = _read_xlsx(_xlsx(rows), limits=IngestLimits(max_cell_chars=2_000))
    assert [a.id for a in result.appeals] == ["1", "2", "3", "4", "5"]
    assert result.errors[0].line == 7 and "max_cell_chars" in result.errors[0].reason


def test_real_openpyxl_workbook_still_reads() -> None:
    """A workbook written by openpyxl (shared strings, styles, dates) reads as before."""
    from datetime import datetime

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["id", "created_at", "text"])
    for i in range(1, 101):
        sheet.append([i, datetime(2024, 5, 1, 10, 0), f"Обращение {i}"])
    sheet.cell(row=1, column=16_384).number_format = "0.00"  # a styled empty cell at XFD
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = _read_xlsx(buffer.getvalue())
    assert len(result.appeals) == 100 and not result.errors
    assert result.appeals[0].created_at == datetime(2024, 5, 1, 10, 0)


# --- JSON ---------------------------------------------------------------------------------------

def test_json_with_thousands_of_distinct_keys_is_refused_in_bounded_memory() -> None:
    """Rows × keys would not fit: 2,000 objects with 50 keys each of their own."""
    records = [{"id": i, "created_at": "2024-05-01", "text": "t",
                **{f"k{i}_{j}": j for j in range(50)}} for i in range(2_000)]
    data = json.dumps(records).encode()
    with measured() as cost, pytest.raises(IngestError, match="distinct keys"):
        read_appeals_bytes(data, filename="a.json")
    assert cost.seconds < 10 and cost.peak_mib < 200


@pytest.mark.parametrize("render", [
    lambda records: json.dumps(records, ensure_ascii=False),
    lambda records: "\n".join(json.dumps(r, ensure_ascii=False) for r in records),
    lambda records: json.dumps({"items": records}, ensure_ascii=False),
])
def test_json_long_value_rejects_its_row_and_rows_are_capped(
        render: Callable[[list[dict[str, object]]], str]) -> None:
    records: list[dict[str, object]] = [
        {"id": i, "created_at": "2024-05-01T10:00:00", "text": f"Обращение {i}"}
        for i in range(1, 6)]
    records[2]["answer"] = ["ответ"] * 400  # a nested value counts by its JSON length
    records[3]["text"] = "ы" * 3_001
    limits = IngestLimits(max_cell_chars=3_000)
    result = read_appeals_bytes(render(records).encode(), filename="a.json", limits=limits)
    assert [a.id for a in result.appeals] == ["1", "2", "5"]
    assert len(result.errors) == 2 and all("max_cell_chars" in e.reason for e in result.errors)
    with pytest.raises(IngestError, match="MCU_INGEST_MAX_ROWS"):
        read_appeals_bytes(render(records).encode(), filename="a.json",
                           limits=IngestLimits(max_rows=4))


# --- configuration ------------------------------------------------------------------------------

def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestLimits.from_env({"MCU_INGEST_MAX_ROWS": "2_000_000"}).max_rows == 2_000_000
    with pytest.raises(ValueError, match="MCU_INGEST_MAX_COLUMNS"):
        IngestLimits.from_env({"MCU_INGEST_MAX_COLUMNS": "many"})
    with pytest.raises(ValueError, match="positive"):
        IngestLimits(max_rows=0)
    monkeypatch.setenv("MCU_INGEST_MAX_ROWS", "3")
    assert current_limits().max_rows == 3
    with pytest.raises(IngestError, match="max_rows = 3"):
        read_appeals_bytes(_csv(4).encode(), filename="a.csv")
