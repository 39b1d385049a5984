"""Exact neighbours and topic votes of the root-cause model, guided topics, threaded embedding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.embeddings import Usem3Embedder
from mcu_nlp.root_causes.neighbors import nearest_neighbors, vote_topics


def _unit_rows(n: int, dim: int = 24, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_neighbors_are_the_exact_nearest_with_the_row_itself_first() -> None:
    vectors = _unit_rows(300)
    vectors[7] = vectors[3]  # a duplicate must not push a row out of its own first place
    indices, distances = nearest_neighbors(vectors, 10, block=64)
    assert (indices[:, 0] == np.arange(len(vectors))).all()
    assert distances[:, 0].max() <= 1e-6 and (distances >= 0).all()
    assert (np.diff(distances, axis=1) >= -1e-6).all()
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, np.inf)
    brute = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    assert np.mean(np.sort(indices, axis=1) == np.sort(brute, axis=1)) > 0.99
    np.testing.assert_allclose(distances[:, 1:], 1 - np.take_along_axis(sims, brute, 1)[:, 1:],
                               atol=1e-5)
    with pytest.raises(ValueError, match="neighbours"):
        nearest_neighbors(vectors[:3], 4)


def test_votes_follow_the_nearest_topic_and_leave_far_texts_out() -> None:
    centres = _unit_rows(2, seed=1)
    noise = 0.05 * _unit_rows(40, seed=2)
    reference = np.vstack([centres[0] + noise[:20], centres[1] + noise[20:]])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    labels = np.repeat([0, 1], 20)
    far = -centres.sum(axis=0, keepdims=True)
    queries = np.vstack([centres, far / np.linalg.norm(far)])
    topics = vote_topics(queries, reference, labels, k=5, min_similarity=0.5)
    assert topics.tolist() == [0, 1, -1]
    assert vote_topics(queries, reference[:0], labels[:0], k=5, min_similarity=0.5).tolist() \
        == [-1, -1, -1]


def test_guided_topics_repeat_for_a_seed(spb_slice: pd.DataFrame) -> None:
    pytest.importorskip("bertopic")
    from mcu_nlp.root_causes import RootCauseModel

    texts = spb_slice["text"].iloc[:800].tolist()
    embedder = Usem3Embedder()
    vectors = embedder.encode(texts)
    seeds = ["Уборка снега", "Мусор во дворе", "Освещение улиц"]

    def fit(seed_topics: list[str] | None) -> RootCauseModel:
        return RootCauseModel(embedder, sample_size=600, min_cluster_size=10,
                              seed_topics=seed_topics, random_state=5
                              ).fit(texts, embeddings=vectors)

    first, again, unguided = fit(seeds), fit(seeds), fit(None)
    np.testing.assert_array_equal(first.topics_, again.topics_)
    assert first.outlier_share_ < 0.2
    assert set(first.stage_seconds_) >= {"neighbors", "umap", "hdbscan", "votes"}
    # the seeds move texts before UMAP, so the clusters change
    assert not np.array_equal(first.topics_, unguided.topics_)


def test_threaded_embedding_equals_one_batch(spb_slice: pd.DataFrame) -> None:
    texts = spb_slice["text"].iloc[:120].tolist()
    one = Usem3Embedder(threads=1, batch_size=1000, use_cache=False).encode(texts)
    threaded = Usem3Embedder(threads=2, batch_size=16, use_cache=False).encode(texts)
    np.testing.assert_allclose(threaded, one, atol=1e-5)


def test_the_ivf_index_finds_almost_all_exact_neighbours() -> None:
    from mcu_nlp.root_causes.neighbors import NeighborIndex

    centres = _unit_rows(40, dim=64, seed=3)
    rng = np.random.default_rng(4)
    rows = centres[rng.integers(0, 40, 6000)] + 0.3 * rng.normal(size=(6000, 64)) / 8
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    exact = NeighborIndex(rows, exact_limit=len(rows))
    approximate = NeighborIndex(rows, exact_limit=1000, nprobe=16)
    assert exact.exact and not approximate.exact and approximate.engine == "faiss"
    queries = rows[:500] + 0.01
    _, truth = exact.search(queries, 10)
    sims, found = approximate.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
    assert recall >= 0.9
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    numpy_engine = NeighborIndex(rows, engine="numpy")
    np.testing.assert_array_equal(numpy_engine.search(queries, 10)[1], truth)


def test_topic_words_from_a_share_of_each_topic_keep_the_partition(spb_slice) -> None:
    pytest.importorskip("bertopic")
    from sklearn.metrics import adjusted_rand_score

    from mcu_nlp.root_causes import RootCauseModel

    frame = spb_slice.iloc[:1500]
    texts = frame["text"].tolist()
    vectors = Usem3Embedder().encode(texts)

    def fit(**params):
        return RootCauseModel(sample_size=1000, min_cluster_size=12, min_samples=3,
                              random_state=7, **params).fit(texts, embeddings=vectors)

    whole, share = fit(), fit(representation_docs=400)
    assert adjusted_rand_score(whole.topics_, share.topics_) == 1.0
    assert set(share.topic_words_) == set(share.topics_.tolist())
    sizes = pd.Series(share.topics_).value_counts().to_dict()
    assert share.topic_model_.topic_sizes_ == sizes
    # every topic's words come from its own texts
    for topic, words in share.topic_words_.items():
        if topic == -1:
            continue
        lemmas = " ".join(frame["text"].iloc[np.flatnonzero(share.topics_ == topic)]).lower()
        assert any(word.split()[0][:4] in lemmas for word, _ in words[:3])
    np.testing.assert_allclose(np.linalg.norm(share.centroids_, axis=1), 1, atol=1e-5)


def test_the_sample_grows_with_the_square_root_of_the_archive() -> None:
    from mcu_nlp.root_causes import RootCauseModel

    model = RootCauseModel(sample_size=16_000, max_sample_size=36_000)
    assert model.sample_size_for(10_000) == 16_000
    assert model.sample_size_for(60_000) == 16_000
    assert model.sample_size_for(240_000) == 32_000
    assert model.sample_size_for(3_000_000) == 36_000
