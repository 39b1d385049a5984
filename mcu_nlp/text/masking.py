"""Masking of citizens' personal data in appeal texts before they leave the system.

What is masked: phone numbers → ``[ТЕЛЕФОН]``, e-mails → ``[EMAIL]``, names of people (natasha
PER spans and VK mentions ``[id123|Имя Фамилия]``) → ``[ФИО]``, apartment numbers («кв. 12»,
«квартира 5») → ``кв. [НОМЕР]``, and SNILS- or passport-like digit runs → ``[НОМЕР]``.
What stays: the street and house of the reported problem (a public place, needed for routing),
organisations, links and request numbers.

Rules run first and are cheap; the neural name tagger runs only when the text has a
capitalised word that could be a name (a first name, surname or patronymic by pymorphy3, or a
word it does not know), which skips it for most short appeals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher
from functools import lru_cache

from mcu_nlp.text.entities import Entity, extract_entities, extract_entities_many
from mcu_nlp.text.lemmas import morph_analyzer
from mcu_nlp.text.normalize import EMAIL_RE, PHONE_RE

__all__ = [
    "APARTMENT_MASK",
    "APARTMENT_RE",
    "ID_NUMBER_RE",
    "NAME_MASK",
    "NUMBER_MASK",
    "PHONE_MASK",
    "EMAIL_MASK",
    "VK_MENTION_RE",
    "PersonalDataFilter",
    "has_name_candidate",
    "mask_many",
    "mask_personal_data",
    "mask_terms",
    "masked_words",
]

PHONE_MASK = "[ТЕЛЕФОН]"
EMAIL_MASK = "[EMAIL]"
NAME_MASK = "[ФИО]"
NUMBER_MASK = "[НОМЕР]"
APARTMENT_MASK = f"кв. {NUMBER_MASK}"

VK_MENTION_RE = re.compile(r"\[id\d+\|[^\[\]|]*\]")
"""A VK mention of a person, ``[id432975601|Наталья Чемова]`` (``[club…|…]`` are communities)."""

APARTMENT_RE = re.compile(
    # Runs of spaces are matched possessively (*+, ++): a sign between two runs is never a space,
    # so the split is unique, and a long run of spaces cannot be re-split quadratically.
    r"(?<![\w-])(?:кв(?:\b\.?|(?=\d))|квартир(?:а|ы|е|у|ой)\b)\s*+(?:№|N|#)?\s*+"
    r"\d+[а-яa-z]?(?:(?:\s*+[,;-]\s*+|\s++и\s++)\d+[а-яa-z]?)*(?![\w/])"
    # «квартиры 1 этажа» names a floor, not an apartment.
    r"(?!\s*+-?\s*+(?:го|й|м|ом)?\s*+этаж)",
    re.IGNORECASE,
)
"""An apartment number after «кв.», «квартира», «квартире», … (lists «230,238» included)."""

ID_NUMBER_RE = re.compile(
    r"""(?<![\w+-])
    (?<!ИНН\ )(?<!ИНН:)(?<!ИНН:\ )(?<!ИНН\ №)   # an organisation's INN is public
    (?:
        \d{3}-\d{3}-\d{3}[\s-]\d{2}     # SNILS as printed
      | \d{11}                          # SNILS digits only
      | \d{2}\s?\d{2}\s?№?\s?\d{6}      # passport series and number
    )
    (?![\w-])""",
    re.VERBOSE,
)
"""SNILS- or passport-like digit runs. Longer request numbers (13 digits) do not match."""

_CAPITALISED_WORD = re.compile(r"(?<![\w-])[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)?")
_NAME_GRAMMEMES = frozenset({"Name", "Surn", "Patr"})

# Streets carry people's names («ул. Федора Абрамова», «Беринга 28/2»), and the tagger marks
# them PER. The place of the problem is not personal data, so such spans stay unmasked.
_STREET_WORDS = (
    r"ул|улиц[аеуы]|пр|пр-т|просп|проспект[аеу]?|пер|переул(?:ок|ка|ке)|б-р|бульвар[аеу]?|"
    r"наб|набережн(?:ая|ой|ую)|пл|площад(?:ь|и)|шоссе|алле[яиюе]|проезд[аеу]?|линия|им|имени|"
    r"по|дома|домом|домов|домами|д"
)
_BEFORE_STREET_NAME = re.compile(
    rf"(?:^|[^\w-])(?i:{_STREET_WORDS})\b\.?\s*(?:[А-ЯЁ][а-яё]+\.?\s+)?$", re.MULTILINE
)
_AFTER_STREET_NAME = re.compile(  # possessive runs of spaces: linear on «    …» (see APARTMENT_RE)
    rf"^[^\S\n]*+,?[^\S\n]*+(?:\d|(?i:{_STREET_WORDS})\b\.?\s*+№?\s*+\d|(?i:{_STREET_WORDS})\b)"
)


@lru_cache(maxsize=1 << 16)
def _could_be_name(word: str) -> bool:
    morph = morph_analyzer()
    lower = word.lower()
    if not morph.word_is_known(lower):
        return True
    return any(_NAME_GRAMMEMES & parse.tag.grammemes for parse in morph.parse(lower))


def has_name_candidate(text: str) -> bool:
    """Tell whether a text has a capitalised word that may be a person's name.

    Args:
        text: Any text.

    Returns:
        True when the name tagger should look at the text.
    """
    return any(_could_be_name(match.group(0)) for match in _CAPITALISED_WORD.finditer(text))


def _mask_by_rules_once(text: str) -> str:
    text = VK_MENTION_RE.sub(NAME_MASK, text)
    text = EMAIL_RE.sub(EMAIL_MASK, text)
    text = PHONE_RE.sub(PHONE_MASK, text)
    text = ID_NUMBER_RE.sub(NUMBER_MASK, text)
    return APARTMENT_RE.sub(APARTMENT_MASK, text)


def _mask_by_rules(text: str) -> str:
    # A replacement can unblock a neighbouring match that a look-behind had refused
    # («кв.5+7 921…»); a second round settles it. Each round that changes the text removes
    # digits or «@», so the loop ends.
    for _ in range(5):
        masked = _mask_by_rules_once(text)
        if masked == text:
            break
        text = masked
    return text


def _mask_names(text: str, spans: Iterable[tuple[int, int]]) -> str:
    pieces: list[str] = []
    last = 0
    for start, stop in spans:
        pieces.append(text[last:start])
        pieces.append(NAME_MASK)
        last = stop
    pieces.append(text[last:])
    return "".join(pieces)


def _is_person(text: str, entity: Entity) -> bool:
    if entity.type != "PER":
        return False
    line_start = text.rfind("\n", 0, entity.start) + 1
    if _BEFORE_STREET_NAME.search(text, line_start, entity.start):
        return False
    if _AFTER_STREET_NAME.match(text[entity.stop : entity.stop + 20]):
        return False
    # The tagger also marks capitalised common nouns at a line start («Люк», «Ямы»).
    return any(_could_be_name(word) for word in _CAPITALISED_WORD.findall(entity.text))


def _is_street_context(text: str, start: int, stop: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    return bool(_BEFORE_STREET_NAME.search(text, line_start, start)
                or _AFTER_STREET_NAME.match(text[stop : stop + 20]))


@lru_cache(maxsize=1 << 16)
def _name_parts(word: str) -> frozenset[str]:
    """Which of first name, surname, patronymic a capitalised word can be (pymorphy tags)."""
    return frozenset().union(*(parse.tag.grammemes & _NAME_GRAMMEMES
                               for parse in morph_analyzer().parse(word.lower())))


def _rule_name_spans(text: str) -> list[tuple[int, int]]:
    """Runs of 2–3 capitalised words, one a first name and another a surname or patronymic.

    The tagger misses names in some positions («Жалуется Петров Сергей …»); this rule catches
    the usual «Фамилия Имя (Отчество)» and «Имя Отчество» forms. Streets named after people
    stay unmasked, as for the tagger.
    """
    spans: list[tuple[int, int]] = []
    words = list(_CAPITALISED_WORD.finditer(text))
    i = 0
    while i < len(words):
        run = [words[i]]
        while (i + len(run) < len(words) and len(run) < 3
               and text[run[-1].end() : words[i + len(run)].start()] == " "):
            run.append(words[i + len(run)])
        parts = [_name_parts(match.group(0)) for match in run]
        first = {k for k, part in enumerate(parts) if "Name" in part}
        other = {k for k, part in enumerate(parts) if part & {"Surn", "Patr"}}
        if any(a != b for a in first for b in other):
            named = sorted(first | other)  # only the name words, not «Жалуется»
            start, stop = run[named[0]].start(), run[named[-1]].end()
            if not _is_street_context(text, start, stop):
                spans.append((start, stop))
            i += len(run)
        else:
            i += 1
    return spans


def _person_spans(text: str, entities: Iterable[Entity]) -> list[tuple[int, int]]:
    """Name spans from the tagger and the rule, merged, never reaching into a placeholder."""
    spans = [(entity.start, entity.stop) for entity in entities if _is_person(text, entity)]
    spans += _rule_name_spans(text)
    clipped: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        bracket = text.find("[", start, stop)  # «Петров Сергей [ТЕЛЕФОН]» tagged as one name
        if bracket >= 0:
            stop = start + len(text[start:bracket].rstrip())
        if stop <= start:
            continue
        if clipped and start <= clipped[-1][1]:
            clipped[-1] = (clipped[-1][0], max(stop, clipped[-1][1]))
        else:
            clipped.append((start, stop))
    return clipped


def mask_personal_data(text: str, *, use_ner: bool = True) -> str:
    """Mask a citizen's personal data in one text.

    Args:
        text: Plain text (normalize HTML first).
        use_ner: Find names with the neural tagger; ``False`` masks by rules only (phones,
            e-mails, VK mentions, apartments, ID numbers), which is a hundred times faster.

    Returns:
        The text with placeholders instead of personal data.

    Raises:
        TypeError: If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"mask_personal_data expects str, got {type(text).__name__}")
    text = _mask_by_rules(text)
    if use_ner and has_name_candidate(text):
        text = _mask_names(text, _person_spans(text, extract_entities(text)))
    return text


def mask_many(texts: Iterable[str], *, use_ner: bool = True) -> list[str]:
    """Mask personal data in many texts; repeated texts are masked once, names tagged in batches.

    Args:
        texts: Plain texts.
        use_ner: See :func:`mask_personal_data`.

    Returns:
        Masked texts in the same order.
    """
    texts = list(texts)
    masked: dict[str, str] = {text: _mask_by_rules(text) for text in dict.fromkeys(texts)}
    if use_ner:
        candidates = [text for text, ruled in masked.items() if has_name_candidate(ruled)]
        ruled_texts = [masked[text] for text in candidates]
        for text, ruled, entities in zip(
            candidates, ruled_texts, extract_entities_many(ruled_texts), strict=True
        ):
            masked[text] = _mask_names(ruled, _person_spans(ruled, entities))
    return [masked[text] for text in texts]


_PLACEHOLDERS = (NAME_MASK, PHONE_MASK, EMAIL_MASK, NUMBER_MASK)
_TOKEN = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS) + r"|\w+")
# Punctuation takes part in the alignment: it keeps neighbouring masked entities apart.
_ALIGN_TOKEN = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS) + r"|\w+|[^\w\s]")
_REPEATED_PLACEHOLDER = re.compile(
    "(" + "|".join(re.escape(p) for p in _PLACEHOLDERS) + r")(?:\s*\1)+")


_WORD_CHAR = re.compile(r"\w")


def _word_key(word: str) -> str:
    # Models see lower-cased text with ё as е (``classifiers.features.prepare_text``).
    return word.casefold().replace("ё", "е")


def _placeholder_for(word: str, placeholders: list[str]) -> str:
    if len(set(placeholders)) == 1:
        return placeholders[0]
    preferred = (PHONE_MASK, NUMBER_MASK) if word.isdigit() else (NAME_MASK, EMAIL_MASK)
    for placeholder in placeholders:
        if placeholder in preferred:
            return placeholder
    if placeholders:
        return placeholders[0]
    return NUMBER_MASK if word.isdigit() else NAME_MASK


def masked_words(text: str, masked: str) -> dict[str, str]:
    """The words of ``text`` that masking replaced, each with the placeholder it became.

    ``masked`` is ``text`` after :func:`mask_personal_data` (or :func:`mask_many`). The two are
    aligned word by word; a word that was masked anywhere in the text counts as masked (also
    where it stayed, say a surname that is also a street's name).

    Args:
        text: The original text.
        masked: The same text with personal data masked.

    Returns:
        Lower-cased word (``ё`` as ``е``) → ``[ФИО]``, ``[ТЕЛЕФОН]``, ``[EMAIL]`` or ``[НОМЕР]``.
    """
    source = _ALIGN_TOKEN.findall(text)
    target = _ALIGN_TOKEN.findall(masked)
    matcher = SequenceMatcher(None, [_word_key(w) for w in source],
                              [_word_key(w) for w in target], autojunk=False)
    words: dict[str, str] = {}
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("equal", "insert"):
            continue
        placeholders = [w for w in target[j1:j2] if w in _PLACEHOLDERS]
        for word in source[i1:i2]:
            if word not in _PLACEHOLDERS and _WORD_CHAR.match(word):
                words.setdefault(_word_key(word), _placeholder_for(word, placeholders))
    return words


def mask_terms(terms: Iterable[str], text: str, masked: str | None = None, *,
               words: Mapping[str, str] | None = None) -> list[str]:
    """Mask words or n-grams quoted from ``text`` (a model's explanation) as the text is masked.

    A word that masking replaced in ``text`` becomes its placeholder (repeats merge:
    «иван петрович» → ``[ФИО]``); phones, e-mails and ID numbers are masked by the rules too.

    Args:
        terms: Words or phrases taken from ``text`` (any case).
        text: The text they come from.
        masked: ``text`` already masked (computed when not given).
        words: :func:`masked_words` of ``text`` (computed when not given).

    Returns:
        The terms masked, in the same order.
    """
    if words is None:
        words = masked_words(text, mask_personal_data(text) if masked is None else masked)

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        return word if word in _PLACEHOLDERS else words.get(_word_key(word), word)

    return [_mask_by_rules(_REPEATED_PLACEHOLDER.sub(r"\1", _TOKEN.sub(replace, str(term))))
            for term in terms]


class PersonalDataFilter(logging.Filter):
    """A logging filter that masks personal data in every record's message.

    Attach it to a handler (``handler.addFilter(PersonalDataFilter())``) so that appeal texts
    quoted in logs never carry phones, e-mails or names.

    Args:
        name: Logger name prefix the filter applies to (``""``: all), as in ``logging.Filter``.
        use_ner: Mask names with the neural tagger too (slower, loads natasha on first use).
    """

    def __init__(self, name: str = "", *, use_ner: bool = True) -> None:
        super().__init__(name)
        self.use_ner = use_ner

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message in place; never drops a record."""
        if not super().filter(record):
            return True
        message = record.getMessage()
        masked = mask_personal_data(message, use_ner=self.use_ner)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
