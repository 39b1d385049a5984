"""Machine-readable export of a period's figures for the regional ЦУР (п. 2.12–2.14).

Two files with the same figures (schema in ``docs/cur_export.md``):

* ``cur_<kind>_<start>_<end>.json`` — nested document, ``schema_version`` :data:`SCHEMA_VERSION`;
* ``cur_<kind>_<start>_<end>.csv`` — long format, one figure per row
  (``period_kind, period_start, period_end, section, key, metric, value``), UTF-8, comma-separated,
  spreadsheet-safe (a name such as ``=HYPERLINK(…)`` is written as ``'=HYPERLINK(…)``, see
  :mod:`mcu_nlp.reports.safe_csv`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcu_nlp.reports.note import AnalyticalNote, CountRow
from mcu_nlp.reports.safe_csv import csv_text

__all__ = ["SCHEMA_NAME", "SCHEMA_VERSION", "cur_csv", "cur_document", "cur_rows",
           "write_cur_export"]

SCHEMA_NAME = "mcu-nlp/cur-export"
SCHEMA_VERSION = 1
CSV_COLUMNS = ("period_kind", "period_start", "period_end", "section", "key", "metric", "value")


def _counts(rows: list[CountRow], key: str) -> list[dict[str, Any]]:
    return [{key: r.code or r.name, "name": r.name, "received": r.current,
             "received_previous": r.previous, "change": r.change, "change_pct": r.change_pct}
            for r in rows]


def cur_document(note: AnalyticalNote, municipality: str | None = None) -> dict[str, Any]:
    """The export as a JSON-ready dict (build the note with ``top=None`` to list every topic)."""
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "municipality": municipality,
        "generated_at": note.generated_at,
        "period": note.period,
        "previous_period": note.previous_period,
        "data_first_day": note.data_first_day,
        "data_last_day": note.data_last_day,
        "totals": {"received": note.totals.current, "received_previous": note.totals.previous,
                   "change": note.totals.change, "change_pct": note.totals.change_pct},
        "by_channel": _counts(note.by_channel, "channel"),
        "by_topic": _counts(note.top_topics, "topic"),
        "by_territory": _counts(note.top_territories, "territory"),
        "quality": note.quality,
        "quality_previous": note.quality_previous,
        "departments": [r.model_dump() for r in note.rating],
        "alerts": [a.model_dump() for a in note.alerts],
        "root_causes": [c.model_dump() for c in note.root_causes],
        "deadlines": note.deadline_rules,
    }


def cur_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's figures in long format (one row per number)."""
    p = doc["period"]
    base = {"period_kind": p["kind"], "period_start": p["start"], "period_end": p["end"]}
    rows: list[dict[str, Any]] = []

    def add(section: str, key: str, metric: str, value: Any) -> None:
        rows.append({**base, "section": section, "key": key, "metric": metric,
                     "value": "" if value is None else value})

    for metric, value in doc["totals"].items():
        add("totals", "all", metric, value)
    for section, key in (("by_channel", "channel"), ("by_topic", "topic"),
                         ("by_territory", "territory")):
        for item in doc[section]:
            for metric in ("received", "received_previous", "change", "change_pct"):
                add(key, item[key], metric, item[metric])
    for metric, value in doc["quality"].items():
        add("quality", "all", metric, value)
    numeric = ("rank", "score", "timeliness", "satisfaction", "routing", "backlog", "received",
               "due", "answered_in_time", "closed", "satisfied", "rerouted", "open_end",
               "overdue_open", "at_risk", "median_first_answer_days")
    for dept in doc["departments"]:
        for metric in numeric:
            add("department", dept["department"], metric, dept[metric])
    return rows


def cur_csv(doc: dict[str, Any]) -> str:
    """The document's long-format rows as spreadsheet-safe CSV text."""
    return csv_text(cur_rows(doc), CSV_COLUMNS)


def write_cur_export(note: AnalyticalNote, out_dir: str | Path,
                     municipality: str | None = None) -> tuple[Path, Path]:
    """Write the JSON and CSV files into ``out_dir`` (created if missing); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = cur_document(note, municipality)
    p = note.period
    stem = f"cur_{p['kind']}_{p['start']}_{p['end']}"
    json_path, csv_path = out / f"{stem}.json", out / f"{stem}.csv"
    json_path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    csv_path.write_text(cur_csv(doc), encoding="utf-8", newline="")
    return json_path, csv_path
