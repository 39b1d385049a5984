"""The one record every channel is read into: :class:`Appeal`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """Where an appeal came from; each channel has its own answer deadline."""

    FZ59 = "59-fz"  # formal appeal under 59-ФЗ
    POS = "pos"  # Госуслуги «Решаем вместе» message
    IM = "im"  # Инцидент Менеджмент social-media incident
    GOSPABLIKI = "gospabliki"  # comment under an official community post
    PORTAL = "portal"  # a city portal such as «Наш Санкт-Петербург»
    OTHER = "other"


@dataclass(slots=True)
class Appeal:
    """A citizen appeal or message, whatever the channel.

    Attributes:
        id: Source-side identifier (unique within ``source``).
        channel: The channel it arrived through.
        source: The system or export it was read from (e.g. ``spb_portal``, ``im_export``).
        created_at: When the citizen filed it.
        text: The citizen's text as received (HTML already stripped by the reader where present).
        territory: District, settlement or municipality as the source names it.
        address: Address of the problem, if known.
        labels: Labels the source already carries (topic, department...), keyed by label name.
        metadata: Everything else the source provides (statuses, answer times, coordinates).
    """

    id: str
    channel: Channel
    source: str
    created_at: datetime
    text: str
    territory: str | None = None
    address: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
