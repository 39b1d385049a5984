"""``mcu-nlp alerts``: rises in message counts as of a day, with what drives them."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

SCAN_BUSY_EXIT = 3  # `--store` while another process scans the same store


def _day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not YYYY-MM-DD", param_hint="--date") from None


def load_frame(data: Path | None):  # noqa: ANN201 - pandas.DataFrame, imported lazily
    """Read an export (default: the reference SPb file) into an appeals frame."""
    from mcu_nlp import ingest

    result = ingest.read_spb_portal(data) if data is None else ingest.read_appeals(data)
    if result.errors:
        typer.echo(f"{len(result.errors)} rows could not be read (first: "
                   f"line {result.errors[0].line}: {result.errors[0].reason})", err=True)
    if not result.appeals:
        raise ValueError(f"no appeals could be read from {data or 'the SPb file'}")
    return ingest.appeals_to_frame(result.appeals)


def alerts(
    day: Annotated[str, typer.Option("--date", help="Day to assess, YYYY-MM-DD.")],
    data: Annotated[Path | None, typer.Option(
        "--data", help="Export file to read; default: the reference SPb file.")] = None,
    lookback: Annotated[int, typer.Option(
        "--lookback", min=1, max=60, help="Days up to --date whose alarms make alerts.")] = 7,
    cut: Annotated[list[str] | None, typer.Option(
        "--cut", help="Only these cuts (topic_group, topic, department, territory, channel, "
                      "total); repeatable.")] = None,
    show_resolved: Annotated[bool, typer.Option(
        "--resolved/--open-only", help="Also list rises that ended before --date.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Alerts to print.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    store: Annotated[bool, typer.Option(
        "--store", help="Keep the alerts in the store (merged with the stored ones, as the API "
                        "does); without --data, read the store's appeals when it holds any.")
    ] = False,
) -> None:
    """List the rises in message counts on --date, with expected vs observed and their causes.

    With --store, exits with code 3 when another process (an API replica) is scanning the same
    store at that moment; nothing is stored then, and running it again later is safe.
    """
    from rich.console import Console
    from rich.table import Table

    from mcu_nlp.services.alerts import ScanBusy
    from mcu_nlp.trends.scan import scan_alerts

    as_of = _day(day)
    try:
        if store:
            found = _scan_into_store(data, as_of, lookback)
        else:
            found = scan_alerts(load_frame(data), as_of=as_of, lookback_days=lookback)
    except ScanBusy as busy:  # another process (an API replica) is scanning this store
        typer.echo(f"error: {busy}", err=True)
        raise typer.Exit(SCAN_BUSY_EXIT) from None
    except (FileNotFoundError, ValueError, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if cut:
        found = [a for a in found if a.dimension in set(cut)]
    if not show_resolved:
        found = [a for a in found if a.status != "resolved"]
    found = found[:limit]
    if as_json:
        rows = []
        for alert in found:
            row = alert.as_dict()
            if alert.explanation is not None:
                row["explanation"] = alert.explanation.summary()
                row["examples"] = list(alert.explanation.examples)
            rows.append(row)
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    console = Console()
    if not found:
        console.print(f"No rises in message counts on {as_of:%Y-%m-%d}.")
        return
    table = Table(title=f"Rises in message counts as of {as_of:%d.%m.%Y}")
    for column in ("#", "status", "series", "days", "observed / expected", "rule", "words"):
        table.add_column(column, overflow="fold")
    for number, alert in enumerate(found, 1):
        span = (f"{alert.first_day:%d.%m}" if alert.first_day == alert.last_day
                else f"{alert.first_day:%d.%m}–{alert.last_day:%d.%m}")
        words = (", ".join(w.word for w in alert.explanation.words[:4])
                 if alert.explanation is not None else "")
        table.add_row(str(number), str(alert.status), f"{alert.dimension}: {alert.value}",
                      f"{span} ({len(alert.days)})", f"{alert.observed} / {alert.expected:.0f}",
                      ", ".join(alert.rules), words)
    console.print(table)
    for number, alert in enumerate(found, 1):
        if alert.explanation is None:
            continue
        console.rule(f"#{number} {alert.dimension}: {alert.value}", align="left")
        console.print(alert.explanation.summary(), markup=False)
        if alert.explanation.examples_withheld:
            console.print("[dim]examples withheld: no personal-data masker installed[/]")
        for text in alert.explanation.examples:
            console.print(f"  «{text}»", markup=False)


def _scan_into_store(data: Path | None, as_of: date, lookback: int) -> list:
    """Scan and store the alerts (``--store``); prints what changed in the store.

    Raises:
        ScanBusy: Another process scans the same store right now (one at a time, see
            :func:`mcu_nlp.services.alerts.scan_exclusively`); nothing was read or stored.
    """
    from mcu_nlp.services.alerts import scan_exclusively
    from mcu_nlp.services.reporting import load_appeals_frame
    from mcu_nlp.settings import get_settings
    from mcu_nlp.storage import Store

    target = Store.from_url(get_settings().store_url)
    try:
        outcome = scan_exclusively(
            target, lambda: load_frame(data) if data is not None else load_appeals_frame(),
            as_of=as_of, lookback_days=lookback, actor="cli")
    finally:
        target.dispose()
    typer.echo(f"store: {len(outcome.created)} new, {len(outcome.updated)} updated, "
               f"{len(outcome.resolved)} resolved alerts", err=True)
    return outcome.alerts


def register(app: typer.Typer) -> None:
    """Add ``alerts`` to the ``mcu-nlp`` command."""
    app.command("alerts")(alerts)
