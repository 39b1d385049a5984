"""Sparse text features: TF-IDF over word and character n-grams, saved without pickle.

N-grams are hashed in bulk by :mod:`mcu_nlp.classifiers.ngrams`; the vocabulary is the sorted array
of kept hash values, so a featurizer is a few arrays (keys, idf) plus the readable strings of its
word n-grams for explanations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mcu_nlp.classifiers.ngrams import NgramBatch, char_ngrams, word_ngram_strings, word_ngrams
from mcu_nlp.text.normalize import EMAIL_RE, PHONE_RE, URL_RE

# Serving batches (a request, a micro-batch) are featurized by several models in turn, each for its
# probabilities and again for its explanation. The n-gram hashes do not depend on the model, so
# the last small batch's hashes are kept for the next model (and each featurizer keeps its last
# matrix); a tuple swap is atomic, so threads never see half an entry.
CACHE_MAX_TEXTS = 1024
_last_extraction: tuple[tuple[str, ...], list[str], dict[NgramSpec, NgramBatch]] | None = None

# Placeholders keep the signal "a phone/link was given" without learning individual numbers. The
# patterns are the text pipeline's (linear-time, tested on adversarial input); e-mails go first,
# as their domain would otherwise look like a link.
_DIGITS = re.compile(r"\d+")
_SPECIAL = re.compile(
    r"[@/:]|\d{5}"
)  # cheap pre-check: only such texts are searched for a URL/e-mail/phone


def prepare_text(text: str) -> str:
    """Lower case, ё→е, URLs/e-mails/phones → placeholders, digit runs → ``0``."""
    text = text.lower().replace("ё", "е")
    if _SPECIAL.search(text):
        text = PHONE_RE.sub(" phonex ", URL_RE.sub(" urlx ", EMAIL_RE.sub(" emailx ", text)))
    return _DIGITS.sub("0", text)


@dataclass(frozen=True, slots=True)
class NgramSpec:
    """One TF-IDF block: ``word`` or ``char_wb`` n-grams, their range and size limits."""

    analyzer: str
    ngram_range: tuple[int, int]
    min_df: int = 2
    max_features: int | None = None

    def extract(self, texts: Sequence[str]) -> NgramBatch:
        """Hashed n-grams of prepared texts."""
        if self.analyzer == "word":
            return word_ngrams(texts, self.ngram_range)
        if self.analyzer == "char_wb":
            return char_ngrams(texts, self.ngram_range)
        raise ValueError(f"unknown analyzer {self.analyzer!r}; use 'word' or 'char_wb'")


DEFAULT_BLOCKS = (
    NgramSpec("word", (1, 2), min_df=2, max_features=100_000),
    NgramSpec("char_wb", (2, 5), min_df=3, max_features=100_000),
)


@dataclass(slots=True)
class _Vocabulary:
    keys: np.ndarray  # sorted uint64 hashes
    idf: np.ndarray  # float32, aligned with keys
    index: pd.Index | None = None  # hash table over keys, built on first use

    def columns(self, keys: np.ndarray) -> np.ndarray:
        """Column of each key, -1 for keys outside the vocabulary."""
        if self.index is None:
            self.index = pd.Index(self.keys)
        return self.index.get_indexer(keys)


def _counts(batch: NgramBatch, vocabulary: _Vocabulary, n_docs: int) -> sp.csr_matrix:
    position = vocabulary.columns(batch.key)
    known = (position >= 0) & (batch.doc >= 0)
    ones = np.ones(int(known.sum()), dtype=np.float32)
    matrix = sp.csr_matrix(
        (ones, (batch.doc[known], position[known])), shape=(n_docs, len(vocabulary.keys))
    )
    matrix.sum_duplicates()
    return matrix


def _document_frequencies(batch: NgramBatch, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and the number of documents holding each."""
    inside = batch.doc >= 0
    keys, column = np.unique(batch.key[inside], return_inverse=True)
    presence = sp.csr_matrix(
        (np.ones(len(column), dtype=np.float32), (batch.doc[inside], column)),
        shape=(n_docs, len(keys)),
    )
    presence.sum_duplicates()
    return keys, np.bincount(presence.indices, minlength=len(keys))


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    counts.data = (1.0 + np.log(counts.data)) * idf[counts.indices]
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    counts.data /= np.repeat(norms, np.diff(counts.indptr)).astype(np.float32)
    return counts


class TextFeaturizer:
    """Word and character TF-IDF blocks (sublinear tf, smooth idf, L2 per block) side by side."""

    def __init__(self, blocks: Sequence[NgramSpec] = DEFAULT_BLOCKS) -> None:
        self.blocks = tuple(blocks)
        self.vocabularies_: list[_Vocabulary] = []
        self.word_names_: dict[int, str] = {}

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn vocabularies and idf on ``texts`` and return their features."""
        prepared = [prepare_text(text) for text in texts]
        n_docs = len(prepared)
        self.vocabularies_ = []
        for block in self.blocks:
            batch = block.extract(prepared)
            keys, df = _document_frequencies(batch, n_docs)
            keep = df >= block.min_df
            keys, df = keys[keep], df[keep]
            if block.max_features is not None and len(keys) > block.max_features:
                top = np.argsort(-df, kind="stable")[: block.max_features]
                top.sort()
                keys, df = keys[top], df[top]
            if len(keys) == 0:
                raise ValueError(f"no {block.analyzer} n-gram occurs in {block.min_df}+ texts")
            idf = (np.log((1 + n_docs) / (1 + df)) + 1).astype(np.float32)
            self.vocabularies_.append(_Vocabulary(keys, idf))
        self._learn_word_names(prepared)
        return self._transform_prepared(prepared)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Features of ``texts`` with the learned vocabularies (do not modify the result)."""
        global _last_extraction
        if not self.vocabularies_:
            raise RuntimeError("TextFeaturizer is not fitted")
        if len(texts) > CACHE_MAX_TEXTS:
            return self._transform_prepared([prepare_text(text) for text in texts])
        key = tuple(texts)
        mine = getattr(self, "_last_matrix", None)
        if mine is not None and mine[0] == key:
            return mine[1]
        shared = _last_extraction
        if shared is None or shared[0] != key:
            shared = (key, [prepare_text(text) for text in texts], {})
            _last_extraction = shared
        matrix = self._transform_prepared(shared[1], shared[2])
        self._last_matrix = (key, matrix)
        return matrix

    def _transform_prepared(
        self, prepared: list[str], extracted: dict[NgramSpec, NgramBatch] | None = None
    ) -> sp.csr_matrix:
        blocks = []
        for block, vocabulary in zip(self.blocks, self.vocabularies_, strict=True):
            batch = extracted.get(block) if extracted is not None else None
            if batch is None:
                batch = block.extract(prepared)
                if extracted is not None:
                    extracted[block] = batch
            blocks.append(_tfidf(_counts(batch, vocabulary, len(prepared)), vocabulary.idf))
        return sp.hstack(blocks, format="csr")

    def _learn_word_names(self, prepared: list[str]) -> None:
        self.word_names_ = {}
        for block, vocabulary in zip(self.blocks, self.vocabularies_, strict=True):
            if block.analyzer != "word":
                continue
            wanted = set(vocabulary.keys.tolist())
            for key, name in word_ngram_strings(prepared, block.ngram_range).items():
                if key in wanted:
                    self.word_names_[key] = name

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return sum(len(v.keys) for v in self.vocabularies_)

    def word_feature_names(self) -> dict[int, str]:
        """Column index → readable word n-gram, for the word blocks."""
        names, offset = {}, 0
        for block, vocabulary in zip(self.blocks, self.vocabularies_, strict=True):
            if block.analyzer == "word":
                for column, key in enumerate(vocabulary.keys.tolist()):
                    if key in self.word_names_:
                        names[offset + column] = self.word_names_[key]
            offset += len(vocabulary.keys)
        return names

    def to_state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Config (JSON-able) and arrays that rebuild this featurizer."""
        config: dict[str, Any] = {
            "blocks": [
                {
                    "analyzer": b.analyzer,
                    "ngram_range": list(b.ngram_range),
                    "min_df": b.min_df,
                    "max_features": b.max_features,
                }
                for b in self.blocks
            ]
        }
        arrays: dict[str, np.ndarray] = {}
        for index, vocabulary in enumerate(self.vocabularies_):
            arrays[f"{prefix}keys_{index}"] = vocabulary.keys.view(np.int64)
            arrays[f"{prefix}idf_{index}"] = vocabulary.idf
        names = sorted(self.word_names_.items())
        arrays[f"{prefix}name_keys"] = np.array([k for k, _ in names], dtype=np.uint64).view(
            np.int64
        )
        config["word_names"] = [name for _, name in names]
        return config, arrays

    @classmethod
    def from_state(
        cls, config: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str
    ) -> TextFeaturizer:
        """Rebuild a fitted featurizer from :meth:`to_state` output."""
        blocks = [
            NgramSpec(b["analyzer"], tuple(b["ngram_range"]), b["min_df"], b["max_features"])
            for b in config["blocks"]
        ]
        featurizer = cls(blocks)
        featurizer.vocabularies_ = [
            _Vocabulary(arrays[f"{prefix}keys_{i}"].view(np.uint64), arrays[f"{prefix}idf_{i}"])
            for i in range(len(blocks))
        ]
        name_keys = arrays[f"{prefix}name_keys"].view(np.uint64).tolist()
        featurizer.word_names_ = dict(zip(name_keys, config["word_names"], strict=True))
        return featurizer
