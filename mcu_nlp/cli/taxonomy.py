"""``mcu-nlp taxonomy list|add``: the label taxonomy corrections and retraining accept.

The same service as ``GET /v1/taxonomy`` and ``POST /v1/taxonomy/{label}``: values are the
active model version's classes plus the curated list ``<MCU_DATA_DIR>/label_taxonomy.yaml``;
``add`` extends the curated list and writes a ``taxonomy.add`` audit row (actor ``cli`` unless
``--actor`` names the curator).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

__all__ = ["register"]

taxonomy_app = typer.Typer(help="The label taxonomy: values corrections may set and retraining "
                                "learns.", no_args_is_help=True)

_LABEL = re.compile(r"^[\w.-]{1,64}$")  # as the API's path parameter


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _check_label(label: str) -> str:
    if not _LABEL.fullmatch(label):
        raise _fail(f"label {label[:80]!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return label


@taxonomy_app.command("list")
def taxonomy_list(
    labels: Annotated[list[str] | None, typer.Argument(
        help="Labels to show (default: the active model's and the curated list's).")] = None,
) -> None:
    """Show the approved values, one per line: LABEL, where it comes from (model|curated), VALUE."""
    from mcu_nlp.cli.store import _registry, _store
    from mcu_nlp.services.taxonomy import TaxonomyError, active_taxonomy, read_curated
    from mcu_nlp.settings import get_settings

    for label in labels or []:
        _check_label(label)
    path = get_settings().taxonomy_file
    store = _store()
    try:
        registry = _registry(store)
        active = registry.sync()
        if active is None and registry.active_version() is not None:
            typer.echo("warning: the active model cannot be loaded; showing the curated list "
                       "only", err=True)
        bundle = active.bundle if active else None
        try:
            names = sorted(set(labels) if labels else
                           {*(bundle.labels if bundle else []), *read_curated(path)})
            taxonomy = active_taxonomy(bundle, names, curated_path=path,
                                       model_version=active.version if active else None)
        except TaxonomyError as exc:
            raise _fail(str(exc)) from None
    finally:
        store.dispose()
    typer.echo(f"# active model: {taxonomy.model_version or 'none'}; curated list: {path}")
    for name in names:
        for origin, values in (("model", taxonomy.model.get(name, ())),
                               ("curated", taxonomy.curated.get(name, ()))):
            for value in sorted(values):
                typer.echo(f"{name}\t{origin}\t{value}")


@taxonomy_app.command("add")
def taxonomy_add(
    label: Annotated[str, typer.Argument(help="The label, e.g. category or department.")],
    values: Annotated[list[str], typer.Argument(help="Values to approve (1-500 characters).")],
    actor: Annotated[str, typer.Option(help="Who approves them (the audit log's actor).")] = "cli",
) -> None:
    """Approve values of a label in the curated list (audited as taxonomy.add)."""
    from mcu_nlp.cli.store import _store
    from mcu_nlp.services.taxonomy import TaxonomyError, add_curated_values
    from mcu_nlp.settings import get_settings

    _check_label(label)
    if not actor.strip() or len(actor) > 100:
        raise _fail("--actor must be 1-100 characters")
    path = get_settings().taxonomy_file
    store = _store()
    try:
        before = _curated(path, label)
        after = add_curated_values(store, path, label, values, actor=actor.strip())
    except TaxonomyError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.dispose()
    added = sorted(after - before)
    typer.echo(f"{label}: {len(added)} value(s) added, {len(after)} curated in {path}")
    for value in added:
        typer.echo(f"+ {value}")


def _curated(path, label: str) -> frozenset[str]:  # noqa: ANN001 - a Path
    from mcu_nlp.services.taxonomy import read_curated

    return read_curated(path).get(label, frozenset())


def register(app: typer.Typer) -> None:
    """Add the ``taxonomy`` group to ``app``."""
    app.add_typer(taxonomy_app, name="taxonomy")
