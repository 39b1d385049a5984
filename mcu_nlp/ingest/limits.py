"""Size limits every reader enforces, from one place.

An export is untrusted input: a 0.4 MB ``.csv.gz`` can unpack to gigabytes, an XLSX can declare a
header out to column XFD, a CSV can hold one cell of a hundred million characters. Every reader in
:mod:`mcu_nlp.ingest` checks the same :class:`IngestLimits` while it reads, before the memory is
spent: a file over a limit raises :class:`~mcu_nlp.ingest.IngestError` with the limit's name and
value; only an over-long cell is a per-row :class:`~mcu_nlp.ingest.RowError`, so the other rows
are still read.

The defaults fit the reference exports with a wide margin (the SPb portal file: 16.5 MB gzip,
109 MB of CSV, 59,889 rows, 32 columns, longest cell 3,000 characters) and API uploads of up to
100 MB. Each can be changed with an environment variable (``MCU_INGEST_MAX_BYTES`` ...; a ``.env``
file is read as for the other settings) or by passing ``limits=`` to a reader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["EXCEL_MAX_ROWS", "ENV_PREFIX", "IngestLimits", "current_limits"]

ENV_PREFIX = "MCU_INGEST_"
EXCEL_MAX_ROWS = 1_048_576
"""Rows of an Excel sheet; a sheet row number beyond it is refused (no row is read past it)."""


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What one export file may hold.

    Attributes:
        max_bytes: Content of the file after gzip/ZIP decompression, in bytes (an uncompressed
            file is held to it as well). ``MCU_INGEST_MAX_BYTES``.
        max_ratio: Decompressed size over compressed size allowed beyond ``ratio_floor``; real
            exports compress 5–20 times, decompression bombs a thousand times.
            ``MCU_INGEST_MAX_RATIO``.
        ratio_floor: Decompressed bytes always allowed whatever the ratio (small files of
            repetitive content compress very well). ``MCU_INGEST_RATIO_FLOOR``.
        max_rows: Rows read from the source (CSV/JSON: data, rejected and blank rows; XLSX: data
            and rejected rows). ``MCU_INGEST_MAX_ROWS``.
        max_columns: Named columns of the header (trailing unnamed columns are dropped first).
            ``MCU_INGEST_MAX_COLUMNS``.
        max_cell_chars: Characters in one cell; a longer cell rejects its row.
            ``MCU_INGEST_MAX_CELL_CHARS``.
    """

    max_bytes: int = 1 << 30
    max_ratio: int = 100
    ratio_floor: int = 64 << 20
    max_rows: int = 1_000_000
    max_columns: int = 500
    max_cell_chars: int = 100_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ingest limit {item.name} must be a positive integer, "
                                 f"got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestLimits:
        """Limits from ``MCU_INGEST_<NAME>`` variables (``MCU_INGEST_MAX_ROWS=2000000``).

        Args:
            environ: The variables; default: a ``.env`` file in the working directory (as
                :class:`~mcu_nlp.settings.Settings` reads it) overridden by the environment.

        Raises:
            ValueError: A variable is not a positive integer.
        """
        environ = {**_dotenv(), **os.environ} if environ is None else environ
        values: dict[str, int] = {}
        for item in fields(cls):
            raw = environ.get(ENV_PREFIX + item.name.upper())
            if raw is None or not raw.strip():
                continue
            try:
                values[item.name] = int(raw.replace("_", "").strip())
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{item.name.upper()} must be a positive integer, "
                                 f"got {raw!r}") from None
        return cls(**values)

    def allowed_bytes(self, compressed: int) -> int:
        """Decompressed bytes allowed for ``compressed`` bytes of gzip or ZIP input."""
        return min(self.max_bytes, max(self.ratio_floor, self.max_ratio * compressed))

    def describe(self, name: str) -> str:
        """``max_rows = 1,000,000 (MCU_INGEST_MAX_ROWS)``: for error messages."""
        return f"{name} = {getattr(self, name):,} ({ENV_PREFIX}{name.upper()})"


def _dotenv() -> dict[str, str]:
    try:
        from dotenv import dotenv_values
    except ImportError:  # pragma: no cover - python-dotenv comes with pydantic-settings
        return {}
    return {key: value for key, value in dotenv_values(".env").items()
            if key.startswith(ENV_PREFIX) and value is not None}


def current_limits() -> IngestLimits:
    """The limits in force: the environment's, read at each call (cheap), else the defaults."""
    return IngestLimits.from_env()
