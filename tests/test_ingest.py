"""Readers: the real SPb and ИМ files, generated exports in every format, malformed input."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_nlp.ingest import (
    FZ59_EXPORT,
    MAX_TEXT_CHARS,
    POS_EXPORT,
    ColumnMapping,
    IngestError,
    ReadResult,
    appeals_to_frame,
    read_appeals,
    read_appeals_bytes,
    read_fz59_export,
    read_im_export,
    read_pos_export,
    read_spb_portal,
)
from mcu_nlp.records import Channel

SIMPLE = ColumnMapping(id="id", text="text", created_at="created_at")


def write_csv(path: Path, rows: list[list[object]], *, delimiter: str = ",",
              encoding: str = "utf-8") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


# --- the real SPb portal file ------------------------------------------------------------------

@pytest.fixture(scope="session")
def spb_result(shared_data: Path) -> ReadResult:
    return read_spb_portal(shared_data / "spb_our_city_appeals" / "appeals.csv.gz")


@pytest.fixture(scope="session")
def spb_raw_slice(shared_data: Path) -> list[dict[str, str]]:
    """Every 20th row of the real file, parsed independently by the csv module."""
    with gzip.open(shared_data / "spb_our_city_appeals" / "appeals.csv.gz", "rt",
                   encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return [dict(zip(header, row, strict=True)) for i, row in enumerate(reader) if i % 20 == 0]


def test_spb_reads_every_row_without_errors(spb_result: ReadResult) -> None:
    assert len(spb_result.appeals) == 59_889
    assert spb_result.errors == []
    assert spb_result.kind == "spb_portal"
    assert len({a.id for a in spb_result.appeals}) == 59_889
    assert {a.channel for a in spb_result.appeals} == {Channel.PORTAL}
    assert {a.source for a in spb_result.appeals} == {"spb_portal"}
    stamps = [a.created_at for a in spb_result.appeals]
    assert min(stamps).date().isoformat() == "2020-10-18"
    assert max(stamps).date().isoformat() == "2021-04-23"


def test_spb_label_and_territory_counts_match_the_readme(spb_result: ReadResult) -> None:
    appeals = spb_result.appeals
    categories = Counter(a.labels["category"] for a in appeals)
    assert len(categories) == 15 and categories["Благоустройство"] == 34_769
    assert len({a.labels["reason"] for a in appeals}) == 125
    assert len({a.labels["department"] for a in appeals}) == 79
    assert len({a.labels["department_group"] for a in appeals}) == 45
    districts = Counter(a.territory for a in appeals)
    assert len(districts) == 18 and districts["Невский"] == 8_100
    no_address = sum(a.address is None for a in appeals) / len(appeals)
    assert 0.28 < no_address < 0.38  # README: about 33 % have no address


def test_spb_matches_an_independent_parse_of_a_slice(
        spb_result: ReadResult, spb_raw_slice: list[dict[str, str]]) -> None:
    by_id = {a.id: a for a in spb_result.appeals}
    assert len(spb_raw_slice) > 2_900
    for row in spb_raw_slice:
        appeal = by_id[row["id"]]
        assert appeal.text == row["text"].strip()
        assert appeal.created_at == datetime.fromisoformat(row["created_at"])
        assert appeal.territory == (row["district"] or None)
        assert appeal.labels["reason"] == row["reason"]
        meta = appeal.metadata
        assert meta["latitude"] == pytest.approx(float(row["latitude"]))
        assert meta["n_routes"] == int(row["n_routes"])
        assert meta["last_status"] == (row["last_status"] or None)
        if row["first_answer_dt"]:
            assert datetime.fromisoformat(meta["first_answer_dt"]) == \
                datetime.fromisoformat(row["first_answer_dt"])
        else:
            assert meta["first_answer_dt"] is None  # NaN → None, never the string "nan"


def test_spb_metadata_keeps_what_the_sla_analytics_need(spb_result: ReadResult) -> None:
    keys = set(spb_result.appeals[0].metadata)
    assert {"municipality", "latitude", "longitude", "first_answer_dt", "last_answer_dt",
            "last_status", "last_status_dt", "n_routes", "executor_org", "coordinator_org",
            "responsible_label", "n_reason_changes", "reason_path_initial", "followup_texts",
            "n_answers"} <= keys
    assert not keys & {"text", "category", "reason", "department", "district", "address"}
    answered = sum(a.metadata["last_answer_dt"] is not None for a in spb_result.appeals)
    assert 0.85 < answered / len(spb_result.appeals) < 0.90  # README: 87.5 % have an answer


def test_spb_frame_has_flat_typed_columns(spb_result: ReadResult) -> None:
    frame = appeals_to_frame(spb_result.appeals[:2_000])
    assert list(frame.columns[:7]) == ["id", "channel", "source", "created_at", "text",
                                       "territory", "address"]
    assert {"label_category", "label_reason", "label_department",
            "label_department_group", "n_routes", "last_status"} <= set(frame.columns)
    assert pd.api.types.is_datetime64_any_dtype(frame["created_at"])
    assert pd.api.types.is_datetime64_any_dtype(frame["first_answer_dt"])
    assert pd.api.types.is_float_dtype(frame["latitude"])
    assert frame["channel"].eq("portal").all() and len(frame) == 2_000


# --- Инцидент Менеджмент -----------------------------------------------------------------------

def test_im_sample_reads_all_incidents(shared_data: Path) -> None:
    path = shared_data / "omsk_incident_management_sample" / "incidents_sample.csv"
    result = read_im_export(path)
    assert len(result.appeals) == 39 and result.errors == []
    first = result.appeals[0]
    assert first.id == "39520480" and first.channel is Channel.IM
    assert first.text.startswith("Здравствуйте. Из года в год")  # the stray ' is gone
    assert not any(a.text.startswith("'") for a in result.appeals)
    assert first.territory == "Исилькульский район"
    assert first.address == "Деповская улица"
    assert first.labels == {"topic_group": "Дороги", "topic": "Уборка дорог от снега и наледи",
                            "department": "Исилькульский район"}  # Исполнитель is empty here
    assert first.metadata["settlement"] == "Исилькуль"
    assert first.metadata["closed_dt"] == "2026-01-05T08:16:27"
    assert first.metadata["answer_1"] is None and first.metadata["n_answers"] == 0
    assert first.created_at == datetime(2025, 12, 24, 20, 6, 2)
    second = result.appeals[1]
    assert second.metadata["answer_1"].startswith("[id432975601|")
    assert second.metadata["n_answers"] == 1
    assert Counter(a.labels["topic_group"] for a in result.appeals)["Дороги"] == 21
    assert sum("executor" in a.labels for a in result.appeals) == 39 - 11


def test_im_export_is_recognised_without_naming_its_kind(shared_data: Path) -> None:
    result = read_appeals(shared_data / "omsk_incident_management_sample" / "incidents_sample.csv")
    assert result.kind == "im" and len(result.appeals) == 39
    assert result.appeals[0].metadata["n_answers"] == 0


# --- generated CSV ------------------------------------------------------------------------------

def test_csv_malformed_rows_are_reported_with_line_and_reason(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [
        ["id", "created_at", "text", "district"],
        ["1", "2024-03-01 10:00", "Яма на дороге\nпо улице Ленина", "Центральный"],  # lines 2-3
        ["2", "вчера", "Не вывезен мусор", ""],                                          # line 4
        ["3", "2024-03-02", "   ", ""],                                                 # line 5
        ["", "2024-03-02", "Нет света в подъезде", ""],                                  # line 6
        ["5", "2024-03-02", "x" * (MAX_TEXT_CHARS + 1), ""],                             # line 7
        ["6", "1899-01-01", "Старая дата", ""],                                          # line 8
        ["7", "02.03.2024 09:15", "Сосульки на крыше", "Невский"],                       # line 9
    ])
    result = read_appeals(path, mapping=replace(SIMPLE, territory="district"))
    assert [a.id for a in result.appeals] == ["1", "7"]
    assert result.lines == [2, 9]
    assert result.appeals[0].text == "Яма на дороге\nпо улице Ленина"
    assert result.appeals[1].created_at == datetime(2024, 3, 2, 9, 15)
    assert result.appeals[1].territory == "Невский"
    reasons = {e.line: e.reason for e in result.errors}
    assert set(reasons) == {4, 5, 6, 7, 8}
    assert "created_at 'вчера'" in reasons[4]
    assert reasons[5] == "empty text"
    assert reasons[6] == "empty id"
    assert "too long" in reasons[7]
    assert "implausible" in reasons[8]
    assert result.errors[0].raw == "2,вчера,Не вывезен мусор,"


def test_csv_cp1251_semicolon_export_is_decoded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cp.csv", [
        ["Номер", "Дата создания", "Текст сообщения", "Рубрика"],
        ["10", "24.12.2025 20:06", "Не работает уличное освещение; темно", "Освещение"],
        ["11", "25.12.2025", "Ёлка на площади упала", "Благоустройство"],
    ], delimiter=";", encoding="cp1251")
    result = read_appeals(path)
    assert result.encoding == "cp1251" and result.kind == "pos"
    assert [a.text for a in result.appeals] == ["Не работает уличное освещение; темно",
                                                "Ёлка на площади упала"]
    assert result.appeals[0].labels == {"topic": "Освещение"}
    assert result.appeals[0].channel is Channel.POS


def test_csv_binary_bytes_in_one_row_reject_only_that_row(tmp_path: Path) -> None:
    good = "id,created_at,text\n1,2024-01-01,Прорвало трубу в подвале\n"
    bad = b"2,2024-01-02,\x00\xff\xfe\x01\x02garbage\x89PNG\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(good.encode() + bad + "3,2024-01-03,Нет горячей воды\n".encode())
    result = read_appeals(path, mapping=SIMPLE)
    assert result.encoding == "utf-8"
    assert [a.id for a in result.appeals] == ["1", "3"]
    assert len(result.errors) == 1 and result.errors[0].line == 3
    assert "binary" in result.errors[0].reason


def test_channel_column_and_missing_id_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [
        ["Дата", "Текст", "Канал"],
        ["2024-01-01", "Яма", "ПОС"],
        ["2024-01-01", "Снег", "59-ФЗ"],
        ["2024-01-01", "Мусор", "почта России"],
    ])
    first, second = read_appeals(path), read_appeals(path)
    assert [a.channel for a in first.appeals] == [Channel.POS, Channel.FZ59, Channel.OTHER]
    assert first.appeals[2].metadata["channel_raw"] == "почта России"
    # No id column: a stable id from time and text, so re-sending stays idempotent.
    assert [a.id for a in first.appeals] == [a.id for a in second.appeals]
    assert len({a.id for a in first.appeals}) == 3


def test_unknown_columns_give_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [["foo", "bar"], ["1", "2"]])
    with pytest.raises(IngestError, match="ColumnMapping"):
        read_appeals(path)
    with pytest.raises(IngestError, match=r"text ← «body»"):
        read_appeals(path, mapping=ColumnMapping(text="body", created_at="bar"))


@pytest.mark.parametrize(("content", "message"), [
    (bytes(range(256)) * 50, "binary"),
    (b"%PDF-1.7\n...", "PDF"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
    (b"", "empty"),
    (b"\x1f\x8b\x08\x00\x00", "gzip"),
])
def test_wholly_unreadable_files_raise(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        read_appeals(path)


def test_missing_file_raises_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot open"):
        read_appeals(tmp_path / "nope.csv")


# --- XLSX ---------------------------------------------------------------------------------------

def test_xlsx_rows_report_sheet_row_numbers(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ID", "Дата создания", "Текст инцидента", "Муниципалитет", "Улица", "Дом"])
    sheet.append([101.0, datetime(2025, 1, 10, 9, 30), "'Не чистят снег", "Омск г.о.",
                  "ул. Мира", 5])
    sheet.append([None, None, None, None, None, None])  # blank row 3
    sheet.append([102, "не дата", "Текст", None, None, None])  # row 4
    sheet.append([103, 45667.5, "Упало дерево", None, None, None])  # Excel serial date
    workbook.save(tmp_path / "im.xlsx")
    result = read_appeals(tmp_path / "im.xlsx")
    assert result.kind == "im" and result.blank_rows == 1
    first = result.appeals[0]
    assert first.id == "101" and first.text == "Не чистят снег"
    assert first.created_at == datetime(2025, 1, 10, 9, 30)
    assert first.address == "ул. Мира, 5"
    assert result.appeals[1].created_at == datetime(2025, 1, 10, 12, 0)
    assert [(e.line, "created_at" in e.reason) for e in result.errors] == [(4, True)]
    assert result.rows_read == 4


def test_xlsx_named_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("id,created_at,text\n")
    with pytest.raises(IngestError, match="not a ZIP"):
        read_appeals(path)


# --- JSON and JSON Lines ------------------------------------------------------------------------

def _records() -> list[dict[str, object]]:
    return [{"id": i, "text": f"Обращение {i}", "created_at": f"2024-05-0{i + 1}T10:00:00+05:00",
             "district": "Центральный", "extra": {"likes": i}} for i in range(4)]


def test_json_array_and_wrapper_object(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_records(), ensure_ascii=False, indent=2))
    (tmp_path / "w.json").write_text(json.dumps({"count": 4, "items": _records()}))
    for name in ("a.json", "w.json"):
        result = read_appeals(tmp_path / name)
        assert [a.id for a in result.appeals] == ["0", "1", "2", "3"] and not result.errors
        assert result.appeals[0].created_at == datetime(2024, 5, 1, 10, 0)  # wall time kept
        assert result.appeals[0].territory == "Центральный"
        assert result.appeals[3].metadata["extra"] == {"likes": 3}


def test_truncated_json_keeps_the_objects_before_the_damage(tmp_path: Path) -> None:
    text = json.dumps(_records(), ensure_ascii=False, indent=2)
    cut = text.index('"Обращение 2"') + 5
    (tmp_path / "t.json").write_text(text[:cut])
    result = read_appeals(tmp_path / "t.json")
    assert [a.id for a in result.appeals] == ["0", "1"]
    (error,) = result.errors
    assert "truncated" in error.reason
    assert error.line == text[:cut].count("\n", 0, text.index('{\n    "id": 2')) + 1


def test_json_lines_with_a_broken_line_and_a_non_object(tmp_path: Path) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in _records()[:2]]
    (tmp_path / "a.jsonl").write_text("\n".join([lines[0], '{"id": 9, "text": "обрыв', "[1, 2]",
                                                 "", lines[1]]) + "\n")
    result = read_appeals(tmp_path / "a.jsonl")
    assert [a.id for a in result.appeals] == ["0", "1"]
    assert [(e.line, e.reason.split(":")[0]) for e in result.errors] == [
        (2, "malformed JSON line"), (3, "expected a JSON object, got list")]


def test_nested_text_is_a_row_error(tmp_path: Path) -> None:
    payload = json.dumps([{"id": 1, "text": {"body": "x"}, "created_at": "2024-01-01"}]).encode()
    result = read_appeals_bytes(payload, filename="upload.json")
    assert not result.appeals and "not a string" in result.errors[0].reason


# --- ПОС and 59-ФЗ exports with HTML ------------------------------------------------------------

def test_pos_export_strips_html_from_texts_and_answers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pos.csv", [
        ["Номер", "Дата создания", "Текст сообщения", "Рубрика", "Ответственный",
         "Муниципальное образование", "Адрес", "Статус", "Дата ответа", "Текст ответа"],
        ["П-1", "24.12.2025 20:06", "<p>Яма на дороге&nbsp;у дома</p><p>Просим &laquo;починить"
         "&raquo;</p>", "Дороги", "Администрация", "Нязепетровский МО", "ул. Ленина, 5",
         "Ответ дан", "26.12.2025 10:00", "<b>Уважаемый</b> житель!"],
        ["П-2", "25.12.2025", "<p>&nbsp;</p>", "Дороги", "", "", "", "", "", ""],
    ], delimiter=";")
    result = read_pos_export(path)
    (appeal,) = result.appeals
    assert appeal.text == "Яма на дороге\xa0у дома\n\nПросим «починить»"
    assert appeal.channel is Channel.POS and appeal.source == "pos_export"
    assert appeal.labels == {"topic": "Дороги", "department": "Администрация"}
    assert appeal.territory == "Нязепетровский МО" and appeal.address == "ул. Ленина, 5"
    assert appeal.metadata["last_status"] == "Ответ дан"
    assert appeal.metadata["first_answer_dt"] == "2025-12-26T10:00:00"
    assert appeal.metadata["answer_text"] == "Уважаемый житель!"
    assert [(e.line, e.reason) for e in result.errors] == [(3, "empty text")]


def test_fz59_export_with_overridden_column_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fz.csv", [
        ["Рег.номер", "Дата рег.", "Содержание", "Тематика", "Исполнитель", "Адрес заявителя"],
        ["ОГ-15", "2025-02-03", "Прошу&nbsp;отремонтировать <br/>кровлю", "ЖКХ", "УЖКХ",
         "с. Ункурда"],
    ])
    with pytest.raises(IngestError, match="Дата регистрации"):
        read_fz59_export(path)
    result = read_fz59_export(path, mapping=replace(FZ59_EXPORT, created_at="Дата рег."))
    (appeal,) = result.appeals
    assert appeal.id == "ОГ-15" and appeal.channel is Channel.FZ59
    assert appeal.text == "Прошу\xa0отремонтировать \nкровлю"
    assert appeal.labels == {"topic": "ЖКХ", "department": "УЖКХ"}
    assert appeal.address == "с. Ункурда"


def test_pos_mapping_is_a_plain_default_a_curator_can_copy() -> None:
    custom = replace(POS_EXPORT, text="Описание проблемы")
    assert custom.text == "Описание проблемы" and POS_EXPORT.text == "Текст сообщения"


# --- frame --------------------------------------------------------------------------------------

def test_frame_prefixes_colliding_metadata_and_handles_empty_input(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [
        ["id", "created_at", "text", "source", "visit_at"],
        ["1", "2024-01-01", "Яма", "сайт", "2024-01-03 12:00"],
        ["2", "2024-01-02", "Снег", "почта", "никогда"],
    ])
    frame = appeals_to_frame(read_appeals(path, mapping=SIMPLE).appeals)
    assert frame["source"].tolist() == ["generic", "generic"]
    assert frame["meta_source"].tolist() == ["сайт", "почта"]
    assert frame["visit_at"].iloc[0] == pd.Timestamp("2024-01-03 12:00")
    assert pd.isna(frame["visit_at"].iloc[1])
    empty = appeals_to_frame([])
    assert list(empty.columns) == ["id", "channel", "source", "created_at", "text", "territory",
                                   "address"] and empty.empty


# --- properties ---------------------------------------------------------------------------------

_cell = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "2024-02-30", "01.02.2024",
                                                         "2024-01-01T10:00", "\x00", "'"]))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_cell, _cell, _cell, _cell), min_size=1, max_size=12))
def test_csv_reader_accounts_for_every_row(rows: list[tuple[str, str, str, str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(["id", "created_at", "text", "note"])
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    result = read_appeals_bytes(data, format="csv", mapping=SIMPLE)
    assert len(result.appeals) + len(result.errors) + result.blank_rows == len(rows)
    assert all(e.line >= 2 and e.reason for e in result.errors)
    assert all(a.text.strip() and len(a.text) <= MAX_TEXT_CHARS for a in result.appeals)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.dictionaries(st.sampled_from(["id", "text", "created_at", "x"]),
                                       st.one_of(st.none(), st.integers(), st.floats(),
                                                 st.booleans(), _cell,
                                                 st.lists(st.integers(), max_size=2))),
                       min_size=1, max_size=10))
def test_json_lines_reader_accounts_for_every_line(values: list[dict[str, object]]) -> None:
    header = {"id": "0", "text": "заголовок", "created_at": "2024-01-01"}
    lines = [json.dumps(header)] + [json.dumps(v) for v in values]
    result = read_appeals_bytes("\n".join(lines).encode(), format="jsonl", mapping=SIMPLE)
    assert len(result.appeals) + len(result.errors) + result.blank_rows == len(lines)


def test_repeated_column_names_and_excel_sep_line_keep_every_value(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("sep=;\nid;created_at;text;note;note\n"
                                      "1;2024-01-01;Яма;первая;вторая\n2;2024-01-01;;x;y\n")
    result = read_appeals(tmp_path / "dup.csv", mapping=SIMPLE)
    (appeal,) = result.appeals
    assert appeal.metadata == {"note": "первая", "note_5": "вторая"}
    assert [(e.line, e.raw) for e in result.errors] == [(4, "2;2024-01-01;;x;y")]


def test_huge_numbers_in_json_lines_are_row_errors_not_crashes() -> None:
    lines = ['{"id": 1, "text": "Яма", "created_at": "2024-01-01"}',
             '{"id": 2, "text": "Снег", "created_at": ' + "9" * 5000 + "}",
             '{"id": 3, "text": "Лёд", "created_at": ' + "9" * 400 + "}"]
    result = read_appeals_bytes("\n".join(lines).encode(), format="jsonl", mapping=SIMPLE)
    assert [a.id for a in result.appeals] == ["1"]
    assert [e.line for e in result.errors] == [2, 3]


@settings(max_examples=60, deadline=None)
@given(garbage=st.lists(st.binary(max_size=60), min_size=1, max_size=8),
       encoding=st.sampled_from(["utf-8", "cp1251"]))
def test_random_bytes_in_cells_never_sink_the_file(garbage: list[bytes], encoding: str) -> None:
    header = "id;created_at;text\n".encode(encoding)
    good = "0;2024-01-01;Обычное обращение про яму во дворе\n".encode(encoding)
    body = b"".join(b'%d;2024-01-02;"%s"\n' % (i + 1, g.replace(b'"', b'""'))
                    for i, g in enumerate(garbage))
    result = read_appeals_bytes(header + good + body, format="csv", mapping=SIMPLE)
    assert len(result.appeals) + len(result.errors) + result.blank_rows == len(garbage) + 1
    assert all(not _looks_broken(a.text) for a in result.appeals)


def _looks_broken(text: str) -> bool:
    return "\x00" in text or "\ufffd" in text


def test_excel_unicode_text_export_utf16_tab_separated(tmp_path: Path) -> None:
    content = "id\tcreated_at\ttext\r\n1\t2024-01-01\tВода из крана ржавая\r\n"
    (tmp_path / "u.txt").write_bytes(content.encode("utf-16"))
    result = read_appeals(tmp_path / "u.txt", mapping=SIMPLE)
    assert result.encoding == "utf-16"
    assert [a.text for a in result.appeals] == ["Вода из крана ржавая"]
