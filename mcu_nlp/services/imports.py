"""Import appeals into the store: read, check, classify, route, commit chunk by chunk.

Each chunk is one transaction, so a killed import keeps every committed chunk and leaves no
half-written appeal. A row that does not fit the store is rejected alone before any insert; a
chunk the store still refuses is written again row by row, so only the refused row is rejected
and an import never sticks at one chunk. Appeals already stored (same ``source`` and
``source_id``) are counted as duplicates and left untouched, so re-sending a file never
duplicates anything and stores what an earlier attempt left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from mcu_nlp.records import Appeal
from mcu_nlp.services.appeal_fields import InvalidAppeal, clean_appeal
from mcu_nlp.services.appeals import add_classified
from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.classify import (
    AppealInput,
    Classification,
    ClassificationFailure,
    ClassifyService,
)
from mcu_nlp.storage import Store
from mcu_nlp.storage import repositories as repo
from mcu_nlp.storage.db import describe_db_error
from mcu_nlp.storage.limits import column_limit, strip_controls

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 250
Progress = Callable[[int], None]  # called with the number of rows just processed
Numbered = tuple[Appeal, int | None]  # an appeal and its source line


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not stored, and why."""

    line: int | None
    source_id: str | None
    reason: str


@dataclass(slots=True)
class ImportSummary:
    """What an import did: every input row is stored, a duplicate, or rejected."""

    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    stored_ids: list[int] = field(default_factory=list)
    duplicate_ids: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows accounted for."""
        return self.stored + self.duplicates + len(self.rejected)


class ImportFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, required columns)."""


def import_appeals(store: Store, classifier: ClassifyService, appeals: Iterable[Appeal], *,
                   chunk_size: int = DEFAULT_CHUNK, progress: Progress | None = None,
                   actor: str = "system", summary: ImportSummary | None = None,
                   lines: Sequence[int] | None = None) -> ImportSummary:
    """Store appeals that are new, classified and routed, committing every ``chunk_size`` rows.

    Every appeal first passes :func:`~mcu_nlp.services.appeal_fields.clean_appeal`: one that
    does not fit the store is rejected alone, with its line and the reason. ``lines`` (the source
    line of each appeal, as readers return them) lets a rejected appeal be reported by its line.
    """
    summary = summary if summary is not None else ImportSummary()
    numbered = zip(appeals, lines, strict=False) if lines is not None else (
        (appeal, None) for appeal in appeals)
    chunk: list[Numbered] = []
    for appeal, line in numbered:
        chunk.append((appeal, line))
        if len(chunk) >= chunk_size:
            _import_chunk(store, classifier, chunk, summary, actor)
            if progress:
                progress(len(chunk))
            chunk = []
    if chunk:
        _import_chunk(store, classifier, chunk, summary, actor)
        if progress:
            progress(len(chunk))
    return summary


def _checked(chunk: Sequence[Numbered], summary: ImportSummary) -> list[Numbered]:
    """The chunk's appeals as they will be stored; the others rejected with line and reason."""
    good: list[Numbered] = []
    for appeal, line in chunk:
        try:
            good.append((clean_appeal(appeal), line))
        except InvalidAppeal as exc:
            summary.rejected.append(RejectedRow(line, _shown_id(appeal.id), str(exc)))
    return good


def _shown_id(value: object) -> str:
    """A source id as an import report may show it (cut to the column, no control characters)."""
    return strip_controls(str(value), keep_layout=False)[:column_limit("appeals", "source_id")]


def _import_chunk(store: Store, classifier: ClassifyService, chunk: Sequence[Numbered],
                  summary: ImportSummary, actor: str) -> None:
    good = _checked(chunk, summary)
    if not good:
        return
    try:
        _write_with_retry(store, classifier, good, summary, actor)
    except SQLAlchemyError as exc:
        if _store_unavailable(exc):
            raise
        if len(good) == 1:
            _reject_refused(good[0], exc, summary)
            return
        # The store refused a row the checks let through: find it, store the others.
        log.warning("the store refused a chunk (%s); storing its rows one by one",
                    describe_db_error(exc))
        for row in good:
            try:
                _write_with_retry(store, classifier, [row], summary, actor)
            except SQLAlchemyError as row_exc:
                if _store_unavailable(row_exc):
                    raise
                _reject_refused(row, row_exc, summary)


def _reject_refused(row: Numbered, exc: SQLAlchemyError, summary: ImportSummary) -> None:
    """Count a row the store refused as rejected, with the store's reason (no values in it)."""
    summary.rejected.append(RejectedRow(row[1], str(row[0].id),
                                        f"the store refused the row: {describe_db_error(exc)}"))


def _store_unavailable(exc: SQLAlchemyError) -> bool:
    """A connection, server or schema failure: every row would fail, so the import stops (503).

    PostgreSQL's SQLSTATE class 42 (a missing table or column, no privilege) is the schema's
    fault, not the row's; a trigger's ``RAISE`` (P0001) or a data error (22, 23) is the row's.
    """
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return str(sqlstate).startswith("42")


def _write_with_retry(store: Store, classifier: ClassifyService, chunk: Sequence[Numbered],
                      summary: ImportSummary, actor: str) -> None:
    # A concurrent import of the same rows can win the race between our check and our insert;
    # then the unique constraint refuses the chunk and one retry sees those rows as duplicates.
    for attempt in (1, 2):
        try:
            _write_chunk(store, classifier, chunk, summary, actor)
            return
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("a chunk raced another import; retrying it")


def _write_chunk(store: Store, classifier: ClassifyService, chunk: Sequence[Numbered],
                 summary: ImportSummary, actor: str) -> None:
    stored: list[int] = []
    duplicates: list[int] = []
    rejected: list[RejectedRow] = []
    with store.session() as session:
        pairs = list(dict.fromkeys((a.source, str(a.id)) for a, _ in chunk))
        known = repo.find_by_source(session, pairs)
        fresh: list[Numbered] = []
        seen: set[tuple[str, str]] = set()
        for appeal, line in chunk:
            key = (appeal.source, str(appeal.id))
            if key in known:
                duplicates.append(known[key])
            elif key in seen:
                duplicates.append(-1)  # repeated inside this file; the first copy is stored
            else:
                seen.add(key)
                fresh.append((appeal, line))
        results = classifier.classify([AppealInput(a.text, str(a.channel), a.territory,
                                                   a.address, a.created_at) for a, _ in fresh])
        rows = []
        for (appeal, line), result in zip(fresh, results, strict=True):
            if isinstance(result, ClassificationFailure):
                rejected.append(RejectedRow(line, str(appeal.id), result.error))
                continue
            assert isinstance(result, Classification)
            rows.append(add_classified(session, appeal, result,
                                       audit=getattr(classifier, "audit", None)))
        session.flush()  # one batched INSERT per table for the whole chunk
        stored = [row.id for row in rows]
        if stored:
            record_audit(session, actor=actor, action="appeal.import", entity="appeal",
                         details={"stored": len(stored), "first_id": stored[0]})
    summary.stored += len(stored)
    summary.stored_ids.extend(stored)
    summary.duplicates += len(duplicates)
    summary.duplicate_ids.extend(i for i in duplicates if i >= 0)
    summary.rejected.extend(rejected)


def read_file(path: str | Path, *, kind: str | None = None):  # noqa: ANN201 - ingest.ReadResult
    """Read an export through the ingest readers (CSV, XLSX, JSON), with a clear error."""
    from mcu_nlp import ingest

    try:
        if kind == "spb_portal":
            return ingest.read_spb_portal(path)
        return ingest.read_appeals(path) if kind is None else ingest.read_appeals(path, kind=kind)
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # IngestError is a ValueError
        raise ImportFileError(str(exc)) from exc


def import_file(store: Store, classifier: ClassifyService, path: str | Path, *,
                kind: str | None = None, chunk_size: int = DEFAULT_CHUNK,
                progress: Progress | None = None, on_read: Callable[[int], None] | None = None,
                actor: str = "system") -> ImportSummary:
    """Read an export and import its appeals; rows the reader refused count as rejected.

    Args:
        store: The appeal store.
        classifier: Classifies and routes every new appeal.
        path: The export file.
        kind: The export kind (``spb_portal``, ``im``, ``pos``, ``fz59``); detected when ``None``.
        chunk_size: Appeals per transaction.
        progress: Called with the number of rows processed after each chunk.
        on_read: Called once with the number of appeals read, before the import starts.
        actor: Who imports (audit log).
    """
    result = read_file(path, kind=kind)
    summary = ImportSummary(rejected=[RejectedRow(e.line, None, e.reason) for e in result.errors])
    if on_read:
        on_read(len(result.appeals))
    return import_appeals(store, classifier, result.appeals, chunk_size=chunk_size,
                          progress=progress, actor=actor, summary=summary, lines=result.lines)
