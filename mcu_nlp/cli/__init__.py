"""The ``mcu-nlp`` command: a thin face over the services.

Each feature registers its commands in its own module under ``mcu_nlp/cli/``; this module only
assembles them, so adding a command never touches the others.
"""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(
    name="mcu-nlp",
    help="NLP and analytics for a municipal control center (МЦУ).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Modules that add commands to ``app`` (each defines ``register(app)``).
_COMMAND_MODULES = (
    "mcu_nlp.cli.alerts",
    "mcu_nlp.cli.batch",
    "mcu_nlp.cli.evaluate",
    "mcu_nlp.cli.pipeline",
    "mcu_nlp.cli.report",
    "mcu_nlp.cli.root_causes",
    "mcu_nlp.cli.serve",
    "mcu_nlp.cli.store",
    "mcu_nlp.cli.taxonomy",
    "mcu_nlp.cli.users",
    "mcu_nlp.cli.models",  # after store: joins its ``models`` group
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug output.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module in _COMMAND_MODULES:
    importlib.import_module(_module).register(app)
