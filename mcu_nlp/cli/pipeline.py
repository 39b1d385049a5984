"""``mcu-nlp run``: the main job on the embedded default store.

Creates the store (SQLite in the data directory unless ``DATABASE_URL`` says otherwise), trains a
model version on the reference data's protocol train part when none is active, and imports the
reference appeals through the same service as the API, classifying and routing each one.
Re-running it is cheap: the model is reused and already stored appeals are skipped.
"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()

DEFAULT_LABELS = ("category", "reason", "department")


def register(app: typer.Typer) -> None:
    """Add the command to the CLI."""

    @app.command("run")
    def run(
        retrain: bool = typer.Option(
            False, "--retrain", help="Train a new version even if one is active."
        ),
        labels: str = typer.Option(",".join(DEFAULT_LABELS), "--labels"),
    ) -> None:
        """Set up the store, train the default model version if needed, import reference appeals."""
        from mcu_nlp.cli.store import _registry, _store, import_command
        from mcu_nlp.services.training import train_reference_bundle
        from mcu_nlp.settings import get_settings
        from mcu_nlp.storage import make_engine
        from mcu_nlp.storage.migrate import upgrade_schema

        settings = get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        console.print(f"store: {make_engine(settings.store_url).url.render_as_string(True)}")
        upgrade_schema(make_engine(settings.store_url))
        store = _store()
        registry = _registry(store)
        if retrain or registry.active_version() is None:
            bundle, path = train_reference_bundle(
                dataset="spb", labels=labels.split(","), version=None, out=None, console=console
            )
            registry.register(path, activate=True, actor="cli")
            for label, figures in bundle.metrics.items():
                test = figures.get("test", {})
                low, high = test.get("precision_ci95") or (None, None)
                interval = f" (95 % CI {low:.1%}–{high:.1%})" if low is not None else ""
                console.print(
                    f"  {label}: test macro-F1 {test.get('macro_f1', 0):.3f}, "
                    f"routed automatically {test.get('coverage_at_95', 0):.1%} at "
                    f"precision {test.get('precision_at_threshold') or 0:.1%}{interval}; "
                    f"certificate: {figures.get('certificate', {}).get('reason', '')}"
                )
        console.print(f"active model version: [bold]{registry.active_version()}[/bold]")
        import_command(file=None, dataset="spb", kind=None, chunk_size=500)
