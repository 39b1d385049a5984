"""Readers for every export the center receives, and the dispatcher that picks one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from mcu_nlp.ingest.build import build_appeals
from mcu_nlp.ingest.limits import IngestLimits, current_limits
from mcu_nlp.ingest.mapping import (
    FZ59_EXPORT,
    IM_EXPORT,
    KNOWN_EXPORTS,
    POS_EXPORT,
    ColumnMapping,
    detect_kind,
    guess_mapping,
)
from mcu_nlp.ingest.result import IngestError, ReadResult
from mcu_nlp.ingest.tables import (
    ZIP_MAGIC,
    RawTable,
    binary_share,
    decode,
    read_csv_table,
    read_json_lines_table,
    read_json_table,
    read_xlsx_table,
    unpack,
)

Format = Literal["csv", "xlsx", "json", "jsonl"]
Kind = Literal["spb_portal", "im", "pos", "fz59", "generic"]

_SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
_KINDS = (*KNOWN_EXPORTS, "generic")


def format_of(filename: str | os.PathLike[str] | None) -> Format | None:
    """The format a file name announces (``appeals.csv.gz`` → ``csv``), if any.

    Raises:
        IngestError: The name is an old binary ``.xls`` workbook.
    """
    if filename is None:
        return None
    suffixes = [s.lower() for s in Path(filename).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] == ".xls":
        raise IngestError("old binary .xls workbooks are not supported: save the sheet as "
                          ".xlsx or CSV")
    return _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


def _read_table(data: bytes, fmt: Format | None, limits: IngestLimits
                ) -> tuple[RawTable, str]:
    """Decode and split the content; returns the table and the decoded text ('' for XLSX)."""
    data = unpack(data, limits)
    if data.startswith(ZIP_MAGIC):  # whatever the name says, a ZIP container is a workbook
        return read_xlsx_table(data, limits), ""
    if fmt == "xlsx":
        raise IngestError("the file is named as XLSX but is not a ZIP workbook; is it a CSV?")
    text, encoding = decode(data)
    if fmt is None:
        start = text.lstrip()[:1]
        fmt = "json" if start in ("[", "{") else "csv"
    reader = {"csv": read_csv_table, "json": read_json_table, "jsonl": read_json_lines_table}[fmt]
    try:
        table = reader(text, limits)
    except IngestError as error:
        raise _maybe_binary(error, text) from None
    table.encoding = encoding
    return table, text


def _maybe_binary(error: IngestError, text: str) -> IngestError:
    share = binary_share(text)
    if share > 0.05:
        return IngestError(f"the file looks binary, not a text export: {share:.0%} of the "
                           "characters at its start are control codes or undecodable bytes")
    return error


def _mapping_for(header: list[str], mapping: ColumnMapping | None,
                 kind: str | None) -> tuple[ColumnMapping, str]:
    if kind is not None and kind not in _KINDS:
        raise IngestError(f"unknown export kind {kind!r}; expected one of {', '.join(_KINDS)}")
    if mapping is not None:
        return mapping, kind or "generic"
    kind = kind or detect_kind(header)
    if kind == "generic":
        return guess_mapping(header), kind
    return KNOWN_EXPORTS[kind], kind


def read_appeals_bytes(data: bytes, *, filename: str | None = None, format: Format | None = None,
                       mapping: ColumnMapping | None = None, kind: Kind | None = None,
                       limits: IngestLimits | None = None) -> ReadResult:
    """Read an export held in memory (an API upload).

    Args:
        data: The file's bytes (gzip-compressed content is unpacked).
        filename: The uploaded file's name, used only to tell its format.
        format: ``csv``, ``xlsx``, ``json`` or ``jsonl``; default: from ``filename``, else from
            the content.
        mapping: The column mapping; default: the one of ``kind``.
        kind: ``spb_portal``, ``im``, ``pos``, ``fz59`` or ``generic``; default: recognised from
            the header, falling back to common column names.
        limits: Size limits; default: :func:`~mcu_nlp.ingest.limits.current_limits`.

    Returns:
        The appeals and the rejected rows (a cell over ``limits.max_cell_chars`` rejects its row).

    Raises:
        IngestError: The content as a whole cannot be read (binary, not a table, required
            columns missing) or is over the limits (size after decompression, rows, columns).
    """
    fmt = format or format_of(filename)
    table, text = _read_table(data, fmt, limits or current_limits())
    try:
        chosen, chosen_kind = _mapping_for(table.header, mapping, kind)
        result = build_appeals(table, chosen, kind=chosen_kind)
    except IngestError as error:
        raise _maybe_binary(error, text) from None
    if chosen_kind == "im" and mapping is None:
        _count_im_answers(result)
    return result


def read_appeals(path: str | os.PathLike[str], *, format: Format | None = None,
                 mapping: ColumnMapping | None = None, kind: Kind | None = None,
                 limits: IngestLimits | None = None) -> ReadResult:
    """Read an export file of any supported format and kind.

    The format comes from the extension (``.csv``, ``.tsv``, ``.xlsx``, ``.json``, ``.jsonl``,
    each optionally ``.gz``) or the content; the kind from the header (see
    :func:`~mcu_nlp.ingest.mapping.detect_kind`). See :func:`read_appeals_bytes` for the rest.

    Raises:
        IngestError: The file cannot be opened or read as a whole, or is over the limits.
    """
    limits = limits or current_limits()
    try:
        with Path(path).open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limits.max_bytes:  # refused unread
                raise IngestError(f"{Path(path).name}: the file ({size / (1 << 20):,.1f} MiB) "
                                  f"is larger than {limits.describe('max_bytes')} allow")
            data = file.read()
    except OSError as error:
        raise IngestError(f"cannot open {path}: {error.strerror or error}") from error
    try:
        return read_appeals_bytes(data, filename=os.fspath(path), format=format, mapping=mapping,
                                  kind=kind, limits=limits)
    except IngestError as error:
        raise IngestError(f"{Path(path).name}: {error}") from None


def read_spb_portal(path: str | os.PathLike[str] | None = None) -> ReadResult:
    """Read the «Наш Санкт-Петербург» portal file (``appeals.csv.gz``).

    Labels: ``category``, ``reason``, ``department``, ``department_group``, ``city_object``.
    Territory is the district. Metadata keeps the rest: municipality, coordinates, statuses and
    answer times (ISO 8601 strings), organisations, counts; empty cells are ``None``.

    Args:
        path: The file; default: the shared data set from the settings.
    """
    if path is None:
        from mcu_nlp.settings import get_settings

        path = get_settings().spb_appeals_path()
    return read_appeals(path, format="csv", kind="spb_portal")


def read_im_export(path: str | os.PathLike[str], *, mapping: ColumnMapping = IM_EXPORT
                   ) -> ReadResult:
    """Read an Инцидент Менеджмент export (CSV or XLSX, column names as the ЦУР system writes).

    The leading ``'`` Excel puts before text cells is dropped. Territory is «Муниципалитет»
    (else «Населенный пункт»), the address «Улица, Дом»; labels ``topic_group``, ``topic``,
    ``department``, ``executor``; replies go to metadata as ``answer_1..3`` with ``n_answers``.
    """
    result = read_appeals(path, mapping=mapping, kind="im")
    _count_im_answers(result)
    return result


def read_pos_export(path: str | os.PathLike[str], *, mapping: ColumnMapping = POS_EXPORT
                    ) -> ReadResult:
    """Read a ПОС («Решаем вместе») export; HTML in texts and answers is stripped.

    The default column names are in :data:`~mcu_nlp.ingest.mapping.POS_EXPORT`; pass a copy
    with the names of your export where they differ.
    """
    return read_appeals(path, mapping=mapping, kind="pos")


def read_fz59_export(path: str | os.PathLike[str], *, mapping: ColumnMapping = FZ59_EXPORT
                     ) -> ReadResult:
    """Read a 59-ФЗ appeal register export; HTML in texts and answers is stripped.

    The default column names are in :data:`~mcu_nlp.ingest.mapping.FZ59_EXPORT`.
    """
    return read_appeals(path, mapping=mapping, kind="fz59")


def _count_im_answers(result: ReadResult) -> None:
    for appeal in result.appeals:
        answers = [appeal.metadata.get(f"answer_{k}") for k in (1, 2, 3)]
        appeal.metadata["n_answers"] = sum(a is not None for a in answers)
