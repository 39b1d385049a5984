"""The console's search and appeal pages in a real browser, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from mcu_nlp.services.audit import list_audit
from mcu_nlp.storage.models import AppealRow

HOSTILE = ['"', "*", "NEAR(", ")", "(", "AND", "мусор AND двор", 'NEAR(мусор двор, 3)',
           '"мусор', "мусор*", "-", "-мусор", "двор & !мусор | (", "col:мусор", "{мусор}",
           "'; DROP TABLE appeals; --", "\\", "%", "мусор\x00двор", "🙂", "ё" * 150]
PERSON = "Сидоров Пётр Иванович, тел. +7 921 555-12-34"


def appeals_with(store, pattern: str) -> dict[int, str]:
    with store.session() as session:
        rows = session.execute(sa.select(AppealRow.id, AppealRow.text)).all()
    return {i: t for i, t in rows if re.search(pattern, t.lower())}


def search(page, live, query: str = "", **selects: str) -> None:
    page.goto(f"{live.url}/console/search")
    page.fill("input[name=q]", query)
    for name, value in selects.items():
        page.select_option(f"select[name={name}]", value)
    with page.expect_navigation():
        page.click("#search-form button[type=submit]")


def hit_ids(page) -> set[int]:
    return {int(x) for x in page.locator("li.search-hit").evaluate_all(
        "items => items.map(i => i.dataset.appealId)")}


def total(page) -> int:
    return int(page.inner_text("#search-total strong").replace("\u202f", ""))


def test_a_word_and_its_inflected_forms_find_the_appeal(new_page, live_console):
    expected = appeals_with(live_console.store, r"(?<!\w)павильон")
    assert expected
    page = new_page("oper1")
    for query in ("павильон", "павильонах", "Павильона"):
        search(page, live_console, query)
        assert hit_ids(page) == set(expected), query
        marks = [m.lower() for m in page.locator(".snippet mark").all_inner_texts()]
        assert marks and all(m.startswith("павильон") for m in marks)
    # an excluded word: every form of it is excluded
    search(page, live_console, "павильон -павильона")
    assert page.locator("#search-empty").count() == 1
    # FTS syntax is plain text: results or an empty list, never an error
    search(page, live_console, 'мусор AND NEAR( "двор *')
    assert page.locator("#search-total").count() == 1
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["mcu_session"]
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie},
                      headers={"Accept": "text/html"}) as client:
        for query in HOSTILE:
            response = client.get(f"/console/search?q={quote(query)}")
            assert response.status_code == 200, query
            assert 'id="search-total"' in response.text or "нет слов для поиска" in response.text
        too_long = client.get(f"/console/search?q={quote('я' * 300)}")
        assert too_long.status_code == 400 and "Слишком длинный запрос" in too_long.text
        assert client.get("/console/search?q=x&page=0").status_code == 422
        assert client.get("/console/search?date_from=вчера&q=двор").status_code == 200
        assert client.get("/console/appeals/abc").status_code == 422
        for name in ("topic", "department", "territory", "channel", "status", "order"):
            assert client.get(f"/console/search?q=двор&{name}=%00x").status_code == 200, name


def test_filters_narrow_the_results(new_page, live_console):
    page = new_page("analyst1")
    search(page, live_console, "")
    assert page.locator("#search-total").count() == 0  # nothing searched yet
    search(page, live_console, "двор")
    everything = hit_ids(page)
    assert total(page) == len(everything) > 2
    with live_console.store.session() as session:
        territories = Counter(session.scalars(sa.select(AppealRow.territory)
                                              .where(AppealRow.id.in_(everything))))
    territory, count = territories.most_common(1)[0]
    assert count < len(everything)
    search(page, live_console, "двор", territory=territory)
    assert total(page) == count and hit_ids(page) < everything
    badges = page.locator("li.search-hit .hit-head").all_inner_texts()
    assert badges and all(territory in badge for badge in badges)
    search(page, live_console, "", status="open")
    in_queue = total(page)
    shown = page.locator("li.search-hit").count()
    assert in_queue > 0 and page.locator("li.search-hit .badge.open").count() == shown
    search(page, live_console, "", status="auto")
    shown = page.locator("li.search-hit").count()
    assert total(page) > 0
    assert page.locator("li.search-hit .badge.auto").count() == shown
    # dates: the newest appeal's day only
    with live_console.store.session() as session:
        newest = session.scalar(sa.select(sa.func.max(AppealRow.created_at)))
    day = newest.date().isoformat()
    page.goto(f"{live_console.url}/console/search?date_from={day}&date_to={day}")
    dates = page.locator("li.search-hit .hit-head .muted").all_inner_texts()
    assert dates and all(d.startswith(newest.strftime("%d.%m.%Y")) for d in dates)
    assert page.locator("input[name=date_from]").input_value() == day


def test_analysts_see_masked_data_operators_raw_and_every_opening_is_audited(new_page,
                                                                             live_console):
    target = min(appeals_with(live_console.store, r"(?<!\w)павильон"))
    with live_console.store.session() as session:
        row = session.get(AppealRow, target)
        row.text = f"{PERSON}. {row.text}"
    analyst = new_page("analyst1")
    search(analyst, live_console, "павильон")
    snippet = analyst.locator(f"li.search-hit[data-appeal-id='{target}'] .snippet").inner_text()
    assert "Сидоров" not in snippet and "555" not in snippet
    # a word of the masked name finds nothing for an analyst
    search(analyst, live_console, "Сидоров")
    assert target not in hit_ids(analyst)
    analyst.goto(f"{live_console.url}/console/appeals/{target}")
    text = analyst.inner_text("#appeal-text")
    assert "Сидоров" not in text and "555-12-34" not in text and "павильон" in text.lower()
    assert analyst.locator("#masked-note").count() == 1
    # an analyst's opening is audited as a masked read
    newest = list_audit(live_console.store, entity="appeal", entity_id=str(target))[0]
    assert newest.actor.endswith(":analyst1") and newest.details.get("masked") is True
    assert newest.details.get("via") == "GET /console/appeals/{id}"
    assert analyst.goto(f"{live_console.url}/console/appeals/999999").status == 404

    # an operator reads raw data, and opening the appeal writes an audit row
    page = new_page("oper1")
    search(page, live_console, "Сидоров")
    assert target in hit_ids(page)
    before = [e for e in list_audit(live_console.store, entity="appeal", entity_id=str(target))
              if e.details.get("via") == "GET /console/appeals/{id}"]
    with page.expect_navigation():
        page.click(f"li.search-hit[data-appeal-id='{target}'] a.hit-link")
    assert page.url.endswith(f"/console/appeals/{target}")
    assert page.locator("h1").inner_text() == f"Обращение №{target}"
    for section in ("#decision", "#labels", "#predictions", "#history"):
        assert page.locator(section).count() == 1, section
    assert page.locator("#predictions tbody tr").count() >= 1
    assert "поступило" in page.inner_text("#history")
    reads = [e for e in list_audit(live_console.store, entity="appeal", entity_id=str(target))
             if e.details.get("via") == "GET /console/appeals/{id}"]
    assert len(reads) == len(before) + 1
    assert reads[0].action == "appeal.read" and reads[0].actor.endswith(":oper1")
    assert "masked" not in reads[0].details
    assert PERSON in page.inner_text("#appeal-text")
    # the results page itself was a raw read of the texts on it
    assert any(e.details.get("via") == "GET /console/search" and e.actor.endswith(":oper1")
               for e in list_audit(live_console.store, entity="appeal", entity_id=str(target)))
