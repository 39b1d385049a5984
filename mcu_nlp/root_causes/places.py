"""Where a root cause happens: settlement and street of each appeal.

Uses :func:`mcu_nlp.text.entities.place_of` (natasha LOC and address extraction) when that module is
present; otherwise, and whenever the text names no place, the structured address column is read
(«г.Санкт-Петербург, Мебельная улица, дом 47» → «Санкт-Петербург, Мебельная улица»).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_SETTLEMENT_PREFIX = re.compile(
    r"^(?:город|посёлок|поселок|деревня|село|г\.|пос\.|п\.|с\.|д\.)\s*", re.IGNORECASE)
_HOUSE = re.compile(r"^(?:дом|д\.|корпус|корп\.|литера|лит\.|строение|стр\.|кв\.?|квартира)\b",
                    re.IGNORECASE)


def place_of_address(address: object) -> str | None:
    """Settlement and street of a structured address, without house, building or flat."""
    if not isinstance(address, str) or not address.strip():
        return None
    parts = [part.strip() for part in address.split(",") if part.strip()]
    kept = []
    for part in parts:
        if _HOUSE.match(part) or part[:1].isdigit():
            break
        kept.append(part)
    if not kept:
        return None
    kept[0] = _SETTLEMENT_PREFIX.sub("", kept[0]) or kept[0]
    return ", ".join(kept[:2])


def _entity_place_function() -> Callable[..., Any] | None:
    try:
        from mcu_nlp.text.entities import place_of
    except ImportError:
        return None
    return place_of


def _as_text(place: Any) -> str | None:
    if place is None:
        return None
    if isinstance(place, str):
        return place.strip() or None
    parts = [getattr(place, name, None) for name in ("settlement", "street")]
    text = ", ".join(str(p) for p in parts if p)
    return text or None


def places_of(texts: list[str], addresses: list[object] | None) -> list[str | None]:
    """A place (settlement, street) for each appeal: its address first, else what its text names.

    Uses :func:`mcu_nlp.text.entities.place_of` (which parses the address and, failing that, finds
    the address in the text with natasha) and falls back to :func:`place_of_address`.

    Args:
        texts: Appeal texts.
        addresses: The address column (or ``None``).

    Returns:
        One place name or ``None`` per appeal.
    """
    from_text = _entity_place_function()
    places: list[str | None] = []
    for i, text in enumerate(texts):
        address = addresses[i] if addresses is not None else None
        place = None
        if from_text is not None:
            try:
                place = _as_text(from_text(text or "", address if isinstance(address, str)
                                           else None))
            except Exception:  # one odd text never sinks the card
                place = None
        places.append(place or place_of_address(address))
    return places
