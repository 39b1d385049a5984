"""``mcu-nlp serve``: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (store from DATABASE_URL, default an SQLite file in the data folder)."""
    import uvicorn

    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store

    Store.from_url(get_settings().store_url).dispose()  # migrate once, before workers start
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the command line."""
    app.command("serve")(serve)
