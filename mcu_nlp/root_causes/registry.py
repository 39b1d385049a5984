"""Root causes that keep their identity: stable ids across runs and each day's appeals joined.

A full run (:class:`~mcu_nlp.root_causes.model.RootCauseModel`) numbers its topics afresh every
time. The registry remembers every root cause it has seen, with a **stable id** that is never
reused, its centroid, up to :data:`EXEMPLARS` member vectors (what new appeals are compared
with), its size, first and last day and its topic words, plus a **pending pool** of appeals that
joined nothing yet. It answers three questions:

* :meth:`RootCauseRegistry.reconcile` — which stable id each topic of a new full run is: each
  member of a new topic is matched to a registered cause by the vote of its nearest exemplars;
  a new topic and a registered cause are the same root cause when at least ``min_overlap`` of the
  topic's members vote for it, or at least ``min_overlap`` of the members voting for the cause sit
  in the topic and make up at least half that share of it (it grew, or absorbed a smaller one);
  one to one, the largest overlaps first
  (:func:`scipy.optimize.linear_sum_assignment`). A card therefore keeps its id as it grows; a new
  topic gets the next id; a registered cause no run finds any more is retired, not renumbered.
* :meth:`RootCauseRegistry.assign` — the incremental path for each day's appeals: an appeal
  joins the cause its nearest exemplars vote for (cosine ≥ ``min_similarity``), which updates
  that cause's size, last day, centroid and exemplars; the others wait in the pending pool.
* :meth:`RootCauseRegistry.propose` (called by ``assign``) — a **new** root cause only when a
  problem recurs: a group of pending appeals, each within ``link_similarity`` of another, with at
  least ``min_size`` appeals on at least ``min_days`` different days. A one-day burst (one
  incident, one author) never becomes a root cause; pending appeals older than ``pending_days``
  leave the pool.

The whole state is one safetensors file (vectors) with a JSON header (the rest), written
atomically, so a reader sees the old registry or the new one and nothing is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from mcu_nlp.root_causes.neighbors import OUTLIER, NeighborIndex, vote_topics

__all__ = ["AssignReport", "RegisteredCause", "RootCauseRegistry", "EXEMPLARS"]

EXEMPLARS = 64  # member vectors kept per root cause
FORMAT = 1
_EPOCH = np.datetime64("1970-01-01", "D")


def _days(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 (int32) of dates, timestamps or ISO strings."""
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(list(values)), errors="coerce", format="mixed")
    if stamps.isna().any():
        raise ValueError(f"{int(stamps.isna().sum())} appeals without a valid date")
    return ((stamps.dt.tz_localize(None) if stamps.dt.tz is not None else stamps)
            .to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int32)


def _iso(day: int) -> str:
    return str(_EPOCH + np.timedelta64(int(day), "D"))


@dataclass(slots=True)
class RegisteredCause:
    """One root cause the registry knows.

    Attributes:
        id: Stable id (never reused).
        size: Appeals it holds: the latest full run's count plus those joined since.
        first_seen: First day of a member, ISO.
        last_seen: Last day of a member, ISO.
        words: Topic words of the latest full run (or of the proposal).
        origin: ``"run"`` (a full run found it) or ``"proposed"`` (recurring pending appeals).
        retired: The latest full run did not find it; new appeals no longer join it.
        runs: Full runs that found it.
    """

    id: int
    size: int
    first_seen: str
    last_seen: str
    words: list[str] = field(default_factory=list)
    origin: str = "run"
    retired: bool = False
    runs: int = 1


@dataclass(slots=True)
class AssignReport:
    """What one incremental assignment did."""

    n_appeals: int
    joined: int
    pending: int
    proposed: list[int]
    expired: int
    ids: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (the per-appeal ids left out)."""
        return {"n_appeals": self.n_appeals, "joined": self.joined, "pending": self.pending,
                "proposed": self.proposed, "expired": self.expired}


class RootCauseRegistry:
    """Stable ids, centroids and exemplars of root causes, and the pending pool.

    Args:
        dim: Vector dimension.
        min_similarity: Cosine an appeal needs to its nearest exemplar to join a cause.
        neighbors: Exemplars that vote on an appeal's cause.
        min_overlap: Share of a new topic's members voting for a registered cause, or of the
            cause's voters inside the topic, that makes the two one root cause
            (:meth:`reconcile`).
        min_size: Pending appeals a proposed root cause needs.
        min_days: Different days those appeals must span.
        link_similarity: Cosine that links two pending appeals into one group.
        pending_days: Days an appeal may wait in the pending pool.
        max_pending: Pending appeals kept (the oldest leave first).
        random_state: Seed of the exemplar sampling.
    """

    def __init__(self, dim: int, *, min_similarity: float = 0.5, neighbors: int = 10,
                 min_overlap: float = 0.5, min_size: int = 10, min_days: int = 3,
                 link_similarity: float = 0.75, pending_days: int = 90,
                 max_pending: int = 20_000, random_state: int = 42) -> None:
        self.dim = dim
        self.min_similarity = min_similarity
        self.neighbors = neighbors
        self.min_overlap = min_overlap
        self.min_size = min_size
        self.min_days = min_days
        self.link_similarity = link_similarity
        self.pending_days = pending_days
        self.max_pending = max_pending
        self.random_state = random_state
        self.causes: dict[int, RegisteredCause] = {}
        self.centroids: dict[int, np.ndarray] = {}
        self.exemplars = np.zeros((0, dim), dtype=np.float32)
        self.exemplar_ids = np.zeros(0, dtype=np.int64)
        self.pending_vectors = np.zeros((0, dim), dtype=np.float32)
        self.pending_days_ = np.zeros(0, dtype=np.int32)
        self.pending_keys: list[str] = []
        self.next_id = 1
        self._rng = np.random.default_rng(random_state)

    # -- full runs ---------------------------------------------------------------------------

    def reconcile(self, topics: np.ndarray, vectors: np.ndarray, days: Sequence[Any],
                  words: dict[int, Sequence[str]] | None = None) -> dict[int, int]:
        """Stable ids for the topics of a full run, and the registry brought up to it.

        Args:
            topics: Topic of each appeal of the run (``-1``: unassigned).
            vectors: Unit vector of each appeal.
            days: Date of each appeal.
            words: Topic words of each topic.

        Returns:
            Run topic → stable id (``-1`` stays ``-1``, not in the mapping).
        """
        topics = np.asarray(topics, dtype=np.int64)
        if len(topics) != len(vectors) or len(topics) != len(days):
            raise ValueError(f"{len(topics)} topics for {len(vectors)} vectors and "
                             f"{len(days)} days")
        day_numbers = _days(days)
        run_topics = np.unique(topics[topics != OUTLIER])
        mapping: dict[int, int] = {}
        if self.causes and len(run_topics):
            members = self._members_sample(topics)
            votes = self._vote(vectors[members], include_retired=True)
            known = np.array(sorted(self.causes), dtype=np.int64)
            voted = votes != OUTLIER
            # appeals of run topic × registered cause they vote for, each sampled member
            # standing for its topic's share (a topic lends at most 400 voters)
            row_of = np.searchsorted(run_topics, topics[members])
            sizes = np.bincount(np.searchsorted(run_topics, topics[topics != OUTLIER]),
                                minlength=len(run_topics)).astype(np.float64)
            weight = sizes / np.bincount(row_of, minlength=len(run_topics))
            table = np.zeros((len(run_topics), len(known)))
            np.add.at(table, (row_of[voted], np.searchsorted(known, votes[voted])),
                      weight[row_of[voted]])
            from scipy.optimize import linear_sum_assignment

            # the same root cause: most of the topic votes for the cause, or most of the
            # cause's voters sit in the topic (it grew, or it absorbed a smaller one)
            of_topic = table / sizes[:, None]
            of_cause = table / np.maximum(table.sum(axis=0, keepdims=True), 1e-12)
            rows, cols = linear_sum_assignment(-table)
            for row, col in zip(rows, cols, strict=True):
                topic_share, cause_share = of_topic[row, col], of_cause[row, col]
                if topic_share >= self.min_overlap or (
                        cause_share >= self.min_overlap and topic_share >= self.min_overlap / 2):
                    mapping[int(run_topics[row])] = int(known[col])
        for topic in run_topics.tolist():
            if topic not in mapping:
                mapping[topic] = self.next_id
                self.next_id += 1
        matched = set(mapping.values())
        for cause in self.causes.values():
            cause.retired = cause.id not in matched
        self._exemplars_from_run(topics, vectors, day_numbers, mapping, words or {})
        return mapping

    def _members_sample(self, topics: np.ndarray, per_topic: int = 400) -> np.ndarray:
        """Rows of each topic's members that vote in :meth:`reconcile` (at most ``per_topic``).

        The overlap is a share, and a share of 400 sampled members is within ±5 points at 95 %:
        the vote of a million-row run then costs what a 60 k one does.
        """
        order = np.argsort(topics, kind="stable")
        labels, starts, counts = np.unique(topics[order], return_index=True, return_counts=True)
        parts = [order[start:start + count] if count <= per_topic
                 else self._rng.choice(order[start:start + count], size=per_topic, replace=False)
                 for label, start, count in zip(labels, starts, counts, strict=True)
                 if label != OUTLIER]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def _exemplars_from_run(self, topics: np.ndarray, vectors: np.ndarray, days: np.ndarray,
                            mapping: dict[int, int], words: dict[int, Sequence[str]]) -> None:
        from mcu_nlp.root_causes.model import topic_centroids

        run_topics = np.array(sorted(mapping), dtype=np.int64)
        centroids = topic_centroids(vectors, topics, run_topics)
        kept_vectors, kept_ids = [], []
        keep = ~np.isin(self.exemplar_ids, list(mapping.values()))
        kept_vectors.append(self.exemplars[keep])
        kept_ids.append(self.exemplar_ids[keep])
        order = np.argsort(topics, kind="stable")
        labels, starts, counts = np.unique(topics[order], return_index=True, return_counts=True)
        for label, start, count in zip(labels.tolist(), starts, counts, strict=True):
            if label == OUTLIER:
                continue
            rows = order[start:start + count]
            stable = mapping[label]
            chosen = rows if count <= EXEMPLARS else np.sort(
                self._rng.choice(rows, size=EXEMPLARS, replace=False))
            kept_vectors.append(np.asarray(vectors[chosen], dtype=np.float32))
            kept_ids.append(np.full(len(chosen), stable, dtype=np.int64))
            first, last = _iso(days[rows].min()), _iso(days[rows].max())
            cause = self.causes.get(stable)
            topic_words = [str(w) for w in words.get(label, [])][:10]
            if cause is None:
                self.causes[stable] = RegisteredCause(stable, int(count), first, last,
                                                      topic_words)
            else:
                cause.size, cause.retired, cause.runs = int(count), False, cause.runs + 1
                cause.first_seen = min(cause.first_seen, first)
                cause.last_seen = max(cause.last_seen, last)
                cause.words = topic_words or cause.words
            self.centroids[stable] = centroids[np.searchsorted(run_topics, label)]
        self.exemplars = np.vstack(kept_vectors).astype(np.float32)
        self.exemplar_ids = np.concatenate(kept_ids)

    # -- each day ----------------------------------------------------------------------------

    def assign(self, vectors: np.ndarray, days: Sequence[Any],
               keys: Sequence[str] | None = None) -> AssignReport:
        """Join new appeals to registered causes; keep the rest pending; propose recurring ones.

        Args:
            vectors: Unit vectors of the new appeals.
            days: Their dates.
            keys: Their appeal ids (kept with the pending ones; default: row numbers).

        Returns:
            The report, with each appeal's stable id (``-1``: pending) in ``ids`` — appeals of a
            root cause proposed now carry its new id.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        day_numbers = _days(days)
        keys = [str(k) for k in (keys if keys is not None else range(len(vectors)))]
        if len(keys) != len(vectors) or len(day_numbers) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors, {len(day_numbers)} days, "
                             f"{len(keys)} keys")
        ids = self._vote(vectors, include_retired=False) if len(vectors) else \
            np.zeros(0, dtype=np.int64)
        for stable in np.unique(ids[ids != OUTLIER]).tolist():
            rows = np.flatnonzero(ids == stable)
            self._grow(stable, vectors[rows], day_numbers[rows])
        waiting = ids == OUTLIER
        earlier = len(self.pending_keys)
        self.pending_vectors = np.vstack([self.pending_vectors, vectors[waiting]])
        self.pending_days_ = np.concatenate([self.pending_days_, day_numbers[waiting]])
        self.pending_keys += [k for k, w in zip(keys, waiting, strict=True) if w]
        kept = self._expire(int(day_numbers.max()) if len(day_numbers) else None)
        expired = int((~kept).sum())
        proposed, pending_ids = self.propose()
        if proposed:  # this batch's rows still in the pool before the proposal, in order
            in_batch = np.arange(len(kept))[kept] >= earlier
            ids[np.flatnonzero(waiting)[kept[earlier:]]] = pending_ids[in_batch]
        return AssignReport(n_appeals=len(vectors), joined=int((~waiting).sum()),
                            pending=len(self.pending_keys), proposed=proposed, expired=expired,
                            ids=ids)

    def propose(self) -> tuple[list[int], np.ndarray]:
        """Turn recurring groups of pending appeals into new root causes.

        Returns:
            The new stable ids and, for each appeal that was pending before the call, its new
            id or ``-1``.
        """
        n = len(self.pending_keys)
        assigned = np.full(n, OUTLIER, dtype=np.int64)
        if n < self.min_size:
            return [], assigned
        groups = self._link(self.pending_vectors)
        proposed = []
        for group in np.unique(groups).tolist():
            rows = np.flatnonzero(groups == group)
            if len(rows) < self.min_size or \
                    len(np.unique(self.pending_days_[rows])) < self.min_days:
                continue
            stable = self.next_id
            self.next_id += 1
            days = self.pending_days_[rows]
            self.causes[stable] = RegisteredCause(stable, 0, _iso(days.min()), _iso(days.max()),
                                                  origin="proposed")
            self.centroids[stable] = np.zeros(self.dim, dtype=np.float32)
            self._grow(stable, self.pending_vectors[rows], days, fresh=True)
            assigned[rows] = stable
            proposed.append(stable)
        if proposed:
            keep = assigned == OUTLIER
            self.pending_vectors = self.pending_vectors[keep]
            self.pending_days_ = self.pending_days_[keep]
            self.pending_keys = [k for k, kept in zip(self.pending_keys, keep, strict=True)
                                 if kept]
        return proposed, assigned

    def _link(self, vectors: np.ndarray) -> np.ndarray:
        """Single-linkage groups of vectors: connected components of ``cos ≥ link_similarity``."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        index = NeighborIndex(vectors, exact_limit=len(vectors))
        k = min(self.min_size, len(vectors))
        sims, nearest = index.search(vectors, k)
        linked = (sims >= self.link_similarity) & (nearest >= 0)
        rows = np.repeat(np.arange(len(vectors)), k)[linked.ravel()]
        graph = csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, nearest[linked])),
                           shape=(len(vectors), len(vectors)))
        return connected_components(graph, directed=False)[1]

    def _grow(self, stable: int, vectors: np.ndarray, days: np.ndarray, *,
              fresh: bool = False) -> None:
        cause = self.causes[stable]
        total = cause.size + len(vectors)
        centroid = self.centroids[stable] * cause.size + vectors.sum(axis=0)
        self.centroids[stable] = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
        if not fresh:
            cause.first_seen = min(cause.first_seen, _iso(days.min()))
        cause.last_seen = max(cause.last_seen, _iso(days.max()))
        # reservoir: every member, old or new, is an exemplar with the same chance
        held = np.flatnonzero(self.exemplar_ids == stable)
        add_vectors, add_ids, replace = [], [], []
        for offset, vector in enumerate(vectors):
            seen = cause.size + offset + 1
            if len(held) + len(add_vectors) < EXEMPLARS:
                add_vectors.append(vector)
                add_ids.append(stable)
            elif self._rng.random() < EXEMPLARS / seen:
                slot = int(self._rng.integers(len(held) + len(add_vectors)))
                if slot < len(held):
                    replace.append((held[slot], vector))
                else:
                    add_vectors[slot - len(held)] = vector
        for row, vector in replace:
            self.exemplars[row] = vector
        if add_vectors:
            self.exemplars = np.vstack([self.exemplars, np.asarray(add_vectors, np.float32)])
            self.exemplar_ids = np.concatenate([self.exemplar_ids,
                                                np.asarray(add_ids, dtype=np.int64)])
        cause.size = total

    def _expire(self, today: int | None) -> np.ndarray:
        """Drop pending appeals older than ``pending_days`` or beyond ``max_pending``.

        Returns:
            Which of the pool's rows were kept.
        """
        keep = np.ones(len(self.pending_keys), dtype=bool)
        if not self.pending_keys:
            return keep
        if today is not None:
            keep &= self.pending_days_ > today - self.pending_days
        overflow = int(keep.sum()) - self.max_pending
        if overflow > 0:  # the oldest go first
            order = np.argsort(np.where(keep, self.pending_days_, np.iinfo(np.int32).min),
                               kind="stable")
            keep[order[np.flatnonzero(keep[order])[:overflow]]] = False
        if not keep.all():
            self.pending_vectors = self.pending_vectors[keep]
            self.pending_days_ = self.pending_days_[keep]
            self.pending_keys = [k for k, kept in zip(self.pending_keys, keep, strict=True)
                                 if kept]
        return keep

    def _vote(self, vectors: np.ndarray, *, include_retired: bool) -> np.ndarray:
        active = np.ones(len(self.exemplar_ids), dtype=bool)
        if not include_retired:
            retired = [c.id for c in self.causes.values() if c.retired]
            active = ~np.isin(self.exemplar_ids, retired)
        if not active.any():
            return np.full(len(vectors), OUTLIER, dtype=np.int64)
        reference, labels = self.exemplars[active], self.exemplar_ids[active]
        known = np.unique(labels)
        votes = vote_topics(np.asarray(vectors, dtype=np.float32), NeighborIndex(reference),
                            np.searchsorted(known, labels), k=self.neighbors,
                            min_similarity=self.min_similarity)
        return np.where(votes == OUTLIER, OUTLIER, known[np.maximum(votes, 0)])

    # -- storage -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the registry atomically to one safetensors file (JSON header, no pickle)."""
        from safetensors.numpy import save

        from mcu_nlp.atomic_files import write_bytes_atomically

        ids = sorted(self.causes)
        header = {
            "format": FORMAT, "dim": self.dim, "next_id": self.next_id,
            "settings": {"min_similarity": self.min_similarity, "neighbors": self.neighbors,
                         "min_overlap": self.min_overlap, "min_size": self.min_size,
                         "min_days": self.min_days, "link_similarity": self.link_similarity,
                         "pending_days": self.pending_days, "max_pending": self.max_pending,
                         "random_state": self.random_state},
            "causes": [asdict(self.causes[i]) for i in ids],
            "pending_keys": self.pending_keys,
        }
        tensors = {
            "centroids": np.asarray([self.centroids[i] for i in ids], dtype=np.float32).reshape(
                len(ids), self.dim),
            "exemplars": np.ascontiguousarray(self.exemplars, dtype=np.float32),
            "exemplar_ids": self.exemplar_ids.astype(np.int64),
            "pending_vectors": np.ascontiguousarray(self.pending_vectors, dtype=np.float32),
            "pending_days": self.pending_days_.astype(np.int32),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomically(path, save(tensors, metadata={
            "registry": json.dumps(header, ensure_ascii=False)}))

    @classmethod
    def load(cls, path: str | Path) -> RootCauseRegistry:
        """Read a registry :meth:`save` wrote.

        Raises:
            FileNotFoundError: No such file.
            ValueError: Not a registry file, or a format this version does not read.
        """
        from safetensors import safe_open

        if not Path(path).is_file():
            raise FileNotFoundError(f"no root-cause registry at {path}")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                header = json.loads((handle.metadata() or {})["registry"])
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        except Exception as error:  # a missing header key, bad JSON, safetensors' parse errors
            raise ValueError(f"{path} is not a root-cause registry: {error}") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: registry format {header.get('format')} is not {FORMAT}")
        registry = cls(int(header["dim"]), **header["settings"])
        registry.next_id = int(header["next_id"])
        registry.causes = {int(c["id"]): RegisteredCause(**c) for c in header["causes"]}
        registry.centroids = dict(zip(sorted(registry.causes), tensors["centroids"],
                                      strict=True))
        registry.exemplars = tensors["exemplars"]
        registry.exemplar_ids = tensors["exemplar_ids"]
        registry.pending_vectors = tensors["pending_vectors"]
        registry.pending_days_ = tensors["pending_days"]
        registry.pending_keys = list(header["pending_keys"])
        return registry

    @classmethod
    def open(cls, path: str | Path, dim: int, **settings: Any) -> RootCauseRegistry:
        """The registry at ``path``, or a new empty one when there is no file yet."""
        return cls.load(path) if Path(path).exists() else cls(dim, **settings)

    def summary(self, today: date | None = None) -> dict[str, Any]:
        """Counts for the CLI and the logs."""
        active = [c for c in self.causes.values() if not c.retired]
        return {"root_causes": len(active), "retired": len(self.causes) - len(active),
                "proposed": sum(c.origin == "proposed" for c in active),
                "pending": len(self.pending_keys), "next_id": self.next_id,
                **({"today": today.isoformat()} if today else {})}
