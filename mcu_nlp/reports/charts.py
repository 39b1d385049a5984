"""Charts of the analytical note, drawn with matplotlib (Agg backend) into PNG bytes."""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # no display on servers; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402

from mcu_nlp.reports.note import AnalyticalNote, CountRow  # noqa: E402

__all__ = ["daily_chart", "note_charts", "outcomes_chart", "ranking_chart", "top_chart"]

_CURRENT = "#1f5fa8"
_PREVIOUS = "#b8c7dc"
_DPI = 150


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=_DPI)
    plt.close(fig)
    return buf.getvalue()


def daily_chart(note: AnalyticalNote) -> bytes:
    """Appeals per day in the period against the same day of the previous period."""
    days = [d["date"][8:10] + "." + d["date"][5:7] for d in note.daily]
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    ax.plot(days, [d["current"] for d in note.daily], color=_CURRENT, marker="o", ms=3,
            label="отчётный период")
    ax.plot(days, [d["previous"] for d in note.daily], color=_PREVIOUS, marker="o", ms=3,
            label="предыдущий период")
    step = max(1, len(days) // 12)
    ax.set_xticks(range(0, len(days), step), [days[i] for i in range(0, len(days), step)],
                  rotation=0, fontsize=8)
    ax.set_ylabel("сообщений в день")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def top_chart(rows: list[CountRow], title: str) -> bytes:
    """Horizontal bars: current vs previous count of the top values."""
    rows = list(reversed(rows))
    names = [textwrap.shorten(r.name, 48, placeholder="…") for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.0))
    pos = range(len(rows))
    ax.barh([p + 0.2 for p in pos], [r.previous for r in rows], height=0.4, color=_PREVIOUS,
            label="предыдущий период")
    ax.barh([p - 0.2 for p in pos], [r.current for r in rows], height=0.4, color=_CURRENT,
            label="отчётный период")
    ax.set_yticks(list(pos), names, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def ranking_chart(note: AnalyticalNote, limit: int = 15) -> bytes:
    """Share answered in time and rating score of the ranked departments."""
    ranked = [r for r in note.rating if r.ranked][:limit]
    ranked.reverse()
    names = [textwrap.shorten(r.department, 48, placeholder="…") for r in ranked]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * max(len(ranked), 1) + 1.0))
    pos = range(len(ranked))
    ax.barh([p + 0.2 for p in pos], [100 * (r.timeliness or 0) for r in ranked], height=0.4,
            color=_PREVIOUS, label="ответы в срок, %")
    ax.barh([p - 0.2 for p in pos], [r.score or 0 for r in ranked], height=0.4, color=_CURRENT,
            label="рейтинг, баллы")
    ax.set_yticks(list(pos), names, fontsize=8)
    ax.set_xlim(0, 100)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def outcomes_chart(note: AnalyticalNote) -> bytes:
    """How appeals closed in the period ended: confirmed by the citizen, closed automatically..."""
    q = note.quality
    parts = [("удовлетворён (подтверждено)", q.get("satisfied") or 0, "#2e8b57"),
             ("закрыто автоматически", q.get("auto_closed") or 0, "#c9a227"),
             ("не удовлетворён", q.get("dissatisfied") or 0, "#c0392b")]
    parts = [p for p in parts if p[1] > 0] or [("нет закрытых", 1, "#cccccc")]
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    wedges, _, _ = ax.pie([p[1] for p in parts], colors=[p[2] for p in parts],
                          autopct="%1.0f%%", textprops={"fontsize": 9}, startangle=90,
                          counterclock=False)
    ax.legend(wedges, [f"{p[0]}: {int(p[1])}" for p in parts], fontsize=8,
              loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_title("Итоги закрытых сообщений", fontsize=10)
    return _png(fig)


def note_charts(note: AnalyticalNote) -> dict[str, bytes]:
    """All charts of the note, keyed by the section they illustrate."""
    charts = {"daily": daily_chart(note)}
    if note.top_topics:
        charts["topics"] = top_chart(note.top_topics, "Тематики: число сообщений")
    if note.top_territories:
        charts["territories"] = top_chart(note.top_territories, "Территории: число сообщений")
    charts["outcomes"] = outcomes_chart(note)
    if any(r.ranked for r in note.rating):
        charts["rating"] = ranking_chart(note)
    return charts
