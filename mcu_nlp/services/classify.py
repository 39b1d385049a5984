"""Classify and route appeals: the model's top-k per label, urgency, and the routing decision.

Stateless: nothing is written here. :mod:`mcu_nlp.services.appeals` stores what this returns.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from mcu_nlp.routing.audit_sample import AuditSampler
from mcu_nlp.routing.lemmas import lemmas_of
from mcu_nlp.routing.router import RoutingDecision, route
from mcu_nlp.routing.rules import RuleBook, RuleSubject
from mcu_nlp.routing.thresholds import apply_overrides
from mcu_nlp.routing.urgency import Urgency, UrgencyLexicon
from mcu_nlp.services.models import ModelHolder
from mcu_nlp.text.normalize import EMAIL_RE, URL_RE

MAX_TEXT_CHARS = 20_000
MIN_CYRILLIC_SHARE = 0.5
# Portals redact personal data as runs of X («XXXX XXXXXX»); they are not evidence of a language.
_REDACTION = re.compile(r"\bX{2,}\b")



class InvalidAppealText(ValueError):
    """A text that cannot be classified, with the reason in the message."""


def check_text(text: Any) -> str:
    """Return ``text`` stripped, or raise :class:`InvalidAppealText` saying what is wrong.

    Refused: non-strings, empty or whitespace-only, over 20,000 characters, control characters
    beyond a stray one or two in a long text (binary content; stray ones are dropped), text with
    no letters, and text whose letters are mostly not Cyrillic (other languages, or Russian
    decoded with the wrong encoding, such as ``Ð¿Ñ€Ð¸``).
    """
    if not isinstance(text, str):
        raise InvalidAppealText(f"text must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidAppealText("text is empty")
    if len(stripped) > MAX_TEXT_CHARS:
        raise InvalidAppealText(
            f"text is {len(stripped)} characters; the limit is {MAX_TEXT_CHARS}")
    if "\ufffd" in stripped:
        raise InvalidAppealText("text holds U+FFFD replacement characters: it was decoded with the "
                                "wrong encoding; send UTF-8")
    control = [ch for ch in stripped if unicodedata.category(ch) in ("Cc", "Cs", "Co")
               and ch not in "\n\r\t"]
    if len(control) >= 3 or len(control) * 100 > len(stripped):
        raise InvalidAppealText(f"text holds {len(control)} control characters: binary content "
                                "is not an appeal text")
    if control:  # a stray one (copied from a form, say) is dropped, not a reason to refuse
        stripped = "".join(ch for ch in stripped if ch not in set(control)).strip()
    # Links and e-mails are Latin by nature: a Russian appeal citing ten portal links is Russian.
    prose = EMAIL_RE.sub(" ", URL_RE.sub(" ", stripped))
    letters = [ch for ch in _REDACTION.sub(" ", prose) if ch.isalpha()]
    if not letters and _REDACTION.search(stripped):
        raise InvalidAppealText("text is fully redacted")
    if not letters:
        raise InvalidAppealText("text has no letters")
    cyrillic = sum(1 for ch in letters if "CYRILLIC" in unicodedata.name(ch, ""))
    if cyrillic / len(letters) < MIN_CYRILLIC_SHARE:
        hint = (" (it looks like UTF-8 decoded as Latin-1)"
                if any(ch in stripped for ch in "ÐÑ") else "")
        raise InvalidAppealText(f"text is not in Russian: {cyrillic} of {len(letters)} letters are "
                                f"Cyrillic{hint}")
    return stripped


@dataclass(frozen=True, slots=True)
class AppealInput:
    """An appeal to classify: what is known at filing time."""

    text: str
    channel: str | None = None
    territory: str | None = None
    address: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """The model's answer for one appeal, with urgency and routing."""

    predictions: Mapping[str, Any]  # label -> LabelPrediction
    urgency: Urgency
    decision: RoutingDecision
    model_version: str | None
    rules_version: str


@dataclass(frozen=True, slots=True)
class ClassificationFailure:
    """One item of a batch that could not be classified."""

    error: str


@dataclass
class RulesHolder:
    """The curator rules in force; replaced whole when the curator uploads a new file."""

    rules: RuleBook
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def swap(self, rules: RuleBook) -> None:
        """Put a validated rule book in force."""
        with self._lock:
            self.rules = rules


class ClassifyService:
    """Runs the active model, the urgency lexicon and the router over appeals.

    Thresholds are the active bundle's, raised by the precision audit's overrides
    (:attr:`ActiveModel.overrides`). ``audit`` draws the auto-routed appeals that
    :func:`mcu_nlp.services.appeals.add_classified` also queues for an after-the-fact check
    (default: ``MCU_AUDIT_SHARE`` / ``MCU_AUDIT_SEED``).
    """

    def __init__(self, *, models: ModelHolder, rules: RulesHolder, lexicon: UrgencyLexicon,
                 department_label: str = "department", top_k: int = 3,
                 urgent_priority_at: float = 0.7, audit: AuditSampler | None = None) -> None:
        self.models = models
        self.rules = rules
        self.lexicon = lexicon
        self.department_label = department_label
        self.top_k = top_k
        self.urgent_priority_at = urgent_priority_at
        self.audit = audit if audit is not None else AuditSampler.from_settings()

    @property
    def ready(self) -> bool:
        """Whether a model is active."""
        return self.models.current is not None

    def classify(self, appeals: Sequence[AppealInput], *,
                 top_k: int | None = None) -> list[Classification | ClassificationFailure]:
        """Classify a batch; a bad item becomes a failure entry and the others still answer."""
        results: list[Classification | ClassificationFailure | None] = [None] * len(appeals)
        good: list[tuple[int, AppealInput]] = []
        for index, appeal in enumerate(appeals):
            try:
                good.append((index, AppealInput(check_text(appeal.text), appeal.channel,
                                                appeal.territory, appeal.address,
                                                appeal.created_at)))
            except InvalidAppealText as exc:
                results[index] = ClassificationFailure(str(exc))
        # One snapshot per batch: a model switch mid-batch must not mix two versions.
        model = self.models.current
        rules = self.rules.rules
        predictions: list[Mapping[str, Any] | None] = [None] * len(good)
        if model is not None and good:
            frame = pd.DataFrame({
                "text": [appeal.text for _, appeal in good],
                "district": [appeal.territory for _, appeal in good],
                "channel": [appeal.channel for _, appeal in good],
                "created_at": [appeal.created_at for _, appeal in good],
            })
            predictions = [apply_overrides(predicted, model.overrides)
                           for predicted in model.bundle.predict(frame, top_k=top_k or self.top_k)]
        for (index, appeal), predicted in zip(good, predictions, strict=True):
            results[index] = self._decide(appeal, predicted, rules,
                                          model.version if model else None)
        return [result for result in results if result is not None]

    def _decide(self, appeal: AppealInput, predicted: Mapping[str, Any] | None, rules: RuleBook,
                version: str | None) -> Classification:
        lemmas = lemmas_of(appeal.text)
        urgency = self.lexicon.score(appeal.text, created_at=appeal.created_at, lemmas=lemmas)
        topics = {label: (p.top[0][0], p.confidence, p.threshold)
                  for label, p in (predicted or {}).items() if p.top}
        subject = RuleSubject(appeal.text, lemmas, appeal.channel, appeal.territory, topics)
        decision = route(subject, predicted, rules, department_label=self.department_label,
                         urgent_priority_at=self.urgent_priority_at, urgency=urgency.score)
        return Classification(dict(predicted or {}), urgency, decision, version, rules.version)
