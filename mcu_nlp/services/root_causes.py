"""Root causes and incidents as a service: plain data for the CLI and the API.

``GET /v1/root-causes`` → :func:`list_root_causes`, ``GET /v1/root-causes/{id}`` →
:func:`get_root_cause`, ``GET /v1/incidents`` → :func:`list_incidents`; ``mcu-nlp root-causes``
→ :func:`write_root_cause_report`. Appeals are read from an export file (the reference SPb file by
default) through :mod:`mcu_nlp.ingest`; the analysis itself is pure (:mod:`mcu_nlp.root_causes`,
:mod:`mcu_nlp.incidents`). Results are memoized per (file, period, territory), because a
clustering takes a minute on a region's half-year.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcu_nlp.embeddings import Usem3Embedder
from mcu_nlp.embeddings.usem3 import USEM3_DIM
from mcu_nlp.incidents import IncidentMerger, summarize_incidents
from mcu_nlp.root_causes.cards import RootCause, build_cards
from mcu_nlp.root_causes.evidence import RANK_BASIS, attach_evidence, rank_cards
from mcu_nlp.root_causes.neighbors import OUTLIER
from mcu_nlp.root_causes.registry import RootCauseRegistry

logger = logging.getLogger(__name__)

# label names tried in order for the topic and the department (any municipality's export)
TOPIC_LABELS = ("reason", "topic", "subtopic", "category")
DEPARTMENT_LABELS = ("department", "executor")
DEPARTMENT_GROUP_LABELS = ("department_group",)


@dataclass(slots=True)
class RootCauseAnalysis:
    """The result of one run: the cards plus the numbers an analyst checks first."""

    cards: list[RootCause]
    n_appeals: int
    outlier_share: float
    topics: np.ndarray
    frame: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """Totals and the card list, JSON-ready."""
        return {"n_appeals": self.n_appeals, "n_root_causes": len(self.cards),
                "outlier_share": round(self.outlier_share, 4), "rank_basis": RANK_BASIS,
                "root_causes": [_brief(card) for card in self.cards]}


def _brief(card: RootCause) -> dict[str, Any]:
    data = card.to_dict()
    data.pop("weekly_counts")
    return data


def label_column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    """The first ``label_<name>`` column of ``frame`` that holds any value, else ``None``."""
    for name in names:
        if f"label_{name}" in frame.columns and frame[f"label_{name}"].notna().any():
            return f"label_{name}"
    return None


def load_appeals(data: str | Path | None = None, *, since: date | None = None,
                 until: date | None = None, territory: str | None = None) -> pd.DataFrame:
    """Appeals of a period (``since`` ≤ day ≤ ``until``) and territory as a frame.

    Args:
        data: An export file; default: the reference SPb file from the settings.
        since: First day, inclusive (``None``: open).
        until: Last day, inclusive (``None``: open).
        territory: Keep only this territory (district, municipality), case-insensitive.

    Raises:
        FileNotFoundError: No data file.
        ValueError: Nothing left after the filters.
    """
    from mcu_nlp.ingest import appeals_to_frame
    from mcu_nlp.ingest.readers import read_appeals
    from mcu_nlp.settings import get_settings

    path = Path(data) if data is not None else get_settings().spb_appeals_path()
    if not path.exists():
        raise FileNotFoundError(f"no appeals file at {path}")
    result = read_appeals(path)
    if result.errors:
        first = result.errors[0]
        logger.warning("%d rows of %s could not be read (first: line %s, %s)", len(result.errors),
                       path.name, getattr(first, "line", "?"), getattr(first, "reason", "?"))
    frame = appeals_to_frame(result.appeals)
    return _filter(frame, since=since, until=until, territory=territory)


def _filter(frame: pd.DataFrame, *, since: date | None, until: date | None,
            territory: str | None) -> pd.DataFrame:
    day = pd.to_datetime(frame["created_at"], errors="coerce").dt.normalize()
    keep = day.notna()
    if since is not None:
        keep &= day >= pd.Timestamp(since)
    if until is not None:
        keep &= day <= pd.Timestamp(until)
    if territory:
        keep &= frame["territory"].astype("string").str.casefold() == territory.casefold()
    selected = frame[keep.to_numpy()].reset_index(drop=True)
    if selected.empty:
        raise ValueError(f"no appeals between {since or '…'} and {until or '…'}"
                         + (f" in {territory}" if territory else ""))
    return selected


def analyze_root_causes(frame: pd.DataFrame, *, embedder: Any = None, random_state: int = 42,
                        min_cluster_size: int | None = None,
                        registry: RootCauseRegistry | None = None,
                        embeddings: np.ndarray | None = None, **model_params: Any
                        ) -> RootCauseAnalysis:
    """Cluster a frame of appeals into root causes and build their cards.

    Args:
        frame: Appeals as :func:`mcu_nlp.ingest.appeals_to_frame` gives them.
        embedder: Sentence embedder (default: cached usem3).
        random_state: Seed (results repeat for the same seed and data).
        min_cluster_size: Smallest root cause; default scales with the data (≥ 15).
        registry: Root causes of earlier runs: the cards then carry their stable ids
            (:meth:`~mcu_nlp.root_causes.registry.RootCauseRegistry.reconcile`), and the
            registry is brought up to this run (the caller saves it).
        embeddings: Unit vectors of the frame's texts, e.g. from ``mcu-nlp batch prepare``
            (:func:`prepared_embeddings`); default: the embedder computes them.
        **model_params: Further :class:`~mcu_nlp.root_causes.model.RootCauseModel` parameters.
    """
    from mcu_nlp.root_causes.model import RootCauseModel

    embedder = embedder or Usem3Embedder()
    texts = frame["text"].fillna("").astype(str).tolist()
    if embeddings is None:
        embeddings = embedder.encode(texts)
    if min_cluster_size is None:
        # about one cluster per 300 appeals on small periods, 15 (the bench setting) from 4,500 up
        min_cluster_size = int(np.clip(len(frame) // 300, 5, 15))
    model = RootCauseModel(embedder, random_state=random_state,
                           min_cluster_size=min_cluster_size, **model_params)
    topics = model.fit_predict(texts, embeddings=embeddings)
    topic_words = model.topic_words_
    if registry is not None:
        mapping = registry.reconcile(topics, embeddings, frame["created_at"].tolist(), words={
            topic: [word for word, _ in pairs] for topic, pairs in topic_words.items()})
        topics = stable_topics(topics, mapping)
        topic_words = {mapping.get(topic, topic): pairs for topic, pairs in topic_words.items()}
    group_column = label_column(frame, DEPARTMENT_GROUP_LABELS)
    topic_column = label_column(frame, TOPIC_LABELS)
    department_column = label_column(frame, DEPARTMENT_LABELS)
    cards = build_cards(frame, topics, topic_words, embeddings,
                        topic_column=topic_column,
                        department_column=department_column,
                        department_group_column=group_column,
                        department_groups=None if group_column else department_groups(),
                        address_column="address", territory_column="territory",
                        random_state=random_state)
    # evidence from the official answers: classified once, one recurrence table for the frame
    cards = rank_cards(attach_evidence(cards, frame, topics, topic_col=topic_column,
                                       department_col=department_column))
    return RootCauseAnalysis(cards=cards, n_appeals=len(frame),
                             outlier_share=model.outlier_share_, topics=topics, frame=frame)


def prepared_embeddings(frame: pd.DataFrame, prepared: str | Path, *, embedder: Any = None,
                        id_column: str = "id") -> tuple[np.ndarray, int]:
    """Vectors of ``frame``'s appeals from the output of ``mcu-nlp batch prepare`` (or ``embed``).

    Appeals are matched by id; those the output lacks, or that it rejected, are embedded here.

    Args:
        frame: Appeals with an ``id_column``.
        prepared: The job's output: a Parquet file or a folder of them, with ``id_column`` and
            ``embedding``.
        embedder: Embeds the missing appeals (default: cached usem3).
        id_column: The appeal id column of both.

    Returns:
        ``(vectors, n_embedded_here)``.

    Raises:
        FileNotFoundError: No such output.
        ValueError: It has no ``embedding`` or id column, or vectors of another dimension.
    """
    import pyarrow.dataset as ds

    path = Path(prepared)
    if not path.exists():
        raise FileNotFoundError(f"no prepared appeals at {path}")
    dataset = ds.dataset(path, format="parquet")
    missing = {id_column, "embedding"} - set(dataset.schema.names)
    if missing:
        raise ValueError(f"{path} has no {', '.join(sorted(missing))} column: run "
                         "`mcu-nlp batch prepare` (or `embed`) on the appeals first")
    wanted = frame[id_column].astype(str)
    vectors = np.zeros((len(frame), USEM3_DIM), dtype=np.float32)
    found = np.zeros(len(frame), dtype=bool)
    position = pd.Series(np.arange(len(frame)), index=wanted.to_numpy())
    position = position[~position.index.duplicated()]
    for batch in dataset.to_batches(columns=[id_column, "embedding"]):
        ids = pd.Series(batch.column(id_column).to_pylist(), dtype="string").astype(str)
        rows = position.reindex(ids.to_numpy()).to_numpy()
        column = batch.column("embedding")
        valid = ~pd.isna(rows) & ~np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        if not valid.any():
            continue
        flat = np.asarray(column.filter(valid).flatten().to_numpy(zero_copy_only=False),
                          dtype=np.float32)
        if flat.size % USEM3_DIM:
            raise ValueError(f"{path}: embeddings are not {USEM3_DIM}-dimensional")
        targets = rows[valid].astype(np.int64)
        vectors[targets] = flat.reshape(-1, USEM3_DIM)
        found[targets] = True
    # duplicated ids in the frame share the first one's vector
    same = position.reindex(wanted.to_numpy()).to_numpy().astype(np.int64)
    vectors, found = vectors[same], found[same]
    if not found.all():
        embedder = embedder or Usem3Embedder()
        rows = np.flatnonzero(~found)
        vectors[rows] = embedder.encode(frame["text"].fillna("").astype(str).iloc[rows].tolist())
    return vectors, int((~found).sum())


def stable_topics(topics: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """A run's topics renumbered by a registry's ``mapping`` (``-1`` stays)."""
    lookup = np.vectorize(lambda topic: mapping.get(int(topic), OUTLIER), otypes=[np.int64])
    labels, inverse = np.unique(np.asarray(topics, dtype=np.int64), return_inverse=True)
    return lookup(labels)[inverse] if len(labels) else np.asarray(topics, dtype=np.int64)


@lru_cache(maxsize=1)
def department_groups(path: str | Path | None = None) -> dict[str, str]:
    """Department → department group from the SPb ``departments.csv`` (empty when absent)."""
    from mcu_nlp.settings import get_settings

    if path is None:
        path = get_settings().shared_data_dir / "spb_our_city_appeals" / "departments.csv"
    path = Path(path)
    if not path.exists():
        return {}
    table = pd.read_csv(path, usecols=["department", "department_group"], dtype="string")
    table = table.dropna()
    return dict(zip(table["department"], table["department_group"], strict=True))


def follow_up_cards(cards: list[RootCause], frame: pd.DataFrame, start: date, *,
                    days: int = 60, **options: Any) -> list[RootCause]:
    """Copies of ``cards`` with their :class:`~mcu_nlp.root_causes.follow_up.FollowUp`.

    Args:
        cards: Cards from :func:`analyze_root_causes` (left unchanged: they may be cached).
        frame: Appeals around ``start`` (as :func:`load_appeals` gives them), covering the
            ``days`` before and after it and, for repeats, 60 days more before.
        start: The day the roadmap started.
        days: Window length before and after.
        **options: Further :func:`~mcu_nlp.root_causes.follow_up.follow_up` options.
    """
    from mcu_nlp.root_causes.follow_up import follow_up

    results = follow_up(frame, cards, start, days, topic_col=label_column(frame, TOPIC_LABELS),
                        **options)
    return [replace(card, follow_up=result) for card, result in zip(cards, results, strict=True)]


def default_registry_path() -> Path:
    """Where the root-cause registry lives by default: ``<data_dir>/root_causes/registry``."""
    from mcu_nlp.settings import get_settings

    return get_settings().data_dir / "root_causes" / "registry.safetensors"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


@lru_cache(maxsize=4)
def _cached_analysis(path: str, mtime: float, since: date | None, until: date | None,
                     territory: str | None, registry_path: str | None = None,
                     registry_mtime: float | None = None) -> RootCauseAnalysis:
    frame = load_appeals(path, since=since, until=until, territory=territory)
    # the API reads the registry (stable ids) but never writes it: the batch job owns it
    registry = RootCauseRegistry.load(registry_path) if registry_mtime is not None else None
    return analyze_root_causes(frame, registry=registry)


def _analysis(data: str | Path | None, since: date | None, until: date | None,
              territory: str | None) -> RootCauseAnalysis:
    from mcu_nlp.settings import get_settings

    path = Path(data) if data is not None else get_settings().spb_appeals_path()
    registry = default_registry_path()
    return _cached_analysis(str(path.resolve()), path.stat().st_mtime, since, until, territory,
                            str(registry), _mtime(registry))


def list_root_causes(*, since: date | None = None, until: date | None = None,
                     territory: str | None = None, data: str | Path | None = None,
                     limit: int = 20) -> dict[str, Any]:
    """The top root causes of a period: totals and brief cards (``GET /v1/root-causes``)."""
    summary = _analysis(data, since, until, territory).summary()
    summary["root_causes"] = summary["root_causes"][:limit]
    return summary


def get_root_cause(root_cause_id: int, *, since: date | None = None, until: date | None = None,
                   territory: str | None = None, data: str | Path | None = None
                   ) -> dict[str, Any] | None:
    """One full card with weekly counts, or ``None`` (``GET /v1/root-causes/{id}``)."""
    for card in _analysis(data, since, until, territory).cards:
        if card.id == root_cause_id:
            return card_with_roadmap(card, until or card.last_seen.date())
    return None


def find_incidents(frame: pd.DataFrame, *, embedder: Any = None, window_hours: float = 72.0,
                   min_similarity: float = 0.8, max_distance_m: float = 100.0,
                   min_size: int = 2, limit: int | None = None) -> list[dict[str, Any]]:
    """Incidents (merged near-duplicates) of a frame of appeals, largest first."""
    embedder = embedder or Usem3Embedder()
    topic_column = label_column(frame, TOPIC_LABELS)
    merger = IncidentMerger(embedder, window_hours=window_hours, min_similarity=min_similarity,
                            max_distance_m=max_distance_m, topic_column=topic_column)
    labels = merger.fit_predict(frame)
    incidents = summarize_incidents(frame, labels, min_size=min_size, topic_column=topic_column,
                                    limit=limit)
    return [incident.to_dict() for incident in incidents]


def list_incidents(*, since: date | None = None, until: date | None = None,
                   territory: str | None = None, data: str | Path | None = None,
                   window_hours: float = 72.0, min_similarity: float = 0.8,
                   min_size: int = 2, limit: int = 100) -> dict[str, Any]:
    """Incidents of a period (``GET /v1/incidents``): totals and the largest ``limit``."""
    frame = load_appeals(data, since=since, until=until, territory=territory)
    embedder = Usem3Embedder()
    topic_column = label_column(frame, TOPIC_LABELS)
    merger = IncidentMerger(embedder, window_hours=window_hours, min_similarity=min_similarity,
                            topic_column=topic_column)
    labels = merger.fit_predict(frame)
    sizes = np.bincount(labels)
    incidents = summarize_incidents(frame, labels, min_size=min_size, topic_column=topic_column,
                                    limit=limit)
    return {"n_appeals": len(frame), "n_incidents": int((sizes >= min_size).sum()),
            "n_merged_appeals": int(sizes[sizes >= min_size].sum()),
            "incidents": [incident.to_dict() for incident in incidents]}


def card_with_roadmap(card: RootCause, start: date) -> dict[str, Any]:
    """A card's JSON with its evidence-driven ``roadmap`` (stages with owner, due date, target)."""
    from mcu_nlp.root_causes.roadmap import roadmap_basis, suggest_stages

    data = card.to_dict()
    data["roadmap"] = {"start": start.isoformat(), "basis": roadmap_basis(card),
                       "stages": [stage.to_dict() for stage in suggest_stages(card, start)]}
    return data


def write_root_cause_report(out: str | Path, *, since: date | None = None,
                            until: date | None = None, territory: str | None = None,
                            data: str | Path | None = None, top: int = 10,
                            roadmap_start: date | None = None,
                            follow_up_start: date | None = None,
                            follow_up_days: int = 60,
                            registry: str | Path | None = None,
                            prepared: str | Path | None = None) -> dict[str, Path]:
    """Run the analysis and write ``root_causes.json``, ``roadmap.docx``, ``roadmap.html``.

    Args:
        out: Folder for the files.
        since: First day of the analysed period.
        until: Last day of the analysed period.
        territory: Only this territory.
        data: Export file (default: the reference SPb file).
        top: Root causes in the roadmap.
        roadmap_start: Start date the roadmap's deadlines count from (default: the follow-up
            start, else ``until``, else today).
        follow_up_start: The day a roadmap started: each card then gets a ``follow_up`` (appeals
            at its places in the ``follow_up_days`` before vs after, against comparable places).
        follow_up_days: Window length of the follow-up.
        registry: A registry file: cards carry the stable ids of the root causes it holds
            (a card keeps its id as it grows), and the registry is saved with this run.
        prepared: Output of ``mcu-nlp batch prepare`` for these appeals: their vectors are read
            from it instead of being embedded (:func:`prepared_embeddings`).
    """
    from mcu_nlp.root_causes.follow_up import REPEAT_DAYS
    from mcu_nlp.root_causes.roadmap import write_docx, write_html

    if registry is None and prepared is None:
        analysis = _analysis(data, since, until, territory)
    else:
        frame = load_appeals(data, since=since, until=until, territory=territory)
        held = None if registry is None else RootCauseRegistry.open(registry, dim=USEM3_DIM)
        vectors = None
        if prepared is not None:
            vectors, n_embedded = prepared_embeddings(frame, prepared)
            logger.info("vectors of %d appeals read from %s, %d embedded here",
                        len(frame) - n_embedded, prepared, n_embedded)
        analysis = analyze_root_causes(frame, registry=held, embeddings=vectors)
        if held is not None:
            held.save(registry)
    cards = analysis.cards
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = analysis.summary()
    if follow_up_start is not None:
        around = load_appeals(
            data, since=follow_up_start - timedelta(days=follow_up_days + REPEAT_DAYS),
            until=follow_up_start + timedelta(days=follow_up_days - 1), territory=territory)
        cards = follow_up_cards(cards, around, follow_up_start, days=follow_up_days)
        summary["follow_up"] = {"start": follow_up_start.isoformat(), "days": follow_up_days,
                                "method": "difference in differences of appeals per place per "
                                          "30 days, card places vs other places with appeals on "
                                          "the same topics, within strata of appeals before; "
                                          "place-level bootstrap 95 % interval"}
    start = roadmap_start or follow_up_start or until or date.today()
    if isinstance(start, datetime):
        start = start.date()
    summary["roadmap_start"] = start.isoformat()
    summary["root_causes"] = [card_with_roadmap(card, start) for card in cards]
    summary["period"] = {"since": str(since) if since else None,
                         "until": str(until) if until else None, "territory": territory}
    json_path = out / "root_causes.json"
    json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str),
                         encoding="utf-8")
    chosen = cards[:top]
    return {"json": json_path, "docx": write_docx(chosen, out / "roadmap.docx", start=start),
            "html": write_html(chosen, out / "roadmap.html", start=start)}


def assign_to_registry(frame: pd.DataFrame, registry: str | Path | None = None, *,
                       embedder: Any = None) -> dict[str, Any]:
    """Join a batch of new appeals (a day's) to the registered root causes and save the registry.

    Appeals near a registered root cause join it; the others wait in the registry's pending
    pool, and a new root cause is proposed only when pending appeals recur (see
    :class:`~mcu_nlp.root_causes.registry.RootCauseRegistry`).

    Args:
        frame: The new appeals (``text``, ``created_at``, optionally ``id``).
        registry: The registry file (default: :func:`default_registry_path`); it must exist —
            a first full run (``mcu-nlp root-causes``) creates it.
        embedder: Sentence embedder (default: cached usem3).

    Returns:
        Counts of the assignment, the proposed root causes and the registry after it.
    """
    path = Path(registry) if registry is not None else default_registry_path()
    if not path.exists():
        raise FileNotFoundError(f"no root-cause registry at {path}: run `mcu-nlp root-causes` "
                                "once to create it")
    held = RootCauseRegistry.load(path)
    embedder = embedder or Usem3Embedder()
    vectors = embedder.encode(frame["text"].fillna("").astype(str).tolist())
    keys = frame["id"].astype(str).tolist() if "id" in frame.columns else None
    report = held.assign(vectors, frame["created_at"].tolist(), keys=keys)
    held.save(path)
    joined = pd.Series(report.ids[report.ids != OUTLIER]).value_counts()
    return {**report.to_dict(), "registry": held.summary(),
            "by_root_cause": {int(k): int(v) for k, v in joined.items()},
            "proposed_causes": [asdict(held.causes[i]) for i in report.proposed]}
