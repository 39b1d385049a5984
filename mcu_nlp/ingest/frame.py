"""Appeals as one flat :class:`pandas.DataFrame` for the analytics."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from mcu_nlp.records import Appeal

CORE_COLUMNS = ("id", "channel", "source", "created_at", "text", "territory", "address")
LABEL_PREFIX = "label_"


def _is_timestamp_key(key: str) -> bool:
    return key.endswith(("_dt", "_at"))


def appeals_to_frame(appeals: Iterable[Appeal]) -> pd.DataFrame:
    """One row per appeal: the core fields, ``label_<name>`` per label, then metadata keys.

    ``channel`` holds the channel's value (``"portal"``, ``"im"``...). ``created_at`` and the
    metadata keys ending in ``_dt`` or ``_at`` become ``datetime64`` (unreadable values NaT). A
    metadata key that collides with a core or label column is prefixed ``meta_``. Missing values
    are ``None``/NaN as pandas stores them.
    """
    appeals = list(appeals)
    columns: dict[str, list] = {
        "id": [a.id for a in appeals],
        "channel": [a.channel.value for a in appeals],
        "source": [a.source for a in appeals],
        "created_at": [a.created_at for a in appeals],
        "text": [a.text for a in appeals],
        "territory": [a.territory for a in appeals],
        "address": [a.address for a in appeals],
    }
    label_names = list(dict.fromkeys(k for a in appeals for k in a.labels))
    for name in label_names:
        columns[LABEL_PREFIX + name] = [a.labels.get(name) for a in appeals]
    frame = pd.DataFrame(columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    frame["id"] = frame["id"].astype(object)

    if any(a.metadata for a in appeals):
        metadata = pd.DataFrame.from_records([a.metadata for a in appeals])
        metadata.index = frame.index
        metadata.columns = [f"meta_{c}" if c in columns else str(c) for c in metadata.columns]
        for column in metadata.columns:
            if _is_timestamp_key(column):
                try:
                    metadata[column] = pd.to_datetime(metadata[column], errors="coerce",
                                                      format="ISO8601")
                except (TypeError, ValueError):  # nested JSON values: leave the column as is
                    pass
        frame = pd.concat([frame, metadata], axis=1)
    return frame
