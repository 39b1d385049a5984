"""The overview page in a real browser, on SQLite and PostgreSQL.

The imported slice holds 240 appeals of 13–23 April 2021, so the default period is the week of
12–18 April and the month is April up to the 23rd. Root-cause clustering is replaced by a quick
stand-in (one cause per fine topic) whose cards carry raw personal data, to show the page masks
them; a growth alert is planted with the alert service.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from datetime import date, datetime

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import LiveConsole

import api.analytics
import api.console.overview as overview_module
import mcu_nlp.services.alerts as alert_service
from api.console.overview import choose_period
from mcu_nlp.reports.periods import previous_period
from mcu_nlp.services.audit import list_audit
from mcu_nlp.storage.models import AlertRow, AppealRow, HumanLabelRow
from mcu_nlp.trends.alerts import AlarmDay, TrendAlert
from mcu_nlp.trends.explain import AlertExplanation

RAW_PHONE = "+7 921 123-45-67"
RAW_EXAMPLE = f"Звоните Иванову Ивану Петровичу по телефону {RAW_PHONE}, кв. 15"
RISE_DAY = date(2021, 4, 15)
MONTH_START, MONTH_END = date(2021, 4, 1), date(2021, 4, 23)


def stand_in_root_causes(frame: pd.DataFrame):  # noqa: ANN201 - a RootCauseAnalysis
    """One root cause per fine topic (the three largest), examples with raw personal data."""
    from mcu_nlp.root_causes.cards import RootCause, Trend
    from mcu_nlp.services.root_causes import RootCauseAnalysis

    reasons = frame["label_reason"].fillna("—")
    created = pd.to_datetime(frame["created_at"])
    cards = []
    for n, (reason, size) in enumerate(reasons.value_counts().head(3).items()):
        rows = reasons == reason
        cards.append(RootCause(
            id=n, title=str(reason), keywords=["мусор", "двор"], size=int(size),
            share=round(size / len(frame), 4), trend=Trend("growing", 1, int(size) - 1, 2.0, 0.01),
            first_seen=created[rows].min().to_pydatetime(),
            last_seen=created[rows].max().to_pydatetime(), weekly_counts={"2021-04-12": int(size)},
            top_places=[("улица Турку, дом 11, кв. 5", 3)], dominant_topic=None, topic_share=0.0,
            department="Администрация района", department_share=1.0,
            territories=[("Невский", 2)], examples=[RAW_EXAMPLE]))
    return RootCauseAnalysis(cards=cards, n_appeals=len(frame), outlier_share=0.0,
                             topics=np.zeros(len(frame), dtype=int), frame=frame)


@pytest.fixture
def overview(monkeypatch, live_console: LiveConsole) -> LiveConsole:
    """The live console with the root-cause stand-in and one new growth alert in April."""
    # the app's AnalyticsData is created on its first analytics request, with this analysis
    monkeypatch.setattr(api.analytics, "_default_analyze", stand_in_root_causes)
    explanation = AlertExplanation(observed=40, expected=10.0, baseline_start=date(2021, 3, 15),
                                   baseline_end=date(2021, 4, 14), drivers={}, words=(),
                                   examples=(RAW_EXAMPLE,))
    rise = TrendAlert(dimension="territory", value="Невский", explanation=explanation, days=(
        AlarmDay(day=RISE_DAY, observed=40, expected=10.0, upper=20.0, p_value=1e-6,
                 rule="poisson"),))
    monkeypatch.setattr(alert_service, "scan_alerts", lambda frame, **_: [rise])
    outcome = alert_service.scan_and_store(live_console.store, pd.DataFrame(), as_of=RISE_DAY)
    live_console.alert_id = outcome.created[0]
    return live_console


def stored(live: LiveConsole, since: date, until: date) -> dict[str, Counter]:
    """Counts by territory and topic of the stored appeals of ``since``..``until``."""
    low, high = datetime.combine(since, datetime.min.time()), \
        datetime.combine(until, datetime.max.time())
    with live.store.session() as session:
        rows = session.execute(sa.select(AppealRow.id, AppealRow.territory).where(
            AppealRow.created_at >= low, AppealRow.created_at <= high)).all()
        topics = dict(session.execute(sa.select(HumanLabelRow.appeal_id, HumanLabelRow.value)
                                      .where(HumanLabelRow.label == "category")).all())
    return {"territory": Counter(r.territory for r in rows),
            "topic": Counter(topics[r.id] for r in rows)}


def bar_values(page, chart: str) -> list[tuple[str, float]]:
    return page.eval_on_selector_all(
        f"svg#{chart} rect.bar.current",
        "els => els.map(e => [e.dataset.label, Number(e.dataset.value)])")


def check_bars(page, chart: str, counts: Counter, limit: int) -> None:
    """The chart has a current and a previous bar per category; current ones match ``counts``."""
    assert page.locator(f"svg#{chart}").count() == 1
    assert page.get_attribute(f"svg#{chart}", "data-empty") is None
    shown = bar_values(page, chart)
    rows = min(len(counts), limit) + (len(counts) > limit)
    assert len(shown) == rows
    assert page.locator(f"svg#{chart} rect.bar.previous").count() == rows
    if len(counts) <= limit:
        assert dict(shown) == dict(counts)
    assert sum(value for _, value in shown) == sum(counts.values())


def test_an_analyst_picks_a_month_sees_its_charts_acknowledges_an_alert_and_gets_the_note(
        new_page, overview):
    page = new_page("analyst1")
    assert page.url.endswith("/console/overview")
    # the default: the latest complete week of the data (the newest appeal is on 23.04.2021)
    assert "неделя 12.04.2021 – 18.04.2021" in page.inner_text("h1")
    week = stored(overview, date(2021, 4, 12), date(2021, 4, 18))
    check_bars(page, "chart-territory", week["territory"], limit=20)

    # choose a month with the picker
    page.select_option("#period-kind", "month")
    page.fill("#period-end", "2021-04-20")
    with page.expect_navigation():
        page.click("#period-apply")
    assert "period=month" in page.url
    assert "апрель 2021 г. (01.04.2021 – 23.04.2021)" in page.inner_text("h1")
    month = stored(overview, MONTH_START, MONTH_END)
    check_bars(page, "chart-territory", month["territory"], limit=20)
    check_bars(page, "chart-topic", month["topic"], limit=12)
    assert bar_values(page, "chart-channel") == [["Городской портал", sum(
        month["territory"].values())]]
    # the daily chart: a line per period, a point per day of each
    assert page.locator("svg#chart-daily path.line").count() == 2
    assert page.locator("svg#chart-daily circle.point").count() == 2 * 23
    daily = page.eval_on_selector_all("svg#chart-daily circle.point.s0",
                                      "els => els.map(e => Number(e.dataset.value))")
    assert sum(daily) == sum(month["territory"].values())
    for chart in ("chart-sla", "chart-routing"):
        assert page.locator(f"svg#{chart}").count() == 1
    assert page.locator("svg#chart-routing circle.point").count() >= 1
    assert "Сообщений" in page.inner_text("#kpi-total")

    # root causes arrive once their job is done; their personal data is masked
    page.wait_for_selector("#root-causes[data-state=ready]")
    assert page.locator(".rc-card").count() == 3
    # the planted alert, its explanation, and acknowledging it
    card = page.locator(f".alert-card[data-alert-id='{overview.alert_id}']")
    assert "Невский" in card.inner_text() and "40 сообщений при ожидаемых 10" in card.inner_text()
    content = page.content()
    assert RAW_PHONE not in content and "Иванову" not in content and "[ТЕЛЕФОН]" in content
    card.locator("input[name=comment]").fill("передано в район")
    card.locator("button.ack-button").click()
    page.wait_for_selector(".ack-done")
    assert card.locator(".alert-status").inner_text() == "принято"
    with overview.store.session() as session:
        row = session.get(AlertRow, overview.alert_id)
        assert row.status == "acknowledged" and row.status_changed_by.endswith(":analyst1")
    acks = [e for e in list_audit(overview.store, entity="alert") if e.action == "alert.ack"]
    assert len(acks) == 1 and acks[0].actor.endswith(":analyst1")
    assert acks[0].details["comment"] == "передано в район"

    # the note of the month as DOCX, from the page's link
    with page.expect_download() as info:
        page.click("#note-docx")
    data = open(info.value.path(), "rb").read()
    assert data[:2] == b"PK"
    document = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode("utf-8")
    assert "Аналитическая справка" in document and "апрель 2021" in document
    assert RAW_PHONE not in document


def cookie_of(page) -> dict[str, str]:
    return {"mcu_session": {c["name"]: c["value"] for c in page.context.cookies()}["mcu_session"]}


def test_downloads_roles_csrf_and_bad_periods(new_page, overview, monkeypatch):
    page = new_page("analyst1")
    url = overview.url
    # a period whose figures are still computed: «идёт расчёт», then the page reloads itself
    monkeypatch.setattr(overview_module, "FIGURES_WAIT", 0.0)
    page.goto(f"{url}/console/overview?period=custom&start=2021-04-14&end=2021-04-16")
    assert "Идёт расчёт показателей" in page.inner_text("#figures-pending")
    page.wait_for_selector("svg#chart-daily")
    assert page.locator("svg#chart-daily circle.point.s0").count() == 3
    month = "period=month&end=2021-04-23"
    with httpx.Client(base_url=url, cookies=cookie_of(page), timeout=30) as client:
        html_note = client.get(f"/console/overview/note?{month}&format=html")
        assert html_note.status_code == 200 and "text/html" in html_note.headers["content-type"]
        assert "attachment" in html_note.headers["content-disposition"]
        assert "Аналитическая справка" in html_note.text and RAW_PHONE not in html_note.text
        cur = client.get("/console/overview/cur-export?period=week&end=2021-04-18&format=csv")
        assert cur.status_code == 200 and cur.text.startswith("period_kind,")
        cur_json = client.get("/console/overview/cur-export?period=week&end=2021-04-18").json()
        assert cur_json["period"]["start"] == "2021-04-12"
        # the roadmap of the month's root causes (masked), once they are computed
        page.goto(f"{url}/console/overview?{month}")
        page.wait_for_selector("#root-causes[data-state=ready]")
        roadmap = client.get(f"/console/overview/roadmap?{month}&format=html")
        assert roadmap.status_code == 200 and "Дорожная карта" in roadmap.text
        assert RAW_PHONE not in roadmap.text and "[ТЕЛЕФОН]" in roadmap.text
        # acknowledging needs the session's CSRF token
        ack = f"/console/overview/alerts/{overview.alert_id}/ack"
        assert client.post(ack, json={}).status_code == 403
        assert client.post(ack, data={"csrf_token": "forged"}).status_code == 403
        token = page.get_attribute("meta[name=csrf-token]", "content")
        back = client.post(ack, data={"csrf_token": token, "back": "https://evil.example/"})
        assert back.status_code == 303 and back.headers["location"] == "/console/overview"
        assert client.post("/console/overview/alerts/999999/ack",
                           headers={"X-CSRF-Token": token}).status_code == 404
        # a reversed custom period is refused with a reason, and the default week shown
        bad = client.get("/console/overview?period=custom&start=2021-04-20&end=2021-04-01",
                         headers={"Accept": "text/html"})
        assert bad.status_code == 200 and "начало периода позже его конца" in bad.text
        assert "неделя 12.04.2021 – 18.04.2021" in bad.text
        assert client.get("/console/overview?period=week&end=garbage").status_code == 200
    # operators do not see the overview
    operator = new_page("oper1")
    assert operator.goto(f"{url}/console/overview").status == 403
    with httpx.Client(base_url=url, cookies=cookie_of(operator)) as client:
        assert client.get("/console/overview/note?period=week").status_code == 403


@pytest.mark.parametrize(("kind", "start", "end", "expected", "before"), [
    ("week", None, None, (date(2021, 4, 12), date(2021, 4, 18)),
     (date(2021, 4, 5), date(2021, 4, 11))),
    ("week", None, date(2021, 4, 14), (date(2021, 4, 12), date(2021, 4, 18)), None),
    ("month", None, date(2021, 4, 2), (MONTH_START, MONTH_END),
     (date(2021, 3, 1), date(2021, 3, 23))),
    ("month", None, date(2021, 2, 10), (date(2021, 2, 1), date(2021, 2, 28)),
     (date(2021, 1, 1), date(2021, 1, 31))),
    ("month", None, date(2021, 6, 5), (date(2021, 6, 1), date(2021, 6, 30)),
     (date(2021, 5, 1), date(2021, 5, 31))),
    ("quarter", None, None, (date(2021, 4, 1), date(2021, 4, 23)),
     (date(2021, 1, 1), date(2021, 1, 23))),
    ("quarter", None, date(2021, 2, 1), (date(2021, 1, 1), date(2021, 3, 31)),
     (date(2020, 10, 1), date(2020, 12, 31))),
    ("custom", date(2021, 4, 1), date(2021, 4, 10), (date(2021, 4, 1), date(2021, 4, 10)),
     (date(2021, 3, 22), date(2021, 3, 31))),
])
def test_the_picker_periods_and_what_they_compare_with(kind, start, end, expected, before):
    chosen = choose_period(kind, start, end, last=date(2021, 4, 23))
    assert (chosen.start, chosen.end) == expected
    if before is not None:
        previous = previous_period(chosen)
        assert (previous.start, previous.end) == before
