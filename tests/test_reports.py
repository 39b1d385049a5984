"""The analytical note, its DOCX/HTML/PDF rendering, the ЦУР export and the CLI."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil
import subprocess
import zipfile
from datetime import date, datetime

import pandas as pd
import pytest

from mcu_nlp.reports.cur_export import CSV_COLUMNS, SCHEMA_VERSION, cur_document, cur_rows
from mcu_nlp.reports.note import build_note
from mcu_nlp.reports.periods import previous_period, report_period
from mcu_nlp.services import reporting
from mcu_nlp.sla.quality import quality_summary
from mcu_nlp.sla.timeliness import annotate_sla

HAS_MASKING = importlib.util.find_spec("mcu_nlp.text.masking") is not None
NOW = datetime(2021, 4, 25, 12, 0)
PHONE, EMAIL = "+7 921 555-12-34", "ivanov.petr@mail.ru"
ALERTS = [{"title": "Рост сообщений: Благоустройство, Невский район",
           "explanation": f"Жалобы на мусор во дворах; житель просит звонить {PHONE}, {EMAIL}"}]
ROOT_CAUSES = [{"title": "Мусор на контейнерных площадках", "size": 412,
                "description": "Нерегулярный вывоз",
                "examples": [f"Мусор не вывозят неделю, пишите {EMAIL}"]}]


def spb_to_appeal_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw SPb CSV in the layout of ``mcu_nlp.ingest.appeals_to_frame`` (columns only)."""
    frame = raw.rename(columns={"district": "territory", "category": "label_category",
                                "reason": "label_reason", "department": "label_department"})
    frame["channel"] = "portal"
    return frame


@pytest.fixture(scope="module")
def spb(spb_frame):
    return spb_to_appeal_frame(spb_frame)


@pytest.fixture(scope="module")
def week_note(spb):
    return build_note(spb, report_period("week", date(2021, 3, 21)), now=NOW)


@pytest.fixture(scope="module")
def quarter_note(spb):
    return build_note(spb, report_period("quarter", date(2021, 3, 31)), now=NOW, top=None)


def test_periods():
    week = report_period("week", "2021-03-21")
    assert (week.start, week.end, week.days) == (date(2021, 3, 15), date(2021, 3, 21), 7)
    assert previous_period(week).start == date(2021, 3, 8)
    q = report_period("quarter", date(2021, 3, 31))
    assert (q.start, q.title()) == (date(2021, 1, 1), "I квартал 2021 г.")
    prev = previous_period(q)
    assert (prev.start, prev.end) == (date(2020, 10, 1), date(2020, 12, 31))
    partial = previous_period(report_period("quarter", date(2021, 4, 23)))
    assert (partial.start, partial.end) == (date(2021, 1, 1), date(2021, 1, 23))
    assert previous_period(report_period("quarter", date(2021, 2, 28))).end == date(2020, 11, 30)
    assert previous_period(report_period("quarter", date(2021, 2, 27))).end == date(2020, 11, 27)
    assert previous_period(report_period("quarter", date(2021, 6, 30))).end == date(2021, 3, 31)
    with pytest.raises(ValueError):
        report_period("month", date(2021, 3, 1))


@pytest.mark.parametrize("which", ["week", "quarter"])
def test_note_counts_match_pandas(spb_frame, week_note, quarter_note, which):
    note = week_note if which == "week" else quarter_note
    created = pd.to_datetime(spb_frame["created_at"], format="ISO8601")

    def rows(period):
        lo = pd.Timestamp(period["start"])
        hi = pd.Timestamp(period["end"]) + pd.Timedelta(days=1)
        return spb_frame[(created >= lo) & (created < hi)]

    cur, prev = rows(note.period), rows(note.previous_period)
    assert (note.totals.current, note.totals.previous) == (len(cur), len(prev))
    assert note.totals.change_pct == round(100 * (len(cur) - len(prev)) / len(prev), 1)
    assert [(r.code, r.current) for r in note.by_channel] == [("portal", len(cur))]
    topics = cur["category"].value_counts()
    shown = note.top_topics
    assert all(r.current == topics.get(r.name, 0) for r in shown)
    assert sorted(r.current for r in shown) == sorted(topics.head(len(shown)).tolist())
    if which == "quarter":  # top=None lists every topic
        assert {r.name: r.current for r in shown if r.current} == topics.to_dict()
    top_places = cur["district"].value_counts().head(10)
    assert [(r.name, r.current) for r in note.top_territories[:3]] == \
        list(top_places.head(3).items())
    assert {r.name: r.previous for r in note.top_territories} == \
        {k: int(v) for k, v in prev["district"].value_counts().items()
         if k in {r.name for r in note.top_territories}}
    assert sum(d["current"] for d in note.daily) == len(cur)
    span = pd.Timestamp(note.period["end"]) - pd.Timestamp(note.period["start"])
    assert len(note.daily) == span.days + 1
    grown = [r.change for r in note.growing_topics]
    assert grown == sorted(grown, reverse=True) and all(c > 0 for c in grown)


def test_note_quality_and_rating_come_from_the_sla_module(spb, week_note):
    annotated = annotate_sla(spb, pd.Timestamp("2021-03-22"))
    assert week_note.quality == quality_summary(annotated, date(2021, 3, 15), date(2021, 3, 21))
    ranked = [r for r in week_note.rating if r.ranked]
    assert ranked[0].rank == 1 and ranked[0].score >= ranked[-1].score
    assert sum(r.received for r in week_note.rating) == week_note.totals.current


def test_quarter_note_warns_that_the_data_starts_late(quarter_note, week_note):
    assert any("18.10.2020" in c for c in quarter_note.caveats)
    assert not any("начинаются" in c for c in week_note.caveats)
    assert quarter_note.period == {"kind": "quarter", "start": "2021-01-01", "end": "2021-03-31"}


@pytest.mark.skipif(not HAS_MASKING, reason="mcu_nlp.text.masking not available yet")
def test_alert_and_root_cause_text_is_masked(spb_slice):
    note = build_note(spb_to_appeal_frame(spb_slice), report_period("week", "2021-03-21"),
                      alerts=ALERTS, root_causes=ROOT_CAUSES, now=NOW)
    dumped = note.model_dump_json()
    assert PHONE not in dumped and EMAIL not in dumped and "555-12-34" not in dumped
    assert "Благоустройство" in note.alerts[0].title and note.root_causes[0].size == 412


def _docx_text_and_images(data: bytes) -> tuple[str, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = z.read("word/document.xml").decode("utf-8")
        images = [n for n in z.namelist() if n.startswith("word/media/")]
    return xml, len(images)


@pytest.fixture(scope="module")
def slice_note(spb_slice):
    return build_note(spb_to_appeal_frame(spb_slice), report_period("week", "2021-03-21"),
                      alerts=ALERTS if HAS_MASKING else None,
                      root_causes=ROOT_CAUSES if HAS_MASKING else None, now=NOW)


def test_docx_and_html_carry_the_sections_and_charts(slice_note):
    docx = reporting.render_report(slice_note, "docx")
    xml, n_images = _docx_text_and_images(docx)
    assert n_images >= 3
    for heading in ("Основные показатели", "Тематики", "Территории", "Рейтинг ответственных"):
        assert heading in xml
    html = reporting.render_report(slice_note, "html").decode("utf-8")
    assert html.count("data:image/png;base64,") >= 3 and "<h2>7. Сроки и качество" in html
    for text in (xml, html):
        assert PHONE not in text and EMAIL not in text


@pytest.mark.skipif(not (shutil.which("soffice") and shutil.which("pdftoppm")),
                    reason="LibreOffice/poppler not installed (run .ci/setup-system.sh)")
def test_docx_renders_through_libreoffice(slice_note, tmp_path):
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(reporting.render_report(slice_note, "pdf"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for heading in ("Аналитическая справка", "1. Основные показатели",
                    "8. Рейтинг ответственных получателей", "9. Методика"):
        assert heading in " ".join(text.split())
    assert PHONE not in text and EMAIL not in text
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[2:]
    assert sum(line.split()[2] == "image" for line in images) >= 3  # charts, not alpha masks
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3


def test_cur_export_json_and_csv_agree(quarter_note, tmp_path):
    from mcu_nlp.reports.cur_export import write_cur_export

    json_path, csv_path = write_cur_export(quarter_note, tmp_path, municipality="СПб")
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["municipality"] == "СПб"
    assert doc == json.loads(json.dumps(cur_document(quarter_note, "СПб"), ensure_ascii=False))
    assert doc["totals"]["received"] == quarter_note.totals.current
    assert sum(t["received"] for t in doc["by_topic"]) == doc["totals"]["received"]
    assert sum(t["received"] for t in doc["by_territory"]) == doc["totals"]["received"]
    with csv_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(cur_rows(doc))
    got = {(r["section"], r["key"], r["metric"]): r["value"] for r in rows}
    assert got[("totals", "all", "received")] == str(doc["totals"]["received"])
    assert got[("quality", "all", "in_time_share")] == str(doc["quality"]["in_time_share"])
    first = doc["departments"][0]
    assert got[("department", first["department"], "score")] == str(first["score"])


def test_cli_report_and_export(spb_slice, tmp_path):
    from typer.testing import CliRunner

    from mcu_nlp.cli import app

    data = tmp_path / "appeals.csv.gz"
    spb_slice.to_csv(data, index=False, compression="gzip")
    runner = CliRunner()
    out = tmp_path / "note.html"
    result = runner.invoke(app, ["report", "--period", "week", "--end", "2021-03-21",
                                 "--format", "html", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "неделя 15.03.2021" in out.read_text(encoding="utf-8")
    result = runner.invoke(app, ["export-cur", "--period", "quarter", "--end", "2021-03-31",
                                 "--data", str(data), "--out", str(tmp_path / "cur")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cur" / "cur_quarter_2021-01-01_2021-03-31.json").exists()
    bad = runner.invoke(app, ["report", "--period", "month", "--data", str(data),
                              "--out", str(out)])
    assert bad.exit_code != 0


def test_load_appeals_frame_reports_unreadable_files(tmp_path):
    from mcu_nlp.ingest import IngestError

    broken = tmp_path / "empty.csv"
    broken.write_text("text,created_at\n", encoding="utf-8")
    with pytest.raises(IngestError):
        reporting.load_appeals_frame(broken)


def test_load_appeals_frame_reads_the_store(tmp_path, monkeypatch):
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage.db import Store
    from mcu_nlp.storage.models import AppealRow, HumanLabelRow, PredictionRow

    url = f"sqlite:///{tmp_path / 'mcu.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        with pytest.raises(LookupError):
            reporting.load_appeals_frame("store")  # no store file yet
        store = Store.from_url(url)
        with store.session() as session:
            row = AppealRow(source="pos_export", source_id="A-1", channel="pos",
                            created_at=datetime(2021, 3, 16, 10), text="Яма во дворе",
                            territory="Невский", extra={"first_answer_dt": "2021-03-18T12:00:00",
                                                        "last_status": "Получен ответ"})
            row.labels.append(HumanLabelRow(label="category", value="Благоустройство",
                                            origin="source"))
            row.labels.append(HumanLabelRow(label="category", value="Дороги",
                                            origin="correction"))
            row.predictions.append(PredictionRow(model_version="v1", label="department",
                                                 value="ЖА Невского района", confidence=0.9))
            session.add(row)
        store.dispose()
        frame = reporting.load_appeals_frame()
        assert frame.loc[0, "label_category"] == "Дороги"  # the correction wins
        assert frame.loc[0, "pred_department"] == "ЖА Невского района"
        assert frame.loc[0, "first_answer_dt"] == pd.Timestamp("2021-03-18T12:00")
        note = reporting.build_report(frame, period="week", end="2021-03-21")
        assert note.totals.current == 1 and note.rating[0].department == "ЖА Невского района"
    finally:
        get_settings.cache_clear()


@pytest.mark.skipif(not HAS_MASKING, reason="mcu_nlp.text.masking not available yet")
def test_trend_alert_objects_become_readable_lines(spb_slice):
    from types import SimpleNamespace

    explanation = SimpleNamespace(summary=lambda: f"42 сообщений при ожидаемых 24\nзвоните {PHONE}")
    alert = SimpleNamespace(dimension="topic", value="Мусор во дворе", first_day="2021-03-19",
                            last_day="2021-03-21", explanation=explanation)
    note = build_note(spb_to_appeal_frame(spb_slice), report_period("week", "2021-03-21"),
                      alerts=[alert], now=NOW)
    assert note.alerts[0].title == "Рост: тема «Мусор во дворе» (2021-03-19 – 2021-03-21)"
    assert note.alerts[0].explanation.startswith("42 сообщений при ожидаемых 24; звоните")
    assert PHONE not in note.alerts[0].explanation
