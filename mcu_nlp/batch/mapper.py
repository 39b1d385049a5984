"""One job instance behind Arrow batches: what both engines run per process or Ray actor."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from mcu_nlp.batch.job import BatchJob
from mcu_nlp.batch.jobs import job_class


class ArrowMapper:
    """Builds the job once (its model loads here) and maps Arrow batches to the output schema.

    The id and ``keep`` columns are taken from the input batch as they are (types untouched);
    the job's own columns are converted to its :meth:`BatchJob.output_fields`, so every batch
    of every worker writes the same schema, whatever rows it rejected.

    Args:
        job: Job name or class.
        options: The job's constructor options (after :meth:`BatchJob.configure`).
        input_schema: Schema of the columns read.
        loads: A Ray actor with ``loaded.remote(pid)``, told once the job is built (counts the
            model loads of a Ray run); ``None`` in process.
    """

    def __init__(self, job: str | type[BatchJob], options: dict[str, Any],
                 input_schema: pa.Schema, loads: Any = None) -> None:
        self.job = job_class(job)(**options)
        fields = self.job.output_fields()
        clash = set(self.job.passthrough) & {field.name for field in fields}
        if clash:
            raise ValueError(f"input columns {sorted(clash)} would be overwritten by the "
                             f"{self.job.name} job's outputs; rename or do not keep them")
        passthrough = [input_schema.field(name) for name in self.job.passthrough]
        self.schema = pa.schema([*passthrough, *fields])
        self._own = pa.schema(fields)
        if loads is not None:
            import ray

            ray.get(loads.loaded.remote(os.getpid()))

    def __call__(self, batch: pa.Table | pa.RecordBatch) -> pa.Table:
        """The mapped batch, one row per input row, in order."""
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        mapped = self.job(batch.to_pandas())
        if len(mapped) != batch.num_rows:
            raise RuntimeError(f"job {self.job.name!r} mapped {batch.num_rows} rows to "
                               f"{len(mapped)}")
        own = pa.Table.from_pandas(mapped[self._own.names], schema=self._own,
                                   preserve_index=False)
        columns = [_as(batch.column(name), self.schema.field(name).type)
                   for name in self.job.passthrough] + own.columns
        return pa.Table.from_arrays(columns, schema=self.schema)


def _as(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    return column if column.type == kind else column.cast(kind)
