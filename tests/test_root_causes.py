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
from mcu_nlp.root_causes.cards import title_of, trend_of  # noqa: E402
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
    json.dumps(card.to_dict(), ensure_ascii=False)


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
    assert title_of(["уборка снег", "снег", "уборка", "тротуар"]) == "Уборка снег, тротуар"
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
    assert cards[0].title.split(",")[0] in body
    page = render_html(cards, start=date(2021, 4, 30))
    assert page.count("contenteditable") >= 3 * len(stages) and "data:image/png;base64" in page


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
