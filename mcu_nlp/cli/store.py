"""Store commands: ``db upgrade``, ``keys create``, ``import``, ``models ...``, ``retrain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

db_app = typer.Typer(help="The appeal store's schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)


def _store():  # noqa: ANN202 - a Store
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store, StoreConfigError

    url = get_settings().store_url
    try:
        return Store.from_url(url)
    except StoreConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="DATABASE_URL") from None


def _registry(store):  # noqa: ANN001, ANN202
    from mcu_nlp.services.models import ModelRegistry

    return ModelRegistry(store)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import make_engine
    from mcu_nlp.storage.migrate import upgrade_schema

    engine = make_engine(get_settings().store_url)
    revision = upgrade_schema(engine)
    typer.echo(f"store at revision {revision}: {engine.url.render_as_string(hide_password=True)}")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator, analyst or admin.")],
    name: Annotated[str, typer.Option(help="A name to tell the key apart.")] = "",
) -> None:
    """Create an API key; the key is the last line of output (it is stored only hashed)."""
    from mcu_nlp.services.keys import Role, create_key

    if role not in {r.value for r in Role}:
        raise typer.BadParameter(f"unknown role {role!r}; use operator, analyst or admin",
                                 param_hint="--role")
    try:
        key = create_key(_store(), role=role, name=name, actor="cli")
    except ValueError as exc:  # a name too long for its column, or with control characters
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created a key with role {role}; keep it now, it cannot be shown again:")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key by id."""
    from mcu_nlp.services.keys import revoke_key

    if not revoke_key(_store(), key_id, actor="cli"):
        raise typer.BadParameter(f"no key with id {key_id}")
    typer.echo(f"key {key_id} revoked")


def _classifier(store):  # noqa: ANN001, ANN202
    from mcu_nlp.routing.rules import load_rules
    from mcu_nlp.routing.urgency import load_lexicon
    from mcu_nlp.services.classify import ClassifyService, RulesHolder

    registry = _registry(store)
    if registry.sync() is None:
        typer.echo("warning: no active model; every appeal goes to the review queue", err=True)
    return ClassifyService(models=registry.holder, rules=RulesHolder(load_rules()),
                           lexicon=load_lexicon())


def import_command(
    file: Annotated[Path | None, typer.Argument(help="Export file (CSV, XLSX, JSON).")] = None,
    dataset: Annotated[str | None, typer.Option(help="'spb' for the shared SPb sample.")] = None,
    kind: Annotated[str | None, typer.Option(help="spb_portal, im, pos, fz59, generic.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Appeals per transaction.")] = 250,
) -> None:
    """Load appeals into the store, classifying and routing them (idempotent)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mcu_nlp.services.imports import ImportFileError, import_file

    if (file is None) == (dataset is None):
        raise typer.BadParameter("give a FILE or --dataset spb (one of them)")
    if dataset is not None and dataset != "spb":
        raise typer.BadParameter(f"unknown dataset {dataset!r}; known: spb", param_hint="--dataset")
    if dataset == "spb":
        from mcu_nlp.settings import get_settings

        file, kind = get_settings().spb_appeals_path(), "spb_portal"
    store = _store()
    classifier = _classifier(store)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as progress:
        task = progress.add_task("reading", total=None)
        try:
            summary = import_file(
                store, classifier, file, kind=kind, chunk_size=chunk_size, actor="cli",
                on_read=lambda n: progress.update(task, total=n, description="importing"),
                progress=lambda n: progress.advance(task, n))
        except ImportFileError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    for row in summary.rejected[:20]:
        typer.echo(f"rejected line {row.line} id {row.source_id}: {row.reason}", err=True)
    if len(summary.rejected) > 20:
        typer.echo(f"... and {len(summary.rejected) - 20} more rejected rows", err=True)
    typer.echo(f"stored {summary.stored}, duplicates {summary.duplicates}, "
               f"rejected {len(summary.rejected)}")


@models_app.command("list")
def models_list() -> None:
    """Registered model versions."""
    for view in _registry(_store()).list():
        mark = "*" if view.active else " "
        typer.echo(f"{mark} {view.version}\t{view.path}\t{','.join(view.labels)}")


@models_app.command("register")
def models_register(
    path: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    activate: Annotated[bool, typer.Option(help="Make it the active model.")] = False,
) -> None:
    """Register a model bundle directory."""
    from mcu_nlp.services.models import ModelLoadError

    try:
        view = _registry(_store()).register(path, activate=activate, actor="cli")
    except ModelLoadError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    typer.echo(f"registered {view.version}{' (active)' if view.active else ''}")


@models_app.command("activate")
def models_activate(version: Annotated[str, typer.Argument(help="Registered version.")]) -> None:
    """Make a registered version active (running servers pick it up within seconds)."""
    from mcu_nlp.services.models import ModelLoadError, ModelNotFound

    try:
        _registry(_store()).activate(version, actor="cli")
    except (ModelNotFound, ModelLoadError) as exc:
        raise typer.BadParameter(str(exc), param_hint="VERSION") from None
    typer.echo(f"{version} is active")


def retrain_command(
    activate: Annotated[str, typer.Option(help="never, auto (when it wins) or always.")] = "auto",
    labels: Annotated[str | None, typer.Option(help="Comma-separated labels.")] = None,
    version: Annotated[str | None, typer.Option(help="Name of the new version.")] = None,
    holdout: Annotated[float, typer.Option(help="Newest share held out.")] = 0.15,
    source_labels: Annotated[bool | None, typer.Option(
        "--source-labels/--confirmed-only",
        help="Also train on unconfirmed source labels (default: MCU_RETRAIN_SOURCE_LABELS). "
             "The activation holdout is always labels confirmed by people.")] = None,
) -> None:
    """Train a new model version from people's labels in the store and compare it."""
    from mcu_nlp.services.retrain import RetrainError, retrain
    from mcu_nlp.services.taxonomy import TaxonomyError
    from mcu_nlp.settings import get_settings

    if activate not in ("never", "auto", "always"):
        raise typer.BadParameter("use never, auto or always", param_hint="--activate")
    store = _store()
    settings = get_settings()
    try:
        report = retrain(store, _registry(store), out_root=settings.model_store,
                         labels=labels.split(",") if labels else None, version=version,
                         holdout_share=holdout, activate=activate,  # type: ignore[arg-type]
                         curated_path=settings.taxonomy_file,
                         source_labels=(settings.retrain_source_labels if source_labels is None
                                        else source_labels))
    except (RetrainError, TaxonomyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"version {report.version}: trained on {report.train_rows}, holdout "
               f"{report.holdout_rows} from {report.holdout_from}")
    typer.echo(f"new: {report.new_metrics}")
    typer.echo(f"active ({report.active_version}): {report.active_metrics}")
    for note in report.notes:
        typer.echo(note)
    typer.echo(f"{'activated' if report.activated else 'registered inactive'}: {report.version}")


def register(app: typer.Typer) -> None:
    """Add the store commands to the command line."""
    app.add_typer(db_app, name="db")
    app.add_typer(keys_app, name="keys")
    app.add_typer(models_app, name="models")
    app.command("import")(import_command)
    app.command("retrain")(retrain_command)
