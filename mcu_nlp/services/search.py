"""Full-text search over stored appeals, with filters, snippets and the history of one appeal.

The query language is PostgreSQL's ``websearch_to_tsquery``: words must all occur (in any
inflected form: «дворах» finds «двор», «двора»), ``"quoted words"`` must stand together,
``or`` between words accepts either side, ``-word`` excludes. Nothing else is syntax: FTS5's
``NEAR(``, ``*``, ``AND`` and any stray quote or bracket are plain text, and no query raises an
error.

* PostgreSQL runs the query itself (``to_tsvector('russian', text) @@
  websearch_to_tsquery('russian', :query)``, an expression GIN index).
* SQLite runs the same query parsed here (:func:`parse_query`, which follows
  ``websearch_to_tsquery``) against the FTS5 index of Python-computed terms
  (:mod:`mcu_nlp.storage.search_index`): every quoted phrase goes to ``MATCH`` as one bound,
  quoted FTS5 string, so no user text is ever FTS5 syntax or SQL.

Both engines find the same appeals for the same Russian words. Differences remain for numbers
written with dots or signs, e-mail addresses and links (PostgreSQL keeps them as one token, SQLite
as their parts) and for Latin words (PostgreSQL stems them with the English stemmer).

Roles that see raw personal data read raw texts, and a page of results is one ``appeal.read``
audit row per appeal on it (:func:`search_appeals_as`, as the queue's pages are); analysts read
masked texts, and a hit that matches only through masked words (a name, a phone) is left out
of their page.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from mcu_nlp.services.personal_data import mask_personal_data, record_reads, sees_raw
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import (
    AppealRow,
    AuditRow,
    CorrectionRow,
    HumanLabelRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
)
from mcu_nlp.storage.search_index import (
    FTS_TABLE,
    fts_match,
    index_missing,
    pg_document,
    pg_query,
)
from mcu_nlp.text.masking import mask_many
from mcu_nlp.text.search_terms import STOP_FILLER, word_tokens

__all__ = [
    "MAX_QUERY_LENGTH",
    "ORDERS",
    "STATUSES",
    "TOPIC_LABEL",
    "HistoryEvent",
    "Operand",
    "ParsedQuery",
    "QueryTooLong",
    "SearchFilters",
    "SearchHit",
    "SearchPage",
    "appeal_history",
    "filter_options",
    "parse_query",
    "search_appeals",
    "search_appeals_as",
    "snippet",
]

TOPIC_LABEL = "category"
MAX_QUERY_LENGTH = 200
MAX_OPERANDS = 24  # words and phrases of one query (each is one index lookup)
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000
STATUSES = {"open": "в очереди", "resolved": "решено", "auto": "направлено автоматически"}
ORDERS = {"relevance": "по релевантности", "newest": "сначала новые"}
_OPTIONS_LIMIT = 500

# websearch_to_tsquery skips these between operands (tsquery operators) and ends words on them.
_OPERATOR_CHARS = frozenset("!&|()<")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QueryTooLong(ValueError):
    """A search query over :data:`MAX_QUERY_LENGTH` characters."""


# --- the query ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operand:
    """A word or a phrase of the query: its terms in order (``None``: a stop word's place)."""

    terms: tuple[str | None, ...]
    negated: bool = False

    @property
    def words(self) -> list[str]:
        """The terms that are not stop words."""
        return [term for term in self.terms if term is not None]

    def fts5(self) -> str:
        """The operand as one quoted FTS5 phrase (stop words as the index's filler)."""
        inner = " ".join(term if term is not None else STOP_FILLER for term in self._trimmed())
        return '"' + inner.replace('"', '""') + '"'

    def _trimmed(self) -> tuple[str | None, ...]:
        terms = list(self.terms)
        while terms and terms[0] is None:
            terms.pop(0)
        while terms and terms[-1] is None:
            terms.pop()
        return tuple(terms)

    def found_in(self, terms: Sequence[str | None]) -> bool:
        """Whether the phrase occurs in a text's terms.

        Distances are PostgreSQL's: any word fills a stop word's place.
        """
        wanted = [(offset, term) for offset, term in enumerate(self._trimmed()) if term]
        if not wanted:
            return False
        span = wanted[-1][0]
        return any(all(terms[start + offset] == term for offset, term in wanted)
                   for start in range(len(terms) - span))


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query as ``websearch_to_tsquery`` reads it: OR of groups, each an AND of operands."""

    text: str
    groups: tuple[tuple[Operand, ...], ...]

    @property
    def empty(self) -> bool:
        """No word to search for (a blank query, or only stop words and punctuation)."""
        return not self.groups

    @property
    def highlight(self) -> frozenset[str]:
        """Terms to mark in snippets: those of operands that are not excluded."""
        return frozenset(term for group in self.groups for operand in group
                         if not operand.negated for term in operand.words)

    def matches(self, text: str) -> bool:
        """Evaluate the query on one text in Python (the analysts' check of masked texts)."""
        terms = [token.term for token in word_tokens(text)]
        return any(all(operand.found_in(terms) != operand.negated for operand in group)
                   for group in self.groups)


def clean_query(text: str | None) -> str:
    """The query with control characters removed and spaces trimmed.

    Raises:
        QueryTooLong: Over :data:`MAX_QUERY_LENGTH` characters.
    """
    text = _CONTROL.sub(" ", text or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryTooLong(f"запрос длиннее {MAX_QUERY_LENGTH} символов")
    return text


def _or_at(text: str, i: int) -> bool:
    """``or`` at ``i`` is the OR operator: not part of a word, and an operand follows."""
    if text[i:i + 2].lower() != "or":
        return False
    rest = text[i + 2:]
    if not rest or rest[0] in "-_" or rest[0].isalnum():
        return False
    return bool(rest[1:].strip())


def parse_query(text: str | None) -> ParsedQuery:
    """Read a query the way PostgreSQL's ``websearch_to_tsquery`` does (see the module doc).

    Raises:
        QueryTooLong: Over :data:`MAX_QUERY_LENGTH` characters.
    """
    text = clean_query(text)
    groups: list[list[Operand]] = [[]]
    negated, waiting_operand, i, n = False, True, 0, len(text)
    operands = 0

    def push(value: str) -> None:
        nonlocal negated, operands
        terms = tuple(token.term for token in word_tokens(value))
        if any(terms) and operands < MAX_OPERANDS:
            groups[-1].append(Operand(terms, negated))
            operands += 1
        negated = False

    while i < n:
        char = text[i]
        if waiting_operand:
            if char == "-":
                negated, i = not negated, i + 1
            elif char == '"':
                end = text.find('"', i + 1)
                end = n if end < 0 else end
                push(text[i + 1:end])
                i, waiting_operand = end + 1, False
            elif char in _OPERATOR_CHARS or char.isspace():
                i += 1
            else:
                end = i
                while end < n and not (text[end].isspace() or text[end] in _OPERATOR_CHARS
                                       or text[end] == '"'):
                    end += 1
                push(text[i:end])
                i, waiting_operand = end, False
        elif char.isspace():
            i += 1
        elif char != '"' and _or_at(text, i):
            groups.append([])
            i, waiting_operand = i + 2, True
        else:  # an implicit AND; the character starts the next operand
            waiting_operand = True
    return ParsedQuery(text, tuple(tuple(group) for group in groups if group))


# --- filters and results ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What narrows a search; ``None`` (or empty) means any."""

    topic: str | None = None
    department: str | None = None
    territory: str | None = None
    channel: str | None = None
    status: str | None = None  # a key of STATUSES
    date_from: date | None = None
    date_to: date | None = None  # inclusive

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(getattr(self, f.name) not in (None, "") for f in dataclasses.fields(self))


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One appeal found, as the result list shows it."""

    appeal_id: int
    created_at: datetime
    channel: str
    territory: str | None
    topic: str | None
    department: str | None
    decision: str | None
    review_status: str | None
    text: str
    snippet: list[tuple[str, bool]]  # (text, highlighted)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of results.

    ``total`` counts every match; ``hidden`` the hits left off this page because they matched
    only through masked personal data.
    """

    query: ParsedQuery
    total: int
    hits: list[SearchHit]
    offset: int
    limit: int
    hidden: int = 0
    notes: list[str] = field(default_factory=list)


def _latest_decision_id() -> Any:
    later = aliased(RoutingDecisionRow)
    return (sa.select(sa.func.max(later.id)).where(later.appeal_id == AppealRow.id)
            .correlate(AppealRow).scalar_subquery())


def _topic_condition(value: str) -> Any:
    label = aliased(HumanLabelRow)

    def human(*conditions: Any) -> Any:
        return sa.exists().where(label.appeal_id == AppealRow.id, label.label == TOPIC_LABEL,
                                 *conditions)

    later = aliased(PredictionRow)
    latest_prediction = (sa.select(sa.func.max(later.id))
                         .where(later.appeal_id == AppealRow.id, later.label == TOPIC_LABEL)
                         .correlate(AppealRow).scalar_subquery())
    predicted = sa.exists().where(PredictionRow.id == latest_prediction,
                                  PredictionRow.value == value)
    # A person's correction beats the source's label, which beats the model's prediction.
    return sa.or_(human(label.origin == "correction", label.value == value),
                  sa.and_(~human(label.origin == "correction"),
                          human(label.origin == "source", label.value == value)),
                  sa.and_(~human(), predicted))


def _filter_conditions(filters: SearchFilters) -> list[Any]:
    conditions: list[Any] = []
    if filters.territory:
        conditions.append(AppealRow.territory == filters.territory)
    if filters.channel:
        conditions.append(AppealRow.channel == filters.channel)
    if filters.date_from:
        conditions.append(AppealRow.created_at >= datetime.combine(filters.date_from, time()))
    if filters.date_to:
        conditions.append(AppealRow.created_at < datetime.combine(
            filters.date_to + timedelta(days=1), time()))
    if filters.topic:
        conditions.append(_topic_condition(filters.topic))
    if filters.department:
        conditions.append(sa.exists().where(RoutingDecisionRow.id == _latest_decision_id(),
                                            RoutingDecisionRow.department == filters.department))
    if filters.status in ("open", "resolved"):
        conditions.append(sa.exists().where(ReviewItemRow.appeal_id == AppealRow.id,
                                            ReviewItemRow.status == filters.status))
    elif filters.status == "auto":
        conditions.append(sa.exists().where(RoutingDecisionRow.id == _latest_decision_id(),
                                            RoutingDecisionRow.decision == "auto"))
    return conditions


def _sqlite_condition(query: ParsedQuery) -> Any:
    groups = []
    for group in query.groups:
        parts = []
        for operand in group:
            found = AppealRow.id.in_(fts_match(operand.fts5()))
            parts.append(~found if operand.negated else found)
        groups.append(sa.and_(*parts))
    return sa.or_(*groups)


def _sqlite_rank(query: ParsedQuery) -> Any:
    """bm25 of the query's wanted words and phrases (lower is better), or None."""
    wanted = [operand.fts5() for group in query.groups for operand in group if not operand.negated]
    if not wanted:
        return None
    return (sa.select(sa.literal_column("rowid").label("appeal_id"),
                      sa.literal_column(f"bm25({FTS_TABLE})").label("score"))
            .select_from(sa.table(FTS_TABLE))
            .where(sa.literal_column(FTS_TABLE).op("MATCH")(
                sa.bindparam(None, " OR ".join(wanted), type_=sa.String())))
            .subquery("rank"))


def search_appeals(store: Store, query: str | ParsedQuery | None,
                   filters: SearchFilters | None = None, *, offset: int = 0, limit: int = 20,
                   order: str = "relevance", masked: bool = False) -> SearchPage:
    """Appeals matching ``query`` and ``filters``, a page at a time.

    Args:
        store: The appeal store.
        query: The user's query (see the module doc); blank lists every appeal.
        filters: Topic, department, territory, channel, status and dates.
        offset: Skip this many matches.
        limit: At most this many hits (capped at :data:`MAX_PAGE_SIZE`).
        order: ``relevance`` (best first, newest on ties) or ``newest``.
        masked: Texts and snippets with personal data masked; hits that match only through
            masked words are left out (counted in ``hidden``).

    Raises:
        QueryTooLong: The query is over :data:`MAX_QUERY_LENGTH` characters.
    """
    parsed = query if isinstance(query, ParsedQuery) else parse_query(query)
    filters = filters or SearchFilters()
    offset = max(0, min(int(offset), MAX_OFFSET))
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    if parsed.text and parsed.empty:
        return SearchPage(parsed, 0, [], offset, limit,
                          notes=["В запросе нет слов для поиска (только служебные слова и знаки)."])
    dialect = store.engine.dialect.name
    if dialect == "sqlite" and not parsed.empty:
        with store.engine.begin() as connection:
            index_missing(connection)
    conditions = _filter_conditions(filters)
    rank: Any = None
    statement = sa.select(AppealRow.id, AppealRow.created_at, AppealRow.channel,
                          AppealRow.territory, AppealRow.text)
    if not parsed.empty:
        if dialect == "postgresql":
            conditions.append(pg_document(AppealRow.text).op("@@")(pg_query(parsed.text)))
            if order == "relevance":
                rank = sa.func.ts_rank_cd(pg_document(AppealRow.text),
                                          pg_query(parsed.text)).desc()
        else:
            conditions.append(_sqlite_condition(parsed))
            ranked = _sqlite_rank(parsed) if order == "relevance" else None
            if ranked is not None:
                statement = statement.outerjoin(ranked, ranked.c.appeal_id == AppealRow.id)
                rank = ranked.c.score.asc()
    statement = statement.where(*conditions)
    ordering = [AppealRow.created_at.desc(), AppealRow.id.desc()]
    if rank is not None:
        ordering.insert(0, rank)
    with store.session() as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(AppealRow.id).where(*conditions).subquery())) or 0
        rows = session.execute(statement.order_by(*ordering).offset(offset).limit(limit)).all()
        details = _details(session, [row.id for row in rows])
    texts = [row.text for row in rows]
    hidden = 0
    if masked:
        texts = mask_many(texts)
        keep = [parsed.empty or parsed.matches(text) for text in texts]
        hidden = keep.count(False)
        rows = [row for row, ok in zip(rows, keep, strict=True) if ok]
        texts = [text for text, ok in zip(texts, keep, strict=True) if ok]
    highlight = parsed.highlight
    hits = [SearchHit(row.id, row.created_at, row.channel, row.territory,
                      *details.get(row.id, (None, None, None, None)), text,
                      snippet(text, highlight))
            for row, text in zip(rows, texts, strict=True)]
    return SearchPage(parsed, total, hits, offset, limit, hidden)


def _details(session: Any, ids: list[int]) -> dict[int, tuple[Any, Any, Any, Any]]:
    """Per appeal: (topic, department, decision, review status)."""
    if not ids:
        return {}
    topics: dict[int, dict[str, str]] = {}
    for row in session.execute(sa.select(HumanLabelRow.appeal_id, HumanLabelRow.origin,
                                         HumanLabelRow.value)
                               .where(HumanLabelRow.appeal_id.in_(ids),
                                      HumanLabelRow.label == TOPIC_LABEL)):
        topics.setdefault(row.appeal_id, {})[row.origin] = row.value
    for row in session.execute(sa.select(PredictionRow.appeal_id, PredictionRow.value)
                               .where(PredictionRow.appeal_id.in_(ids),
                                      PredictionRow.label == TOPIC_LABEL)
                               .order_by(PredictionRow.id)):
        topics.setdefault(row.appeal_id, {})["prediction"] = row.value
    decisions: dict[int, tuple[str | None, str]] = {}
    for row in session.execute(sa.select(RoutingDecisionRow.appeal_id,
                                         RoutingDecisionRow.department,
                                         RoutingDecisionRow.decision)
                               .where(RoutingDecisionRow.appeal_id.in_(ids))
                               .order_by(RoutingDecisionRow.id)):
        decisions[row.appeal_id] = (row.department, row.decision)
    statuses = dict(session.execute(sa.select(ReviewItemRow.appeal_id, ReviewItemRow.status)
                                    .where(ReviewItemRow.appeal_id.in_(ids))).all())
    out = {}
    for appeal_id in ids:
        known = topics.get(appeal_id, {})
        topic = known.get("correction") or known.get("source") or known.get("prediction")
        department, decision = decisions.get(appeal_id, (None, None))
        out[appeal_id] = (topic, department, decision, statuses.get(appeal_id))
    return out


def snippet(text: str, terms: Iterable[str], *, before: int = 8, words: int = 40,
            max_chars: int = 400) -> list[tuple[str, bool]]:
    """A piece of ``text`` around the first word whose term is in ``terms``.

    Returned as segments ``(text, highlighted)``; every word of the piece with such a term is
    highlighted.
    """
    wanted = frozenset(terms)
    tokens = list(word_tokens(text or ""))
    if not tokens:
        return [(text[:max_chars], False)] if text else []
    first = next((i for i, token in enumerate(tokens) if token.term in wanted), 0)
    start_token = max(0, first - before)
    end_token = min(len(tokens), start_token + words)
    start = 0 if start_token == 0 else tokens[start_token].start
    end = len(text) if end_token == len(tokens) else tokens[end_token - 1].end
    end = min(end, start + max_chars)
    segments: list[tuple[str, bool]] = [("… ", False)] if start > 0 else []
    cursor = start
    for token in tokens[start_token:end_token]:
        if token.end > end:
            break
        if token.term in wanted:
            if token.start > cursor:
                segments.append((text[cursor:token.start], False))
            segments.append((text[token.start:token.end], True))
            cursor = token.end
    if end > cursor:
        segments.append((text[cursor:end], False))
    if end < len(text):
        segments.append((" …", False))
    return segments


def search_appeals_as(store: Store, query: str | ParsedQuery | None,
                      filters: SearchFilters | None = None, *, actor: str, role: object,
                      via: str, **options: Any) -> SearchPage:
    """:func:`search_appeals` as ``role`` may see it: raw pages audited, others masked.

    A raw page writes one ``appeal.read`` row per appeal on it (the texts are shown).
    """
    raw = sees_raw(role)
    page = search_appeals(store, query, filters, masked=not raw, **options)
    if raw:
        record_reads(store, [hit.appeal_id for hit in page.hits], actor=actor, via=via,
                     fields=("text",))
    return page


# Filter values per engine, for a while: four DISTINCT scans per page would cost more than the
# search itself on a large store.
_OPTIONS_TTL = 30.0
_options_cache: weakref.WeakKeyDictionary[sa.Engine, tuple[float, dict[str, list[str]]]] = (
    weakref.WeakKeyDictionary())


def filter_options(store: Store, *, max_age: float = _OPTIONS_TTL) -> dict[str, list[str]]:
    """The values the filters offer: topics, departments, territories and channels in use.

    Read again when the cached values are older than ``max_age`` seconds.
    """
    cached = _options_cache.get(store.engine)
    if cached is not None and monotonic() - cached[0] < max_age:
        return cached[1]
    options = _read_options(store)
    _options_cache[store.engine] = (monotonic(), options)
    return options


def _read_options(store: Store) -> dict[str, list[str]]:
    def distinct(column: Any, *conditions: Any) -> list[str]:
        return [value for value in session.scalars(
            sa.select(column).where(column.is_not(None), *conditions).distinct()
            .order_by(column).limit(_OPTIONS_LIMIT)) if value]

    with store.session() as session:
        topics = set(distinct(HumanLabelRow.value, HumanLabelRow.label == TOPIC_LABEL))
        topics.update(distinct(PredictionRow.value, PredictionRow.label == TOPIC_LABEL))
        return {"topic": sorted(topics)[:_OPTIONS_LIMIT],
                "department": distinct(RoutingDecisionRow.department),
                "territory": distinct(AppealRow.territory),
                "channel": distinct(AppealRow.channel)}


# --- one appeal's history -----------------------------------------------------------------

_HISTORY_ACTIONS = {"appeal.correct", "appeal.read"}  # shown from their own rows, or counted


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """Something that happened to an appeal."""

    at: datetime
    who: str
    what: str
    details: str = ""


def appeal_history(store: Store, appeal_id: int, *, masked: bool) -> tuple[list[HistoryEvent],
                                                                           int]:
    """The appeal's events, oldest first, and how many times its raw data was read.

    Events: arrival, every routing decision, the review queue's entry and resolution, every
    correction and other audit entries about the appeal. ``masked`` masks the free text people
    wrote (correction comments, a person's routing reason).
    """
    def free(text: str | None) -> str:
        text = text or ""
        return mask_personal_data(text) if masked and text else text

    events: list[HistoryEvent] = []
    with store.session() as session:
        appeal = session.get(AppealRow, appeal_id)
        if appeal is None:
            return [], 0
        events.append(HistoryEvent(appeal.recorded_at, appeal.source, "поступило",
                                   f"канал {appeal.channel}"))
        for d in session.scalars(sa.select(RoutingDecisionRow).where(
                RoutingDecisionRow.appeal_id == appeal_id).order_by(RoutingDecisionRow.id)):
            human = d.decided_by.startswith("human:")
            reason = free(d.reason) if human else d.reason
            events.append(HistoryEvent(
                d.recorded_at, d.decided_by, f"маршрутизация: {d.decision}",
                " · ".join(part for part in (d.department or "", d.priority or "", reason)
                           if part)))
        item = session.scalar(sa.select(ReviewItemRow).where(ReviewItemRow.appeal_id == appeal_id))
        if item is not None:
            events.append(HistoryEvent(item.enqueued_at, "система",
                                       "в очередь на проверку" if item.audit else "в очередь",
                                       item.reason))
            if item.resolved_at is not None:
                events.append(HistoryEvent(item.resolved_at, item.resolved_by or "", "решено",
                                           item.outcome or ""))
        for c in session.scalars(sa.select(CorrectionRow).where(
                CorrectionRow.appeal_id == appeal_id).order_by(CorrectionRow.id)):
            events.append(HistoryEvent(
                c.recorded_at, c.author, f"исправлено: {c.label}",
                f"{c.old_value or '—'} → {c.new_value}"
                + (f" · {free(c.comment)}" if c.comment else "")))
        reads = 0
        for a in session.scalars(sa.select(AuditRow).where(
                AuditRow.entity == "appeal", AuditRow.entity_id == str(appeal_id))
                .order_by(AuditRow.id)):
            if a.action == "appeal.read":
                reads += 1
            elif a.action not in _HISTORY_ACTIONS:
                events.append(HistoryEvent(a.at, a.actor, a.action,
                                           ", ".join(f"{k}: {v}" for k, v in
                                                     sorted((a.details or {}).items())
                                                     if k != "comment")))
    events.sort(key=lambda event: event.at)
    return events, reads
