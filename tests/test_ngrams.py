"""Vectorised n-gram hashing: counts, batch independence, determinism (property tests)."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_nlp.classifiers.features import TextFeaturizer, prepare_text
from mcu_nlp.classifiers.ngrams import char_ngrams, word_ngram_strings, word_ngrams

texts_strategy = st.lists(
    st.text(alphabet="абвгд еёжз,.!12 ab\n", max_size=40), min_size=1, max_size=6
)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


@given(texts_strategy)
@settings(max_examples=200, deadline=None)
def test_char_ngram_counts_match_padded_words(texts: list[str]) -> None:
    batch = char_ngrams(texts, (2, 5))
    for doc, text in enumerate(texts):
        expected = sum(max(0, len(word) + 2 - n + 1) for word in _words(text) for n in range(2, 6))
        assert int((batch.doc == doc).sum()) == expected


@given(texts_strategy)
@settings(max_examples=200, deadline=None)
def test_word_ngram_counts(texts: list[str]) -> None:
    batch = word_ngrams(texts, (1, 2))
    for doc, text in enumerate(texts):
        n = len(_words(text))
        assert int((batch.doc == doc).sum()) == n + max(0, n - 1)


@given(texts_strategy)
@settings(max_examples=100, deadline=None)
def test_hashes_do_not_depend_on_the_batch(texts: list[str]) -> None:
    together = char_ngrams(texts, (2, 4))
    for doc, text in enumerate(texts):
        alone = char_ngrams([text], (2, 4))
        assert sorted(together.key[together.doc == doc].tolist()) == sorted(alone.key.tolist())


def test_same_ngram_same_hash_and_names() -> None:
    a = word_ngrams(["снег на дороге"], (1, 2))
    b = word_ngrams(["опять снег на дороге"], (1, 2))
    assert set(a.key.tolist()) < set(b.key.tolist())
    names = word_ngram_strings(["снег на дороге"], (1, 2))
    assert sorted(names.values()) == sorted(["снег", "на", "дороге", "снег на", "на дороге"])


def test_featurizer_rows_are_unit_length_and_batch_independent() -> None:
    texts = [
        "Мусор во дворе",
        "мусор во дворе дома 5",
        "Снег на дороге",
        "снег не убран",
        "мусор",
        "яма на дороге",
    ] * 3
    featurizer = TextFeaturizer()
    matrix = featurizer.fit_transform(texts)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 2**0.5, rtol=1e-5)  # two L2-normalised blocks
    single = featurizer.transform(["снег на дороге"]).toarray()
    np.testing.assert_allclose(
        featurizer.transform(texts[:3] + ["снег на дороге"]).toarray()[3], single[0], rtol=1e-6
    )


def test_prepare_text_masks_contacts_and_numbers() -> None:
    text = prepare_text(
        "Звоните +7 (912) 345-67-89 или пишите ivan@mail.ru, дом 15, https://x.ru/a"
    )
    assert "912" not in text and "ivan" not in text and "x.ru" not in text
    assert "phonex" in text and "emailx" in text and "urlx" in text and "дом 0" in text
