"""The two ways to run a job: in this process (``local``) or on Ray Data (``ray``).

``local`` streams the input's record batches through one job instance and the output into one
Parquet file (``part-00000.parquet``): memory stays at a few batches whatever the input size.
``ray`` reads with :func:`ray.data.read_parquet`, maps with a pool of actors that each build the
job once (:class:`mcu_nlp.batch.mapper.ArrowMapper`) and writes one file per block or more.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcu_nlp.batch.job import BatchJob

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
LOCAL_FILE = "part-00000.parquet"
ROW_GROUP_ROWS = 16_384
"""Rows per row group of the local engine's output (a few batches; 32 MiB of vectors)."""

_SCALE_HINT = "install the scale extra: pip install 'mcu-nlp[scale]'"


class EngineUnavailable(ImportError):
    """The engine's packages are missing (the message names the extra to install)."""


@dataclass(frozen=True, slots=True)
class JobRun:
    """What an engine runs: the job, its options, the columns it reads, the input and output."""

    job: str | type[BatchJob]
    options: dict[str, Any]
    columns: list[str]
    schema: Any  # pyarrow.Schema of ``columns``
    source: Path
    files: tuple[Path, ...]
    dest: Path
    batch_size: int


@dataclass(frozen=True, slots=True)
class EngineResult:
    """Seconds the job ran, model loads, workers; ``setup_seconds`` is starting Ray."""

    seconds: float
    model_loads: int
    workers: int
    setup_seconds: float = 0.0


def require_pyarrow() -> None:
    """Raise :class:`EngineUnavailable` when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"batch jobs read and write Parquet with pyarrow; {_SCALE_HINT}") \
            from exc


def run_local(run: JobRun) -> EngineResult:
    """Map the input in this process with one job instance, streaming into one Parquet file."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from mcu_nlp.batch.mapper import ArrowMapper

    start = time.perf_counter()
    dataset = ds.dataset([str(file) for file in run.files], format="parquet")
    mapper = ArrowMapper(run.job, run.options, run.schema)
    partial = run.dest / f".{LOCAL_FILE}.partial"
    pending: list[pa.Table] = []
    buffered = 0
    with pq.ParquetWriter(partial, mapper.schema) as writer:
        for batch in dataset.to_batches(columns=run.columns, batch_size=run.batch_size):
            if batch.num_rows == 0:
                continue
            pending.append(mapper(batch))
            buffered += batch.num_rows
            if buffered >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending))
                pending, buffered = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending))
    partial.rename(run.dest / LOCAL_FILE)
    return EngineResult(time.perf_counter() - start, model_loads=1, workers=1)


def run_ray(run: JobRun, *, address: str | None = None,
            concurrency: int | None = None) -> EngineResult:
    """Map the input on Ray Data with ``concurrency`` actors, each building the job once.

    Args:
        run: The job.
        address: ``None``: the Ray already initialized in this process, else a new local one
            on this machine's CPUs; ``"auto"``, ``"ray://host:10001"`` or ``"host:6379"``:
            connect there. A Ray this function started is shut down when it ends.
        concurrency: Actors (default: one per CPU of the cluster).
    """
    setup = time.perf_counter()
    with ray_session(address) as ray:
        setup_seconds = time.perf_counter() - setup
        from mcu_nlp.batch.mapper import ArrowMapper

        start = time.perf_counter()
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        workers = max(1, concurrency or int(cpus))
        loads = _load_counter(ray)
        # One path (the file or the folder), not the file list: Ray 2.60 resolves each listed
        # path in its own thread, and without aiohttp those threads race on importing
        # fsspec's http module (ImportError: cannot import name 'HTTPFileSystem').
        dataset = ray.data.read_parquet(str(run.source), file_extensions=["parquet"]) \
            .select_columns(run.columns)
        try:  # blocks of one batch, so every actor gets work even from a single small file
            dataset = dataset.repartition(target_num_rows_per_block=run.batch_size)
        except TypeError:  # Ray before target_num_rows_per_block: blocks as read
            pass
        dataset = dataset.map_batches(
            ArrowMapper,
            fn_constructor_kwargs={"job": run.job, "options": run.options,
                                   "input_schema": run.schema, "loads": loads},
            batch_size=run.batch_size, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            # one CPU stays free for reading and writing: actors holding every CPU starve the
            # read tasks and the run hangs
            num_cpus=min(1.0, max(cpus - 1.0, 0.0) / workers))
        dataset.write_parquet(str(run.dest))
        seconds = time.perf_counter() - start
        model_loads = len(ray.get(loads.pids.remote()))
    return EngineResult(seconds, model_loads=model_loads, workers=workers,
                        setup_seconds=setup_seconds)


def require_ray() -> Any:
    """The ``ray`` module with Ray Data.

    Raises:
        EngineUnavailable: Ray Data is not installed.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"the ray engine needs Ray Data; {_SCALE_HINT}") from exc
    return ray


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ``ray`` module, connected: an initialized Ray is reused and left running.

    Raises:
        EngineUnavailable: Ray Data is not installed.
    """
    ray = require_ray()
    started = False
    if ray.is_initialized() and address is not None:
        log.warning("Ray is already initialized in this process; using it, not %s", address)
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False)
        else:
            ray.init(address=address)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _load_counter(ray: Any) -> Any:
    """An actor that records the process of every job instance built (no CPU reserved)."""

    @ray.remote(num_cpus=0)
    class ModelLoads:
        def __init__(self) -> None:
            self._pids: list[int] = []

        def loaded(self, pid: int) -> None:
            self._pids.append(pid)

        def pids(self) -> list[int]:
            return list(self._pids)

    return ModelLoads.remote()

