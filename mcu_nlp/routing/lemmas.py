"""Lemma matching shared by the curator rules and the urgency lexicon.

Phrases in the curator files and the appeal text go through the same lemmatizer, so «пахнет газом»
in a rule matches «запах газа»-style variants of the same words. The project lemmatizer
(:func:`mcu_nlp.text.lemmas.lemmatize`) is used when it is installed; without it the fallback
lower-cases word tokens, which still matches exact word forms on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

_WORD = re.compile(r"[0-9a-zа-яё]+", re.IGNORECASE)


def _plain_tokens(text: str) -> list[str]:
    return [token.lower().replace("ё", "е") for token in _WORD.findall(text)]


@lru_cache(maxsize=1)
def _lemmatizer() -> Callable[[str], list[str]]:
    try:
        from mcu_nlp.text.lemmas import lemmatize
    except ImportError:
        return _plain_tokens
    return lambda text: [lemma.lower().replace("ё", "е") for lemma in lemmatize(text)]


def lemmas_of(text: str) -> list[str]:
    """Lower-case lemmas of ``text`` in order (punctuation dropped)."""
    return [lemma for lemma in _lemmatizer()(text) if _WORD.fullmatch(lemma)]


def phrase_lemmas(phrase: str) -> tuple[str, ...]:
    """The lemmas a curator phrase must match, in order."""
    return tuple(lemmas_of(phrase))


def phrase_found(phrase: Sequence[str], lemmas: Sequence[str], window: int) -> bool:
    """Whether every lemma of ``phrase`` occurs within ``window`` consecutive text lemmas.

    Word order is free inside the window: «газом пахнет» and «запах газа» both carry the same
    lemmas, and curators should not have to spell every order.
    """
    if not phrase:
        return False
    if len(phrase) == 1:
        return phrase[0] in lemmas
    needed = set(phrase)
    span = max(window, len(phrase))
    positions = [i for i, lemma in enumerate(lemmas) if lemma == phrase[0]]
    for start in positions:
        low, high = max(0, start - span + 1), min(len(lemmas), start + span)
        if needed <= set(lemmas[low:high]):
            return True
    return False
