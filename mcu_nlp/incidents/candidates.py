"""Candidate pairs for incident merging from a spatio-temporal grid index (never all pairs).

Every appeal falls into a grid cell of ``max_distance_m`` metres and a time bucket of
``window_hours``; two appeals can only be the same incident if their cells and buckets touch, so the
candidates come from an equi-join of each cell with its 3 × 3 neighbours and the next bucket. With a
topic column the topic joins the key too. Appeals without coordinates but with an address are
blocked by the exact address; appeals with neither are compared only by text, within time blocks, at
a stricter similarity (see :func:`placeless_pairs`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_METRES_PER_DEGREE_LAT = 110_574.0
_METRES_PER_DEGREE_LON_EQUATOR = 111_320.0
_ADDRESS_BLOCK = np.int64(1) << 40  # keeps address-only blocks apart from coordinate cells


def metric_coordinates(latitude: np.ndarray, longitude: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular metres (accurate to < 0.5 % across a region)."""
    lat0 = np.nanmedian(latitude) if np.isfinite(latitude).any() else 0.0
    x = longitude * _METRES_PER_DEGREE_LON_EQUATOR * np.cos(np.radians(lat0))
    y = latitude * _METRES_PER_DEGREE_LAT
    return x, y


def grid_pairs(
    hours: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    address_code: np.ndarray,
    topic_code: np.ndarray,
    *,
    window_hours: float,
    max_distance_m: float,
) -> pd.DataFrame:
    """Pairs of appeals close in place and time (and equal in topic).

    Args:
        hours: Filing time of each appeal in hours from any origin.
        x: Metric east coordinate (NaN where unknown).
        y: Metric north coordinate (NaN where unknown).
        address_code: Integer code of the address (-1 where unknown); used where coordinates
            are not.
        topic_code: Integer code of the topic (all zeros to ignore topics).
        window_hours: Largest time gap of a pair.
        max_distance_m: Largest distance of a pair with coordinates.

    Returns:
        A frame with columns ``first``, ``second`` (row positions, ``first < second``),
        ``hours_apart`` and ``metres_apart`` (NaN for address-only pairs).
    """
    n = len(hours)
    has_xy = np.isfinite(x) & np.isfinite(y)
    has_address = ~has_xy & (address_code >= 0)
    placed = np.flatnonzero(has_xy | has_address)
    cell = max(max_distance_m, 1.0)
    kx = np.where(has_xy, np.floor(np.nan_to_num(x) / cell), _ADDRESS_BLOCK + address_code)
    ky = np.where(has_xy, np.floor(np.nan_to_num(y) / cell), 0)
    home = pd.DataFrame({
        "row": placed,
        "kx": kx[placed].astype(np.int64),
        "ky": ky[placed].astype(np.int64),
        "kt": np.floor(hours[placed] / max(window_hours, 1e-9)).astype(np.int64),
        "topic": topic_code[placed],
        "xy": has_xy[placed],
    })
    found = []
    offsets = [(dt, dx, dy) for dt in (0, 1) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    for dt, dx, dy in offsets:
        # address-only rows do not move, so they join their own block once (at dx = dy = 0)
        mover = home[home.xy] if (dx or dy) else home
        shifted = mover.assign(kx=mover.kx + dx, ky=mover.ky + dy, kt=mover.kt + dt)
        joined = shifted.merge(home, on=["kx", "ky", "kt", "topic"], suffixes=("_a", "_b"))
        if dt == 0:
            joined = joined[joined.row_a < joined.row_b]
        found.append(joined[["row_a", "row_b"]].to_numpy())
    rows = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    if len(rows) == 0:
        return _empty_pairs()
    first, second = np.minimum(rows[:, 0], rows[:, 1]), np.maximum(rows[:, 0], rows[:, 1])
    pairs = pd.DataFrame({"first": first, "second": second}).drop_duplicates()
    a, b = pairs["first"].to_numpy(), pairs["second"].to_numpy()
    pairs["hours_apart"] = np.abs(hours[a] - hours[b])
    pairs["metres_apart"] = np.hypot(x[a] - x[b], y[a] - y[b])
    same_address = (address_code[a] == address_code[b]) & (address_code[a] >= 0)
    near = np.where(has_xy[a] & has_xy[b], pairs["metres_apart"] <= max_distance_m, same_address)
    keep = (pairs["hours_apart"] <= window_hours) & near
    assert n == 0 or pairs["second"].max() < n
    return pairs[keep].reset_index(drop=True)


def placeless_pairs(
    hours: np.ndarray,
    embeddings: np.ndarray,
    rows: np.ndarray,
    topic_code: np.ndarray,
    *,
    window_hours: float,
    min_similarity: float,
    block_size: int = 2048,
) -> pd.DataFrame:
    """Pairs of appeals with no known place whose texts are nearly the same, close in time.

    Appeals are sorted by time and compared block against the following ``window_hours`` only, as
    dense dot products of unit vectors (nearest neighbours in numpy blocks).
    """
    if len(rows) < 2:
        return _empty_pairs()
    rows = rows[np.argsort(hours[rows], kind="stable")]
    times = hours[rows]
    found = []
    for start in range(0, len(rows), block_size):
        stop = min(start + block_size, len(rows))
        reach = int(np.searchsorted(times, times[stop - 1] + window_hours, side="right"))
        sims = embeddings[rows[start:stop]] @ embeddings[rows[start:reach]].T
        i, j = np.nonzero(sims >= min_similarity)
        j_abs = j + start
        keep = j_abs > i + start
        i, j_abs = i[keep] + start, j_abs[keep]
        keep = ((times[j_abs] - times[i] <= window_hours)
                & (topic_code[rows[i]] == topic_code[rows[j_abs]]))
        found.append(np.stack([rows[i[keep]], rows[j_abs[keep]]], axis=1))
    pairs_rows = np.concatenate(found)
    if len(pairs_rows) == 0:
        return _empty_pairs()
    a, b = pairs_rows.min(axis=1), pairs_rows.max(axis=1)
    return pd.DataFrame({"first": a, "second": b, "hours_apart": np.abs(hours[a] - hours[b]),
                         "metres_apart": np.nan})


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"first": pd.Series(dtype=np.int64), "second": pd.Series(dtype=np.int64),
                         "hours_apart": pd.Series(dtype=float),
                         "metres_apart": pd.Series(dtype=float)})
