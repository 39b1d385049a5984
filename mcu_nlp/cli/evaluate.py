"""``mcu-nlp evaluate`` and ``mcu-nlp train``: the fixed protocol; training a model version."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()
_MODEL_HELP = "sparse | routing | embedding | ensemble | transformer | transformer-ensemble"

_PART_COLUMNS = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "top3",
    "coverage_at_95",
    "precision_at_threshold",
)


def _interval(figures: dict) -> str:
    low, high = figures.get("precision_ci95") or (None, None)
    return "—" if low is None or high is None else f"{low:.3f}–{high:.3f}"


def print_results(results: list[dict]) -> None:
    """One table: a row per model × part.

    Coverage and precision are at the certified auto-route threshold; the precision's 95 %
    interval and the EVAL.md yardstick (threshold without a bound) stand beside them.
    """
    table = Table(title="Evaluation (EVAL.md protocol; coverage at the certified threshold)")
    for column in ("label", "model", "part", "rows", *_PART_COLUMNS, "precision 95% CI",
                   "yardstick cov (prec)", "ranked (chosen on test)"):
        table.add_column(
            column, justify="right" if column not in ("label", "model", "part") else "left"
        )
    for result in results:
        for part in ("test", "unseen", "closed"):
            if part not in result:
                continue
            figures = result[part]
            cells = [
                f"{figures[c]:.3f}" if isinstance(figures[c], float) else "—" for c in _PART_COLUMNS
            ]
            yard = figures.get("yardstick") or {}
            yard_cell = (f"{yard['coverage']:.3f} ({yard['precision']:.3f})"
                         if yard.get("precision") is not None else "—")
            ranked = yard.get("ranked_coverage_chosen_on_test")
            table.add_row(result["label"], result["model"], part, str(figures["rows"]), *cells,
                          _interval(figures), yard_cell,
                          "—" if ranked is None else f"{ranked:.3f}")
    console.print(table)
    for result in results:
        certificate = result.get("certificate") or {}
        console.print(
            f"{result['label']} / {result['model']}: train {result['train_seconds']} s, "
            f"{result['texts_per_second']:.0f} texts/s batch, "
            f"{result['single_texts_per_second']:.0f} texts/s one at a time, "
            f"threshold {result['threshold']} ({certificate.get('method', '?')}: "
            f"{certificate.get('reason', '')})"
        )
        if result.get("skipped_rows"):
            console.print(f"rows skipped (no text or no label): {result['skipped_rows']}")


def register(app: typer.Typer) -> None:
    """Add the commands to the CLI."""

    @app.command()
    def evaluate(
        label: str = typer.Option(..., "--label", help="Label column to predict."),
        dataset: str | None = typer.Option(None, "--dataset", help="Reference data set: spb."),
        data: Path | None = typer.Option(None, "--data", help="Any labelled CSV/XLSX/JSON file."),
        text_col: str = typer.Option("text", "--text-col"),
        split_col: str | None = typer.Option(
            None, "--split-col", help="Column with train/validation/test."
        ),
        time_col: str | None = typer.Option(None, "--time-col"),
        cutoff: str | None = typer.Option(None, "--cutoff", help="Test starts at this date."),
        context: list[str] = typer.Option(
            None,
            "--context",
            help="Categorical input known at filing time (repeatable); default for spb: district.",
        ),
        model: str = typer.Option("sparse", "--model", help=_MODEL_HELP),
        topic_col: str | None = typer.Option(
            None,
            "--topic-col",
            help="Topic label whose topic × territory history a routing label follows "
            "(training target only); default for spb: reason for department(_group).",
        ),
        json_out: Path | None = typer.Option(None, "--json", help="Write the figures here."),
        save_model: Path | None = typer.Option(
            None, "--save-model", help="Also save the evaluated model here."
        ),
    ) -> None:
        """Train on the protocol's train part and report test / unseen figures (EVAL.md)."""
        from mcu_nlp.services.evaluation import EvaluationRequest, run_evaluation

        request = EvaluationRequest(
            label=label,
            dataset=dataset,
            data=data,
            text_col=text_col,
            split_col=split_col,
            time_col=time_col,
            cutoff=cutoff,
            context=tuple(context or ()),
            model=model,
            topic_col=topic_col,
        )
        try:
            with console.status(f"training and evaluating {model} on {label}…"):
                result = run_evaluation(request, save_model=save_model)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        print_results([result])
        if json_out:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
            console.print(f"written {json_out}")

    @app.command()
    def train(
        dataset: str = typer.Option("spb", "--dataset", help="Reference data set: spb."),
        labels: str = typer.Option(
            "category,reason,department", "--labels", help="Comma-separated labels to train."
        ),
        version: str | None = typer.Option(None, "--version", help="Model version name."),
        out: Path | None = typer.Option(
            None, "--out", help="Bundle folder (default: model store)."
        ),
        model: str = typer.Option("sparse", "--model", help=_MODEL_HELP),
    ) -> None:
        """Train a model version (a classifier per label + thresholds) on the train part."""
        from mcu_nlp.services.training import train_reference_bundle

        bundle, path = train_reference_bundle(
            dataset=dataset,
            labels=labels.split(","),
            version=version,
            out=out,
            console=console,
            model=model,
        )
        console.print(f"model version [bold]{bundle.version}[/bold] written to {path}")
