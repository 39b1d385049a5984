"""Search terms of a text: the words PostgreSQL's ``russian`` text-search configuration indexes.

Full-text search runs on PostgreSQL (``to_tsvector('russian', text)``) and on SQLite (FTS5, which
has no Russian stemmer). For both to find the same appeals for the same words, SQLite indexes
terms computed here, the way PostgreSQL computes its lexemes:

* words are runs of letters and digits (a hyphenated word is its parts);
* a word of Latin letters only is lower-cased and dropped when it is an English stop word
  (PostgreSQL also stems it with the English Snowball stemmer; here it is kept whole);
* any other word of letters is lower-cased, dropped when it is a Russian stop word, and reduced
  by the Russian Snowball stemmer (:func:`russian_stem`, a port of Snowball 2's ``russian.sbl``,
  the stemmer PostgreSQL's ``russian_stem`` dictionary runs: «дворах», «двора» → «двор»);
* a word with digits is lower-cased and kept whole (PostgreSQL's ``simple`` dictionary).

Stop words keep their place (:data:`STOP_FILLER` in the indexed terms), so phrase distances
count them as PostgreSQL's positions do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "ENGLISH_STOP_WORDS",
    "RUSSIAN_STOP_WORDS",
    "STOP_FILLER",
    "WordToken",
    "index_terms",
    "russian_stem",
    "term_of",
    "word_tokens",
]

# PostgreSQL's tsearch_data/russian.stop and english.stop (the Snowball project's lists).
RUSSIAN_STOP_WORDS = frozenset("""
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне
было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до
вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя
их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот того потому этого
какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда зачем всех никогда
можно при наконец два об другой хоть после над больше тот через эти нас про всего них какая
много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им
более всегда конечно всю между
""".split())
ENGLISH_STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now
""".split())

STOP_FILLER = "\ue000"
"""Stands for a stop word among indexed terms (a private-use character: never a query term)."""

MAX_WORD_LENGTH = 1000  # PostgreSQL passes longer words to no stemmer (dict_snowball.c)

_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")

# --- the Russian Snowball stemmer ----------------------------------------------------------

_VOWELS = frozenset("аеиоуыэюя")
_GERUND_1 = ("вшись", "вши", "в")  # after а or я
_GERUND_2 = ("ившись", "ывшись", "ивши", "ывши", "ив", "ыв")
_ADJECTIVE = ("ими", "ыми", "его", "ого", "ему", "ому", "ее", "ие", "ые", "ое", "ей", "ий", "ый",
              "ой", "ем", "им", "ым", "ом", "их", "ых", "ую", "юю", "ая", "яя", "ою", "ею")
_PARTICIPLE_1 = ("ем", "нн", "вш", "ющ", "щ")  # after а or я
_PARTICIPLE_2 = ("ивш", "ывш", "ующ")
_REFLEXIVE = ("ся", "сь")
_VERB_1 = ("ете", "йте", "ешь", "нно", "ла", "на", "ли", "ем", "ло", "но", "ет", "ют", "ны", "ть",
           "й", "л", "н")  # after а or я
_VERB_2 = ("ейте", "уйте", "ила", "ыла", "ена", "ите", "или", "ыли", "ило", "ыло", "ено", "ует",
           "уют", "ены", "ить", "ыть", "ишь", "ей", "уй", "ил", "ыл", "им", "ым", "ен", "ят", "ит",
           "ыт", "ую", "ю")
_NOUN = ("иями", "ями", "ами", "ией", "иям", "ием", "иях", "ев", "ов", "ие", "ье", "еи", "ии", "ей",
         "ой", "ий", "ям", "ем", "ам", "ом", "ах", "ях", "ию", "ью", "ия", "ья", "а", "е", "и", "й",
         "о", "у", "ы", "ь", "ю", "я")
_DERIVATIONAL = ("ость", "ост")
_SUPERLATIVE = ("ейше", "ейш")


def _regions(word: str) -> tuple[int, int]:
    """Snowball's ``pV`` (after the first vowel) and ``p2`` (R2) of ``word``."""
    n = len(word)
    pv = p2 = n
    i = 0
    while i < n and word[i] not in _VOWELS:
        i += 1
    if i >= n:
        return pv, p2
    pv = i + 1
    i = pv
    while i < n and word[i] in _VOWELS:  # gopast non-v
        i += 1
    if i >= n:
        return pv, p2
    i += 1
    while i < n and word[i] not in _VOWELS:  # gopast v
        i += 1
    if i >= n:
        return pv, p2
    i += 1
    while i < n and word[i] in _VOWELS:  # gopast non-v
        i += 1
    if i >= n:
        return pv, p2
    return pv, i + 1


def _longest(word: str, limit: int, *groups: tuple[str, ...]) -> tuple[int, str] | None:
    """The longest suffix of ``word`` inside ``word[limit:]`` among ``groups``: (group, suffix).

    Snowball's ``among`` takes the longest matching string; the action that follows may still
    fail, and then no shorter suffix is tried.
    """
    best: tuple[int, str] | None = None
    for index, group in enumerate(groups):
        for suffix in group:
            if (word.endswith(suffix) and len(word) - len(suffix) >= limit
                    and (best is None or len(suffix) > len(best[1]))):
                best = (index, suffix)
    return best


def _after_a_or_ya(word: str, suffix: str, limit: int) -> bool:
    start = len(word) - len(suffix)
    return start - 1 >= limit and word[start - 1] in "ая"


def _remove_ending(word: str, limit: int, first: tuple[str, ...],
                   second: tuple[str, ...]) -> str | None:
    """Remove a suffix of ``first`` (needs а/я before it) or ``second``; None when none fits."""
    found = _longest(word, limit, first, second)
    if found is None:
        return None
    group, suffix = found
    if group == 0 and not _after_a_or_ya(word, suffix, limit):
        return None
    return word[:-len(suffix)]


def _adjectival(word: str, limit: int) -> str | None:
    found = _longest(word, limit, _ADJECTIVE)
    if found is None:
        return None
    word = word[:-len(found[1])]
    participle = _remove_ending(word, limit, _PARTICIPLE_1, _PARTICIPLE_2)
    return word if participle is None else participle


def _step_one(word: str, limit: int) -> str:
    gerund = _remove_ending(word, limit, _GERUND_1, _GERUND_2)
    if gerund is not None:
        return gerund
    reflexive = _longest(word, limit, _REFLEXIVE)
    if reflexive is not None:
        word = word[:-len(reflexive[1])]
    for attempt in (_adjectival(word, limit), _remove_ending(word, limit, _VERB_1, _VERB_2)):
        if attempt is not None:
            return attempt
    noun = _longest(word, limit, _NOUN)
    return word[:-len(noun[1])] if noun is not None else word


def _tidy_up(word: str, limit: int) -> str:
    found = _longest(word, limit, _SUPERLATIVE, ("н",), ("ь",))
    if found is None:
        return word
    group, suffix = found
    if group == 0:
        word = word[:-len(suffix)]
        if word.endswith("нн") and len(word) - 2 >= limit:
            word = word[:-1]
    elif group == 1:
        if word.endswith("нн") and len(word) - 2 >= limit:
            word = word[:-1]
    else:
        word = word[:-1]
    return word


@lru_cache(maxsize=200_000)
def russian_stem(word: str) -> str:
    """The Snowball stem of a lower-case Russian word («дворами» → «двор», «ёлки» → «елк»)."""
    word = word.replace("ё", "е")
    pv, p2 = _regions(word)
    word = _step_one(word, pv)
    if word.endswith("и") and len(word) - 1 >= pv:
        word = word[:-1]
    found = _longest(word, pv, _DERIVATIONAL)
    if found is not None and len(word) - len(found[1]) >= p2:
        word = word[:-len(found[1])]
    return _tidy_up(word, pv)


# --- words and terms -----------------------------------------------------------------------


@lru_cache(maxsize=200_000)
def term_of(word: str) -> str | None:
    """The indexed term of one word (letters and digits), or None for a stop word."""
    lowered = word.lower()
    if _DIGIT.search(lowered):
        return lowered
    if _ASCII_LETTERS.fullmatch(lowered):
        return None if lowered in ENGLISH_STOP_WORDS else lowered
    if lowered in RUSSIAN_STOP_WORDS:
        return None
    return lowered if len(lowered) > MAX_WORD_LENGTH else russian_stem(lowered)


@dataclass(frozen=True, slots=True)
class WordToken:
    """A word of a text: where it stands and its term (None: a stop word)."""

    start: int
    end: int
    term: str | None


def word_tokens(text: str) -> Iterator[WordToken]:
    """The words of ``text`` in order, with their terms."""
    for match in _WORD.finditer(text or ""):
        yield WordToken(match.start(), match.end(), term_of(match.group()))


def index_terms(text: str) -> str:
    """The terms SQLite's FTS5 index keeps for ``text``, space-separated, stop words as filler."""
    return " ".join(token.term or STOP_FILLER for token in word_tokens(text))
