"""What the console's admin pages show: model figures, API keys, and a dry run of curator rules.

* :func:`model_figures` finds the evaluation figures of a registered version in its stored
  metrics, whichever flow wrote them (a trained bundle's per-label ``test``/``validation``
  reports, retraining's ``holdout`` scores, an evaluation's ``test`` figures).
* :func:`list_keys` lists API keys (never their hashes).
* :func:`dry_run_rules` counts, for each rule of a rules file, how many of the last month's stored
  appeals (the month before the newest appeal) it would have caught, and how many it would have
  decided (the first deciding rule, as routing takes it), beside the counts of the rules in force.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mcu_nlp.routing.lemmas import lemmas_of
from mcu_nlp.routing.rules import RuleBook, RuleSubject
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import ApiKeyRow, AppealRow, PredictionRow

__all__ = [
    "DRY_RUN_DAYS",
    "DRY_RUN_LIMIT",
    "DryRun",
    "FigureRow",
    "KeyEntry",
    "RuleCount",
    "dry_run_rules",
    "list_keys",
    "model_figures",
]

DRY_RUN_DAYS = 30
DRY_RUN_LIMIT = 5_000  # the newest appeals of the month at most (lemmatizing costs ~1 ms each)

_COVERAGE = ("coverage", "auto_coverage", "coverage_at_95", "coverage_at_threshold")
_PRECISION = ("precision", "auto_precision", "precision_at_threshold")
_MACRO_F1 = ("macro_f1", "f1_macro", "macro-f1")
_PARTS = ("test", "holdout", "validation", "unseen")


@dataclass(frozen=True, slots=True)
class FigureRow:
    """The evaluation figures of one label of a model version (None: not recorded)."""

    label: str
    part: str  # where they were measured: test, holdout, validation...
    rows: int | None
    coverage: float | None
    precision: float | None
    macro_f1: float | None
    accuracy: float | None


def _number(figures: Mapping[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = figures.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return float(value)
    return None


def _figure_row(label: str, part: str, figures: Mapping[str, Any]) -> FigureRow | None:
    row = FigureRow(label, part,
                    int(figures["rows"]) if isinstance(figures.get("rows"), int) else None,
                    _number(figures, _COVERAGE), _number(figures, _PRECISION),
                    _number(figures, _MACRO_F1), _number(figures, ("accuracy",)))
    known = (row.coverage, row.precision, row.macro_f1, row.accuracy)
    return row if any(value is not None for value in known) else None


def model_figures(metrics: Mapping[str, Any] | None, labels: list[str]) -> list[FigureRow]:
    """Per label, the figures found in a version's metrics (see the module doc)."""
    metrics = metrics or {}
    rows: list[FigureRow] = []
    names = list(dict.fromkeys([*labels, *(k for k, v in metrics.items()
                                           if isinstance(v, Mapping) and k not in _PARTS)]))
    for label in names:
        per_label = metrics.get(label)
        candidates: list[tuple[str, Any]] = []
        if isinstance(per_label, Mapping):
            candidates += [(part, per_label.get(part)) for part in _PARTS]
            candidates.append(("", per_label))
        candidates += [(part, metrics[part].get(label)) for part in _PARTS
                       if isinstance(metrics.get(part), Mapping)]
        for part, figures in candidates:
            if isinstance(figures, Mapping):
                row = _figure_row(label, part, figures)
                if row is not None:
                    rows.append(row)
                    break
    if not rows:  # one model's evaluation: {"test": {...figures...}}
        for part in _PARTS:
            if isinstance(metrics.get(part), Mapping):
                row = _figure_row(labels[0] if len(labels) == 1 else "—", part, metrics[part])
                if row is not None:
                    rows.append(row)
                    break
    return rows


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """An API key as admins see it (never the key or its hash)."""

    key_id: int
    prefix: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def list_keys(store: Store) -> list[KeyEntry]:
    """Every API key, newest first."""
    with store.session() as session:
        return [KeyEntry(r.id, r.prefix, r.role, r.name, r.created_at, r.revoked_at)
                for r in session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.id.desc()))]


@dataclass(frozen=True, slots=True)
class RuleCount:
    """One rule of the dry run: appeals it matches and decides, now and with the new file."""

    rule_id: str
    description: str
    enabled: bool
    decides: bool
    matched: int
    decided: int
    matched_now: int | None  # the rule with this id in the rules in force; None: a new rule
    decided_now: int | None


@dataclass(frozen=True, slots=True)
class DryRun:
    """The counts of a dry run over the appeals of ``since``–``until``."""

    since: datetime | None
    until: datetime | None
    appeals: int
    rules: list[RuleCount] = field(default_factory=list)
    capped: bool = False
    removed: list[str] = field(default_factory=list)  # rules in force the new file drops


def _subjects(store: Store, since: datetime, until: datetime,
              limit: int) -> tuple[list[RuleSubject], bool]:
    with store.session() as session:
        rows = session.execute(
            sa.select(AppealRow.id, AppealRow.text, AppealRow.channel, AppealRow.territory)
            .where(AppealRow.created_at >= since, AppealRow.created_at <= until)
            .order_by(AppealRow.created_at.desc(), AppealRow.id.desc()).limit(limit + 1)).all()
        capped = len(rows) > limit
        rows = rows[:limit]
        topics: dict[int, dict[str, tuple[str, float, float | None]]] = {}
        ids = [row.id for row in rows]
        for start in range(0, len(ids), 500):
            for p in session.execute(
                    sa.select(PredictionRow.appeal_id, PredictionRow.label, PredictionRow.value,
                              PredictionRow.confidence, PredictionRow.threshold)
                    .where(PredictionRow.appeal_id.in_(ids[start:start + 500]))
                    .order_by(PredictionRow.id)):
                topics.setdefault(p.appeal_id, {})[p.label] = (p.value, p.confidence,
                                                               p.threshold)
    return [RuleSubject(row.text, lemmas_of(row.text), row.channel, row.territory,
                        topics.get(row.id, {})) for row in rows], capped


def _count(book: RuleBook, subjects: list[RuleSubject]) -> tuple[Counter[str], Counter[str]]:
    matched: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    for subject in subjects:
        deciding = None
        for rule in book.matching(subject):
            matched[rule.id] += 1
            if deciding is None and rule.decides:
                deciding = rule.id
        if deciding is not None:
            decided[deciding] += 1
    return matched, decided


def dry_run_rules(store: Store, book: RuleBook, *, current: RuleBook | None = None,
                  days: int = DRY_RUN_DAYS, limit: int = DRY_RUN_LIMIT) -> DryRun:
    """How many of the last month's stored appeals each rule of ``book`` would have caught.

    The month is the ``days`` before the newest stored appeal (by filing time); at most the
    newest ``limit`` appeals of it are read (``capped`` says so). Disabled rules catch nothing.

    Args:
        store: The appeal store.
        book: The rules to try (validated).
        current: The rules in force, counted on the same appeals for comparison.
        days: The length of the window.
        limit: The most appeals to read.
    """
    with store.session() as session:
        until = session.scalar(sa.select(sa.func.max(AppealRow.created_at)))
    if until is None:
        return DryRun(None, None, 0, [RuleCount(r.id, r.description, r.enabled, r.decides, 0, 0,
                                                None, None) for r in book.source.rules])
    since = until - timedelta(days=days)
    subjects, capped = _subjects(store, since, until, limit)
    matched, decided = _count(book, subjects)
    now_ids: set[str] = set()
    matched_now: Counter[str] = Counter()
    decided_now: Counter[str] = Counter()
    if current is not None:
        now_ids = {rule.id for rule in current.source.rules}
        matched_now, decided_now = _count(current, subjects)
    new_ids = {rule.id for rule in book.source.rules}
    rules = [RuleCount(rule.id, rule.description, rule.enabled, rule.decides, matched[rule.id],
                       decided[rule.id],
                       matched_now[rule.id] if rule.id in now_ids else None,
                       decided_now[rule.id] if rule.id in now_ids else None)
             for rule in book.source.rules]
    return DryRun(since, until, len(subjects), rules, capped,
                  sorted(now_ids - new_ids) if current is not None else [])
