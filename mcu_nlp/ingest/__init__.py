"""Readers that turn exports from every channel into :class:`~mcu_nlp.records.Appeal` records.

Start with :func:`read_appeals` (any file; format and export kind are recognised) or a reader for
one export: :func:`read_spb_portal`, :func:`read_im_export`, :func:`read_pos_export`,
:func:`read_fz59_export`. Each returns a :class:`ReadResult`: the appeals, and a
:class:`RowError` (line, reason, raw text) for every row that could not be read — one bad row never
stops the rest. A file that cannot be read at all raises :class:`IngestError`, and so does a file
over the size limits of :class:`IngestLimits` (decompressed bytes, rows, columns); a cell over
the character limit rejects only its row.

Metadata values are JSON-safe (strings, numbers, ``None``, nested JSON): timestamps in metadata
are ISO 8601 strings; :func:`appeals_to_frame` turns them into ``datetime64`` columns.
"""

from mcu_nlp.ingest.build import MAX_TEXT_CHARS
from mcu_nlp.ingest.frame import appeals_to_frame
from mcu_nlp.ingest.limits import IngestLimits, current_limits
from mcu_nlp.ingest.mapping import (
    FZ59_EXPORT,
    IM_EXPORT,
    KNOWN_EXPORTS,
    POS_EXPORT,
    SPB_PORTAL,
    ColumnMapping,
    detect_kind,
    guess_mapping,
)
from mcu_nlp.ingest.readers import (
    format_of,
    read_appeals,
    read_appeals_bytes,
    read_fz59_export,
    read_im_export,
    read_pos_export,
    read_spb_portal,
)
from mcu_nlp.ingest.result import IngestError, ReadResult, RowError

__all__ = [
    "FZ59_EXPORT",
    "IM_EXPORT",
    "KNOWN_EXPORTS",
    "MAX_TEXT_CHARS",
    "POS_EXPORT",
    "SPB_PORTAL",
    "ColumnMapping",
    "IngestError",
    "IngestLimits",
    "ReadResult",
    "RowError",
    "appeals_to_frame",
    "current_limits",
    "detect_kind",
    "format_of",
    "guess_mapping",
    "read_appeals",
    "read_appeals_bytes",
    "read_fz59_export",
    "read_im_export",
    "read_pos_export",
    "read_spb_portal",
]
