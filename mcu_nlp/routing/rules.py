"""Curator rules (автоправила): a versioned YAML file, validated on load.

A rule's ``when`` lists conditions; every condition given must hold (AND), and inside one
condition any listed value may match (OR). ``then`` sends the appeal to a department, sets a
priority, or forces a human review. Rules are evaluated in file order, before the model.

Example::

    version: "2025-07-1"
    rules:
      - id: gas-smell
        description: Запах газа — сразу в газовую службу, высокий приоритет
        when: {keywords: ["запах газа", "утечка газа"]}
        then: {department: "Аварийная газовая служба", priority: high}
      - id: official-complaints
        when: {channel: ["59-fz"], regex: ["(?i)прокуратур"]}
        then: {review: true, priority: high}

Regexes are written in Python's syntax and run by RE2 (:mod:`mcu_nlp.routing.safe_regex`), in
time linear in the appeal's length; a rule whose regex needs backtracking (backreferences,
lookarounds) is refused when the file is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcu_nlp.routing.lemmas import phrase_found, phrase_lemmas
from mcu_nlp.routing.safe_regex import RulePattern, UnsupportedPattern, compile_rule_regex

PRIORITIES = ("low", "normal", "high", "critical")
DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "default_rules.yaml"


class RulesError(ValueError):
    """A rules file that cannot be used, with the place and the reason."""


class TopicCondition(BaseModel):
    """The model's top-1 for ``label`` is one of ``values`` and confident enough."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    values: list[str] = Field(alias="in", min_length=1)
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0,
                                         description="Default: the label's own threshold.")


class RuleConditions(BaseModel):
    """What must hold for a rule to fire; an empty ``when`` is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    channel: list[str] = Field(default_factory=list)
    territory: list[str] = Field(default_factory=list)
    topic: TopicCondition | None = None
    window: int = Field(default=5, ge=1, le=50, description="Lemma window for keyword phrases.")

    @model_validator(mode="after")
    def _not_empty(self) -> RuleConditions:
        if not (self.keywords or self.regex or self.channel or self.territory or self.topic):
            raise ValueError("'when' needs at least one condition (keywords, regex, channel, "
                             "territory or topic)")
        return self


class RuleAction(BaseModel):
    """What a matching rule does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: str | None = None
    priority: str | None = None
    review: bool = Field(default=False, description="Always send to a human (overrides routing).")

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: str | None) -> str | None:
        if value is not None and value not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> RuleAction:
        if not (self.department or self.priority or self.review):
            raise ValueError("'then' needs a department, a priority or review: true")
        return self


class RoutingRule(BaseModel):
    """One curator rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    description: str = ""
    enabled: bool = True
    when: RuleConditions
    then: RuleAction

    @model_validator(mode="after")
    def _regexes_compile(self) -> RoutingRule:
        """Every regex must compile for RE2 (linear time); the error names the rule."""
        for pattern in self.when.regex:
            try:
                compile_rule_regex(pattern)
            except UnsupportedPattern as exc:
                raise ValueError(f"rule {self.id!r}: regex {pattern!r} {_refusal(exc)}") from exc
        return self

    @property
    def decides(self) -> bool:
        """Whether the rule settles the routing (a department or a forced review)."""
        return bool(self.then.department or self.then.review)


class RulesFile(BaseModel):
    """The whole curator file: a version and ordered rules with unique ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    rules: list[RoutingRule] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _unique_ids(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


@dataclass(frozen=True, slots=True)
class RuleSubject:
    """What rules look at: inputs known at filing time plus the model's topics."""

    text: str
    lemmas: Sequence[str]
    channel: str | None = None
    territory: str | None = None
    # label -> (top-1 value, confidence, threshold)
    topics: Mapping[str, tuple[str, float, float | None]] | None = None


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Validated rules, ready to evaluate (phrases lemmatized, regexes compiled once)."""

    source: RulesFile
    _phrases: dict[str, tuple[tuple[str, ...], ...]]
    _patterns: dict[str, tuple[RulePattern, ...]]

    @property
    def version(self) -> str:
        """The curator's version string."""
        return self.source.version

    @classmethod
    def from_rules(cls, rules: RulesFile) -> RuleBook:
        """Prepare validated rules for matching."""
        phrases = {rule.id: tuple(p for p in (phrase_lemmas(k) for k in rule.when.keywords) if p)
                   for rule in rules.rules}
        patterns = {rule.id: tuple(compile_rule_regex(p) for p in rule.when.regex)
                    for rule in rules.rules}
        return cls(source=rules, _phrases=phrases, _patterns=patterns)

    def matching(self, subject: RuleSubject) -> list[RoutingRule]:
        """Enabled rules whose conditions all hold, in file order."""
        return [rule for rule in self.source.rules if rule.enabled and self._holds(rule, subject)]

    def _holds(self, rule: RoutingRule, subject: RuleSubject) -> bool:
        when = rule.when
        if when.channel and (subject.channel or "") not in when.channel:
            return False
        if when.territory and not _territory_in(subject.territory, when.territory):
            return False
        if when.keywords and not any(phrase_found(p, subject.lemmas, when.window)
                                     for p in self._phrases[rule.id]):
            return False
        if when.regex and not any(p.search(subject.text) for p in self._patterns[rule.id]):
            return False
        if when.topic is not None:
            top = (subject.topics or {}).get(when.topic.label)
            if top is None:
                return False
            value, confidence, threshold = top
            needed = when.topic.min_confidence if when.topic.min_confidence is not None else (
                threshold if threshold is not None else 1.01)
            if value not in when.topic.values or confidence < needed:
                return False
        return True


def _refusal(error: UnsupportedPattern) -> str:
    reason = str(error)
    return reason if reason.startswith(("does not", "cannot")) else f"is refused: {reason}"


def _territory_in(territory: str | None, allowed: Sequence[str]) -> bool:
    if not territory:
        return False
    folded = territory.casefold().replace("ё", "е")
    return any(folded == item.casefold().replace("ё", "е") for item in allowed)


def parse_rules(document: Any, *, origin: str = "rules") -> RuleBook:
    """Validate a parsed YAML/JSON document as a rules file."""
    if not isinstance(document, dict):
        raise RulesError(f"{origin}: expected a mapping with 'version' and 'rules', "
                         f"got {type(document).__name__}")
    try:
        rules = RulesFile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors())
        raise RulesError(f"{origin}: {problems}") from exc
    return RuleBook.from_rules(rules)


def parse_rules_text(text: str, *, origin: str = "rules") -> RuleBook:
    """Validate the YAML text of a rules file."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from exc
    return parse_rules(document, origin=origin)


def load_rules(path: str | Path | None = None) -> RuleBook:
    """Load and validate a curator rules file (default: the packaged example rules)."""
    file = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read rules file {file}: {exc}") from exc
    return parse_rules_text(text, origin=str(file))
