"""Root-cause clustering, cards and roadmaps on a small real slice of SPb appeals."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bertopic")

from mcu_nlp.embeddings import Usem3Embedder  # noqa: E402
from mcu_nlp.root_causes import RootCauseModel, build_cards  # noqa: E402
from mcu_nlp.root_causes.cards import (  # noqa: E402
    keyword_title,
    phrase_keyword,
    plural,
    responsible_of,
    short_topic,
    title_of,
    trend_of,
)
from mcu_nlp.root_causes.places import place_of_address  # noqa: E402
from mcu_nlp.root_causes.roadmap import render_html, suggest_stages, write_docx  # noqa: E402


@pytest.fixture(scope="module")
def sample(spb_slice: pd.DataFrame) -> pd.DataFrame:
    return spb_slice.iloc[:1500].reset_index(drop=True)


@pytest.fixture(scope="module")
def vectors(sample: pd.DataFrame) -> np.ndarray:
    return Usem3Embedder().encode(sample["text"].tolist())


def _model() -> RootCauseModel:
    return RootCauseModel(sample_size=1000, min_cluster_size=12, min_samples=3, random_state=7)


@pytest.fixture(scope="module")
def fitted(sample: pd.DataFrame, vectors: np.ndarray) -> RootCauseModel:
    return _model().fit(sample["text"].tolist(), embeddings=vectors)


def test_clusters_repeat_for_a_seed_and_track_the_topics(fitted, sample, vectors) -> None:
    again = _model().fit_predict(sample["text"].tolist(), embeddings=vectors)
    np.testing.assert_array_equal(fitted.topics_, again)
    assert len(set(fitted.topics_.tolist()) - {-1}) >= 5
    assert fitted.outlier_share_ < 0.15
    # identical texts always share a cluster
    by_text = pd.Series(fitted.topics_).groupby(sample["text"].to_numpy()).nunique()
    assert (by_text == 1).all()
    # clusters agree with the portal's own fine topics far better than chance
    from sklearn.metrics import normalized_mutual_info_score

    nmi = normalized_mutual_info_score(sample["reason"], fitted.topics_)
    shuffled = normalized_mutual_info_score(sample["reason"],
                                            np.random.default_rng(0).permutation(fitted.topics_))
    assert nmi > shuffled + 0.15


def test_topic_words_are_russian_lemmas_without_stop_words(fitted) -> None:
    from mcu_nlp.text.stopwords import RUSSIAN_STOP_WORDS

    words = [w for topic, pairs in fitted.topic_words_.items() if topic != -1 for w, _ in pairs]
    assert words
    assert all(any("а" <= ch <= "я" for ch in w) for w in words[:50])
    assert not {w for w in words if " " not in w} & set(RUSSIAN_STOP_WORDS)


def test_new_texts_go_to_the_nearest_topic(fitted, sample, vectors) -> None:
    assigned = fitted.transform(sample["text"].tolist()[:200], embeddings=vectors[:200])
    clustered = fitted.topics_[:200] != -1
    assert np.mean(assigned[clustered] == fitted.topics_[:200][clustered]) > 0.6


def test_cards_describe_each_cluster(fitted, sample, vectors) -> None:
    cards = build_cards(sample, fitted.topics_, fitted.topic_words_, vectors,
                        topic_column="reason", department_column="department",
                        territory_column="district")
    assert [c.size for c in cards] == sorted((c.size for c in cards), reverse=True)
    assert sum(c.size for c in cards) == int((fitted.topics_ != -1).sum())
    card = cards[0]
    assert card.title and card.title[0].isupper()
    assert 3 <= len(card.examples) <= 5
    assert card.dominant_topic in set(sample["reason"])
    assert card.department in set(sample["department"])
    assert card.first_seen <= card.last_seen
    assert sum(card.weekly_counts.values()) == card.size
    assert card.top_places and card.top_places[0][1] >= 1
    # the title names the problem and its scope
    assert card.title.endswith(card.scope.title) and " — " in card.title
    assert card.scope.n_territories == sample["district"].iloc[
        np.flatnonzero(fitted.topics_ == card.id)].nunique()
    assert card.responsible.level in ("department", "department_group", "several")
    assert card.breakdown and card.breakdown[0]["territory"] == card.territories[0][0]
    assert card.place_keys and card.scope.n_places == len(card.place_keys)
    data = card.to_dict()
    json.dumps(data, ensure_ascii=False)
    # backward compatible: every earlier field is still there, as before
    assert {"id", "title", "keywords", "size", "share", "trend", "first_seen", "last_seen",
            "weekly_counts", "top_places", "dominant_topic", "topic_share", "department",
            "department_share", "territories", "examples", "description"} <= set(data)
    assert data["top_places"][0] == {"place": card.top_places[0][0],
                                     "count": card.top_places[0][1]}
    assert data["scope"]["label"] and data["responsible"]["label"] and data["follow_up"] is None
    assert "place_keys" not in data and data["n_place_keys"] == len(card.place_keys)
    # titles by a clear fine topic are the topic (shortened); two cards never read the same
    for c in cards:
        if c.title_source == "topic":
            assert c.title.startswith(short_topic(c.dominant_topic)) and c.topic_share >= 0.5
    assert len({c.title for c in cards}) == len(cards)


CLEANING = "Отсутствие или несоблюдение графика уборки подъезда"
STAIRWELL = "Неудовлетворительное состояние парадной"
LITTER = "Мусор на внутридворовой территории"
CKB = 'СПб ГКУ "Центр комплексного благоустройства"'


def test_planted_clusters_get_topic_titles_scopes_and_owners(spb_slice, shared_data) -> None:
    """A cluster whose reason holds 78 % is titled by it; owners at the level with a majority."""
    by_reason = {r: spb_slice[spb_slice["reason"] == r] for r in (CLEANING, STAIRWELL, LITTER)}
    first = pd.concat([by_reason[CLEANING].iloc[:78], by_reason[STAIRWELL].iloc[:22]])
    second = by_reason[LITTER].iloc[:40].copy()
    second["district"] = "Невский"
    second["department"] = [CKB] * 25 + ["СПб ГКУ ЖА Невского района"] * 15
    third = pd.concat([by_reason[r].iloc[100:110] for r in (CLEANING, STAIRWELL, LITTER)])
    third["department"] = [CKB] * 10 + ["Администрация Невского района"] * 10 \
        + ["СПб ГКУ ЖА Невского района"] * 10
    frame = pd.concat([first, second, third], ignore_index=True)
    frame = frame.drop(columns=["department_group"])  # the groups come from departments.csv
    topics = np.repeat([0, 1, 2], [100, 40, 30])
    vectors = np.random.default_rng(0).normal(size=(len(frame), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = {0: [("график уборка", 1.0)], 1: [("мусор", 1.0)],
             2: [("надпись", 1.0), ("мусор", 0.5), ("парадный", 0.4)]}
    groups = pd.read_csv(shared_data / "spb_our_city_appeals" / "departments.csv")
    cards = {c.id: c for c in build_cards(
        frame, topics, words, vectors, topic_column="reason", department_column="department",
        department_groups=dict(zip(groups["department"], groups["department_group"],
                                   strict=True)),
        territory_column="district")}

    districts = first["district"].nunique()
    assert cards[0].topic_share == 0.78 and cards[0].title_source == "topic"
    assert cards[0].title == f"{CLEANING} — {districts} " \
        + plural(districts, "район", "района", "районов")
    # no district housing agency has a majority; together they own the problem
    assert cards[0].department_share < 0.5
    owner = cards[0].responsible
    agencies = first["department"][first["department_group"]
                                   == "СПб ГКУ Жилищное агентство района"]
    assert owner.level == "department_group" and owner.share > 0.5
    assert owner.name == "СПб ГКУ Жилищное агентство района"
    assert owner.share == round(len(agencies) / len(first), 3)
    assert owner.n_departments == agencies.nunique()
    assert owner.label.startswith("СПб ГКУ Жилищное агентство района (")
    assert cards[0].department_group == owner.name

    places = cards[1].scope.n_places
    assert cards[1].title == f"{LITTER} — Невский район, {places} " \
        + plural(places, "место", "места", "мест")
    assert cards[1].responsible.level == "department" and cards[1].responsible.name == CKB
    assert cards[1].responsible.share == 0.625 and cards[1].scope.n_territories == 1
    assert cards[1].breakdown[0]["territory"] == "Невский"
    assert cards[1].breakdown[0]["count"] == 40

    mixed = cards[2]
    assert mixed.title_source == "keywords" and not mixed.title.startswith(
        (CLEANING, STAIRWELL, LITTER))
    assert mixed.responsible.level == "several"
    assert mixed.responsible.label.startswith("несколько ведомств: ")
    assert {name for name, _ in mixed.responsible.members} == {
        CKB, "Администрация района", "СПб ГКУ Жилищное агентство района"}
    assert sorted(mixed.topics) == sorted([(CLEANING, 10), (STAIRWELL, 10), (LITTER, 10)])


def test_responsible_body_majority_then_group_then_several() -> None:
    departments = pd.Series(["ЖА Невского", "ЖА Невского", "ЖА Кировского", "ЦКБ", None])
    groups = pd.Series(["ЖА района", "ЖА района", "ЖА района", "ЦКБ", None])
    owner = responsible_of(departments, groups)
    # «ЖА Невского» has 2 of the 4 known: not a majority; the group has 3 of 4
    assert owner.level == "department_group" and owner.name == "ЖА района"
    assert owner.share == 0.75 and owner.n_departments == 2
    assert responsible_of(departments.iloc[:2], groups.iloc[:2]).level == "department"
    several = responsible_of(departments, pd.Series(["A", "B", "C", "ЦКБ", None]))
    assert several.level == "several" and several.name is None
    assert several.label.startswith("несколько ведомств: ")
    assert responsible_of(departments).level == "several"  # no groups known
    assert responsible_of(None).level == "unknown"


def test_trend_compares_shares_of_the_two_halves() -> None:
    days = pd.Series(pd.date_range("2021-01-01", periods=100, freq="D"))
    everything = pd.Series(np.repeat(days.to_numpy(), 20))
    growing = pd.Series(np.concatenate([days.iloc[:50].to_numpy(),
                                        np.repeat(days.iloc[50:].to_numpy(), 4)]))
    assert trend_of(growing, everything).direction == "growing"
    assert trend_of(pd.Series(days.to_numpy()), everything).direction == "stable"
    falling = trend_of(pd.Series(np.repeat(days.iloc[:50].to_numpy(), 3)), everything)
    assert falling.direction == "falling" and falling.second_half == 0


def test_titles_and_places_read_well() -> None:
    # the last-resort title: keywords as they come
    assert title_of(["уборка снег", "снег", "уборка", "тротуар"]) == "Уборка снег, тротуар"
    # keywords phrased as Russian and checked against the cluster's texts
    assert phrase_keyword("график уборка") == "график уборки"
    assert phrase_keyword("входной дверь") == "входная дверь"
    assert phrase_keyword("демонтировать рекламный") is None
    texts = ["Нарушен график уборки подъезда", "график не соблюдается", "на дороге снег"]
    # «графика» repeats «график»; «дорога снега» is not what people write: its nouns stand
    assert keyword_title(["график", "график уборка", "графика", "дорога снег"], texts) \
        == "График уборки, дорога, снег"
    assert keyword_title(["график", "график уборка", "графика", "дорога снег"], texts, n=1) \
        == "График уборки"
    # a detail for a topic title adds only what the topic does not say
    assert keyword_title(["уборка подъезд", "график", "влажный уборка"],
                         ["влажная уборка не проводится"], n=2,
                         exclude="Отсутствие или несоблюдение графика уборки подъезда") \
        == "Влажная уборка"
    assert short_topic("Неубранный снег на автомобильных дорогах и прилегающих к ним "
                       "тротуарах, спусках к воде, подземных и надземных пешеходных переходах") \
        == "Неубранный снег на автомобильных дорогах и прилегающих к ним тротуарах"
    assert [f"{n} " + plural(n, "район", "района", "районов") for n in (1, 2, 5, 11, 21, 22, 112)] \
        == ["1 район", "2 района", "5 районов", "11 районов", "21 район", "22 района",
            "112 районов"]
    assert place_of_address("г.Санкт-Петербург, Мебельная улица, дом 47, корпус 1, литера А") \
        == "Санкт-Петербург, Мебельная улица"
    assert place_of_address(None) is None


def test_roadmap_in_docx_and_html(fitted, sample, vectors, tmp_path) -> None:
    cards = build_cards(sample, fitted.topics_, fitted.topic_words_, vectors,
                        topic_column="reason", department_column="department")[:2]
    stages = suggest_stages(cards[0], date(2021, 4, 30))
    # deadlines on the working-day calendar: 5 working days over the May 2021 holidays
    # (1–3 and 8–10 May off) take more than a week
    from mcu_nlp.calendar import is_working_day

    assert all(is_working_day(s.deadline) for s in stages)
    assert (stages[0].deadline - date(2021, 4, 30)).days >= 10
    assert [s.deadline for s in stages] == sorted(s.deadline for s in stages)
    path = write_docx(cards, tmp_path / "roadmap.docx", start=date(2021, 4, 30))
    with zipfile.ZipFile(path) as docx:
        body = docx.read("word/document.xml").decode("utf-8")
        assert any(name.startswith("word/media/") for name in docx.namelist())
    subject = cards[0].title.split(" — ")[0]
    assert subject.split(",")[0] in body and cards[0].scope.label.split(",")[0] in body
    assert cards[0].responsible.owner in body and "Охват" in body
    page = render_html(cards, start=date(2021, 4, 30))
    assert page.count("contenteditable") >= 3 * len(stages) and "data:image/png;base64" in page
    assert "Результат с" not in page
    # with a follow-up, the roadmap shows whether it worked
    from dataclasses import replace

    from mcu_nlp.root_causes.follow_up import follow_up

    result = follow_up(sample, cards[:1], date(2020, 12, 1), days=30, topic_col="reason",
                       min_places=1)[0]
    followed = [replace(cards[0], follow_up=result)]
    page = render_html(followed, start=date(2020, 12, 1))
    assert "Результат с 01.12.2020" in page and "разность разностей" in page
    path = write_docx(followed, tmp_path / "followed.docx", start=date(2020, 12, 1))
    with zipfile.ZipFile(path) as docx:
        assert "разность разностей" in docx.read("word/document.xml").decode("utf-8")
    assert "Результат:" in followed[0].description and cards[0].follow_up is None


def test_safetensors_save(fitted, tmp_path) -> None:
    path = fitted.save(tmp_path / "model")
    assert (path / "centroids.safetensors").exists()
    assert list((path / "bertopic").glob("*.safetensors"))
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.pickle"))


def test_cli_writes_cards_and_roadmaps(sample, tmp_path) -> None:
    from typer.testing import CliRunner

    from mcu_nlp.cli import app
    from mcu_nlp.services.root_causes import get_root_cause, list_root_causes

    data = tmp_path / "appeals.csv"
    sample.to_csv(data, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["root-causes", "--data", str(data), "--since", "2020-10-01",
                                      "--until", "2021-04-30", "--out", str(out), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "root causes" in result.output
    summary = json.loads((out / "root_causes.json").read_text(encoding="utf-8"))
    assert summary["n_appeals"] == len(sample) and summary["root_causes"]
    assert (out / "roadmap.docx").stat().st_size > 0 and (out / "roadmap.html").exists()
    listed = list_root_causes(data=data, since=date(2020, 10, 1), until=date(2021, 4, 30),
                              limit=2)
    assert len(listed["root_causes"]) == 2
    card = get_root_cause(listed["root_causes"][0]["id"], data=data, since=date(2020, 10, 1),
                          until=date(2021, 4, 30))
    assert card is not None and card["weekly_counts"]
    bad = CliRunner().invoke(app, ["root-causes", "--data", str(data), "--since", "2030-01-01",
                                   "--out", str(out)])
    assert bad.exit_code == 2 and "no appeals" in bad.output
    # did it work: each card compared before vs after the roadmap's start
    followed = tmp_path / "followed"
    result = CliRunner().invoke(app, ["root-causes", "--data", str(data), "--since", "2020-10-01",
                                      "--until", "2021-04-30", "--out", str(followed), "--top",
                                      "3", "--follow-up", "2020-12-01", "--follow-up-days", "30"])
    assert result.exit_code == 0, result.output
    assert "результат:" in result.output and "ответственный:" in result.output
    summary = json.loads((followed / "root_causes.json").read_text(encoding="utf-8"))
    assert summary["follow_up"]["start"] == "2020-12-01" and summary["follow_up"]["days"] == 30
    first = summary["root_causes"][0]["follow_up"]
    assert first["start"] == "2020-12-01" and first["n_treated"] > 0
    assert {"estimate", "ci_low", "ci_high", "treated_before", "treated_after",
            "control_before", "control_after", "repeats"} <= set(first)
    assert "Результат с 01.12.2020" in (followed / "roadmap.html").read_text(encoding="utf-8")
    # the cached analysis is not changed by a follow-up
    assert get_root_cause(listed["root_causes"][0]["id"], data=data, since=date(2020, 10, 1),
                          until=date(2021, 4, 30))["follow_up"] is None
    late = CliRunner().invoke(app, ["root-causes", "--data", str(data), "--out", str(followed),
                                    "--follow-up", "2029-01-01"])
    assert late.exit_code == 2 and "error:" in late.output
