"""Urgency of an appeal from a curator-editable lexicon (``urgency_lexicon.yaml``).

The score is ``1 - Π(1 - weight)`` over matched lexicon entries: 0 with no signal, close to 1 for
gas or fire, and two independent signals (no heating *and* a child at home) add up without ever
passing 1. Seasonal entries (no heating, icicles) count only in their months. The reasons name the
entries and the phrases that matched, so an operator sees why an appeal is at the top of the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mcu_nlp.routing.lemmas import lemmas_of, phrase_found, phrase_lemmas

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent / "urgency_lexicon.yaml"


class LexiconError(ValueError):
    """An urgency lexicon that cannot be used."""


class UrgencyEntry(BaseModel):
    """One kind of urgent situation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    description: str = ""
    weight: float = Field(gt=0.0, le=1.0)
    phrases: list[str] = Field(min_length=1)
    months: list[int] = Field(default_factory=list)

    @field_validator("months")
    @classmethod
    def _real_months(cls, months: list[int]) -> list[int]:
        bad = [month for month in months if not 1 <= month <= 12]
        if bad:
            raise ValueError(f"months must be 1..12, got {bad}")
        return months


class UrgencyLexiconFile(BaseModel):
    """The lexicon file as written by the curator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    window: int = Field(default=5, ge=1, le=50)
    entries: list[UrgencyEntry]

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


@dataclass(frozen=True, slots=True)
class UrgencyReason:
    """One matched entry."""

    id: str
    description: str
    phrase: str
    weight: float


@dataclass(frozen=True, slots=True)
class Urgency:
    """An urgency score in [0, 1] and the reasons behind it."""

    score: float
    reasons: tuple[UrgencyReason, ...] = ()


class UrgencyLexicon:
    """Scores appeals; phrases are lemmatized once, when the lexicon loads."""

    def __init__(self, lexicon: UrgencyLexiconFile) -> None:
        self.lexicon = lexicon
        self._phrases = [
            [(phrase, phrase_lemmas(phrase)) for phrase in entry.phrases]
            for entry in lexicon.entries
        ]

    @property
    def version(self) -> str:
        """The curator's version string."""
        return self.lexicon.version

    def score(self, text: str, *, created_at: datetime | None = None,
              lemmas: Sequence[str] | None = None) -> Urgency:
        """Score one appeal.

        Args:
            text: The appeal text.
            created_at: When it was filed; seasonal entries need it (without it they count).
            lemmas: The text's lemmas when the caller already has them.
        """
        lemmas = list(lemmas) if lemmas is not None else lemmas_of(text)
        reasons: list[UrgencyReason] = []
        calm = 1.0
        for entry, phrases in zip(self.lexicon.entries, self._phrases, strict=True):
            if entry.months and created_at is not None and created_at.month not in entry.months:
                continue
            hit = next((phrase for phrase, parts in phrases
                        if phrase_found(parts, lemmas, self.lexicon.window)), None)
            if hit is not None:
                reasons.append(UrgencyReason(entry.id, entry.description, hit, entry.weight))
                calm *= 1.0 - entry.weight
        reasons.sort(key=lambda reason: -reason.weight)
        return Urgency(score=round(1.0 - calm, 4), reasons=tuple(reasons))


def load_lexicon(path: str | Path | None = None) -> UrgencyLexicon:
    """Load and validate an urgency lexicon (default: the packaged one)."""
    file = Path(path) if path is not None else DEFAULT_LEXICON_PATH
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LexiconError(f"cannot read urgency lexicon {file}: {exc}") from exc
    try:
        return UrgencyLexicon(UrgencyLexiconFile.model_validate(document))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LexiconError(f"{file}: {problems}") from exc
