"""Roadmap documents (дорожная карта) to remove a root cause: DOCX and HTML.

A roadmap shows the weekly counts of the problem, where it happens and who is responsible, and
proposes stages with owners and deadlines on the Russian working-day calendar. Owners, deadlines
and results are editable: table cells in the DOCX, ``contenteditable`` cells in the HTML.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from mcu_nlp.root_causes.cards import RootCause


@dataclass(slots=True)
class RoadmapStage:
    """One stage of a roadmap."""

    name: str
    owner: str
    deadline: date
    result: str


# (stage, working days from the start, expected result); owners default to the department
_STAGE_TEMPLATE = (
    ("Обследование мест и подтверждение причины", 5, "Акт обследования, перечень адресов"),
    ("Устранение текущих нарушений по обращениям", 15, "Ответы заявителям, фотофиксация"),
    ("План работ по устранению первопричины", 25, "Утверждённый план, сроки и ресурсы"),
    ("Выполнение работ по плану", 60, "Работы приняты"),
    ("Контроль повторных обращений", 80, "Доля повторных обращений снижена"),
)


def _add_working_days(start: date, n: int) -> date:
    from mcu_nlp.calendar import add_working_days

    result = add_working_days(start, n)
    return result.date() if isinstance(result, datetime) else result


def suggest_stages(card: RootCause, start: date) -> list[RoadmapStage]:
    """The default stages with the card's responsible body as owner and working-day deadlines."""
    owner = _owner(card)
    return [RoadmapStage(name, owner, _add_working_days(start, days), result)
            for name, days, result in _STAGE_TEMPLATE]


def _owner(card: RootCause) -> str:
    if card.responsible.level != "unknown":
        return card.responsible.owner
    return card.department or "Ответственный не определён"


def weekly_chart_png(card: RootCause) -> bytes:
    """A bar chart of the card's weekly counts (PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = list(card.weekly_counts)
    counts = list(card.weekly_counts.values())
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=110)
    ax.bar(range(len(weeks)), counts, color="#3465a4")
    step = max(1, len(weeks) // 8)
    ax.set_xticks(range(0, len(weeks), step))
    ax.set_xticklabels([weeks[i][5:] for i in range(0, len(weeks), step)], fontsize=7)
    ax.set_ylabel("сообщений в неделю", fontsize=8)
    ax.set_title(card.title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _facts(card: RootCause) -> list[tuple[str, str]]:
    trend = card.trend
    responsible = (card.responsible.label if card.responsible.level != "unknown"
                   else f"{card.department or '—'} ({card.department_share:.0%})")
    facts = [
        ("Сообщений", f"{card.size} ({card.share:.1%} всех)"),
        ("Динамика", f"{trend.label_ru}: {trend.first_half} → {trend.second_half} "
                     f"(доля ×{trend.share_ratio}, p = {trend.p_value:.3g})"),
        ("Период", f"{card.first_seen:%d.%m.%Y} — {card.last_seen:%d.%m.%Y}"),
        ("Охват", card.scope.label or "—"),
        ("Тема", f"{card.dominant_topic or '—'} ({card.topic_share:.0%})"),
        ("Темы", "; ".join(f"{t} ({c})" for t, c in card.topics) or "—"),
        ("Ответственный", responsible),
        ("Места", "; ".join(f"{p} ({c})" for p, c in card.top_places) or "—"),
        ("Территории", "; ".join(_territory_line(row) for row in card.breakdown)
         or "; ".join(f"{t} ({c})" for t, c in card.territories) or "—"),
        ("Ключевые слова", ", ".join(card.keywords[:10])),
    ]
    if card.follow_up is not None:
        facts.append((f"Результат с {card.follow_up.start:%d.%m.%Y}", card.follow_up.summary_ru()))
    return facts


def _territory_line(row: dict) -> str:
    places = ", ".join(f"{p['place']} ({p['count']})" for p in row.get("places", []))
    return f"{row['territory']} ({row['count']})" + (f": {places}" if places else "")


def write_docx(cards: Sequence[RootCause], path: str | Path, *, start: date | None = None) -> Path:
    """Write a DOCX roadmap with one section per root cause."""
    from docx import Document
    from docx.shared import Inches

    start = start or date.today()
    document = Document()
    document.add_heading("Дорожная карта устранения первопричин обращений", level=0)
    document.add_paragraph(f"Дата начала: {start:%d.%m.%Y}. Сроки — в рабочих днях "
                           "производственного календаря РФ. Поля «Ответственный», «Срок» и "
                           "«Результат» заполняются и правятся ответственными.")
    for card in cards:
        document.add_heading(f"{card.title}", level=1)
        facts = document.add_table(rows=0, cols=2)
        facts.style = "Table Grid"
        for key, value in _facts(card):
            cells = facts.add_row().cells
            cells[0].text, cells[1].text = key, value
        document.add_picture(io.BytesIO(weekly_chart_png(card)), width=Inches(6))
        document.add_heading("Примеры сообщений", level=2)
        for example in card.examples:
            document.add_paragraph(example, style="List Bullet")
        document.add_heading("Этапы", level=2)
        stages = document.add_table(rows=1, cols=4)
        stages.style = "Table Grid"
        for cell, name in zip(stages.rows[0].cells, ("Этап", "Ответственный", "Срок", "Результат"),
                              strict=True):
            cell.text = name
        for stage in suggest_stages(card, start):
            cells = stages.add_row().cells
            cells[0].text, cells[1].text = stage.name, stage.owner
            cells[2].text, cells[3].text = f"{stage.deadline:%d.%m.%Y}", stage.result
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def render_html(cards: Sequence[RootCause], *, start: date | None = None) -> str:
    """An HTML roadmap (self-contained: charts inlined as PNG data URIs)."""
    start = start or date.today()
    esc = html.escape
    parts = ["<!doctype html><html lang='ru'><head><meta charset='utf-8'>",
             "<title>Дорожная карта</title><style>body{font-family:sans-serif;max-width:960px;"
             "margin:auto}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #999;"
             "padding:4px 8px;vertical-align:top}[contenteditable]{background:#fffbe6}</style>",
             "</head><body><h1>Дорожная карта устранения первопричин обращений</h1>",
             f"<p>Дата начала: {start:%d.%m.%Y}. Сроки — в рабочих днях. Жёлтые поля "
             "редактируются.</p>"]
    for card in cards:
        chart = base64.b64encode(weekly_chart_png(card)).decode("ascii")
        parts.append(f"<section id='root-cause-{card.id}'><h2>{esc(card.title)}</h2><table>")
        parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _facts(card)]
        parts.append("</table><img alt='Сообщения по неделям' "
                     f"src='data:image/png;base64,{chart}'>")
        parts.append("<h3>Примеры сообщений</h3><ul>")
        parts += [f"<li>{esc(example)}</li>" for example in card.examples]
        parts.append("</ul><h3>Этапы</h3><table><tr><th>Этап</th><th>Ответственный</th>"
                     "<th>Срок</th><th>Результат</th></tr>")
        for stage in suggest_stages(card, start):
            parts.append(f"<tr><td>{esc(stage.name)}</td><td contenteditable='true'>"
                         f"{esc(stage.owner)}</td><td contenteditable='true'>"
                         f"{stage.deadline:%d.%m.%Y}</td><td contenteditable='true'>"
                         f"{esc(stage.result)}</td></tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(cards: Sequence[RootCause], path: str | Path, *, start: date | None = None) -> Path:
    """Write :func:`render_html` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(cards, start=start), encoding="utf-8")
    return path
