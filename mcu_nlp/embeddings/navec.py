"""Averages of navec word vectors (the news embeddings that ship inside natasha), 300-d.

A cheap baseline: no model beyond a lookup table, about 10 k texts/s. Words are lower-cased
letters/digits; a word missing from the vocabulary is looked up by its lemma; a text with no known
word maps to the zero vector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mcu_nlp.embeddings.base import clean_texts, l2_normalize

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


class NavecEmbedder:
    """Mean navec vector of a text's words, L2-normalized."""

    name = "navec"

    def __init__(self) -> None:
        self._navec: Any = None
        self._cache: dict[str, np.ndarray | None] = {}

    @property
    def dim(self) -> int:
        """300."""
        return 300

    def _vector(self, word: str) -> np.ndarray | None:
        if word not in self._cache:
            if self._navec is None:
                from natasha import NewsEmbedding

                self._navec = NewsEmbedding()
            vector = self._navec.get(word)
            if vector is None:
                from mcu_nlp.text.lemmas import lemma_of

                vector = self._navec.get(lemma_of(word))
            self._cache[word] = vector
        return self._cache[word]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), 300)`` float32 array."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(clean_texts(texts)):
            vectors = [v for w in _WORD.findall(text.lower()) if (v := self._vector(w)) is not None]
            if vectors:
                out[i] = np.mean(vectors, axis=0)
        return l2_normalize(out)
