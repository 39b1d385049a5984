"""What a reader returns: the appeals it could read and the rows it could not."""

from __future__ import annotations

from dataclasses import dataclass, field

from mcu_nlp.records import Appeal


class IngestError(ValueError):
    """The file as a whole cannot be read (binary, wrong format, required columns missing)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One source row that did not become an appeal.

    Attributes:
        line: 1-based line of the row in the source file (for XLSX: the sheet row number; for a
            JSON array: the line where the object starts).
        reason: Why the row was rejected, in words a curator can act on.
        raw: The row's source text as read, so nothing is lost and the row can be fixed and re-sent.
            It holds a citizen's text and contacts, so it is left out of ``repr`` (and so of
            logs that print a row error).
    """

    line: int
    reason: str
    raw: str = field(repr=False)


@dataclass(slots=True)
class ReadResult:
    """The outcome of reading one export.

    Every data row of the source is accounted for exactly once: it is an appeal, a row error, or a
    wholly empty row (counted in ``blank_rows``; spreadsheets often carry trailing empty rows).

    Attributes:
        appeals: Rows read into :class:`~mcu_nlp.records.Appeal` records, in source order.
        errors: Rows that were rejected, with line and reason.
        blank_rows: Rows with no value in any cell, skipped.
        encoding: Text encoding the file was decoded with (``None`` for XLSX).
        kind: The export kind whose column mapping was used (``spb_portal``, ``im``, ``pos``,
            ``fz59``, ``generic``).
        lines: 1-based source line of each appeal, parallel to ``appeals`` (for reports on
            rows that fail later, e.g. in classification).
    """

    appeals: list[Appeal] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    blank_rows: int = 0
    encoding: str | None = None
    kind: str | None = None

    @property
    def rows_read(self) -> int:
        """Number of data rows seen in the source (appeals + errors + blank rows)."""
        return len(self.appeals) + len(self.errors) + self.blank_rows
