"""Parquet in and out: the files of an input, its schema and rows, the output's counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mcu_nlp.batch.job import ERROR_COLUMN


@dataclass(frozen=True, slots=True)
class ParquetSource:
    """A Parquet input: its files, the schema they share and their rows (from the footers)."""

    path: Path
    files: tuple[Path, ...]  # every file: the path itself, or the Parquet files under it
    schema: pa.Schema
    rows: int

    def require(self, columns: list[str]) -> None:
        """Raise a :class:`ValueError` naming the input and the first column it lacks."""
        for column in columns:
            if column not in self.schema.names:
                raise ValueError(f"{self.path} has no column {column!r}; its columns: "
                                 f"{', '.join(self.schema.names)}")


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of ``path``: the file itself, or every ``*.parquet`` under the folder.

    The same files :func:`ray.data.read_parquet` reads from the folder (markers such as
    ``_SUCCESS`` and partial writes have other extensions).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A folder without Parquet files.
    """
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_file():
        return [path]
    files = sorted(file for file in path.rglob("*.parquet") if file.is_file())
    if not files:
        raise ValueError(f"no Parquet files (*.parquet) in {path}")
    return files


def open_source(path: Path) -> ParquetSource:
    """Read the footers of the Parquet input at ``path`` (no data).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: No Parquet files, a file that is not Parquet, or files whose schemas clash.
    """
    files = parquet_files(path)
    schemas, rows = [], 0
    for file in files:
        try:
            metadata = pq.read_metadata(file)
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{file} is not a readable Parquet file: {exc}") from None
        schemas.append(metadata.schema.to_arrow_schema())
        rows += metadata.num_rows
    try:
        schema = pa.unify_schemas(schemas)
    except pa.ArrowException as exc:
        raise ValueError(f"the Parquet files of {path} have clashing schemas: {exc}") from None
    return ParquetSource(path, tuple(files), schema, rows)


def prepare_dest(dest: Path) -> None:
    """Create the output folder; refuse one that already holds files (nothing is overwritten).

    Raises:
        FileExistsError: ``dest`` is a file, or a folder that is not empty.
    """
    if dest.is_file() or (dest.is_dir() and any(dest.iterdir())):
        raise FileExistsError(f"output {dest} already exists and is not an empty folder; "
                              "give a new folder")
    dest.mkdir(parents=True, exist_ok=True)


def output_counts(dest: Path) -> tuple[int, int]:
    """``(rows, rejected rows)`` of the Parquet files written under ``dest``."""
    files = sorted(file for file in dest.rglob("*.parquet") if file.is_file())
    if not files:
        return 0, 0
    rows = sum(pq.read_metadata(file).num_rows for file in files)
    errors = pq.ParquetDataset(files).read(columns=[ERROR_COLUMN]).column(ERROR_COLUMN)
    return rows, len(errors) - errors.null_count
