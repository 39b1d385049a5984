"""Background jobs for slow analytics: a small worker pool apart from the request threads.

A job is one computation identified by its *key* (kind and parameters). While a job for a key is
queued or running, a second submission of the same key joins it instead of queueing another. At
most ``max_queued`` jobs wait for a worker; one more distinct job is refused with
:class:`QueueFull` (the API answers 429 with ``Retry-After``). Finished jobs stay visible (for
``GET /v1/jobs/{id}``) for ``keep_seconds``, at most ``keep_jobs`` of them.

Workers are threads of their own :class:`~concurrent.futures.ThreadPoolExecutor`
(``max_workers=1`` by default), never the request thread pool, and they run at the lowest OS
scheduling priority (Linux ``setpriority`` on the thread), so request threads win the cores
whenever both want one.

A thread still takes Python's GIL from the request threads while it runs Python code, so the
CPU-heavy part of a job (the clustering itself) can go to a process instead: with
``worker="process"`` (``MCU_ANALYTICS_WORKER=process``), :meth:`JobRunner.cpu` runs it in a
pool of ``max_workers`` spawned processes at the lowest priority; the job's thread only loads
the data and waits. Benchmarked in ``bench/analytics_flood.py`` (figures in its docstring).
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import os
import pickle
import secrets
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

MAX_WORKERS = 1
MAX_QUEUED = 8
KEEP_SECONDS = 900.0
KEEP_JOBS = 256
DEFAULT_WORKER = "thread"  # set from bench/analytics_flood.py's figures
WORKER_NICE = 19
Worker = Literal["thread", "process"]
WORKERS: tuple[Worker, ...] = ("thread", "process")


def default_worker() -> Worker:
    """Where heavy analyses run: ``MCU_ANALYTICS_WORKER`` (``thread`` or ``process``)."""
    chosen = os.environ.get("MCU_ANALYTICS_WORKER", "").strip().lower() or DEFAULT_WORKER
    if chosen not in WORKERS:
        raise ValueError(f"MCU_ANALYTICS_WORKER={chosen!r}; use thread or process")
    return chosen  # type: ignore[return-value]


class QueueFull(RuntimeError):
    """Too many jobs wait for a worker; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"{MAX_QUEUED} analytics jobs are already waiting; retry in "
                         f"{retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    """One background computation and, once finished, its outcome."""

    id: str
    kind: str
    key: Hashable
    params: dict[str, Any]
    result_url: str | None = None
    status: str = "queued"  # queued | running | done | failed
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    data_version: str | None = None
    result: Any = None
    error: BaseException | None = None
    future: Future | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has an outcome (a result or an error)."""
        return self.status in ("done", "failed")


def _lower_priority() -> None:
    """Give the calling worker thread the lowest CPU priority (Linux; elsewhere a no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted
        pass


def _lower_process_priority() -> None:
    """Lowest CPU priority for an analytics worker process, which ends with its server (Linux)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, WORKER_NICE)
    except (AttributeError, OSError):
        pass
    if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG: never outlive a killed server
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (AttributeError, OSError):
            pass


def _picklable(fn: Callable[..., Any]) -> bool:
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


class JobRunner:
    """Runs jobs on a bounded worker pool, one per key at a time, with a bounded queue.

    Args:
        max_workers: Worker threads (the analyses are CPU-bound; keep this below the cores).
        max_queued: Distinct jobs allowed to wait for a worker.
        keep_seconds: How long a finished job stays visible.
        keep_jobs: How many finished jobs stay visible at most.
        worker: ``thread``: :meth:`cpu` runs on the job's thread; ``process``: in a pool of
            ``max_workers`` low-priority processes (started on first use). Default:
            :func:`default_worker`.
    """

    def __init__(self, *, max_workers: int = MAX_WORKERS, max_queued: int = MAX_QUEUED,
                 keep_seconds: float = KEEP_SECONDS, keep_jobs: int = KEEP_JOBS,
                 worker: Worker | None = None) -> None:
        self.max_workers, self.max_queued = max_workers, max_queued
        self.keep_seconds, self.keep_jobs = keep_seconds, keep_jobs
        self.worker: Worker = worker or default_worker()
        if self.worker not in WORKERS:
            raise ValueError(f"worker={self.worker!r}; use thread or process")
        self._executor = ThreadPoolExecutor(max_workers=max_workers,
                                            thread_name_prefix="analytics-job",
                                            initializer=_lower_priority)
        self._processes: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._active: dict[Hashable, Job] = {}  # key → queued or running job
        self._mean_seconds = 5.0  # running estimate of a job's duration (for Retry-After)

    def get(self, job_id: str) -> Job | None:
        """The job with this id (None when unknown or forgotten)."""
        with self._lock:
            self._forget_old()
            return self._jobs.get(job_id)

    def active(self, key: Hashable) -> Job | None:
        """The queued or running job of ``key``, if any."""
        with self._lock:
            return self._active.get(key)

    def queued(self) -> int:
        """Jobs waiting for a worker."""
        with self._lock:
            return sum(job.status == "queued" for job in self._active.values())

    def retry_after(self) -> int:
        """Seconds until a queue slot is likely free (at least 1, at most 600)."""
        with self._lock:
            return self._retry_after()

    def _retry_after(self) -> int:
        waiting = sum(job.status == "queued" for job in self._active.values())
        estimate = self._mean_seconds * max(1, waiting) / max(1, self.max_workers)
        return int(min(600, max(1, math.ceil(estimate))))

    def submit(self, kind: str, key: Hashable, work: Callable[[Job], Any], *,
               params: dict[str, Any] | None = None, result_url: str | None = None) -> Job:
        """The job of ``key``: the one already queued or running, else a new one.

        ``work(job)`` runs on a worker; its return value is the job's result, an exception its
        error.

        Raises:
            QueueFull: A new job is needed and ``max_queued`` jobs already wait.
        """
        with self._lock:
            running = self._active.get(key)
            if running is not None:
                return running
            waiting = sum(job.status == "queued" for job in self._active.values())
            if waiting >= self.max_queued:
                raise QueueFull(self._retry_after())
            job = Job(id=secrets.token_urlsafe(12), kind=kind, key=key, params=params or {},
                      result_url=result_url)
            self._active[key] = job
            self._jobs[job.id] = job
            self._forget_old()
            job.future = self._executor.submit(self._run, job, work)
            return job

    def _run(self, job: Job, work: Callable[[Job], Any]) -> Any:
        job.status, job.started_at = "running", time.time()
        try:
            job.result = work(job)
            job.status = "done"
        except BaseException as exc:  # noqa: BLE001 - the job's outcome, reported to its callers
            job.error, job.status = exc, "failed"
            if not isinstance(exc, (LookupError, ValueError)):
                log.error("analytics job %s (%s) failed: %s", job.id, job.kind,
                          exc.__class__.__name__)
        finally:
            job.finished_at = time.time()
            with self._lock:
                if self._active.get(job.key) is job:
                    del self._active[job.key]
                took = job.finished_at - (job.started_at or job.finished_at)
                self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * took
        return job.result

    def cpu(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, in a worker process when ``worker="process"``.

        Called from a job's thread for its CPU-heavy part. ``fn`` must be a module-level
        function (it is sent by reference); anything else, or the ``thread`` worker, runs it
        here. A worker process that dies (out of memory) fails this job, and the next one gets a
        fresh pool.
        """
        if self.worker != "process" or not _picklable(fn):
            return fn(*args, **kwargs)
        with self._lock:
            if self._processes is None:
                self._processes = ProcessPoolExecutor(
                    max_workers=self.max_workers, initializer=_lower_process_priority,
                    mp_context=multiprocessing.get_context("spawn"))
            pool = self._processes
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            with self._lock:
                if self._processes is pool:
                    self._processes = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def _forget_old(self) -> None:
        now = time.time()
        finished = [j for j in self._jobs.values() if j.finished]
        excess = len(finished) - self.keep_jobs
        for job in finished:
            if excess > 0 or now - (job.finished_at or now) > self.keep_seconds:
                del self._jobs[job.id]
                excess -= 1

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running (tests, shutdown); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [job.future for job in self._active.values() if job.future]
            if not pending:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                pending[0].result(timeout=left)
            except Exception:  # noqa: BLE001, S110 - the job keeps its own error
                pass

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are cancelled, the running one finishes."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pool, self._processes = self._processes, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
