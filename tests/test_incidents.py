"""Incident merging on a real week of SPb appeals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.embeddings import Usem3Embedder
from mcu_nlp.incidents import IncidentMerger, incident_pairs, summarize_incidents


@pytest.fixture(scope="module")
def embedder() -> Usem3Embedder:
    # the shared on-disk cache (keyed by text hash) makes reruns cheap
    return Usem3Embedder()


@pytest.fixture(scope="module")
def week(spb_frame: pd.DataFrame) -> pd.DataFrame:
    """Four real days (about 1,100 appeals): dense enough to hold real duplicates."""
    days = pd.to_datetime(spb_frame["created_at"])
    chosen = (days >= "2020-11-02") & (days < "2020-11-06")
    return spb_frame[chosen].reset_index(drop=True)


@pytest.fixture(scope="module")
def week_vectors(week: pd.DataFrame, embedder: Usem3Embedder) -> np.ndarray:
    return embedder.encode(week["text"].tolist())


def _merger(**params: object) -> IncidentMerger:
    return IncidentMerger(topic_column="reason", **params)  # type: ignore[arg-type]


def test_embedder_returns_unit_rows_and_reuses_its_cache(tmp_path) -> None:
    texts = ["Снег на дороге", "Мусор во дворе", "Снег на дороге", None]
    first = Usem3Embedder(cache_dir=tmp_path).encode(texts)  # type: ignore[arg-type]
    again = Usem3Embedder(cache_dir=tmp_path, batch_size=1).encode(texts)  # type: ignore[arg-type]
    assert first.shape == (4, 512) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first[:3], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert list(tmp_path.rglob("*.safetensors"))
    assert first[0] @ first[1] < 0.9


def test_links_respect_window_place_topic_and_similarity(week, week_vectors) -> None:
    merger = _merger(window_hours=48, min_similarity=0.8, max_distance_m=150)
    merger.fit(week, embeddings=week_vectors)
    pairs = merger.pairs_
    assert len(pairs) > 0, "a real week holds repeated reports"
    a, b = pairs["first"].to_numpy(), pairs["second"].to_numpy()
    assert (pairs["hours_apart"] <= 48).all()
    assert (pairs["similarity"] >= 0.8 - 1e-6).all()
    assert (week["reason"].to_numpy()[a] == week["reason"].to_numpy()[b]).all()
    placed = pairs["metres_apart"].notna()
    assert (pairs.loc[placed, "metres_apart"] <= 150).all()
    # every link lies inside one incident, and incidents are numbered by first appearance
    assert (merger.labels_[a] == merger.labels_[b]).all()
    _, first_rows = np.unique(merger.labels_, return_index=True)
    assert (np.diff(np.sort(first_rows)) > 0).all()
    assert merger.labels_[first_rows].tolist() == sorted(merger.labels_[first_rows].tolist())


def test_same_text_merges_only_when_close_in_place_and_time(week, week_vectors) -> None:
    row = week.iloc[[int(week["text"].str.len().between(40, 200).idxmax())]]
    base = pd.Timestamp(row["created_at"].iloc[0])
    copies = pd.concat([row] * 4, ignore_index=True)
    copies["created_at"] = [base, base + pd.Timedelta(hours=5),      # same place, 5 h later
                            base + pd.Timedelta(days=10),            # same place, 10 days later
                            base + pd.Timedelta(hours=1)]            # 5 km away
    copies.loc[3, "latitude"] = copies.loc[3, "latitude"] + 0.045
    vectors = np.repeat(week_vectors[row.index], 4, axis=0)
    labels = _merger(window_hours=72).fit_predict(copies, embeddings=vectors)
    assert labels[0] == labels[1]
    assert len({labels[0], labels[2], labels[3]}) == 3


def test_stricter_settings_never_merge_more(week, week_vectors) -> None:
    loose = incident_pairs(_merger(min_similarity=0.7).fit_predict(week, embeddings=week_vectors))
    strict = incident_pairs(_merger(min_similarity=0.9, window_hours=24)
                            .fit_predict(week, embeddings=week_vectors))
    loose_set = set(map(tuple, loose.to_numpy()))
    assert set(map(tuple, strict.to_numpy())) <= loose_set
    assert len(strict) < len(loose)


def test_results_repeat_and_bad_rows_stay_alone(week, week_vectors) -> None:
    broken = week.copy()
    broken.loc[0, "created_at"] = "не дата"
    broken.loc[1, "text"] = None
    first = _merger().fit_predict(broken, embeddings=week_vectors)
    second = _merger().fit_predict(broken, embeddings=week_vectors)
    np.testing.assert_array_equal(first, second)
    assert (first == first[0]).sum() == 1


def test_missing_columns_and_embeddings_fail_clearly(week) -> None:
    with pytest.raises(ValueError, match="topic"):
        IncidentMerger(topic_column="topic").fit(week, embeddings=np.zeros((len(week), 4)))
    with pytest.raises(ValueError, match="embedder"):
        _merger().fit(week)
    with pytest.raises(ValueError, match="embeddings for"):
        _merger().fit(week, embeddings=np.zeros((3, 4)))


def test_summaries_cover_merged_appeals_with_masked_text(week, week_vectors) -> None:
    labels = _merger().fit_predict(week, embeddings=week_vectors)
    incidents = summarize_incidents(week, labels, topic_column="reason",
                                    territory_column="district")
    sizes = np.bincount(labels)
    assert sum(i.size for i in incidents) == int(sizes[sizes >= 2].sum())
    assert incidents == sorted(incidents, key=lambda i: (-i.size, i.first_seen))
    top = incidents[0].to_dict()
    assert top["size"] == len(top["appeal_ids"]) >= 2 and top["first_seen"] <= top["last_seen"]
    assert top["topic"] in set(week["reason"])
    assert summarize_incidents(week, labels, topic_column="reason", territory_column="district",
                               limit=3) == incidents[:3]
