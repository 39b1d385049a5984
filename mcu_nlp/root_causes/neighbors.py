"""Cosine neighbours of unit vectors: UMAP's graph, topic votes and incremental assignment.

Two engines answer the same questions:

* **FAISS** (the ``scale`` extra): an exact inner-product index (``IndexFlatIP``) for up to
  ``exact_limit`` reference rows, an inverted-file index (``IndexIVFFlat``, ``4·√n`` lists,
  ``nprobe`` of them searched) above it. Its top-k keeps a heap per query instead of sorting a
  ``block × n`` similarity matrix, so a vote of a million texts against a clustered sample costs
  one matrix product and no partition of it.
* **numpy** (always there): blocked matrix products and ``argpartition``; exact.

The cost of a vote is linear in the number of queries and, with the IVF index, grows as the
square root of the reference set, so clustering a sample and voting the rest stays near-linear
in the size of the archive.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

logger = logging.getLogger(__name__)

OUTLIER = -1
_SELF = 2.0  # above any cosine, so a row is always its own first neighbour
EXACT_LIMIT = 20_000  # reference rows searched exactly; an IVF index above


def _faiss():
    # which SIMD build FAISS loads is not news for an analyst's log
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError:
        return None
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    if threads:
        faiss.omp_set_num_threads(threads)
    return faiss


class NeighborIndex:
    """Top-k cosine search over fixed unit reference rows (FAISS when installed, else numpy).

    Args:
        reference: ``(r, d)`` unit rows.
        exact_limit: Up to this many rows the search is exact; above it FAISS uses an IVF index
            (numpy stays exact).
        nprobe: Inverted lists searched per query (IVF only).
        engine: ``"auto"`` (FAISS if importable), ``"faiss"`` or ``"numpy"``.
        random_state: Seed of the IVF index's k-means.
    """

    def __init__(self, reference: np.ndarray, *, exact_limit: int = EXACT_LIMIT,
                 nprobe: int = 32, engine: str = "auto", random_state: int = 42) -> None:
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        faiss = _faiss() if engine in ("auto", "faiss") else None
        if engine == "faiss" and faiss is None:
            raise ImportError("the FAISS engine needs faiss-cpu: pip install 'mcu-nlp[scale]'")
        self.engine = "faiss" if faiss is not None else "numpy"
        self.exact = self.engine == "numpy" or len(self.reference) <= exact_limit
        self._index = None
        if faiss is not None and len(self.reference):
            dim = self.reference.shape[1]
            if self.exact:
                self._index = faiss.IndexFlatIP(dim)
            else:
                lists = max(1, min(int(4 * math.sqrt(len(self.reference))),
                                len(self.reference) // 39))  # FAISS wants 39 rows a list
                self._index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists,
                                                 faiss.METRIC_INNER_PRODUCT)
                self._index.cp.seed = random_state
                train = np.random.default_rng(random_state).choice(
                    len(self.reference), size=min(len(self.reference), lists * 64), replace=False)
                self._index.train(self.reference[np.sort(train)])
                self._index.nprobe = nprobe
            self._index.add(self.reference)

    def __len__(self) -> int:
        return len(self.reference)

    def search(self, queries: np.ndarray, k: int, *, block: int = 4096
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar reference rows of each query, most similar first.

        Returns:
            ``(similarities, indices)``: ``(m, k)`` float32 cosines and int64 row numbers; an IVF
            search that finds fewer than ``k`` rows pads with similarity ``-inf`` and index ``-1``.
        """
        k = min(k, len(self.reference))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._index is not None:
            sims, indices = self._index.search(queries, k)
            sims[indices < 0] = -np.inf
            return sims, indices.astype(np.int64, copy=False)
        sims_out = np.empty((len(queries), k), dtype=np.float32)
        indices_out = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), block):
            sims = queries[start:start + block] @ self.reference.T
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            near = np.take_along_axis(sims, nearest, axis=1)
            order = np.argsort(-near, axis=1, kind="stable")
            sims_out[start:start + block] = np.take_along_axis(near, order, axis=1)
            indices_out[start:start + block] = np.take_along_axis(nearest, order, axis=1)
        return sims_out, indices_out


def nearest_neighbors(vectors: np.ndarray, k: int, *, block: int = 1024
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of each row, itself first, as UMAP's ``precomputed_knn`` takes them.

    Exact (a flat index or numpy blocks): it is run on the clustered sample only.

    Args:
        vectors: ``(n, d)`` unit rows (a dot product is the cosine).
        k: Neighbours per row, the row itself included (at most ``n``).
        block: Rows per matrix product of the numpy engine (memory: ``block × n`` floats).

    Returns:
        ``(indices, distances)``: ``(n, k)`` int64 rows of neighbour indices, nearest first, and
        their cosine distances ``1 - cos`` (float32, ≥ 0).
    """
    n = len(vectors)
    if not 1 <= k <= n:
        raise ValueError(f"k={k} neighbours asked of {n} vectors")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = NeighborIndex(vectors, exact_limit=n)
    # one more than asked, so a duplicate that outranks the row itself cannot push it out
    sims, indices = index.search(vectors, min(k + 1, n), block=block)
    rows = np.arange(n)[:, None]
    sims = np.where(indices == rows, _SELF, sims)
    missing = ~(indices == rows).any(axis=1)
    if missing.any():  # a row outranked by more than one duplicate of itself: put it first
        sims[missing, -1], indices[missing, -1] = _SELF, np.flatnonzero(missing)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    indices = np.take_along_axis(indices, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    distances = np.maximum(1.0 - np.minimum(sims, 1.0), 0.0).astype(np.float32)
    distances[:, 0] = 0.0
    return indices, distances


def vote_topics(queries: np.ndarray, reference: np.ndarray | NeighborIndex, labels: np.ndarray,
                *, k: int, min_similarity: float, block: int = 4096) -> np.ndarray:
    """Topic of each query: the similarity-weighted vote of its ``k`` nearest reference rows.

    Args:
        queries: ``(m, d)`` unit rows to label.
        reference: ``(r, d)`` unit rows with known topics, or a :class:`NeighborIndex` of them.
        labels: Topic (``≥ 0``) of each reference row.
        k: Voting neighbours.
        min_similarity: A query whose nearest neighbour is less similar (cosine) stays ``-1``.
        block: Queries per search.

    Returns:
        ``(m,)`` int64 topics, ``-1`` for the queries too far from every reference row.
    """
    out = np.full(len(queries), OUTLIER, dtype=np.int64)
    if len(reference) == 0 or len(queries) == 0:
        return out
    index = reference if isinstance(reference, NeighborIndex) else NeighborIndex(reference)
    labels = np.asarray(labels, dtype=np.int64)
    n_labels = int(labels.max()) + 1
    for start in range(0, len(queries), block):
        sims, nearest = index.search(queries[start:start + block], k)
        found = nearest >= 0
        cells = np.arange(len(sims))[:, None] * n_labels + labels[np.where(found, nearest, 0)]
        weights = np.where(found, np.maximum(sims, 0), 0)
        scores = np.bincount(cells.ravel(), weights=weights.ravel(),
                             minlength=len(sims) * n_labels).reshape(len(sims), n_labels)
        close = sims[:, 0] >= min_similarity
        out[start:start + len(sims)] = np.where(close, scores.argmax(axis=1), OUTLIER)
    return out
