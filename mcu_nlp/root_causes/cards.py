"""Root-cause cards: what a cluster of appeals is about, where, since when, and whether it grows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from mcu_nlp.root_causes.places import places_of

OUTLIER = -1
_GROWTH = 1.25  # share ratio (second half / first half) that counts as a change
_SIGNIFICANCE = 0.05
# appeals per cluster whose place is searched in the text (natasha, ~0.05 s each): located
# appeals count first and address-less ones only top the cluster up to this number
_MAX_TEXT_PLACES = 30


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


@dataclass(slots=True)
class RootCause:
    """One recurring problem, as an analyst reads it."""

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

    @property
    def description(self) -> str:
        """One Russian sentence: volume, trend, main place and who is responsible."""
        trend = self.trend
        parts = [f"{self.size} сообщений ({self.share:.1%}), {trend.label_ru} "
                 f"({trend.first_half} → {trend.second_half} по половинам периода)"]
        if self.top_places:
            parts.append(f"чаще всего: {self.top_places[0][0]}")
        if self.department:
            parts.append(f"ответственный: {self.department}")
        return "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["description"] = self.description
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        data["trend"]["label_ru"] = self.trend.label_ru
        data["top_places"] = [{"place": p, "count": c} for p, c in self.top_places]
        data["territories"] = [{"territory": t, "count": c} for t, c in self.territories]
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
    address_column: str | None = "address",
    territory_column: str | None = "territory",
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
        topic_column: Topic label column (optional, as are the next three; absent ones are
            skipped).
        department_column: Responsible department column.
        address_column: Address column.
        territory_column: District or municipality column.
        n_examples: Representative messages per card (masked).
        n_places: Places and territories per card.
        random_state: Seed of the sample sent to entity extraction.

    Returns:
        The cards, by size.
    """
    def column(name: str | None) -> pd.Series | None:
        return frame[name] if name is not None and name in frame.columns else None

    topics = np.asarray(topics)
    times = pd.to_datetime(frame[time_column], errors="coerce")
    texts = frame[text_column].fillna("").astype(str).to_numpy()
    mask = _masker()
    rng = np.random.default_rng(random_state)
    total = int(len(frame))
    cards = []
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
        addresses = column(address_column)
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
        topic_labels, departments = column(topic_column), column(department_column)
        topic_name, topic_share = _dominant(
            topic_labels.iloc[rows] if topic_labels is not None else None)
        department, department_share = _dominant(
            departments.iloc[rows] if departments is not None else None)
        territory = column(territory_column)
        cards.append(RootCause(
            id=int(cluster),
            title=title_of(words),
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
            territories=_top(territory.iloc[rows], n_places) if territory is not None else [],
            examples=[mask(t) for t in representatives(texts[rows], embeddings[rows], n_examples)],
        ))
    cards.sort(key=lambda card: (-card.size, card.id))
    return cards
