"""Vectorised word and character n-gram hashing.

scikit-learn's text vectorizers walk every n-gram in Python, which caps a classifier at a few
thousand short texts per second. Here a whole batch is turned into one array of code points and
every n-gram gets a 64-bit polynomial hash from prefix sums, in numpy: the batch costs a handful of
array operations whatever its size. Hashes are exact keys (a learned vocabulary of hash values),
not buckets, so two n-grams collide only if their 64-bit hashes do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_P = np.uint64(1_000_003)  # odd, so it has an inverse modulo 2**64
_P_INV = np.uint64(pow(1_000_003, -1, 2**64))
_SEPARATOR = 0  # code point between words and documents; never inside an n-gram
_WORD_SALT = np.uint64(0x9E3779B97F4A7C15)
_BIGRAM_SALT = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(slots=True)
class NgramBatch:
    """Hashed n-grams of a batch: ``doc`` says which text each ``key`` came from."""

    doc: np.ndarray  # int64
    key: np.ndarray  # uint64


def _powers(base: np.uint64, n: int) -> np.ndarray:
    powers = np.full(n, base, dtype=np.uint64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers, dtype=np.uint64)


class _Encoded:
    """A batch laid out as ``<sep> word <sep> word ...`` with prefix hashes."""

    def __init__(self, texts: Sequence[str], pad_words: bool) -> None:
        words_per_doc = [_WORD.findall(text) for text in texts]
        pad = " " if pad_words else ""
        pieces = []
        n_words = np.fromiter(
            (len(words) for words in words_per_doc), dtype=np.int64, count=len(words_per_doc)
        )
        for words in words_per_doc:
            for word in words:
                pieces.append(f"\x00{pad}{word}{pad}")
        joined = "".join(pieces) + "\x00"
        self.codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        self.word_doc = np.repeat(np.arange(len(texts), dtype=np.int64), n_words)
        lengths = np.fromiter((len(piece) for piece in pieces), dtype=np.int64, count=len(pieces))
        self.word_start = np.cumsum(lengths) - lengths + 1  # skip the separator
        self.word_stop = self.word_start + lengths - 1
        # Document of each code point (the trailing separator belongs to none).
        self.doc_of_position = np.concatenate([np.repeat(self.word_doc, lengths), [-1]])
        n = len(self.codes)
        with np.errstate(over="ignore"):
            weighted = self.codes * _powers(_P_INV, n)
            self.prefix = np.concatenate([[np.uint64(0)], np.cumsum(weighted, dtype=np.uint64)])
        self.power = _powers(_P, n + 1)

    def span_hash(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Polynomial hash of ``codes[start:stop]`` for arrays of spans."""
        with np.errstate(over="ignore"):
            return (self.prefix[stop] - self.prefix[start]) * self.power[stop - 1]


def word_ngrams(texts: Sequence[str], ngram_range: tuple[int, int] = (1, 2)) -> NgramBatch:
    """Hashes of word unigrams and/or bigrams (words are runs of letters and digits)."""
    low, high = ngram_range
    if not 1 <= low <= high <= 2:
        raise ValueError("word n-grams support ranges within (1, 2)")
    encoded = _Encoded(texts, pad_words=False)
    with np.errstate(over="ignore"):
        unigram = encoded.span_hash(encoded.word_start, encoded.word_stop) ^ _WORD_SALT
    docs, keys = [], []
    if low == 1:
        docs.append(encoded.word_doc)
        keys.append(unigram)
    if high == 2 and len(unigram) > 1:
        same_doc = encoded.word_doc[1:] == encoded.word_doc[:-1]
        with np.errstate(over="ignore"):
            bigram = (unigram[:-1] * _P + unigram[1:]) ^ _BIGRAM_SALT
        docs.append(encoded.word_doc[1:][same_doc])
        keys.append(bigram[same_doc])
    return _concat(docs, keys)


def char_ngrams(texts: Sequence[str], ngram_range: tuple[int, int] = (2, 5)) -> NgramBatch:
    """Hashes of character n-grams inside space-padded words (like scikit-learn's ``char_wb``)."""
    low, high = ngram_range
    encoded = _Encoded(texts, pad_words=True)
    n = len(encoded.codes)
    doc_of_position = encoded.doc_of_position
    separators = np.concatenate([[0], np.cumsum(encoded.codes == _SEPARATOR)])
    docs, keys = [], []
    for size in range(low, high + 1):
        if n < size:
            continue
        start = np.arange(n - size + 1)
        stop = start + size
        clean = separators[stop] == separators[start]
        start, stop = start[clean], stop[clean]
        with np.errstate(over="ignore"):
            keys.append(encoded.span_hash(start, stop) ^ np.uint64(size))
        docs.append(doc_of_position[start])
    return _concat(docs, keys)


def _concat(docs: list[np.ndarray], keys: list[np.ndarray]) -> NgramBatch:
    if not docs:
        return NgramBatch(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64))
    return NgramBatch(np.concatenate(docs), np.concatenate(keys))


def word_ngram_strings(texts: Sequence[str], ngram_range: tuple[int, int]) -> dict[int, str]:
    """Readable strings of the word n-grams in ``texts``, by hash (for explanations)."""
    batch = word_ngrams(texts, ngram_range)
    words_per_doc = [_WORD.findall(text) for text in texts]
    words = [word for doc_words in words_per_doc for word in doc_words]
    grams: list[str] = []
    if ngram_range[0] == 1:
        grams.extend(words)
    if ngram_range[1] == 2 and len(words) > 1:
        doc = np.repeat(np.arange(len(texts)), [len(w) for w in words_per_doc])
        same_doc = (doc[1:] == doc[:-1]).tolist()
        grams.extend(
            f"{a} {b}" for a, b, same in zip(words[:-1], words[1:], same_doc, strict=True) if same
        )
    names: dict[int, str] = {}
    for key, gram in zip(batch.key.tolist(), grams, strict=True):
        names.setdefault(key, gram)
    return names
