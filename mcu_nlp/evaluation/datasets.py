"""Labelled data for evaluation: the reference SPb set or any labelled file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mcu_nlp.settings import get_settings

SPB_LABELS = ("category", "reason", "department", "department_group")


def load_spb() -> pd.DataFrame:
    """The «Наш Санкт-Петербург» appeals (path from settings)."""
    return pd.read_csv(get_settings().spb_appeals_path())


def load_table(path: str | Path) -> pd.DataFrame:
    """A labelled table from CSV (optionally gzipped), XLSX, JSON or JSON Lines."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith((".csv", ".csv.gz", ".tsv")):
            return pd.read_csv(path, sep=None, engine="python")
        if suffixes.endswith((".xlsx", ".xlsm")):
            return pd.read_excel(path)
        if suffixes.endswith((".jsonl", ".ndjson")):
            return pd.read_json(path, lines=True)
        if suffixes.endswith(".json"):
            return pd.read_json(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    raise ValueError(f"{path}: unsupported format; use .csv, .csv.gz, .xlsx, .json or .jsonl")
