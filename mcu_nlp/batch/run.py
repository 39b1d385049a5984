"""``run_job``: one batch job over a Parquet input, on the local or the Ray engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mcu_nlp.batch.engines import (
    ENGINES,
    JobRun,
    require_pyarrow,
    require_ray,
    run_local,
    run_ray,
)
from mcu_nlp.batch.job import BatchJob


class RowsLost(RuntimeError):
    """The output holds a different number of rows than the input (it is left for inspection)."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What a batch job did.

    Attributes:
        job: Job name.
        engine: ``local`` or ``ray``.
        source: The input file or folder.
        dest: The output folder.
        rows_in: Rows read.
        rows_out: Rows written (always ``rows_in``; otherwise :class:`RowsLost` is raised).
        rejected: Rows written with an ``error`` and empty outputs.
        seconds: Loading the model, reading, mapping and writing (for ``ray``: with starting
            the actors, without starting or connecting to Ray).
        setup_seconds: Starting or connecting to Ray (0 for ``local``).
        model_loads: Job instances built, each loading the model once (1 for ``local``;
            one per actor for ``ray``).
        workers: Processes or actors that mapped batches.
        batch_size: Rows per batch.
    """

    job: str
    engine: str
    source: Path
    dest: Path
    rows_in: int
    rows_out: int
    rejected: int
    seconds: float
    setup_seconds: float
    model_loads: int
    workers: int
    batch_size: int

    @property
    def rows_per_second(self) -> float:
        """Rows in per second of :attr:`seconds`."""
        return self.rows_in / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """The report as plain values (paths as strings), ``rows_per_second`` included."""
        data = asdict(self)
        data.update(source=str(self.source), dest=str(self.dest),
                    rows_per_second=round(self.rows_per_second, 1))
        return data


def run_job(job: str | type[BatchJob], source: str | Path, dest: str | Path, *,
            engine: str = "local", ray_address: str | None = None, batch_size: int = 1024,
            concurrency: int | None = None, **job_options: Any) -> BatchReport:
    """Run a batch job over a Parquet file or folder, writing Parquet files into ``dest``.

    Every input row gives one output row: the id column (and ``keep`` columns) as read, the
    job's columns, and ``error`` (null, or why the row was rejected and its outputs left empty).
    Output rows are in input order for ``local``; ``ray`` writes several files in no set order.

    Args:
        job: ``score``, ``embed``, ``prepare`` (:data:`mcu_nlp.batch.jobs.JOBS`), or a
            :class:`BatchJob` subclass importable by the Ray workers.
        source: A Parquet file, or a folder of them (``*.parquet``, searched recursively).
        dest: Output folder; created, and refused if it holds files already.
        engine: ``local`` (this process, one job instance) or ``ray`` (Ray Data actors).
        ray_address: For ``ray``: ``None`` reuses the Ray of this process or starts a local
            one (shut down at the end); ``"auto"``, ``"ray://host:10001"``, ``"host:6379"``
            connect to a cluster.
        batch_size: Rows mapped at once.
        concurrency: For ``ray``: actors, each loading the model once (default: one per CPU).
            On a cluster, ``source``, ``dest`` and ``bundle`` must be paths every node sees.
        **job_options: The job's options: ``id_column`` (``"id"``), ``text_column``
            (``"text"``), ``keep`` (columns copied to the output), and per job
            ``bundle``/``top_k`` (score) or ``answer_column`` and the place columns (prepare).

    Returns:
        The report.

    Raises:
        FileNotFoundError: No input at ``source``, or no bundle at ``bundle``.
        FileExistsError: ``dest`` is not an empty folder.
        ValueError: An unknown job or engine, a bad batch size, input that is not Parquet, or a
            missing id, text or ``keep`` column.
        mcu_nlp.batch.engines.EngineUnavailable: pyarrow or Ray is not installed.
        RowsLost: The output does not have the input's rows.
    """
    from mcu_nlp.batch.jobs import job_class

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    require_pyarrow()
    if engine == "ray":
        require_ray()
    from mcu_nlp.batch.parquet import open_source, output_counts, prepare_dest

    cls = job_class(job)
    source, dest = Path(source), Path(dest)
    parquet = open_source(source)
    job_options.setdefault("id_column", "id")
    job_options.setdefault("text_column", "text")
    job_options["keep"] = list(job_options.get("keep") or ())
    parquet.require([job_options["id_column"], job_options["text_column"],
                     *job_options["keep"]])
    options = cls.configure(parquet.schema.names, job_options)
    columns = cls.input_columns(options)
    prepare_dest(dest)
    import pyarrow as pa

    run = JobRun(job=job if isinstance(job, str) else cls, options=options, columns=columns,
                 schema=pa.schema([parquet.schema.field(name) for name in columns]),
                 source=source, files=parquet.files, dest=dest, batch_size=batch_size)
    if engine == "local":
        result = run_local(run)
    else:
        result = run_ray(run, address=ray_address, concurrency=concurrency)
    rows_out, rejected = output_counts(dest)
    report = BatchReport(cls.name or cls.__name__, engine, source, dest, parquet.rows, rows_out,
                         rejected, round(result.seconds, 3), round(result.setup_seconds, 3),
                         result.model_loads, result.workers, batch_size)
    if rows_out != parquet.rows:
        raise RowsLost(f"{report.job}: {parquet.rows} rows in {source}, {rows_out} written to "
                       f"{dest}")
    return report
