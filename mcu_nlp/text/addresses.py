"""Addresses in appeals: natasha ``AddrExtractor`` for free text, a fast parser for address fields.

natasha finds address parts one by one («улица Ивановская», «дом 13»); neighbouring parts are
grouped here into one :class:`Address`. The extractor is slow (tens of milliseconds a text), so
structured address fields, such as the portal's «г.Санкт-Петербург, Малая Балканская улица,
дом 60, корпус 1, литера А», are parsed by rules instead, and :func:`place_of` caches results.

A :class:`Place` is the building of the reported problem (settlement, street, house). The
apartment is never part of it: it identifies a private person, not a place.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "Address",
    "AddressPart",
    "Place",
    "addr_extractor",
    "extract_addresses",
    "parse_address_field",
    "place_of",
]

_ADDR: Any = None
_ADDR_LOCK = threading.Lock()

# natasha part types → the kind of part.
_KIND_OF_TYPE = {
    "федеральный округ": "region",
    "республика": "region",
    "край": "region",
    "область": "region",
    "автономный округ": "region",
    "район": "district",
    "город": "settlement",
    "село": "settlement",
    "деревня": "settlement",
    "посёлок": "settlement",
    "улица": "street",
    "проспект": "street",
    "проезд": "street",
    "переулок": "street",
    "площадь": "street",
    "шоссе": "street",
    "набережная": "street",
    "бульвар": "street",
    "дом": "house",
    "корпус": "building",
    "строение": "building",
    "квартира": "apartment",
    "офис": "apartment",
}
_COUNTRIES = frozenset({"россия", "рф", "российская федерация"})
_SPB_ALIASES = frozenset({"спб", "с-пб", "с.-петербург", "петербург", "санкт петербург", "питер"})
# Only punctuation may separate the parts of one address.
_PART_GAP = re.compile(r"[\s,.;:()№-]*")
_HOUSE_NUMBER = re.compile(r"\d+[а-яa-z]?(?:/\d+[а-яa-z]?)?", re.IGNORECASE)
# Starts only where a run of separators starts, so a search is linear on «   …» too; match it
# against the text after a street (``text[stop:]``), where nothing precedes the run.
_NUMBER_AFTER_STREET = re.compile(r"(?<![\s,\d])[\s,]*+(\d++[а-яА-Я]?(?:/\d++[а-яА-Я]?)?)(?![\w/])")


@dataclass(frozen=True, slots=True)
class AddressPart:
    """One part of an address.

    Attributes:
        kind: ``region``, ``district``, ``settlement``, ``street``, ``house``, ``building``,
            ``apartment``, ``country`` or ``other``.
        value: The name or number as written («Ивановская», «13»).
        type: The type word in full form («улица», «дом»), when there is one.
        start: Offset of the part in the text.
        stop: Offset after the part.
    """

    kind: str
    value: str
    type: str | None
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class Address:
    """Neighbouring address parts found together in a text.

    Attributes:
        parts: The parts in text order.
        start: Offset of the first part.
        stop: Offset after the last part.
    """

    parts: tuple[AddressPart, ...]
    start: int
    stop: int

    def _first(self, kind: str) -> AddressPart | None:
        return next((part for part in self.parts if part.kind == kind), None)

    @property
    def settlement(self) -> str | None:
        """Canonical settlement name (``СПб`` → ``Санкт-Петербург``), if present."""
        part = self._first("settlement")
        return _canonical_settlement(part.value) if part else None

    @property
    def street(self) -> str | None:
        """Street as ``type name`` («улица Ивановская»), if present."""
        part = self._first("street")
        return _canonical_street(part.value, part.type) if part else None

    @property
    def house(self) -> str | None:
        """House number with its building when given («55 к2», «4Б»), if present."""
        part = self._first("house")
        if part is None:
            return None
        number = _HOUSE_NUMBER.match(part.value.strip())
        house = number.group(0).upper() if number else part.value.strip()
        building = self._first("building")
        if building is not None and building.type == "корпус":
            house += f" к{building.value.strip().upper()}"
        return house

    @property
    def apartment(self) -> str | None:
        """Apartment or office number, if present (personal data: never part of a place)."""
        part = self._first("apartment")
        return part.value if part else None


@dataclass(frozen=True, slots=True)
class Place:
    """The building of a reported problem, for counting "top places".

    Attributes:
        settlement: Canonical settlement name, or ``None`` when not stated.
        street: Street as ``type name``, or ``None``.
        house: House number (with building), or ``None``.
    """

    settlement: str | None = None
    street: str | None = None
    house: str | None = None

    @property
    def is_known(self) -> bool:
        """True when at least a street is known."""
        return self.street is not None

    def label(self) -> str:
        """Human-readable place, e.g. ``"Санкт-Петербург, улица Ивановская, 13"``."""
        return ", ".join(part for part in (self.settlement, self.street, self.house) if part)


def _capitalize(value: str) -> str:
    value = " ".join(value.split()).replace("ё", "е").replace("Ё", "Е")
    return value[:1].upper() + value[1:]


def _canonical_settlement(value: str) -> str:
    value = re.sub(r"^(?:город|г\.|г(?=\s))\s*", "", value.strip(), flags=re.IGNORECASE)
    if value.lower().replace("ё", "е") in _SPB_ALIASES:
        return "Санкт-Петербург"
    return _capitalize(value)


def _canonical_street(value: str, street_type: str | None) -> str:
    value = _capitalize(value)
    return f"{street_type} {value}" if street_type else value


def addr_extractor() -> Any:
    """Return the shared natasha ``AddrExtractor``, building it on first call.

    Returns:
        The extractor; calling it on a text yields matches of single address parts.
    """
    global _ADDR
    if _ADDR is None:
        with _ADDR_LOCK:
            if _ADDR is None:
                from natasha import AddrExtractor, MorphVocab

                _ADDR = AddrExtractor(MorphVocab())
    return _ADDR


def _part_of_match(match: Any) -> AddressPart:
    value, part_type = match.fact.value or "", match.fact.type
    if part_type is None:
        kind = "country" if value.lower() in _COUNTRIES else "settlement"
    else:
        kind = _KIND_OF_TYPE.get(part_type, "other")
    return AddressPart(kind, value, part_type, match.start, match.stop)


def _with_bare_house(text: str, parts: list[AddressPart]) -> list[AddressPart]:
    # natasha needs «д.» before a house number; «ул. Гагаринская 6/1» is just as common.
    if parts and parts[-1].kind == "street":
        stop = parts[-1].stop
        number = _NUMBER_AFTER_STREET.match(text[stop:])
        if number:
            parts.append(AddressPart("house", number.group(1), "дом", stop + number.start(1),
                                     stop + number.end()))
    return parts


def _group_parts(text: str, parts: Iterable[AddressPart]) -> list[Address]:
    addresses: list[Address] = []
    current: list[AddressPart] = []
    for part in sorted(parts, key=lambda p: p.start):
        gap = text[current[-1].stop : part.start] if current else ""
        repeated = any(p.kind == part.kind for p in current)
        if current and (repeated or _PART_GAP.fullmatch(gap) is None):
            current = _with_bare_house(text, current)
            addresses.append(Address(tuple(current), current[0].start, current[-1].stop))
            current = []
        current.append(part)
    if current:
        current = _with_bare_house(text, current)
        addresses.append(Address(tuple(current), current[0].start, current[-1].stop))
    return addresses


def extract_addresses(text: str) -> list[Address]:
    """Find addresses in a free text with natasha (slow: tens of milliseconds a text).

    Args:
        text: Any text.

    Returns:
        Addresses in text order; parts separated only by punctuation form one address.
    """
    if not text.strip():
        return []
    return _group_parts(text, (_part_of_match(match) for match in addr_extractor()(text)))


_FIELD_PATTERNS: tuple[tuple[str, str | None, re.Pattern[str]], ...] = tuple(
    (kind, part_type, re.compile(pattern, re.IGNORECASE))
    for kind, part_type, pattern in (
        ("settlement", None, r"^(?:город|г\.|г(?=\s))\s*+(?P<v>.+)$"),
        ("settlement", None, r"^(?:посёлок|поселок|пос\.|п\.|пгт\.?|село|деревня)\s*+(?P<v>.+)$"),
        ("house", "дом", r"^(?:дом|д\.)\s*(?P<v>\S.*)$"),
        ("building", "корпус", r"^(?:корпус|корп\.?|к\.)\s*(?P<v>\S+)$"),
        ("building", "строение", r"^(?:строение|стр\.?)\s*(?P<v>\S+)$"),
        ("other", "литера", r"^(?:литера|лит\.?)\s*(?P<v>\S+)$"),
        ("apartment", "квартира", r"^(?:квартира|кв\.?)\s*(?P<v>\S+)$"),
        ("region", None, r"^(?P<v>.+\s(?:область|край|республика))$"),
        ("district", "муниципальный округ", r"^(?:муниципальный округ|МО)\s++(?P<v>.+)$"),
        ("district", "район", r"^(?P<v>.*\S)\s+район$"),
    )
)
_STREET_TYPES = {
    "улица": "улица", "ул": "улица", "проспект": "проспект", "пр": "проспект",
    "пр-т": "проспект", "переулок": "переулок", "пер": "переулок", "шоссе": "шоссе",
    "бульвар": "бульвар", "б-р": "бульвар", "набережная": "набережная", "наб": "набережная",
    "площадь": "площадь", "пл": "площадь", "проезд": "проезд", "линия": "линия",
    "аллея": "аллея", "дорога": "дорога", "тупик": "тупик", "мост": "мост",
    "территория": "территория", "тер": "территория", "микрорайон": "микрорайон",
}  # fmt: skip
_STREET_TYPE_WORD = re.compile(
    r"(?:^|\s)(?P<t>" + "|".join(re.escape(t) for t in _STREET_TYPES) + r")\.?(?=\s|$)",
    re.IGNORECASE,
)


def _field_part(chunk: str, start: int) -> AddressPart | None:
    stop = start + len(chunk)
    for kind, part_type, pattern in _FIELD_PATTERNS:
        match = pattern.match(chunk)
        if match:
            return AddressPart(kind, match.group("v").strip(), part_type, start, stop)
    street_type = _STREET_TYPE_WORD.search(chunk)
    if street_type:
        name = (chunk[: street_type.start()] + " " + chunk[street_type.end() :]).strip()
        full_type = _STREET_TYPES[street_type.group("t").lower()]
        return AddressPart("street", name, full_type, start, stop)
    return None


def parse_address_field(address: str) -> Address | None:
    """Parse a structured, comma-separated address field by rules (microseconds, no natasha).

    Args:
        address: E.g. «г.Санкт-Петербург, Малая Балканская улица, дом 60, корпус 1, литера А».

    Returns:
        The address, or ``None`` when no comma-separated chunk is recognised.
    """
    parts: list[AddressPart] = []
    recognised = False
    offset = 0
    for raw in address.split(","):
        chunk = raw.strip()
        start = offset + len(raw) - len(raw.lstrip())
        offset += len(raw) + 1
        if not chunk:
            continue
        part = _field_part(chunk, start)
        recognised = recognised or part is not None
        if part is None and not parts and not any(ch.isdigit() for ch in chunk):
            # A leading bare name («Санкт-Петербург», «Колпино») is the settlement.
            part = AddressPart("settlement", chunk, None, start, start + len(chunk))
        if part is not None:
            parts.append(part)
    if not recognised:
        return None
    return Address(tuple(parts), parts[0].start, parts[-1].stop)


@lru_cache(maxsize=1 << 16)
def _place_of_field(address: str) -> Place | None:
    parsed = parse_address_field(address)
    if parsed is None or parsed.street is None:
        return None
    return Place(parsed.settlement, parsed.street, parsed.house)


# A street, settlement or house word followed by a name or number. Texts without one (91 % of
# SPb appeals that lack an address field) never reach the slow natasha extractor.
_ADDRESS_CUE = re.compile(
    r"(?<![\w-])(?:ул|улиц[аеуы]|пр-т|просп|проспект[аеу]?|пер|переул(?:ок|ка|ке)|б-р|"
    r"бульвар[аеу]?|наб|набережн(?:ая|ой|ую)|пл|площад(?:ь|и)|шоссе|алле[яиюе]|проезд[аеу]?|"
    r"линия|г|город[аеу]?|пос|посел(?:ок|ка|ке)|поселк[аеу]|пгт|д|дом[аеу]?)(?:\.|\b)\s*"
    r"(?:№\s*)?[А-ЯЁ0-9]",
    re.IGNORECASE,
)
_CUE_WINDOW = (40, 120)
"""Characters before and after the first cue given to natasha (its cost grows with length)."""


@lru_cache(maxsize=1 << 14)
def _place_of_text(text: str) -> Place:
    cue = _ADDRESS_CUE.search(text)
    if cue is None:
        return Place()
    before, after = _CUE_WINDOW
    addresses = extract_addresses(text[max(0, cue.start() - before) : cue.start() + after])
    best = max(
        addresses,
        key=lambda a: (a.street is not None, a.house is not None, len(a.parts)),
        default=None,
    )
    if best is None:
        return Place()
    settlement = best.settlement or next((a.settlement for a in addresses if a.settlement), None)
    return Place(settlement, best.street, best.house)


def place_of(text: str, address: str | None = None) -> Place:
    """Return the place (settlement, street, house) of a reported problem.

    A structured ``address`` field, when given and parseable, wins over the text: it was chosen
    on a map. Otherwise natasha searches the text around its first address cue («ул.»,
    «проспект», «д. 5», …); texts without a cue give ``Place()`` at once. Both results are
    cached. Allow about 0.1 s for a text that reaches natasha.

    Args:
        text: The appeal text.
        address: The appeal's address field, if any (``None``, empty or NaN-like are ignored).

    Returns:
        The place; fields are ``None`` when not found (``Place()`` when nothing is found).
    """
    if isinstance(address, str) and address.strip():
        place = _place_of_field(address.strip())
        if place is not None:
            return place
    if not isinstance(text, str) or not text.strip():
        return Place()
    return _place_of_text(text)
