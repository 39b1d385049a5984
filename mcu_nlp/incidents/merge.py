"""Merge near-duplicate appeals about the same problem into incidents (as Инцидент Менеджмент does).

Two appeals are linked when they are close in time (``window_hours``), close in place
(``max_distance_m`` between coordinates, or the same address), of the same topic (when a topic
column is given) and similar in text (cosine of sentence vectors ``>= min_similarity``). Appeals
with no place at all are linked only at ``placeless_similarity`` and when both texts are long
enough to name a specific problem. Incidents are the connected components of the links
(union-find), so a problem reported over several days stays one incident.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from mcu_nlp.embeddings.base import SentenceEmbedder
from mcu_nlp.incidents.candidates import grid_pairs, metric_coordinates, placeless_pairs

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d+")


class IncidentMerger:
    """Groups appeals into incidents.

    Follows the scikit-learn clusterer contract: ``fit(frame)`` learns ``labels_`` (incident number
    of each row, numbered by first appearance) and ``pairs_`` (the links with their similarity,
    hours and metres apart); ``fit_predict`` returns ``labels_``.

    Args:
        embedder: Sentence embedder for the texts (``None``: pass ``embeddings`` to ``fit``).
        window_hours: Largest time gap between two linked appeals.
        min_similarity: Smallest text cosine for appeals at the same place.
        max_distance_m: Largest distance between two linked appeals at the same address (a yard,
            a building's facade).
        spot_distance_m: Largest distance between two linked appeals not known to share an
            address: signs, poles, kiosks a few metres apart are different objects.
        placeless_similarity: Smallest text cosine for appeals with no place.
        placeless_min_chars: Shortest text that may be linked without a place.
        same_address: When both appeals carry an address, require it to be the same (two
            buildings are two problems even when they stand within ``max_distance_m``).
        numbers_must_match: Require the same numbers in both texts: templated messages that
            differ only in a floor, entrance or house number are different problems.
        text_column, time_column: Names of the text and filing-time columns.
        topic_column: Topic column that linked appeals must share (``None``: ignore topics).
        address_column: Address column (exact match where coordinates are missing).
        latitude_column, longitude_column: Coordinate columns (optional in the frame).
    """

    def __init__(
        self,
        embedder: SentenceEmbedder | None = None,
        *,
        window_hours: float = 72.0,
        min_similarity: float = 0.8,
        max_distance_m: float = 100.0,
        spot_distance_m: float = 15.0,
        placeless_similarity: float = 0.95,
        placeless_min_chars: int = 60,
        same_address: bool = True,
        numbers_must_match: bool = True,
        text_column: str = "text",
        time_column: str = "created_at",
        topic_column: str | None = "topic",
        address_column: str | None = "address",
        latitude_column: str | None = "latitude",
        longitude_column: str | None = "longitude",
    ) -> None:
        self.embedder = embedder
        self.window_hours = window_hours
        self.min_similarity = min_similarity
        self.max_distance_m = max_distance_m
        self.spot_distance_m = spot_distance_m
        self.placeless_similarity = placeless_similarity
        self.placeless_min_chars = placeless_min_chars
        self.same_address = same_address
        self.numbers_must_match = numbers_must_match
        self.text_column = text_column
        self.time_column = time_column
        self.topic_column = topic_column
        self.address_column = address_column
        self.latitude_column = latitude_column
        self.longitude_column = longitude_column

    def _check(self, frame: pd.DataFrame) -> None:
        required = [self.text_column, self.time_column]
        if self.topic_column is not None:
            required.append(self.topic_column)
        missing = [column for column in required if column not in frame.columns]
        if missing:
            raise ValueError(f"appeals frame lacks the column(s) {missing}; it has "
                             f"{list(frame.columns)}")
        if self.window_hours <= 0 or self.max_distance_m <= 0:
            raise ValueError("window_hours and max_distance_m must be positive")

    def _column(self, frame: pd.DataFrame, name: str | None, dtype: type) -> np.ndarray | None:
        if name is None or name not in frame.columns:
            return None
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype) if dtype is float \
            else frame[name].to_numpy()

    def fit(self, frame: pd.DataFrame, y: object = None, *,
            embeddings: np.ndarray | None = None) -> IncidentMerger:
        """Find the incidents of ``frame``.

        Args:
            frame: One row per appeal.
            y: Ignored.
            embeddings: Unit vectors of the texts, row-aligned with ``frame`` (else the embedder
                computes them).

        Returns:
            ``self``.
        """
        self._check(frame)
        n = len(frame)
        texts = frame[self.text_column].fillna("").astype(str).tolist()
        if embeddings is None:
            if self.embedder is None:
                raise ValueError("IncidentMerger needs an embedder or precomputed embeddings")
            embeddings = self.embedder.encode(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[0] != n:
            raise ValueError(f"{embeddings.shape[0]} embeddings for {n} appeals")

        created = pd.to_datetime(frame[self.time_column], errors="coerce", format="ISO8601")
        bad_time = created.isna().to_numpy()
        if bad_time.any():
            logger.warning("%d appeals without a valid %s stay single incidents",
                           int(bad_time.sum()), self.time_column)
        origin = created.min() if not bad_time.all() else pd.Timestamp(0)
        hours = ((created - origin).dt.total_seconds() / 3600.0).to_numpy(float, copy=True)
        # a far-away time keeps undated rows out of every window
        hours[bad_time] = -1e9 - np.arange(int(bad_time.sum())) * 10 * self.window_hours

        lat = self._column(frame, self.latitude_column, float)
        lon = self._column(frame, self.longitude_column, float)
        if lat is None or lon is None:
            x = y_m = np.full(n, np.nan)
        else:
            x, y_m = metric_coordinates(lat, lon)
        address_code = _codes(frame, self.address_column, n)
        topic_code = _codes(frame, self.topic_column, n)
        if self.topic_column is not None:
            # an appeal without a topic may only join others without one
            topic_code = np.where(topic_code < 0, topic_code.max() + 1, topic_code)
        else:
            topic_code = np.zeros(n, dtype=np.int64)

        pairs = grid_pairs(hours, x, y_m, address_code, topic_code,
                           window_hours=self.window_hours, max_distance_m=self.max_distance_m)
        pairs["similarity"] = _pair_similarity(embeddings, pairs)
        pairs = pairs[pairs["similarity"] >= self.min_similarity]
        a, b = address_code[pairs["first"]], address_code[pairs["second"]]
        same_address = (a >= 0) & (a == b)
        on_spot = (pairs["metres_apart"] <= self.spot_distance_m).to_numpy()
        if self.same_address:
            on_spot = on_spot & ((a < 0) | (b < 0) | (a == b))
        pairs = pairs[same_address | on_spot]

        lengths = np.fromiter((len(t.strip()) for t in texts), dtype=np.int64, count=n)
        placeless = (~(np.isfinite(x) & np.isfinite(y_m)) & (address_code < 0)
                     & (lengths >= self.placeless_min_chars) & ~bad_time)
        loose = placeless_pairs(hours, embeddings, np.flatnonzero(placeless), topic_code,
                                window_hours=self.window_hours,
                                min_similarity=self.placeless_similarity)
        loose["similarity"] = _pair_similarity(embeddings, loose)
        links = pd.concat([pairs, loose], ignore_index=True)
        if self.numbers_must_match and len(links):
            numbers = [tuple(sorted(set(_NUMBER.findall(t)))) for t in texts]
            links = links[[numbers[a] == numbers[b]
                           for a, b in zip(links["first"], links["second"], strict=True)]]
        self.pairs_ = links.sort_values(["first", "second"], ignore_index=True)
        self.labels_ = _components(n, self.pairs_)
        self.n_incidents_ = int(self.labels_.max()) + 1 if n else 0
        return self

    def fit_predict(self, frame: pd.DataFrame, y: object = None, *,
                    embeddings: np.ndarray | None = None) -> np.ndarray:
        """Incident number of each appeal (see :meth:`fit`)."""
        return self.fit(frame, embeddings=embeddings).labels_


def _codes(frame: pd.DataFrame, column: str | None, n: int) -> np.ndarray:
    """Integer codes of a column's values (-1 for missing or blank, or when there is no column)."""
    if column is None or column not in frame.columns:
        return np.full(n, -1, dtype=np.int64)
    values = frame[column].astype("string").str.strip().str.lower()
    values = values.mask(values == "")
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _pair_similarity(embeddings: np.ndarray, pairs: pd.DataFrame,
                     chunk: int = 65_536) -> np.ndarray:
    first, second = pairs["first"].to_numpy(), pairs["second"].to_numpy()
    out = np.empty(len(first), dtype=np.float32)
    for start in range(0, len(first), chunk):
        a, b = first[start:start + chunk], second[start:start + chunk]
        out[start:start + chunk] = np.einsum("ij,ij->i", embeddings[a], embeddings[b])
    return out


def _components(n: int, pairs: pd.DataFrame) -> np.ndarray:
    """Union-find of the links; incidents numbered in order of their first row."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs["first"], pairs["second"])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_seen = np.unique(labels, return_index=True)
    order = np.argsort(first_seen)
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[labels].astype(np.int64)


def incident_pairs(labels: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """All pairs of rows that share an incident (including links made only through others)."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    firsts, seconds = [], []
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for group in np.split(order, bounds):
        if len(group) > 1:
            i, j = np.triu_indices(len(group), k=1)
            firsts.append(group[i])
            seconds.append(group[j])
    if not firsts:
        return pd.DataFrame({"first": np.zeros(0, np.int64), "second": np.zeros(0, np.int64)})
    return pd.DataFrame({"first": np.concatenate(firsts), "second": np.concatenate(seconds)})
