"""The Russian vectorizer for c-TF-IDF topic words: lemmas, letters only, no stop words.

BERTopic's default vectorizer keeps only Latin word characters' patterns and English stop words, so
Russian topics come out as numbers and fragments; this one lemmatizes with pymorphy3 (through
:mod:`mcu_nlp.text.lemmas`) and drops Russian stop words and appeal boilerplate.
"""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import CountVectorizer

_LETTERS_ONLY = re.compile(r"^[а-яa-z]+(?:-[а-яa-z]+)*$")


def _stop_words() -> frozenset[str]:
    from mcu_nlp.text.stopwords import RUSSIAN_STOP_WORDS

    try:
        from mcu_nlp.text.stopwords import APPEAL_BOILERPLATE
    except ImportError:  # older text package: stop words only
        return frozenset(RUSSIAN_STOP_WORDS)
    return frozenset(RUSSIAN_STOP_WORDS) | frozenset(APPEAL_BOILERPLATE)


class LemmaTokenizer:
    """Callable text → content lemmas (letters only, at least ``min_chars``, no stop words)."""

    def __init__(self, min_chars: int = 3) -> None:
        self.min_chars = min_chars
        self._stop = _stop_words()

    def __call__(self, text: str) -> list[str]:
        """Content lemmas of ``text``."""
        from mcu_nlp.text.lemmas import lemmatize

        return [lemma for lemma in lemmatize(text)
                if len(lemma) >= self.min_chars and lemma not in self._stop
                and _LETTERS_ONLY.match(lemma)]


def russian_vectorizer(*, min_df: int = 2, ngram_range: tuple[int, int] = (1, 2),
                       max_features: int | None = 50_000) -> CountVectorizer:
    """A ``CountVectorizer`` over content lemmas for topic representations.

    Args:
        min_df: Drop lemmas seen in fewer documents (of the per-topic joined documents).
        ngram_range: Lemma n-grams; bigrams give readable phrases («уборка снега»).
        max_features: Vocabulary cap (bounds memory on large regions).

    Returns:
        An unfitted vectorizer (its parameters are JSON-safe, as BERTopic's safetensors save needs).
    """
    return CountVectorizer(tokenizer=LemmaTokenizer(), lowercase=False, token_pattern=None,
                           min_df=min_df, ngram_range=ngram_range, max_features=max_features)
