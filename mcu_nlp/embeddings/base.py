"""What every sentence embedder offers: :class:`SentenceEmbedder`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SentenceEmbedder(Protocol):
    """Turns texts into fixed-size, L2-normalized vectors.

    Implementations must return ``float32`` arrays of shape ``(len(texts), dim)`` whose rows have
    unit length (an empty text may map to any unit vector or to zeros), so that a dot product is
    the cosine similarity.
    """

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), dim)`` float32 array."""
        ...


def clean_texts(texts: Sequence[object]) -> list[str]:
    """Texts as plain strings: ``None``/NaN become ``""`` so one bad row never sinks a batch."""
    cleaned = []
    for text in texts:
        if text is None or (isinstance(text, float) and text != text):
            cleaned.append("")
        else:
            cleaned.append(str(text))
    return cleaned


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return vectors / norms
