"""Root-cause cards: what a cluster of appeals is about, where, since when, and whether it grows.

A card is titled by the problem and its scope, as a head of district reads it: the cluster's
dominant fine topic when it holds a clear share (≥ 50 %), else its top keywords phrased as Russian
(«график уборки», «входная дверь») and checked against the cluster's own texts; then the number of
districts and places («… — 18 районов»). The responsible body is named at the level that owns
the problem: the department when it has a majority, else its department group (the 18 district
housing agencies are one body for a city-wide problem), else «несколько ведомств» with the top
ones.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from mcu_nlp.root_causes.places import places_of

if TYPE_CHECKING:
    from mcu_nlp.root_causes.evidence import Evidence
    from mcu_nlp.root_causes.follow_up import FollowUp

OUTLIER = -1
_GROWTH = 1.25  # share ratio (second half / first half) that counts as a change
_SIGNIFICANCE = 0.05
# appeals per cluster whose place is searched in the text (natasha, ~0.05 s each): located
# appeals count first and address-less ones only top the cluster up to this number
_MAX_TEXT_PLACES = 30
TITLE_TOPIC_SHARE = 0.5  # a fine topic names the card from this share of its appeals
MAJORITY = 0.5  # a department (or group) owns the problem above this share
_TOPIC_TITLE_CHARS = 80
_N_TOPICS = 5


@dataclass(slots=True)
class Trend:
    """Whether a root cause grows: its share of all appeals in the second vs the first half."""

    direction: str  # "growing" | "stable" | "falling"
    first_half: int
    second_half: int
    share_ratio: float
    p_value: float

    @property
    def label_ru(self) -> str:
        """The direction in Russian."""
        return {"growing": "растёт", "falling": "снижается"}.get(self.direction, "стабильно")


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun after ``n``: 1 район, 2 района, 5 районов, 21 район."""
    n = abs(int(n))
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def count_ru(n: int, one: str, few: str, many: str) -> str:
    """``n`` with its noun, thousands separated by a narrow space: «1 204 места»."""
    return f"{int(n):,}".replace(",", "\u202f") + " " + plural(n, one, few, many)


@dataclass(slots=True)
class Scope:
    """How wide a root cause is: districts (territories) and places (buildings) with appeals."""

    n_territories: int
    n_places: int
    territory: str | None = None  # the one territory, when there is only one

    @property
    def title(self) -> str:
        """The scope as a title ends: «18 районов», «Невский район, 12 мест», «40 мест», «»."""
        if not self.n_territories and not self.n_places:
            return ""
        places = count_ru(self.n_places, "место", "места", "мест")
        if self.n_territories >= 2:
            return count_ru(self.n_territories, "район", "района", "районов")
        if self.n_territories == 1 and self.territory:
            return f"{_district(self.territory)}, {places}"
        return places

    @property
    def label(self) -> str:
        """The full scope: «18 районов, 1 204 места»."""
        places = count_ru(self.n_places, "место", "места", "мест")
        if self.n_territories >= 2:
            return f"{count_ru(self.n_territories, 'район', 'района', 'районов')}, {places}"
        return self.title


def _district(name: str) -> str:
    # SPb districts come as adjectives («Невский»): name them as districts
    if "район" not in name.casefold() and name.endswith(("ский", "цкий", "ской", "вый", "ный")):
        return f"{name} район"
    return name


@dataclass(slots=True)
class Responsible:
    """Who owns a root cause: a department, a department group, or several bodies."""

    level: str  # "department" | "department_group" | "several" | "unknown"
    name: str | None
    share: float  # of the appeals with a known department
    members: list[tuple[str, float]] = field(default_factory=list)  # top bodies, with shares
    n_departments: int = 0  # departments of the cluster (within the group, for a group)

    @property
    def label(self) -> str:
        """The responsible body as a card shows it, with its share."""
        if self.level == "department":
            return f"{self.name} ({self.share:.0%})"
        if self.level == "department_group":
            bodies = count_ru(self.n_departments, "ведомство", "ведомства", "ведомств")
            return f"{self.name} ({self.share:.0%}; {bodies} группы)"
        if self.level == "several":
            top = "; ".join(f"{name} ({share:.0%})" for name, share in self.members[:3])
            return f"несколько ведомств: {top}"
        return "не определён"

    @property
    def owner(self) -> str:
        """The owner a roadmap stage gets."""
        if self.level in ("department", "department_group") and self.name:
            return self.name
        if self.level == "several" and self.members:
            return f"{self.members[0][0]} (координатор), совместно с другими ведомствами"
        return "Ответственный не определён"


@dataclass(slots=True)
class RootCause:
    """One recurring problem, as an analyst (and a head of district) reads it."""

    id: int
    title: str
    keywords: list[str]
    size: int
    share: float
    trend: Trend
    first_seen: datetime
    last_seen: datetime
    weekly_counts: dict[str, int]
    top_places: list[tuple[str, int]]
    dominant_topic: str | None
    topic_share: float
    department: str | None
    department_share: float
    territories: list[tuple[str, int]] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    # added for heads of district: what the title rests on, the scope, who owns it, where
    title_source: str = "keywords"  # "topic" | "keywords"
    topics: list[tuple[str, int]] = field(default_factory=list)
    scope: Scope = field(default_factory=lambda: Scope(0, 0))
    responsible: Responsible = field(default_factory=lambda: Responsible("unknown", None, 0.0))
    department_group: str | None = None
    department_group_share: float = 0.0
    breakdown: list[dict[str, Any]] = field(default_factory=list)
    place_keys: list[str] = field(default_factory=list, repr=False)  # buildings, for follow-ups
    follow_up: FollowUp | None = None
    # evidence from the answers (issue #15): recurrence, outcome mix, failed fixes, plans, refusals
    evidence: Evidence | None = None
    rank: int | None = None  # by recurrence (see mcu_nlp.root_causes.evidence.RANK_BASIS)

    @property
    def description(self) -> str:
        """One Russian sentence: volume, trend, scope, main place, who is responsible, result."""
        trend = self.trend
        parts = [f"{count_ru(self.size, 'сообщение', 'сообщения', 'сообщений')} "
                 f"({self.share:.1%}), {trend.label_ru} "
                 f"({trend.first_half} → {trend.second_half} по половинам периода)"]
        if self.scope.n_places or self.scope.n_territories:
            parts.append(f"охват: {self.scope.label}")
        if self.top_places:
            parts.append(f"чаще всего: {self.top_places[0][0]}")
        if self.responsible.level != "unknown":
            parts.append(f"ответственный: {self.responsible.label}")
        elif self.department:
            parts.append(f"ответственный: {self.department}")
        text = "; ".join(parts) + "."
        if self.follow_up is not None:
            text += " Результат: " + self.follow_up.summary_ru()
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the earlier fields unchanged, the new ones added)."""
        skip = {"trend", "scope", "responsible", "place_keys", "follow_up", "evidence"}
        # no asdict of the whole card: it would deep-copy the follow-up, which has its own to_dict
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name not in skip}
        data["trend"] = asdict(self.trend)
        data["description"] = self.description
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        data["trend"]["label_ru"] = self.trend.label_ru
        data["top_places"] = [{"place": p, "count": c} for p, c in self.top_places]
        data["territories"] = [{"territory": t, "count": c} for t, c in self.territories]
        data["topics"] = [{"topic": t, "count": c} for t, c in self.topics]
        data["scope"] = {"n_territories": self.scope.n_territories,
                         "n_places": self.scope.n_places, "territory": self.scope.territory,
                         "label": self.scope.label}
        data["responsible"] = {
            "level": self.responsible.level, "name": self.responsible.name,
            "share": self.responsible.share, "n_departments": self.responsible.n_departments,
            "members": [{"name": n, "share": s} for n, s in self.responsible.members],
            "label": self.responsible.label}
        data["n_place_keys"] = len(self.place_keys)
        data["follow_up"] = self.follow_up.to_dict() if self.follow_up is not None else None
        evidence = self.evidence.to_dict() if self.evidence is not None else {}
        for name in ("recurrence", "outcomes", "fixes_not_holding", "planned_not_arrived",
                     "out_of_competence", "answer_examples"):
            data[name] = copy.deepcopy(evidence.get(name))
        if self.rank is not None:
            from mcu_nlp.root_causes.evidence import RANK_BASIS

            data["rank_basis"] = RANK_BASIS
        else:
            data["rank_basis"] = None
        return data


def _masker() -> Callable[[str], str]:
    # Imported on first use: the masking module loads the morphology dictionaries.
    from mcu_nlp.text.masking import mask_personal_data

    return mask_personal_data


def title_of(words: Sequence[str], n: int = 3) -> str:
    """A readable title from topic words: leading words and phrases that add a new word."""
    chosen: list[str] = []
    seen: set[str] = set()
    for word in words:
        if len(chosen) == n:
            break
        tokens = word.split()
        # «график уборка» after «уборка, график», or «убрать убрать», adds nothing
        if not tokens or set(tokens) <= seen or len(set(tokens)) < len(tokens):
            continue
        chosen.append(word)
        seen.update(tokens)
    title = ", ".join(chosen) or "без ключевых слов"
    return title[:1].upper() + title[1:]


def short_topic(topic: str, max_chars: int = _TOPIC_TITLE_CHARS) -> str:
    """A fine topic short enough for a title: no parentheses, cut at a comma or a word.

    «Неубранный снег на автомобильных дорогах и прилегающих к ним тротуарах, спусках к воде, …»
    → «Неубранный снег на автомобильных дорогах и прилегающих к ним тротуарах».
    """
    text = " ".join(re.sub(r"\s*\([^()]*\)", "", str(topic)).split()) or " ".join(
        str(topic).split())
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    comma = head.rfind(",")
    if comma >= max_chars // 3:
        return head[:comma].rstrip()
    space = head.rfind(" ")
    return head[:space if space > 0 else max_chars].rstrip(" ,/") + "…"


def _parse(word: str) -> Any:
    from mcu_nlp.text.lemmas import morph_analyzer

    parses = morph_analyzer().parse(word)
    return next((p for p in parses if p.normal_form == word), parses[0])


_ADJECTIVE = ("ADJF", "PRTF")


@lru_cache(maxsize=4096)
def phrase_keyword(keyword: str) -> str | None:
    """A topic keyword (space-separated lemmas) as Russian words agree, or ``None``.

    An adjective agrees with the noun after it («входной дверь» → «входная дверь»), a noun after a
    noun goes to the genitive («график уборка» → «график уборки»), an adjective after a noun is
    read as a noun in the genitive («дверь парадный» → «дверь парадной»). A single adjective or
    verb names no problem, nor a phrase without a noun: ``None``.
    """
    tokens = keyword.split()
    if not tokens:
        return None
    parsed = [_parse(t) for t in tokens]
    pos = [p.tag.POS for p in parsed]
    if len(tokens) == 1:
        return None if pos[0] in (*_ADJECTIVE, "INFN", "VERB", "ADVB", "PRTS", "ADJS") \
            else parsed[0].normal_form
    if "NOUN" not in pos or (pos[-1] in _ADJECTIVE and pos[-2] != "NOUN"):
        return None  # «демонтировать рекламный»: no thing named
    words = list(tokens)
    for i, word in enumerate(parsed):
        inflected = None
        if pos[i] in _ADJECTIVE and i + 1 < len(parsed) and pos[i + 1] == "NOUN":
            noun = parsed[i + 1].tag
            number = noun.number or "sing"
            grammemes = {"nomn", number} | ({noun.gender} if number == "sing" and noun.gender
                                            in ("masc", "femn", "neut") else set())
            inflected = word.inflect(grammemes)
        elif pos[i] == "NOUN" and i > 0 and pos[i - 1] == "NOUN":
            inflected = word.inflect({"gent"})
        elif pos[i] in _ADJECTIVE and i > 0 and pos[i - 1] == "NOUN" \
                and (i + 1 == len(parsed) or pos[i + 1] != "NOUN"):
            inflected = word.inflect({"gent", "femn", "sing"})
        if inflected is not None:
            words[i] = inflected.word
    return " ".join(words)


def _stem(word: str) -> str:
    word = word.replace("ё", "е")
    return word[:max(3, min(5, len(word) - 1))]


def _plain(text: str) -> str:
    """Lower-case words of letters and digits between single spaces, «ё» as «е», padded."""
    return " " + " ".join(_NON_WORD.sub(" ", text.casefold().replace("ё", "е")).split()) + " "


_NON_WORD = re.compile(r"[^\w-]+")


def keyword_title(words: Sequence[str], texts: Sequence[str] | None = None, n: int = 3,
                  scan: int = 12, exclude: str | None = None) -> str:
    """A title from topic keywords phrased as Russian, each found in the cluster's own texts.

    A phrase that contains an earlier single word takes its place («график» → «график уборки»),
    words of an already used stem are skipped («графика» after «график»), and a phrasing the
    texts never say («дорога снега») gives way to its nouns. Falls back to :func:`title_of`
    (unless ``exclude``).

    Args:
        words: Keywords, best first (BERTopic's c-TF-IDF words: lemmas and lemma bigrams).
        texts: The cluster's texts, to check the phrases against (``None``: no check).
        n: Phrases in the title.
        scan: Keywords looked at.
        exclude: A title the phrases add to: phrases of its stems only are skipped, and nothing
            found gives ``""``.
    """
    from mcu_nlp.text.lemmas import lemma_of

    corpus = _plain(" \n ".join(texts)) if texts is not None else None
    chosen: list[tuple[set[str], str]] = []
    excluded = {_stem(lemma_of(t)) for t in _plain(exclude).split()} if exclude else set()

    def candidates() -> Iterator[tuple[list[str], str | None]]:
        for word in list(words)[:scan]:
            tokens = word.split()
            if not tokens or len(set(tokens)) < len(tokens) or "xxx" in word.casefold():
                continue  # «граффити граффити»; words of redacted names
            phrase = phrase_keyword(word)
            # the keywords are the cluster's own lemmas: only a phrasing needs its texts
            if phrase is not None and (len(tokens) == 1 or corpus is None
                                       or _plain(phrase) in corpus):
                yield tokens, phrase
            elif len(tokens) > 1:  # «территория мусор» is said «мусор на территории»: the nouns
                for token in tokens:
                    yield [token], phrase_keyword(token)

    for tokens, phrase in candidates():
        stems = {_stem(t) for t in tokens}
        if phrase is None or stems <= excluded.union(*(s for s, _ in chosen)):
            continue
        covered = [i for i, (s, _) in enumerate(chosen) if s < stems]
        if covered:
            chosen[covered[0]] = (stems, phrase)
            chosen = [c for i, c in enumerate(chosen) if i not in covered[1:]]
        elif len(chosen) < n:
            chosen.append((stems, phrase))
    if not chosen:
        return "" if exclude else title_of(words, n)
    title = ", ".join(phrase for _, phrase in chosen)
    return title[:1].upper() + title[1:]


def responsible_of(departments: pd.Series | None, groups: pd.Series | None = None,
                   n_members: int = 3) -> Responsible:
    """The body that owns a cluster's appeals, at the level that holds a majority.

    The dominant department when it has more than half of the appeals with a department, else the
    dominant department group when it has more than half, else «несколько ведомств» with the top
    groups (or departments when there are no groups).

    Args:
        departments: The cluster's departments.
        groups: Their department groups, row-aligned (``None``: none known).
        n_members: Top bodies kept with their shares.
    """
    if departments is None or departments.dropna().empty:
        return Responsible("unknown", None, 0.0)
    known = departments.notna().to_numpy()
    counts = departments[known].astype(str).value_counts()
    total = int(counts.sum())

    def top(values: pd.Series) -> list[tuple[str, float]]:
        shares = values.value_counts() / total
        return [(str(k), round(float(v), 3)) for k, v in shares.head(n_members).items()]

    share = float(counts.iloc[0] / total)
    if share > MAJORITY:
        return Responsible("department", str(counts.index[0]), round(share, 3),
                           top(departments[known].astype(str)), 1)
    if groups is not None:
        group_values = groups[known].astype("string").fillna(departments[known].astype("string"))
        group_counts = group_values.value_counts()
        group_share = float(group_counts.iloc[0] / total)
        if group_share > MAJORITY:
            name = str(group_counts.index[0])
            inside = departments[known][(group_values == name).to_numpy()]
            return Responsible("department_group", name, round(group_share, 3),
                               top(inside.astype(str)), int(inside.nunique()))
        return Responsible("several", None, round(group_share, 3), top(group_values),
                           int(counts.size))
    return Responsible("several", None, round(share, 3), top(departments[known].astype(str)),
                       int(counts.size))


def _breakdown(territories: pd.Series | None, places: Sequence[str | None],
               place_territories: Sequence[object] | None, n_territories: int,
               n_places: int) -> list[dict[str, Any]]:
    """Top territories with their appeals and, within each, the top places."""
    if territories is None:
        return []
    by_territory: dict[str, Counter[str]] = {}
    for place, territory in zip(places, place_territories or [], strict=False):
        if place and isinstance(territory, str):
            by_territory.setdefault(territory, Counter())[place] += 1
    return [{"territory": name, "count": count,
             "places": [{"place": p, "count": c}
                        for p, c in by_territory.get(name, Counter()).most_common(n_places)]}
            for name, count in _top(territories, n_territories)]


def trend_of(times: pd.Series, all_times: pd.Series) -> Trend:
    """Compare the cluster's share of appeals in the second half of the period with the first."""
    start, end = all_times.min(), all_times.max()
    middle = start + (end - start) / 2
    c1, c2 = int((times < middle).sum()), int((times >= middle).sum())
    n1, n2 = int((all_times < middle).sum()), int((all_times >= middle).sum())
    if min(n1, n2) == 0 or c1 + c2 == 0:
        return Trend("stable", c1, c2, float("nan"), 1.0)
    ratio = ((c2 + 0.5) / n2) / ((c1 + 0.5) / n1)
    table = np.array([[c1, n1 - c1], [c2, n2 - c2]])
    try:
        p_value = float(chi2_contingency(table)[1]) if c1 + c2 >= 5 else 1.0
    except ValueError:  # a zero margin: no evidence either way
        p_value = 1.0
    direction = "stable"
    if p_value < _SIGNIFICANCE and ratio >= _GROWTH:
        direction = "growing"
    elif p_value < _SIGNIFICANCE and ratio <= 1 / _GROWTH:
        direction = "falling"
    return Trend(direction, c1, c2, round(float(ratio), 3), round(p_value, 6))


def _top(values: pd.Series, n: int) -> list[tuple[str, int]]:
    counts = values.dropna().astype(str).value_counts()
    return [(str(k), int(v)) for k, v in counts.head(n).items()]


def _dominant(values: pd.Series | None) -> tuple[str | None, float]:
    if values is None or values.dropna().empty:
        return None, 0.0
    counts = values.dropna().astype(str).value_counts()
    return str(counts.index[0]), round(float(counts.iloc[0] / len(values)), 3)


def representatives(texts: Sequence[str], vectors: np.ndarray, n: int = 5,
                    min_chars: int = 15, max_chars: int = 400) -> list[str]:
    """Distinct texts closest to the cluster centroid, preferring readable lengths."""
    centroid = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ centroid), kind="stable")
    chosen: list[str] = []
    seen: set[str] = set()
    for pass_readable in (True, False):
        for i in order:
            text = " ".join(str(texts[i]).split())
            key = text.lower()
            unreadable = pass_readable and not min_chars <= len(text) <= max_chars
            if key in seen or not text or unreadable:
                continue
            seen.add(key)
            chosen.append(text)
            if len(chosen) == n:
                return chosen
    return chosen


def build_cards(
    frame: pd.DataFrame,
    topics: np.ndarray,
    topic_words: Mapping[int, Sequence[tuple[str, float]]],
    embeddings: np.ndarray,
    *,
    text_column: str = "text",
    time_column: str = "created_at",
    topic_column: str | None = "topic",
    department_column: str | None = "department",
    department_group_column: str | None = "department_group",
    department_groups: Mapping[str, str] | None = None,
    address_column: str | None = "address",
    territory_column: str | None = "territory",
    latitude_column: str | None = "latitude",
    longitude_column: str | None = "longitude",
    n_examples: int = 5,
    n_places: int = 5,
    random_state: int = 0,
) -> list[RootCause]:
    """One :class:`RootCause` per cluster (outliers excluded), largest first.

    Args:
        frame: The clustered appeals (row-aligned with ``topics`` and ``embeddings``).
        topics: Cluster of each appeal (``-1``: outlier).
        topic_words: Cluster → (word, weight) list, as BERTopic's ``get_topics()``.
        embeddings: Unit sentence vectors of the appeals.
        text_column: Text column.
        time_column: Filing-time column.
        topic_column: Topic label column (optional, as are the other columns; absent ones are
            skipped).
        department_column: Responsible department column.
        department_group_column: Department group column (the level above departments).
        department_groups: Department → group, for departments the group column lacks (or when
            the frame has none), e.g. the SPb file's ``departments.csv``.
        address_column: Address column.
        territory_column: District or municipality column.
        latitude_column: Latitude column (places without an address).
        longitude_column: Longitude column.
        n_examples: Representative messages per card (masked).
        n_places: Places and territories per card.
        random_state: Seed of the sample sent to entity extraction.

    Returns:
        The cards, by size.
    """
    from mcu_nlp.root_causes.follow_up import place_keys

    def column(name: str | None) -> pd.Series | None:
        return frame[name] if name is not None and name in frame.columns else None

    topics = np.asarray(topics)
    times = pd.to_datetime(frame[time_column], errors="coerce")
    texts = frame[text_column].fillna("").astype(str).to_numpy()
    mask = _masker()
    rng = np.random.default_rng(random_state)
    total = int(len(frame))
    topic_labels, departments = column(topic_column), column(department_column)
    groups = column(department_group_column)
    if departments is not None and department_groups:
        mapped = departments.map(department_groups)
        groups = mapped if groups is None else groups.fillna(mapped)
    territory = column(territory_column)
    buildings = place_keys(frame, address_col=address_column, lat_col=latitude_column,
                           lon_col=longitude_column)
    addresses = column(address_column)
    cards, subjects = [], []
    for cluster in sorted(set(topics.tolist()) - {OUTLIER}):
        rows = np.flatnonzero(topics == cluster)
        cluster_times = times.iloc[rows].dropna()
        if cluster_times.empty:
            continue
        words = [w for w, _ in topic_words.get(cluster, []) if w]
        weekly = cluster_times.dt.to_period("W-SUN").dt.start_time.value_counts().sort_index()
        weeks = pd.date_range(times.min().to_period("W-SUN").start_time,
                              times.max().to_period("W-SUN").start_time, freq="7D")
        weekly = weekly.reindex(weeks, fill_value=0)
        address_list = addresses.iloc[rows].tolist() if addresses is not None else None
        place_rows = np.arange(len(rows))
        if address_list is not None:
            without = np.flatnonzero(pd.isna(pd.Series(address_list)).to_numpy())
            # the located appeals are already a sample of where the cluster happens (on the SPb
            # file the top place stays the same for 99 % of clusters without the texts), and
            # the text search cost half a minute a run when each cluster sent 30 texts
            located = len(rows) - len(without)
            extra = rng.permutation(without)[max(0, _MAX_TEXT_PLACES - located):]
            place_rows = np.setdiff1d(place_rows, extra)
        elif len(rows) > _MAX_TEXT_PLACES:
            place_rows = np.sort(rng.choice(len(rows), _MAX_TEXT_PLACES, replace=False))
        places = places_of([texts[rows[i]] for i in place_rows],
                           [address_list[i] for i in place_rows] if address_list else None)
        cluster_topics = topic_labels.iloc[rows] if topic_labels is not None else None
        topic_name, topic_share = _dominant(cluster_topics)
        department, department_share = _dominant(
            departments.iloc[rows] if departments is not None else None)
        group, group_share = _dominant(groups.iloc[rows] if groups is not None else None)
        responsible = responsible_of(
            departments.iloc[rows] if departments is not None else None,
            groups.iloc[rows] if groups is not None else None)
        cluster_territories = territory.iloc[rows] if territory is not None else None
        keys = buildings.iloc[rows].dropna()
        territory_values = (cluster_territories.dropna().astype(str).unique()
                            if cluster_territories is not None else [])
        scope = Scope(n_territories=len(territory_values), n_places=int(keys.nunique()),
                      territory=str(territory_values[0]) if len(territory_values) == 1 else None)
        detail = keyword_title(words, texts[rows])
        if topic_name is not None and topic_share >= TITLE_TOPIC_SHARE:
            subject, source = short_topic(topic_name), "topic"
        else:
            subject, source = detail, "keywords"
        subjects.append((subject, keyword_title(words, texts[rows], n=2, exclude=subject)
                         if source == "topic" else ""))
        cards.append(RootCause(
            id=int(cluster),
            title=f"{subject} — {scope.title}" if scope.title else subject,
            keywords=words,
            size=int(len(rows)),
            share=round(len(rows) / max(total, 1), 4),
            trend=trend_of(cluster_times, times.dropna()),
            first_seen=cluster_times.min().to_pydatetime(),
            last_seen=cluster_times.max().to_pydatetime(),
            weekly_counts={d.date().isoformat(): int(c) for d, c in weekly.items()},
            top_places=[(p, c) for p, c in Counter(p for p in places if p).most_common(n_places)],
            dominant_topic=topic_name, topic_share=topic_share,
            department=department, department_share=department_share,
            territories=_top(cluster_territories, n_places)
            if cluster_territories is not None else [],
            examples=[mask(t) for t in representatives(texts[rows], embeddings[rows], n_examples)],
            title_source=source,
            topics=_top(cluster_topics, _N_TOPICS) if cluster_topics is not None else [],
            scope=scope, responsible=responsible,
            department_group=group, department_group_share=group_share,
            breakdown=_breakdown(cluster_territories, places,
                                 cluster_territories.iloc[place_rows].tolist()
                                 if cluster_territories is not None else None,
                                 n_places, 3),
            place_keys=sorted(keys.astype(str).unique().tolist()),
        ))
    _distinguish(cards, subjects)
    cards.sort(key=lambda card: (-card.size, card.id))
    return cards


def _distinguish(cards: list[RootCause], subjects: list[tuple[str, str]]) -> None:
    """Smaller cards titled by the same fine topic as a larger one add their own keywords.

    «Неудовлетворительное состояние парадной — 18 районов» (the largest) and «Неудовлетворительное
    состояние парадной: чёрная лестница, плитка — 18 районов».
    """
    firsts: set[str] = set()
    for card, (subject, detail) in sorted(zip(cards, subjects, strict=True),
                                          key=lambda pair: (-pair[0].size, pair[0].id)):
        if card.title_source != "topic":
            continue
        if subject not in firsts:
            firsts.add(subject)
            continue
        if detail[1:2].islower():
            detail = detail[:1].lower() + detail[1:]
        scope = card.scope.title
        card.title = (f"{subject}: {detail}" if detail else subject) \
            + (f" — {scope}" if scope else "")
    titles: Counter[str] = Counter()
    for card in sorted(cards, key=lambda c: (-c.size, c.id)):
        titles[card.title] += 1
        if titles[card.title] > 1:  # nothing else tells them apart
            subject, dash, scope = card.title.partition(" — ")
            card.title = f"{subject} (группа № {card.id})" + (f" — {scope}" if dash else "")
