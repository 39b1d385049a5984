"""Stable root-cause ids across runs, each day's appeals joined, new ones only when they recur."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.root_causes.registry import EXEMPLARS, RootCauseRegistry

DIM = 32


def _centres(n: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _around(centre: np.ndarray, n: int, seed: int, spread: float = 0.15) -> np.ndarray:
    rows = centre + spread * np.random.default_rng(seed).normal(size=(n, DIM)) / np.sqrt(DIM)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _days(n: int, start: date = date(2021, 1, 1), span: int = 30) -> list[date]:
    return [start + timedelta(days=i % span) for i in range(n)]


CENTRES = _centres(6)


def _run(groups: dict[int, tuple[int, int]], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors around CENTRES[c] labelled ``topic``: groups = {topic: (centre, size)}."""
    vectors, topics = [], []
    for topic, (centre, size) in groups.items():
        vectors.append(_around(CENTRES[centre], size, seed + centre))
        topics.append(np.full(size, topic))
    return np.vstack(vectors), np.concatenate(topics)


def test_a_root_cause_keeps_its_id_as_it_grows_and_new_ones_get_new_ids() -> None:
    registry = RootCauseRegistry(DIM)
    vectors, topics = _run({0: (0, 60), 1: (1, 40), 2: (2, 30)}, seed=1)
    first = registry.reconcile(topics, vectors, _days(len(topics)),
                               words={0: ["снег"], 1: ["яма"], 2: ["мусор"]})
    assert sorted(first.values()) == [1, 2, 3]
    # the next run numbers its topics differently, centre 0 grew, centre 2 is gone, 3 is new
    vectors, topics = _run({5: (0, 150), 0: (1, 45), 7: (3, 50)}, seed=2)
    second = registry.reconcile(topics, vectors, _days(len(topics), date(2021, 2, 1)))
    assert second[5] == first[0] and second[0] == first[1]
    assert second[7] == 4  # a new id, never a reused one
    gone = registry.causes[first[2]]
    assert gone.retired and not registry.causes[first[0]].retired
    grown = registry.causes[first[0]]
    assert grown.size == 150 and grown.runs == 2 and grown.words == ["снег"]
    assert grown.first_seen == "2021-01-01" and grown.last_seen == "2021-03-02"
    assert (registry.exemplar_ids == first[0]).sum() == EXEMPLARS
    # a retired root cause that returns gets its old id back
    vectors, topics = _run({0: (2, 40), 1: (0, 100)}, seed=3)
    third = registry.reconcile(topics, vectors, _days(len(topics), date(2021, 3, 1)))
    assert third == {0: first[2], 1: first[0]}
    assert not registry.causes[first[2]].retired


def test_a_topic_that_only_touches_a_known_cause_is_not_given_its_id() -> None:
    registry = RootCauseRegistry(DIM, min_overlap=0.5)
    vectors, topics = _run({0: (0, 60)}, seed=1)
    registry.reconcile(topics, vectors, _days(60))
    # a new topic: 15 members near centre 0, 65 near centre 4 — all of the cause's voters, but
    # 19 % of the topic: another problem that swallowed a little of this one
    mixed = np.vstack([_around(CENTRES[0], 15, 9), _around(CENTRES[4], 65, 10)])
    mapping = registry.reconcile(np.zeros(80, dtype=np.int64), mixed, _days(80))
    assert mapping == {0: 2}
    # 30 of 80 (38 %) and all of the cause's voters: the cause grew into it and keeps its id
    registry = RootCauseRegistry(DIM, min_overlap=0.5)
    registry.reconcile(topics, vectors, _days(60))
    grown = np.vstack([_around(CENTRES[0], 30, 11), _around(CENTRES[4], 50, 12)])
    assert registry.reconcile(np.zeros(80, dtype=np.int64), grown, _days(80)) == {0: 1}


def test_new_appeals_join_known_causes_and_only_recurring_ones_become_new() -> None:
    registry = RootCauseRegistry(DIM, min_size=10, min_days=3, link_similarity=0.7)
    vectors, topics = _run({0: (0, 80), 1: (1, 80)}, seed=1)
    ids = registry.reconcile(topics, vectors, _days(160))
    near = _around(CENTRES[1], 5, 20)
    burst = _around(CENTRES[5], 15, 21, spread=0.05)  # 15 alike appeals, all on one day
    day = date(2021, 2, 1)
    report = registry.assign(np.vstack([near, burst]), [day] * 20,
                             keys=[f"a{i}" for i in range(20)])
    assert report.joined == 5 and report.ids[:5].tolist() == [ids[1]] * 5
    assert report.proposed == [] and report.pending == 15 and (report.ids[5:] == -1).all()
    assert registry.causes[ids[1]].size == 85 and registry.causes[ids[1]].last_seen == "2021-02-01"
    # the same problem on two more days: now it recurs and becomes root cause 3
    again = _around(CENTRES[5], 6, 22, spread=0.05)
    report = registry.assign(again, [day + timedelta(days=1)] * 3 + [day + timedelta(days=2)] * 3)
    assert report.proposed == [3] and (report.ids == 3).all()
    cause = registry.causes[3]
    assert cause.origin == "proposed" and cause.size == 21
    assert (cause.first_seen, cause.last_seen) == ("2021-02-01", "2021-02-03")
    assert report.pending == 0 and registry.pending_keys == []
    # from now on such appeals join it directly
    joined = registry.assign(_around(CENTRES[5], 3, 23, spread=0.05), [day + timedelta(days=5)] * 3)
    assert joined.ids.tolist() == [3, 3, 3] and registry.causes[3].size == 24


def test_pending_appeals_leave_the_pool_after_pending_days() -> None:
    registry = RootCauseRegistry(DIM, pending_days=30, max_pending=100)
    vectors, topics = _run({0: (0, 40)}, seed=1)
    registry.reconcile(topics, vectors, _days(40))
    lone = _centres(3, seed=99)
    registry.assign(lone[:2], [date(2021, 1, 1), date(2021, 1, 20)])
    report = registry.assign(lone[2:], [date(2021, 2, 10)])
    assert report.expired == 1 and registry.pending_keys and len(registry.pending_keys) == 2


def test_save_and_load_round_trip_and_refuse_other_files(tmp_path) -> None:
    registry = RootCauseRegistry(DIM, min_size=7)
    vectors, topics = _run({0: (0, 50), 1: (2, 50)}, seed=1)
    registry.reconcile(topics, vectors, _days(100), words={0: ["свет"], 1: ["двор"]})
    registry.assign(_centres(2, seed=50), [date(2021, 3, 1)] * 2, keys=["x", "y"])
    path = registry.save(tmp_path / "registry.safetensors")
    loaded = RootCauseRegistry.load(path)
    assert loaded.causes == registry.causes and loaded.next_id == registry.next_id
    assert loaded.min_size == 7 and loaded.pending_keys == ["x", "y"]
    np.testing.assert_array_equal(loaded.exemplars, registry.exemplars)
    np.testing.assert_array_equal(loaded.pending_days_, registry.pending_days_)
    for cause_id, centroid in registry.centroids.items():
        np.testing.assert_allclose(loaded.centroids[cause_id], centroid)
    assert loaded.assign(_around(CENTRES[2], 2, 5), [date(2021, 3, 2)] * 2).ids.tolist() == \
        [registry.causes[2].id] * 2
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a root-cause registry"):
        RootCauseRegistry.load(junk)
    with pytest.raises(FileNotFoundError, match="no root-cause registry"):
        RootCauseRegistry.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="topics for"):
        registry.reconcile(np.zeros(3, dtype=np.int64), vectors[:2], _days(3))


# -- on real appeals --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(spb_slice: pd.DataFrame):
    pytest.importorskip("bertopic")
    from mcu_nlp.embeddings import Usem3Embedder

    frame = spb_slice.iloc[:2400].reset_index(drop=True)
    # not from the cache: cached vectors were embedded in other batches, which moves them by
    # float noise, and UMAP then draws other clusters than a fresh clone does
    return frame, Usem3Embedder(use_cache=False).encode(frame["text"].tolist())


def _fit(texts, vectors):
    from mcu_nlp.root_causes import RootCauseModel

    model = RootCauseModel(sample_size=1500, min_cluster_size=12, min_samples=3, random_state=7)
    return model.fit_predict(texts, embeddings=vectors)


def test_cards_keep_their_ids_when_the_period_grows(real) -> None:
    """Run 1 on the first two thirds, run 2 on all: run 1's appeals keep their ids."""
    frame, vectors = real
    cut = 1600
    texts = frame["text"].tolist()
    days = frame["created_at"].tolist()
    registry = RootCauseRegistry(vectors.shape[1])
    first_topics = _fit(texts[:cut], vectors[:cut])
    first = registry.reconcile(first_topics, vectors[:cut], days[:cut])
    second_topics = _fit(texts, vectors)
    second = registry.reconcile(second_topics, vectors, days)

    def ids(topics, mapping):
        return np.array([mapping.get(int(t), -1) for t in topics])

    before, after = ids(first_topics, first), ids(second_topics[:cut], second)
    both = (before != -1) & (after != -1)
    kept = np.mean(before[both] == after[both])
    # the raw topic numbers of two runs mean nothing to each other: that is what ids fix
    raw = np.mean(first_topics[both] == second_topics[:cut][both])
    # the ceiling: the best one-to-one matching of the two runs' clusters, read off their
    # shared appeals (an oracle: it knows which appeal is in which cluster in both runs)
    from scipy.optimize import linear_sum_assignment

    table = pd.crosstab(first_topics[both], second_topics[:cut][both]).to_numpy()
    rows, cols = linear_sum_assignment(-table)
    ceiling = table[rows, cols].sum() / both.sum()
    print(f"kept {kept:.3f}, ceiling {ceiling:.3f}, raw {raw:.3f}")
    assert kept >= ceiling - 0.1 and kept > raw + 0.3, (kept, ceiling, raw)
    # the largest root causes of run 1 are all still there under their ids
    largest = pd.Series(before[before != -1]).value_counts().index[:5]
    assert set(largest) <= set(second.values())


def test_a_days_appeals_join_the_causes_a_full_run_gives_them(real) -> None:
    frame, vectors = real
    cut = 2000
    days = frame["created_at"].tolist()
    registry = RootCauseRegistry(vectors.shape[1])
    full_topics = _fit(frame["text"].tolist(), vectors)
    mapping = registry.reconcile(full_topics[:cut], vectors[:cut], days[:cut])
    report = registry.assign(vectors[cut:], days[cut:], keys=frame["id"].iloc[cut:].tolist())
    # about as many join as a full run clusters (which saw these appeals while clustering)
    assert report.joined / report.n_appeals >= np.mean(full_topics[cut:] != -1) - 0.1
    # and they join the root cause the full run puts them in (chance: about 1 in 40)
    agreed = np.array([mapping.get(int(t), -1) for t in full_topics[cut:]]) == report.ids
    assert agreed[report.ids != -1].mean() >= 0.8


def test_a_batch_with_stale_rows_maps_each_proposed_appeal_to_its_new_id() -> None:
    registry = RootCauseRegistry(DIM, min_size=10, min_days=3, pending_days=30,
                                 link_similarity=0.7)
    alike = _around(CENTRES[3], 12, 30, spread=0.05)
    stale = _centres(2, seed=77)
    day = date(2021, 5, 1)
    days = [date(2021, 3, 1)] + [day + timedelta(days=i % 3) for i in range(12)] + \
        [date(2021, 3, 2)]
    report = registry.assign(np.vstack([stale[:1], alike, stale[1:]]), days)
    assert report.expired == 2 and report.proposed == [1]
    assert report.ids.tolist() == [-1] + [1] * 12 + [-1]
    assert report.pending == 0 and registry.causes[1].size == 12
