"""``mcu-nlp root-causes``: cluster a period's appeals into root causes and write roadmaps."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not YYYY-MM-DD", param_hint=option) from None


def root_causes(
    out: Annotated[Path, typer.Option("--out", help="Folder for root_causes.json, "
                                      "roadmap.docx and roadmap.html.")],
    since: Annotated[str | None, typer.Option("--since", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day, YYYY-MM-DD.")] = None,
    territory: Annotated[str | None, typer.Option(
        "--territory", help="Only this territory (district or municipality).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Export file to read; default: the reference SPb file.")] = None,
    top: Annotated[int, typer.Option("--top", help="Root causes in the roadmap.")] = 10,
    follow_up: Annotated[str | None, typer.Option(
        "--follow-up", help="Did it work: the day the roadmap started, YYYY-MM-DD. Each card "
        "compares appeals and repeats at its places before vs after that day with other places "
        "on the same topics (difference in differences, 95 % interval).")] = None,
    follow_up_days: Annotated[int, typer.Option(
        "--follow-up-days", min=7, max=365,
        help="Days in each follow-up window (before and after the start).")] = 60,
    registry: Annotated[Path | None, typer.Option(
        "--registry", help="Root-cause registry file: cards keep their ids across runs "
        "(default: <data dir>/root_causes/registry.safetensors).")] = None,
    prepared: Annotated[Path | None, typer.Option(
        "--prepared", help="Output of `mcu-nlp batch prepare` (or `embed`) for these appeals: "
        "their vectors are read from it, not embedded again.")] = None,
    no_registry: Annotated[bool, typer.Option(
        "--no-registry", help="Number the cards of this run afresh; read and write no "
        "registry.")] = False,
) -> None:
    """Find the root causes of recurring problems and write their cards and roadmap."""
    import json

    from mcu_nlp.services.root_causes import default_registry_path, write_root_cause_report

    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and first > last:
        raise typer.BadParameter("--since is after --until", param_hint="--since")
    follow_up_start = _day(follow_up, "--follow-up")
    try:
        paths = write_root_cause_report(out, since=first, until=last, territory=territory,
                                        data=data, top=top, follow_up_start=follow_up_start,
                                        follow_up_days=follow_up_days,
                                        registry=None if no_registry
                                        else registry or default_registry_path(),
                                        prepared=prepared)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))
    typer.echo(f"{summary['n_appeals']} appeals, {summary['n_root_causes']} root causes, "
               f"{summary['outlier_share']:.1%} unassigned")
    if summary.get("rank_basis"):
        typer.echo(f"порядок: {summary['rank_basis']}")
    for card in summary["root_causes"][:top]:
        trend = card["trend"]
        typer.echo(f"  #{card['id']:>3} {card['size']:>6}  {trend['label_ru']:<10} {card['title']}")
        typer.echo(f"{'':>20}ответственный: {card['responsible']['label']}")
        recurrence = card.get("recurrence")
        if recurrence:
            typer.echo(f"{'':>20}повторы: {recurrence['repeats']}, после «выполнено»: "
                       f"{recurrence['repeats_after_done']} ({recurrence['reopened_share']:.1%}); "
                       f"этапы: {len(card['roadmap']['stages'])} ({card['roadmap']['basis']})")
        result = card.get("follow_up")
        if result:
            typer.echo(f"{'':>20}результат: {_effect_line(result)}")
    for kind, path in paths.items():
        typer.echo(f"{kind}: {path}")


def root_causes_assign(
    since: Annotated[str, typer.Option("--since", help="First day of the new appeals, "
                                       "YYYY-MM-DD.")],
    until: Annotated[str | None, typer.Option(
        "--until", help="Last day, YYYY-MM-DD (default: --since, one day).")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Export file to read; default: the reference SPb file.")] = None,
    registry: Annotated[Path | None, typer.Option(
        "--registry", help="Root-cause registry file (default: <data dir>/root_causes/"
        "registry.safetensors; `mcu-nlp root-causes` creates it).")] = None,
) -> None:
    """Join new appeals to the known root causes; propose new ones only when they recur."""
    from mcu_nlp.services.root_causes import assign_to_registry, load_appeals

    first = _day(since, "--since")
    last = _day(until, "--until") or first
    if first and last and first > last:
        raise typer.BadParameter("--since is after --until", param_hint="--since")
    try:
        frame = load_appeals(data, since=first, until=last)
        report = assign_to_registry(frame, registry)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{report['n_appeals']} appeals: {report['joined']} joined known root causes, "
               f"{report['pending']} pending, {len(report['proposed'])} new root causes "
               f"proposed, {report['expired']} left the pending pool")
    for cause in report["proposed_causes"]:
        typer.echo(f"  new #{cause['id']}: {cause['size']} appeals, "
                   f"{cause['first_seen']} – {cause['last_seen']}")
    summary = report["registry"]
    typer.echo(f"registry: {summary['root_causes']} root causes ({summary['proposed']} proposed), "
               f"{summary['retired']} retired, {summary['pending']} pending")


def _effect_line(result: dict) -> str:
    from mcu_nlp.root_causes.cards import count_ru

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:+.2f}"

    return (f"{number(result['estimate'])} обращений на место за 30 дней "
            f"[{number(result['ci_low'])}; {number(result['ci_high'])}], "
            f"{count_ru(result['n_treated'], 'место', 'места', 'мест')} против "
            f"{count_ru(result['n_control'], 'места', 'мест', 'мест')} — {result['verdict']}")


def register(app: typer.Typer) -> None:
    """Add ``root-causes`` and ``root-causes-assign`` to the ``mcu-nlp`` command."""
    app.command("root-causes")(root_causes)
    app.command("root-causes-assign")(root_causes_assign)
