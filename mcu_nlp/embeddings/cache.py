"""A disk cache of sentence vectors keyed by the hash of the text.

Vectors are kept in append-only safetensors shards (``keys``: 16-byte BLAKE2b digests of the text,
``vectors``: float32) in one folder per embedder, so the 60 k SPb texts are embedded once and later
runs read them in well under a second. Shards are written to a temporary name and renamed, so a
crashed or concurrent writer never leaves a half-written shard behind; many small shards are merged
into one when the cache is opened.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

logger = logging.getLogger(__name__)

_DIGEST_BYTES = 16
_MAX_SHARDS = 8


def text_key(text: str) -> bytes:
    """The cache key of one text (BLAKE2b, 16 bytes)."""
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).digest()


class EmbeddingCache:
    """Vectors of texts already embedded by one embedder, on disk and in memory.

    Args:
        directory: Folder of this embedder's shards (created when first written).
        dim: Vector length; shards of another length are ignored with a warning.
    """

    def __init__(self, directory: str | Path, dim: int) -> None:
        self.directory = Path(directory)
        self.dim = dim
        self._index: dict[bytes, int] | None = None
        self._vectors: list[np.ndarray] = []
        self._rows = 0

    def __len__(self) -> int:
        self._load()
        return self._rows

    def _load(self) -> None:
        if self._index is not None:
            return
        self._index = {}
        shards = sorted(self.directory.glob("*.safetensors")) if self.directory.exists() else []
        for shard in shards:
            try:
                arrays = load_file(shard)
                keys, vectors = arrays["keys"], arrays["vectors"]
            except Exception as error:  # a damaged shard only costs a re-embedding
                logger.warning("skipping unreadable embedding cache shard %s: %s", shard, error)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
                logger.warning("skipping cache shard %s of another shape %s", shard, vectors.shape)
                continue
            self._add(keys, vectors)
        if len(shards) > _MAX_SHARDS and self._rows:
            self._compact(shards)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        assert self._index is not None
        offset = self._rows
        for i, key in enumerate(keys):
            self._index.setdefault(key.tobytes(), offset + i)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        self._rows += len(vectors)

    def _all_vectors(self) -> np.ndarray:
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0] if self._vectors else np.zeros((0, self.dim), np.float32)

    def _compact(self, shards: Sequence[Path]) -> None:
        assert self._index is not None
        rows = np.fromiter(self._index.values(), dtype=np.int64, count=len(self._index))
        keys = np.frombuffer(b"".join(self._index.keys()), dtype=np.uint8)
        keys = keys.reshape(-1, _DIGEST_BYTES)
        self._write(keys, self._all_vectors()[rows])
        for shard in shards:
            shard.unlink(missing_ok=True)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.directory / f".{name}.tmp"
        save_file({"keys": np.ascontiguousarray(keys, dtype=np.uint8),
                   "vectors": np.ascontiguousarray(vectors, dtype=np.float32)}, str(tmp))
        os.replace(tmp, self.directory / f"{name}.safetensors")

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the keys present in the cache.

        Returns:
            ``(found, vectors)``: a boolean mask over ``keys`` and the vectors of the found ones,
            in order.
        """
        self._load()
        assert self._index is not None
        rows = np.array([self._index.get(key, -1) for key in keys], dtype=np.int64)
        found = rows >= 0
        return found, self._all_vectors()[rows[found]]

    def store(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add new vectors to the cache (one new shard on disk)."""
        if not len(keys):
            return
        self._load()
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, _DIGEST_BYTES)
        try:
            self._write(key_array, vectors)
        except OSError as error:  # a read-only disk must not stop the analysis
            logger.warning("could not write embedding cache under %s: %s", self.directory, error)
        self._add(key_array, vectors)
