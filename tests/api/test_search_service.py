"""The appeal search service on SQLite (FTS5 over Python stems) and PostgreSQL (russian FTS).

Both engines must find the same appeals for the same Russian words in any inflected form: every
query's results are compared with an oracle that does not depend on the engine (a substring of
the stored texts, or the query evaluated in Python on every stored text).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import appeals_of
from sqlalchemy.orm import sessionmaker

from mcu_nlp.routing import load_lexicon, load_rules
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.classify import ClassifyService, RulesHolder
from mcu_nlp.services.imports import import_appeals
from mcu_nlp.services.models import ModelRegistry
from mcu_nlp.services.search import (
    MAX_QUERY_LENGTH,
    QueryTooLong,
    SearchFilters,
    appeal_history,
    filter_options,
    parse_query,
    search_appeals,
    search_appeals_as,
    snippet,
)
from mcu_nlp.storage import Store
from mcu_nlp.storage.migrate import alembic_config
from mcu_nlp.storage.models import AppealRow, ReviewItemRow, RoutingDecisionRow
from mcu_nlp.text.search_terms import russian_stem

ROWS = 240
# word stems that occur in a few of the 240 appeals, each searched in two inflected forms
FORMS = {"помойк": ("помойку", "помойками"), "павильон": ("павильона", "павильонах"),
         "кровл": ("кровля", "кровлей"), "стеклопакет": ("стеклопакетах", "стеклопакет"),
         "перекр[её]стк": ("перекрёстке", "перекрестками")}
HOSTILE = ['"', '""', "*", "NEAR(", ")", "(", "AND", "OR", "NOT", "мусор AND двор",
           'NEAR(мусор двор, 3)', '"мусор', 'мусор"', "мусор*", "-", "--", "-мусор", "^мусор",
           "мусор:*", "двор & !мусор | (", "'; DROP TABLE appeals; --", "\\", "%_%", "{мусор}",
           "col:мусор", "мусор\x00двор", "ё", "🙂 мусор", "a" * 150, "мусор " * 30]


@pytest.fixture
def imported(store, bundle_dirs, bundle_loader, spb_slice):
    registry = ModelRegistry(store, loader=bundle_loader)
    registry.register(bundle_dirs["fake-v1"], activate=True)
    classifier = ClassifyService(models=registry.holder, rules=RulesHolder(load_rules()),
                                 lexicon=load_lexicon())
    summary = import_appeals(store, classifier, appeals_of(spb_slice.iloc[-ROWS:]))
    assert summary.stored > ROWS - 10
    return store


def stored_texts(store) -> dict[int, str]:
    with store.session() as session:
        return dict(session.execute(sa.select(AppealRow.id, AppealRow.text)).all())


def found(store, query, filters=None, **options) -> set[int]:
    ids: set[int] = set()
    while True:
        page = search_appeals(store, query, filters, limit=100, offset=len(ids), **options)
        ids |= {hit.appeal_id for hit in page.hits}
        if len(ids) >= page.total or not page.hits:
            assert len(ids) == page.total
            return ids


def test_inflected_forms_find_the_same_appeals_as_a_substring_oracle(imported):
    texts = stored_texts(imported)
    for stem, forms in FORMS.items():
        expected = {i for i, text in texts.items()
                    if re.search(rf"(?<!\w){stem}", text.lower())}
        assert expected, stem
        for form in forms:
            assert found(imported, form) == expected, (stem, form)


def test_results_equal_the_query_evaluated_in_python_on_every_text(imported):
    texts = stored_texts(imported)
    queries = ["мусор во дворе", "дворах", '"во дворе"', "яма or ямы", "снег -крыша",
               '"уборка снега"', "мусорные баки", "детская площадка", "освещение or фонарь",
               "течь кровли", "протечки", "Невский", "-мусор двор", "дерево or -двор"]
    for query in queries:
        parsed = parse_query(query)
        expected = {i for i, text in texts.items() if parsed.matches(text)}
        assert found(imported, query) == expected, query
    assert found(imported, "дворах") and found(imported, "мусор во дворе")


def test_filters_narrow_the_results(imported):
    everything = search_appeals(imported, "", limit=100)
    assert everything.total >= ROWS - 10
    options = filter_options(imported)
    territory = options["territory"][0]
    by_territory = search_appeals(imported, "", SearchFilters(territory=territory), limit=100)
    assert 0 < by_territory.total < everything.total
    assert {hit.territory for hit in by_territory.hits} == {territory}
    topic = "Благоустройство"
    by_topic = search_appeals(imported, "", SearchFilters(topic=topic), limit=100)
    assert 0 < by_topic.total < everything.total
    assert {hit.topic for hit in by_topic.hits} == {topic}
    with imported.session() as session:
        open_ids = set(session.scalars(sa.select(ReviewItemRow.appeal_id)
                                       .where(ReviewItemRow.status == "open")))
        auto_ids = set(session.scalars(sa.select(RoutingDecisionRow.appeal_id)
                                       .where(RoutingDecisionRow.decision == "auto")))
        newest = session.scalar(sa.select(sa.func.max(AppealRow.created_at)))
    assert open_ids and auto_ids
    in_queue = search_appeals(imported, "", SearchFilters(status="open"), limit=100)
    assert in_queue.total == len(open_ids)
    assert {hit.appeal_id for hit in in_queue.hits} <= open_ids
    assert search_appeals(imported, "", SearchFilters(status="auto")).total == len(auto_ids)
    day = newest.date()
    last_day = search_appeals(imported, "", SearchFilters(date_from=day, date_to=day), limit=100)
    assert 0 < last_day.total < everything.total
    assert all(hit.created_at.date() == day for hit in last_day.hits)
    assert search_appeals(imported, "", SearchFilters(date_to=day - timedelta(days=400))).total == 0
    department = options["department"][0]
    by_department = search_appeals(imported, "", SearchFilters(department=department), limit=100)
    assert by_department.total and {h.department for h in by_department.hits} == {department}
    # a word and a filter together
    word = search_appeals(imported, "двор", limit=100)
    both = search_appeals(imported, "двор", SearchFilters(territory=territory), limit=100)
    assert both.total <= min(word.total, by_territory.total)
    assert {h.appeal_id for h in both.hits} == (
        {h.appeal_id for h in word.hits} & {h.appeal_id for h in by_territory.hits})


def test_paging_and_order(imported):
    first = search_appeals(imported, "двор", limit=3, order="newest")
    second = search_appeals(imported, "двор", limit=3, offset=3, order="newest")
    assert first.total == second.total > 6
    assert not {h.appeal_id for h in first.hits} & {h.appeal_id for h in second.hits}
    dates = [h.created_at for h in first.hits + second.hits]
    assert dates == sorted(dates, reverse=True)
    ranked = search_appeals(imported, "двор", limit=100, order="relevance")
    assert {h.appeal_id for h in ranked.hits} == found(imported, "двор", order="newest")


def test_fts_syntax_in_queries_never_raises_and_overlong_queries_are_refused(imported):
    for query in HOSTILE:
        page = search_appeals(imported, query, limit=10)
        assert page.total >= len(page.hits) >= 0
    with pytest.raises(QueryTooLong):
        search_appeals(imported, "я" * (MAX_QUERY_LENGTH + 1))


def test_snippets_mark_the_inflected_words(imported):
    page = search_appeals(imported, "помойками", limit=10)
    assert page.hits
    for hit in page.hits:
        marked = [text.lower() for text, on in hit.snippet if on]
        assert marked and all(russian_stem(word) == "помойк" for word in marked)
    assert snippet("Во дворе мусор", {"мусор"}) == [("Во дворе ", False), ("мусор", True)]


def test_analysts_read_masked_texts_and_raw_pages_are_audited(imported):
    with imported.session() as session:
        row = session.scalars(sa.select(AppealRow).order_by(AppealRow.id)).first()
        row.text = "Иванов Иван Петрович, тел. +7 921 555-12-34: во дворе павильон и помойка"
        appeal_id = row.id
    page = search_appeals_as(imported, "павильон", actor="user:9:analyst", role="analyst",
                             via="test")
    mine = next(hit for hit in page.hits if hit.appeal_id == appeal_id)
    assert "Иванов" not in mine.text and "555" not in mine.text
    assert not list_audit(imported, entity="appeal", entity_id=str(appeal_id))
    # a match only through the masked phone is not shown to an analyst
    hidden = search_appeals_as(imported, "921", actor="user:9:analyst", role="analyst",
                               via="test")
    assert appeal_id not in {hit.appeal_id for hit in hidden.hits} and hidden.hidden >= 1
    raw = search_appeals_as(imported, "павильон", actor="user:1:oper", role="operator",
                            via="test")
    assert "Иванов" in next(h.text for h in raw.hits if h.appeal_id == appeal_id)
    reads = list_audit(imported, entity="appeal", entity_id=str(appeal_id))
    assert [entry.action for entry in reads] == ["appeal.read"]
    assert reads[0].actor == "user:1:oper"
    # the changed text is searchable at once (SQLite re-indexes an updated text)
    assert appeal_id in found(imported, "Петровичем")


def test_history_lists_the_decision_and_the_queue(imported):
    with imported.session() as session:
        appeal_id = session.scalar(sa.select(ReviewItemRow.appeal_id).limit(1))
    events, reads = appeal_history(imported, appeal_id, masked=True)
    kinds = [event.what for event in events]
    assert kinds[0] == "поступило" and any(k.startswith("маршрутизация") for k in kinds)
    assert any(k.startswith("в очередь") for k in kinds) and reads == 0


def test_appeals_written_around_the_orm_are_found(imported):
    with imported.engine.begin() as connection:
        connection.execute(sa.insert(AppealRow.__table__).values(
            source="core", source_id="1", channel="portal", created_at=datetime(2021, 4, 20),
            text="Шлагбаумы сломаны", extra={}, urgency=0.0, urgency_reasons=[],
            recorded_at=datetime(2021, 4, 20)))
    assert len(found(imported, "шлагбаум")) == 1


def _migrate(engine, revision, *, down=False):
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_migration_0005_indexes_the_appeals_already_stored(empty_engine):
    _migrate(empty_engine, "0004")
    texts = ["Во дворах не вывозят мусор", "Кровля протекает", "Сломаны качели на площадке"]
    with empty_engine.begin() as connection:
        for i, text in enumerate(texts):
            connection.execute(sa.insert(AppealRow.__table__).values(
                source="old", source_id=str(i), channel="portal",
                created_at=datetime(2021, 3, 1) + timedelta(days=i), text=text, extra={},
                urgency=0.0, urgency_reasons=[], recorded_at=datetime(2021, 3, 1)))
    _migrate(empty_engine, "0005")
    store = Store(engine=empty_engine, sessions=sessionmaker(empty_engine, expire_on_commit=False))
    assert len(found(store, "двор")) == 1 and len(found(store, "кровлю")) == 1
    assert len(found(store, "качелей")) == 1 and not found(store, "снег")
    # new appeals through the ORM are indexed at insert
    with store.session() as session:
        session.add(AppealRow(source="new", source_id="1", channel="pos",
                              created_at=datetime(2021, 3, 9), text="Снега по колено",
                              extra={}, urgency_reasons=[]))
    assert len(found(store, "снег")) == 1
    _migrate(empty_engine, "0004", down=True)
    _migrate(empty_engine, "0005")
    assert len(found(store, "снегом")) == 1 and len(found(store, "дворе")) == 1
