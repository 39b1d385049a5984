"""What an incident looks like to an operator: size, time span, place, topic, one masked text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


@dataclass(slots=True)
class Incident:
    """Appeals merged as one problem."""

    id: int
    size: int
    first_seen: datetime
    last_seen: datetime
    appeal_ids: list[str]
    text: str
    topic: str | None = None
    address: str | None = None
    territory: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data


def summarize_incidents(
    frame: pd.DataFrame,
    labels: np.ndarray,
    *,
    min_size: int = 2,
    id_column: str = "id",
    text_column: str = "text",
    time_column: str = "created_at",
    topic_column: str | None = "topic",
    address_column: str | None = "address",
    territory_column: str | None = "territory",
    limit: int | None = None,
) -> list[Incident]:
    """Incidents of at least ``min_size`` appeals, largest first.

    The incident text is its longest message (usually the most specific), with personal data
    masked. ``limit`` keeps only the largest incidents.
    """
    from mcu_nlp.root_causes.cards import _masker

    mask = _masker()
    labels = np.asarray(labels)
    if len(labels) != len(frame):
        raise ValueError(f"{len(labels)} incident labels for {len(frame)} appeals")
    times = pd.to_datetime(frame[time_column], errors="coerce")
    ids = frame[id_column].astype(str).to_numpy() if id_column in frame.columns \
        else np.arange(len(frame)).astype(str)
    texts = frame[text_column].fillna("").astype(str).to_numpy()

    def first_value(name: str | None, rows: np.ndarray) -> str | None:
        if name is None or name not in frame.columns:
            return None
        values = frame[name].iloc[rows].dropna().astype(str)
        return str(values.value_counts().index[0]) if not values.empty else None

    sizes = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    incidents = []
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [rows for rows in np.split(order, bounds) if len(rows) >= max(min_size, 1)]
    # largest first; masking (NER) is the slow part, so only the ``limit`` kept are built
    groups.sort(key=lambda rows: (-len(rows), times.iloc[rows].min()))
    for rows in groups[:limit]:
        rows = rows[np.argsort(times.iloc[rows].to_numpy(), kind="stable")]
        longest = rows[int(np.argmax([len(texts[r]) for r in rows]))]
        incidents.append(Incident(
            id=int(labels[rows[0]]), size=int(sizes[labels[rows[0]]]),
            first_seen=times.iloc[rows].min().to_pydatetime(),
            last_seen=times.iloc[rows].max().to_pydatetime(),
            appeal_ids=[ids[r] for r in rows], text=mask(texts[longest]),
            topic=first_value(topic_column, rows), address=first_value(address_column, rows),
            territory=first_value(territory_column, rows)))
    incidents.sort(key=lambda incident: (-incident.size, incident.first_seen))
    return incidents
