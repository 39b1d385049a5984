"""``mcu-nlp report`` (the analytical note) and ``mcu-nlp export-cur`` (ЦУР export)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

PeriodOpt = Annotated[str, typer.Option("--period", help="week (7 days ending on --end) or "
                                        "quarter (calendar quarter holding --end, up to it).")]
EndOpt = Annotated[str | None, typer.Option(
    "--end", help="Last day of the period, YYYY-MM-DD (default: last Sunday of the data).")]
DataOpt = Annotated[str | None, typer.Option(
    "--data", help="Export file to read, or 'store'; default: the store if it holds appeals, "
    "else the reference SPb file.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--sla-config", help="SLA YAML (deadlines, statuses, rating weights); default: packaged.")]
MunicipalityOpt = Annotated[str | None, typer.Option("--municipality", help="Name for titles.")]


def _check_period(period: str) -> str:
    if period not in ("week", "quarter"):
        raise typer.BadParameter("use week or quarter", param_hint="--period")
    return period


def _end_date(end: str | None, frame) -> date:  # noqa: ANN001 - a DataFrame
    from mcu_nlp.services.reporting import latest_complete_week_end

    if end is None:
        return latest_complete_week_end(frame)
    try:
        return datetime.strptime(end, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{end!r} is not YYYY-MM-DD", param_hint="--end") from None


def report(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    period: PeriodOpt = "week",
    end: EndOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="docx, html or pdf.")] = "docx",
    data: DataOpt = None,
    alerts: Annotated[Path | None, typer.Option(
        "--alerts", help="JSON list of growth alerts (title, explanation).")] = None,
    root_causes: Annotated[Path | None, typer.Option(
        "--root-causes", help="JSON list of root causes (title, size, description, "
        "examples).")] = None,
    scan: Annotated[bool, typer.Option(
        "--scan-alerts", help="Also detect growth alerts with mcu_nlp.trends over the last 7 "
        "days of the period (minutes on a large file).")] = False,
    sla_config: ConfigOpt = None,
    municipality: MunicipalityOpt = None,
) -> None:
    """Write the weekly or quarterly analytical note (аналитическая справка)."""
    from mcu_nlp.reports.writers import PdfConversionError
    from mcu_nlp.services import reporting

    if fmt not in ("docx", "html", "pdf"):
        raise typer.BadParameter("use docx, html or pdf", param_hint="--format")
    period = _check_period(period)
    frame = reporting.load_appeals_frame(data)
    last_day = _end_date(end, frame)
    found: list = reporting.load_items(alerts)
    if scan:
        from mcu_nlp.trends.scan import scan_alerts

        found += [a for a in scan_alerts(frame, as_of=last_day, lookback_days=7)
                  if str(a.status) != "resolved"]
    note = reporting.build_report(
        frame, period=period, end=last_day,  # type: ignore[arg-type]
        alerts=found, root_causes=reporting.load_items(root_causes),
        sla_config=sla_config, municipality=municipality)
    try:
        path = reporting.write_report(note, fmt, out)  # type: ignore[arg-type]
    except PdfConversionError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{note.title}\nпоступило {note.totals.current}, записано в {path}")


def export_cur(
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON and CSV files.")],
    period: PeriodOpt = "week",
    end: EndOpt = None,
    data: DataOpt = None,
    sla_config: ConfigOpt = None,
    municipality: MunicipalityOpt = None,
) -> None:
    """Write the period's figures for the regional ЦУР (JSON and CSV, docs/cur_export.md)."""
    from mcu_nlp.services import reporting

    period = _check_period(period)
    frame = reporting.load_appeals_frame(data)
    json_path, csv_path = reporting.export_cur(
        frame, period=period, end=_end_date(end, frame),  # type: ignore[arg-type]
        out_dir=out, sla_config=sla_config, municipality=municipality)
    typer.echo(f"{json_path}\n{csv_path}")


def register(app: typer.Typer) -> None:
    """Add the reporting commands to the ``mcu-nlp`` app."""
    app.command("report")(report)
    app.command("export-cur")(export_cur)
