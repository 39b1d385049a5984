"""Tokens (razdel) and lemmas (pymorphy3) of Russian appeal texts.

Lemmatization is on the hot path of training and of batch classification, so it is cached at
two levels: the lemma of each lower-cased word (appeals reuse a small vocabulary) and the lemma
list of each whole text (templated texts such as «снег на дороге» repeat hundreds of times).
The morphological analyzer is built once, lazily, on first use.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from razdel import tokenize as _razdel_tokenize

if TYPE_CHECKING:
    import pymorphy3

__all__ = [
    "clear_caches",
    "lemma_of",
    "lemmatize",
    "lemmatize_many",
    "morph_analyzer",
    "tokenize",
    "word_tokens",
]

WORD_CACHE_SIZE = 1 << 18
"""Distinct lower-cased words kept with their lemma (about 40 MB when full)."""
TEXT_CACHE_SIZE = 1 << 16
"""Distinct whole texts kept with their lemma list (the 60k SPb appeals have 43k distinct texts;
a smaller cache thrashes on repeated passes over such a corpus)."""

_MORPH: pymorphy3.MorphAnalyzer | None = None
_MORPH_LOCK = threading.Lock()

# Words for lemmatization: runs of letters/digits, hyphenated compounds kept whole
# («санкт-петербург», «из-за», «1-й»). razdel yields the same word tokens on 96 % of SPb texts
# and differs on oddities («1й», «т.е»), but is 13 times slower, which matters on the hot path.
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_CYRILLIC = re.compile(r"[а-яё]")


def morph_analyzer() -> pymorphy3.MorphAnalyzer:
    """Return the shared pymorphy3 analyzer, creating it on first call (about 0.3 s).

    Returns:
        The module-level ``pymorphy3.MorphAnalyzer`` for Russian.
    """
    global _MORPH
    if _MORPH is None:
        with _MORPH_LOCK:
            if _MORPH is None:
                import pymorphy3

                _MORPH = pymorphy3.MorphAnalyzer(lang="ru")
    return _MORPH


def tokenize(text: str) -> list[str]:
    """Split a text into razdel tokens, punctuation included.

    Args:
        text: Any text.

    Returns:
        Token strings in text order, e.g. ``["Снег", "на", "дороге", "!"]``.
    """
    return [token.text for token in _razdel_tokenize(text)]


def word_tokens(text: str) -> list[str]:
    """Split a text into lower-case words of letters and digits (the tokens :func:`lemmatize` uses).

    Args:
        text: Any text.

    Returns:
        Lower-case words; punctuation and underscores are dropped.
    """
    return _WORD.findall(text.lower())


@lru_cache(maxsize=WORD_CACHE_SIZE)
def lemma_of(word: str) -> str:
    """Return the most probable lemma of one lower-case word, with ``ё`` written as ``е``.

    Words without Cyrillic letters (numbers, Latin, ``XXXX`` redactions) are returned as is
    without asking the analyzer.

    Args:
        word: A lower-case word.

    Returns:
        The lemma (normal form).
    """
    if _CYRILLIC.search(word) is None:
        return word
    return morph_analyzer().parse(word)[0].normal_form.replace("ё", "е")


@lru_cache(maxsize=TEXT_CACHE_SIZE)
def _lemmas_of_text(text: str) -> tuple[str, ...]:
    return tuple(map(lemma_of, _WORD.findall(text.lower())))


def lemmatize(text: str) -> list[str]:
    """Lemmatize a text: lower-case lemmas of its letter/digit words, punctuation dropped.

    Args:
        text: Any text (normalize it first when it may contain HTML).

    Returns:
        Lemmas in text order, e.g. ``lemmatize("Снега на дорогах")`` → ``["снег", "на", "дорога"]``.

    Raises:
        TypeError: If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"lemmatize expects str, got {type(text).__name__}")
    return list(_lemmas_of_text(text))


def lemmatize_many(texts: Iterable[str]) -> list[list[str]]:
    """Lemmatize many texts (see :func:`lemmatize`).

    Args:
        texts: Texts in any iterable.

    Returns:
        One lemma list per text, in the same order.
    """
    return [lemmatize(text) for text in texts]


def clear_caches(*, words: bool = True, texts: bool = True) -> None:
    """Empty the caches (for cold-cache benchmarks and to release memory).

    Args:
        words: Empty the per-word lemma cache.
        texts: Empty the per-text lemma-list cache.
    """
    if words:
        lemma_of.cache_clear()
    if texts:
        _lemmas_of_text.cache_clear()
