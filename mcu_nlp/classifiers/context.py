"""What the model learns beside the text: exact-duplicate memory and categorical context priors.

Both are count tables learned on the training part only.

* :class:`DuplicateMemory` — label counts of each normalized text seen in training. Templated
  appeals («снег на дороге» ×700) repeat, so their empirical label distribution is the best
  estimate.
* :class:`ContextPrior` — ``P(value | label)`` for a categorical input known at filing time
  (``district``): routing depends on the place as much as on the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from mcu_nlp.text.normalize import key_text


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


class DuplicateMemory:
    """Label counts per normalized text (``EVAL.md``'s duplicate key, :func:`key_text`)."""

    def __init__(self) -> None:
        self.keys_: dict[str, int] = {}
        self.counts_: sp.csr_matrix | None = None

    def fit(self, texts: Sequence[str], y_index: np.ndarray, n_classes: int) -> DuplicateMemory:
        """Count labels (as class indices) per text key."""
        rows = []
        for text in texts:
            rows.append(self.keys_.setdefault(key_text(text), len(self.keys_)))
        data = np.ones(len(rows), dtype=np.float32)
        self.counts_ = sp.csr_matrix((data, (rows, y_index)), shape=(len(self.keys_), n_classes))
        self.counts_.sum_duplicates()
        return self

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """Dense label counts for each text (zeros for texts never seen)."""
        assert self.counts_ is not None, "DuplicateMemory is not fitted"
        index = np.array([self.keys_.get(key_text(text), -1) for text in texts])
        out = np.zeros((len(index), self.counts_.shape[1]), dtype=np.float32)
        seen = index >= 0
        if seen.any():
            out[seen] = self.counts_[index[seen]].toarray()
        return out

    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON config and arrays."""
        assert self.counts_ is not None
        keys = sorted(self.keys_, key=self.keys_.__getitem__)
        coo = self.counts_.tocoo()
        arrays = {
            f"{prefix}row": coo.row.astype(np.int32),
            f"{prefix}col": coo.col.astype(np.int32),
            f"{prefix}count": coo.data.astype(np.float32),
        }
        return {"keys": keys, "n_classes": int(self.counts_.shape[1])}, arrays

    @classmethod
    def from_state(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
    ) -> DuplicateMemory:
        """Rebuild from :meth:`to_state` output."""
        memory = cls()
        memory.keys_ = {key: i for i, key in enumerate(config["keys"])}
        shape = (len(memory.keys_), config["n_classes"])
        memory.counts_ = sp.csr_matrix(
            (arrays[f"{prefix}count"], (arrays[f"{prefix}row"], arrays[f"{prefix}col"])),
            shape=shape,
        )
        return memory


class ContextPrior:
    """Smoothed ``log P(value | label)`` for one categorical column."""

    def __init__(self, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        self.values_: dict[str, int] = {}
        self.log_likelihood_: np.ndarray | None = None  # (n_values, n_classes)

    def fit(self, values: Sequence[Any], y_index: np.ndarray, n_classes: int) -> ContextPrior:
        """Count label × value co-occurrences; rows with a missing value are skipped."""
        known = [(str(v), c) for v, c in zip(values, y_index, strict=True) if not _missing(v)]
        for value, _ in known:
            self.values_.setdefault(value, len(self.values_))
        counts = np.zeros((len(self.values_), n_classes), dtype=np.float64)
        for value, class_index in known:
            counts[self.values_[value], class_index] += 1
        smoothed = counts + self.smoothing
        self.log_likelihood_ = np.log(smoothed / smoothed.sum(axis=0, keepdims=True)).astype(
            np.float32
        )
        return self

    def log_likelihood(self, values: Sequence[Any]) -> np.ndarray:
        """Per-row ``log P(value | label)``, centred per row; zeros where the value is unknown."""
        assert self.log_likelihood_ is not None, "ContextPrior is not fitted"
        index = np.array([-1 if _missing(v) else self.values_.get(str(v), -1) for v in values])
        out = np.zeros((len(index), self.log_likelihood_.shape[1]), dtype=np.float32)
        seen = index >= 0
        if seen.any():
            rows = self.log_likelihood_[index[seen]]
            out[seen] = rows - rows.mean(axis=1, keepdims=True)
        return out

    def one_hot(self, values: Sequence[Any]) -> sp.csr_matrix:
        """One column per known value; unknown or missing values give an empty row."""
        index = np.array([-1 if _missing(v) else self.values_.get(str(v), -1) for v in values])
        rows = np.flatnonzero(index >= 0)
        return sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, index[rows])),
            shape=(len(index), len(self.values_)),
        )

    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON config and arrays."""
        assert self.log_likelihood_ is not None
        values = sorted(self.values_, key=self.values_.__getitem__)
        return (
            {"values": values, "smoothing": self.smoothing},
            {f"{prefix}loglik": self.log_likelihood_},
        )

    @classmethod
    def from_state(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
    ) -> ContextPrior:
        """Rebuild from :meth:`to_state` output."""
        prior = cls(config["smoothing"])
        prior.values_ = {value: i for i, value in enumerate(config["values"])}
        prior.log_likelihood_ = arrays[f"{prefix}loglik"]
        return prior
