"""Recurrence: the same problem at the same place, again, and again after it was «fixed».

A root cause shows in repeats. For every place and topic this module counts the appeals, the
repeats (all but the first) and above all the repeats after an answer that said the problem
was fixed: an appeal at the same place and topic created within ``window_days`` (60) after an
earlier appeal's answer whose outcome was ``done`` or ``partly_done``
(:data:`mcu_nlp.root_causes.outcomes.FIXED_OUTCOMES`). Such a repeat means the fix did not hold.

A place is the building of the structured address field, normalized (case, «ё», the «г.» /
«город» prefix, spaces): «г.Санкт-Петербург, Мебельная улица, дом 47, корпус 1, литера А» and
«Санкт-Петербург, мебельная улица, дом 47, корпус 1, литера а» are one place, литера Б of the
same house is another (:mod:`mcu_nlp.root_causes.places` keeps only the street, which is too
coarse here). An appeal without an address is placed by its coordinates snapped to a grid of
``grid_m`` metres (100): cells of ~100 × 100 m, so two points 100 m apart may fall into
neighbouring cells, and two points in one cell are at most ~140 m apart. Rows with neither
an address nor coordinates, or without a topic or a creation date, are left out.

Everything is vectorized (pandas groupby, one ``merge_asof`` for the repeats after a fix): the
60 k appeals of the reference data take a few seconds, most of it classifying the answers
when ``outcomes`` are not given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.root_causes.outcomes import FIXED_OUTCOMES, OUTCOME_TYPES, outcome_types

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "GRID_M",
    "TABLE_COLUMNS",
    "hot_spots",
    "normalize_address",
    "place_keys",
    "recurrence_table",
]

DEFAULT_WINDOW_DAYS = 60
"""Days after a «fixed» answer within which a new appeal counts as the fix not holding."""

GRID_M = 100.0
"""Side of the grid cell, in metres, for appeals placed by coordinates only."""

TABLE_COLUMNS: tuple[str, ...] = (
    "place", "topic", "territory", "appeals", "repeats", "repeats_after_done",
    "reopened_share", "first_at", "last_at", "departments", "appeal_ids", "outcome_mix",
    "place_kind", "latitude", "longitude", "history",
)
"""Columns of :func:`recurrence_table`, in order."""

_TOPIC_COLUMNS = ("reason", "topic", "category", "label")
_ANSWERED_COLUMNS = ("last_answer_dt", "answered_at", "first_answer_dt")
_METRES_PER_DEGREE = 111_320.0
_SETTLEMENT_PREFIXES = ("город ", "г. ", "г.", "гор. ")
_MAX_ADDRESS_CHARS = 300


def normalize_address(address: object) -> str | None:
    """The structured address field as a place key (``None`` for a missing or empty one).

    Lower case, «ё» → «е», whitespace collapsed, spaces around commas unified, the settlement's
    «г.» / «город» prefix dropped. The house, building and литера stay: they tell buildings
    apart. The apartment never appears in the portal's address field.
    """
    if not isinstance(address, str):
        return None
    text = " ".join(address[:_MAX_ADDRESS_CHARS].lower().replace("ё", "е").split())
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return None
    first = parts[0]
    for prefix in _SETTLEMENT_PREFIXES:
        if first.startswith(prefix):
            first = first[len(prefix):].strip()
            break
    parts[0] = first
    return ", ".join(part for part in parts if part) or None


def _grid_keys(latitude: pd.Series, longitude: pd.Series, grid_m: float) -> pd.Series:
    """``grid:<row>:<column>`` cells of ``grid_m`` metres; NaN or impossible coordinates: NaN."""
    lat = pd.to_numeric(latitude, errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(longitude, errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) < 89.9) & (np.abs(lon) <= 180)
    step_lat = grid_m / _METRES_PER_DEGREE
    row = np.floor(np.where(valid, lat, 0.0) / step_lat)
    # The column width in degrees of longitude comes from the row's own latitude, so a cell's
    # key never depends on which other appeals are in the frame.
    centre = np.radians((row + 0.5) * step_lat)
    step_lon = grid_m / (_METRES_PER_DEGREE * np.maximum(np.cos(centre), 1e-6))
    column = np.floor(np.where(valid, lon, 0.0) / step_lon)
    keys = pd.Series(
        [f"grid:{int(r)}:{int(c)}" for r, c in zip(row, column, strict=True)],
        index=latitude.index, dtype=object)
    return keys.where(valid)


def place_keys(frame: pd.DataFrame, *, address_col: str = "address",
               lat_col: str = "latitude", lon_col: str = "longitude",
               grid_m: float = GRID_M) -> pd.Series:
    """The place of each appeal: its normalized address, else its grid cell, else NaN.

    Args:
        frame: Appeals; any of the three columns may be missing.
        address_col: The structured address column.
        lat_col: Latitude column (degrees).
        lon_col: Longitude column (degrees).
        grid_m: Grid cell side in metres for appeals without an address.

    Returns:
        A Series aligned with ``frame``: ``"санкт-петербург, мебельная улица, дом 47, …"``,
        ``"grid:<row>:<column>"`` or NaN.
    """
    if grid_m <= 0 or not math.isfinite(grid_m):
        raise ValueError("grid_m must be a positive number of metres")
    if address_col in frame:
        addresses = frame[address_col]
        unique = pd.unique(addresses[addresses.notna()])
        normal = {value: normalize_address(value) for value in unique}
        keys = addresses.map(normal).astype(object)
    else:
        keys = pd.Series(np.nan, index=frame.index, dtype=object)
    if lat_col in frame and lon_col in frame:
        missing = keys.isna()
        if missing.any():
            keys = keys.copy()
            keys[missing] = _grid_keys(frame.loc[missing, lat_col], frame.loc[missing, lon_col],
                                       grid_m)
    return keys


def _topic_column(frame: pd.DataFrame, topic_col: str) -> str:
    if topic_col in frame:
        return topic_col
    for name in _TOPIC_COLUMNS:
        if name in frame:
            return name
    raise KeyError(f"no topic column: {topic_col!r} is missing and none of {_TOPIC_COLUMNS}")


def _answered_column(frame: pd.DataFrame, answered_col: str | None) -> str | None:
    if answered_col is not None:
        if answered_col not in frame:
            raise KeyError(f"answer date column {answered_col!r} is missing")
        return answered_col
    return next((name for name in _ANSWERED_COLUMNS if name in frame), None)


def _dates(values: pd.Series) -> pd.Series:
    """Timestamps without time zone (an aware column is converted to UTC first)."""
    dates = pd.to_datetime(values, errors="coerce", utc=False, format="mixed")
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates.astype("datetime64[ns]")


def _outcomes_of(frame: pd.DataFrame, outcomes: Sequence[str] | pd.Series | None) -> pd.Series:
    if outcomes is None:
        if "last_answer_text" not in frame:
            return pd.Series("other", index=frame.index, dtype=object)
        return pd.Series(outcome_types(frame["last_answer_text"].tolist()), index=frame.index,
                         dtype=object)
    if isinstance(outcomes, pd.Series):
        if len(outcomes) != len(frame):
            raise ValueError("outcomes must be aligned with the frame (same length)")
        series = outcomes.set_axis(frame.index) if not outcomes.index.equals(frame.index) \
            else outcomes
    else:
        if len(outcomes) != len(frame):
            raise ValueError("outcomes must be aligned with the frame (same length)")
        series = pd.Series(list(outcomes), index=frame.index)
    return series.where(series.isin(OUTCOME_TYPES), "other").astype(object)


def _dominant(keys: pd.DataFrame, column: pd.Series) -> pd.Series:
    """The most frequent non-empty value of ``column`` per group (ties: the first seen)."""
    values = column.where(column.notna() & (column.astype(str).str.strip() != ""))
    counted = (pd.DataFrame({"group": keys["group"], "value": values})
               .dropna()
               .groupby(["group", "value"], sort=False).size()
               .rename("n").reset_index()
               .sort_values(["group", "n"], ascending=[True, False], kind="stable")
               .drop_duplicates("group"))
    return counted.set_index("group")["value"]


def _repeats_after_fix(appeals: pd.DataFrame, window: pd.Timedelta) -> pd.Series:
    """Per appeal, whether it came within ``window`` after an earlier «fixed» answer."""
    fixed = appeals[appeals["fixed"] & appeals["answered_at"].notna()]
    left = appeals[["group", "created_at"]].reset_index().sort_values("created_at")
    right = (fixed[["group", "answered_at", "created_at"]]
             .rename(columns={"created_at": "fixed_created_at"})
             .sort_values("answered_at"))
    if right.empty or left.empty:
        return pd.Series(False, index=appeals.index)
    matched = pd.merge_asof(left, right, left_on="created_at", right_on="answered_at",
                            by="group", direction="backward", allow_exact_matches=False)
    within = (matched["answered_at"].notna()
              & (matched["created_at"] - matched["answered_at"] <= window)
              & (matched["fixed_created_at"] < matched["created_at"]))
    return pd.Series(within.to_numpy(), index=matched["index"].to_numpy()).reindex(
        appeals.index, fill_value=False)


def recurrence_table(frame: pd.DataFrame, *, topic_col: str = "reason",
                     window_days: float = DEFAULT_WINDOW_DAYS,
                     outcomes: Sequence[str] | pd.Series | None = None,
                     min_appeals: int = 2, grid_m: float = GRID_M,
                     id_col: str = "id", created_col: str = "created_at",
                     answered_col: str | None = None, territory_col: str = "district",
                     department_col: str = "department",
                     address_col: str = "address") -> pd.DataFrame:
    """Appeals, repeats and repeats after a «fixed» answer per place and topic.

    Args:
        frame: Appeals with an id, ``created_at``, a topic column, an address and/or
            coordinates; the answer date (``last_answer_dt``, else ``answered_at`` or
            ``first_answer_dt``), ``district`` and ``department`` are used when present.
        topic_col: The topic column (``reason`` by default; ``topic``, ``category`` or
            ``label`` are tried when it is missing).
        window_days: A repeat created within this many days after an earlier appeal's
            «fixed» answer counts in ``repeats_after_done``.
        outcomes: Outcome type per appeal, aligned with ``frame`` (a Series or a sequence);
            by default computed from ``last_answer_text`` with
            :func:`mcu_nlp.root_causes.outcomes.outcome_types`.
        min_appeals: Keep places and topics with at least this many appeals.
        grid_m: Grid cell side in metres for appeals without an address.
        id_col: Appeal id column (the row index when missing).
        created_col: Creation timestamp column.
        answered_col: Answer timestamp column (found by name when ``None``).
        territory_col: Territory (district) column.
        department_col: Responsible department column.
        address_col: Structured address column.

    Returns:
        One row per place and topic with at least ``min_appeals`` appeals, columns
        :data:`TABLE_COLUMNS`: ``place`` (the most common raw address, or the grid key),
        ``topic``, ``territory`` and ``departments`` (dominant values), ``appeals``,
        ``repeats`` (appeals − 1), ``repeats_after_done``, ``reopened_share``
        (repeats_after_done / appeals), ``first_at``, ``last_at``, ``appeal_ids`` (in time
        order), ``outcome_mix`` (type → count), ``place_kind`` («address» or «grid»), the
        mean ``latitude`` / ``longitude`` and ``history`` (see :func:`hot_spots`). Sorted by
        repeats after a fix, then repeats.
    """
    if window_days < 0 or not math.isfinite(window_days):
        raise ValueError("window_days must be a non-negative number")
    if created_col not in frame:
        raise KeyError(f"creation date column {created_col!r} is missing")
    topic_name = _topic_column(frame, topic_col)
    answered_name = _answered_column(frame, answered_col)
    keys = place_keys(frame, address_col=address_col, grid_m=grid_m)
    kinds = _outcomes_of(frame, outcomes)
    appeals = pd.DataFrame({
        "place_key": keys,
        "topic": frame[topic_name].where(frame[topic_name].notna()),
        "created_at": _dates(frame[created_col]),
        "answered_at": (_dates(frame[answered_name]) if answered_name is not None
                        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")),
        "outcome": kinds,
        "id": frame[id_col] if id_col in frame else pd.Series(frame.index, index=frame.index),
    }, index=frame.index)
    appeals["topic"] = appeals["topic"].map(lambda value: value if isinstance(value, str)
                                            else (None if pd.isna(value) else str(value)))
    appeals = appeals.dropna(subset=["place_key", "topic", "created_at"])
    if appeals.empty:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    size = appeals.groupby(["place_key", "topic"], sort=False)["id"].transform("size")
    appeals = appeals[size >= max(int(min_appeals), 1)]
    if appeals.empty:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    appeals = appeals.sort_values(["place_key", "topic", "created_at", "id"], kind="stable")
    appeals["group"] = appeals.groupby(["place_key", "topic"], sort=False).ngroup()
    appeals["fixed"] = appeals["outcome"].isin(FIXED_OUTCOMES)
    appeals["after_fix"] = _repeats_after_fix(
        appeals, pd.Timedelta(days=float(window_days)))

    grouped = appeals.groupby("group", sort=False)
    table = pd.DataFrame({
        "place_key": grouped["place_key"].first(),
        "topic": grouped["topic"].first(),
        "appeals": grouped.size(),
        "repeats_after_done": grouped["after_fix"].sum().astype(int),
        "first_at": grouped["created_at"].min(),
        "last_at": grouped["created_at"].max(),
        "appeal_ids": grouped["id"].agg(list),
    })
    table["repeats"] = table["appeals"] - 1
    table["reopened_share"] = table["repeats_after_done"] / table["appeals"]
    rows = frame.loc[appeals.index]
    table["territory"] = (_dominant(appeals, rows[territory_col])
                          if territory_col in frame else None)
    table["departments"] = (_dominant(appeals, rows[department_col])
                            if department_col in frame else None)
    raw_place = (_dominant(appeals, rows[address_col]) if address_col in frame
                 else pd.Series(dtype=object))
    table["place"] = raw_place.reindex(table.index).fillna(table["place_key"])
    table["place_kind"] = np.where(table["place_key"].str.startswith("grid:"), "grid", "address")
    for column in ("latitude", "longitude"):
        table[column] = (pd.to_numeric(rows[column], errors="coerce").groupby(
            appeals["group"]).mean() if column in frame else np.nan)
    mix = appeals.groupby(["group", "outcome"], sort=False).size()
    table["outcome_mix"] = _mixes(mix, table.index)
    table["history"] = _histories(appeals, table.index)
    table = table.sort_values(["repeats_after_done", "repeats", "last_at"],
                              ascending=[False, False, False], kind="stable")
    return table.reset_index(drop=True)[list(TABLE_COLUMNS)]


def _histories(appeals: pd.DataFrame, groups: pd.Index) -> list[list[dict[str, Any]]]:
    """Each group's appeals in time order: id, dates, outcome, whether it reopened a fix."""
    records: dict[Any, list[dict[str, Any]]] = {}
    columns = zip(appeals["group"], appeals["id"], appeals["created_at"], appeals["answered_at"],
                  appeals["outcome"], appeals["after_fix"], strict=True)
    for group, appeal, created, answered, outcome, after_fix in columns:
        records.setdefault(group, []).append({
            "id": appeal, "created_at": created,
            "answered_at": None if pd.isna(answered) else answered,
            "outcome": outcome, "after_fix": bool(after_fix)})
    return [records.get(group, []) for group in groups]


def _mixes(mix: pd.Series, groups: pd.Index) -> list[dict[str, int]]:
    """``{outcome: count}`` per group, in :data:`OUTCOME_TYPES` order."""
    order = {name: i for i, name in enumerate(OUTCOME_TYPES)}
    by_group: dict[Any, dict[str, int]] = {}
    for (group, outcome), count in sorted(mix.items(), key=lambda item: (
            item[0][0], order.get(item[0][1], len(order)))):
        by_group.setdefault(group, {})[outcome] = int(count)
    return [by_group.get(group, {}) for group in groups]


def hot_spots(table: pd.DataFrame, min_appeals: int = 3, *,
              top: int | None = None) -> pd.DataFrame:
    """Chronic places: at least ``min_appeals`` appeals, ranked by repeats after a fix.

    Args:
        table: A :func:`recurrence_table`.
        min_appeals: Keep places and topics with at least this many appeals.
        top: Keep only the first ``top`` rows.

    Returns:
        The rows of ``table`` with ``appeals >= min_appeals``, ordered by
        ``repeats_after_done``, then ``repeats``, then the latest appeal (all descending).
        Their ``history`` lists every appeal in time order: ``{"id", "created_at",
        "answered_at", "outcome", "after_fix"}``.
    """
    chosen = table[table["appeals"] >= min_appeals]
    chosen = chosen.sort_values(["repeats_after_done", "repeats", "last_at"],
                                ascending=[False, False, False], kind="stable")
    if top is not None:
        chosen = chosen.head(top)
    return chosen.reset_index(drop=True)
