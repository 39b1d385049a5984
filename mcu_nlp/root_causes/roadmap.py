"""Roadmap documents (дорожная карта) to remove a root cause: DOCX and HTML.

A roadmap shows the weekly counts of the problem, where it happens and who is responsible, and
proposes stages with owners and deadlines on the Russian working-day calendar. Owners, deadlines
and results are editable: table cells in the DOCX, ``contenteditable`` cells in the HTML.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mcu_nlp.root_causes.cards import RootCause, count_ru


@dataclass(slots=True)
class RoadmapStage:
    """One stage of a roadmap: what, who, by when, and the measurable target."""

    name: str
    owner: str
    deadline: date
    result: str  # the target, as the earlier roadmaps called it
    target: str = ""
    basis: str = ""  # the evidence the stage rests on
    proposal: str | None = None  # a curator rule proposal (routing stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: title, owner, due date, target, basis, proposal."""
        return {"title": self.name, "owner": self.owner, "due": self.deadline.isoformat(),
                "target": self.target or self.result, "basis": self.basis,
                "proposal": self.proposal}


# working days from the start per kind of stage
_DAYS = {"inspection": 10, "contractors": 20, "programme": 30, "routing": 10, "fix": 20,
         "monitoring": 65}
MONITORING_DAYS = 90
GENERIC_NOTE = ("Доказательств по ответам нет (нет хронических мест, повторов после «выполнено», "
                "переносов в программы и заметной доли отказов «не в компетенции»): короткий "
                "общий план.")


def _add_working_days(start: date, n: int) -> date:
    from mcu_nlp.calendar import add_working_days

    result = add_working_days(start, n)
    return result.date() if isinstance(result, datetime) else result


MIN_REFUSALS = 3  # refusals «не в компетенции» that call for a routing fix …
MIN_REFUSAL_SHARE = 0.01  # … and their share of the card's answers
MIN_NOT_HELD = 3  # «done» answers followed by a repeat that call for contractor control


def evidence_kinds(card: RootCause) -> set[str]:
    """The stages the card's evidence calls for: chronic, contractors, programme, routing.

    Noise does not make a stage: a routing fix needs ≥ 3 refusals making ≥ 1 % of the
    answers, contractor control ≥ 3 «done» answers followed by a repeat.
    """
    evidence = card.evidence
    if evidence is None:
        return set()
    rec = evidence.recurrence
    kinds = set()
    if rec.get("chronic_places"):
        kinds.add("chronic")
    if sum(f["not_held"] for f in evidence.fixes_not_holding) >= MIN_NOT_HELD:
        kinds.add("contractors")
    if evidence.planned_not_arrived:
        kinds.add("programme")
    refusal = evidence.out_of_competence
    answered = sum(o["count"] for o in evidence.outcomes)
    if refusal and refusal.get("topic") and refusal["count"] >= MIN_REFUSALS \
            and refusal["count"] >= MIN_REFUSAL_SHARE * answered:
        kinds.add("routing")
    return kinds


def roadmap_basis(card: RootCause) -> str:
    """«evidence» when the stages follow the card's evidence, «generic» otherwise."""
    return "evidence" if evidence_kinds(card) else "generic"


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %" if share * 100 >= 10 else f"{share * 100:.1f} %"


def suggest_stages(card: RootCause, start: date) -> list[RoadmapStage]:
    """Stages that follow the card's evidence, each with an owner, a due date and a target.

    Chronic places → inspection of those addresses; «done» answers followed by repeats →
    contractor control by the departments named; «planned» answers whose place had a later
    appeal → inclusion in the named programme by a date; refusals «не в компетенции» → a
    routing fix with a curator rule proposal. A stage appears only where its evidence exists,
    and the plan always ends with monitoring (the card's follow-up). A card without evidence
    gets a short generic plan (:data:`GENERIC_NOTE`).
    """
    owner = _owner(card)
    stages: list[RoadmapStage] = []
    evidence = card.evidence
    rec = evidence.recurrence if evidence is not None else {}

    def add(kind: str, name: str, who: str, target: str, basis: str,
            proposal: str | None = None) -> None:
        stages.append(RoadmapStage(name, who, _add_working_days(start, _DAYS[kind]), target,
                                   target, basis, proposal))

    kinds = evidence_kinds(card)
    if evidence is not None and kinds:
        chronic = rec.get("chronic_places") or []
        if "chronic" in kinds:
            n = int(rec.get("chronic_places_total", len(chronic)))
            repeats = sum(p["repeats"] for p in chronic)
            places = count_ru(n, "адресу", "адресам", "адресам")
            addresses = count_ru(n, "адреса", "адресов", "адресов")
            add("inspection", f"Комиссионное обследование {addresses} с хроническими повторами",
                owner,
                f"повторные обращения по {places} −50 % за {MONITORING_DAYS} дней",
                f"{count_ru(n, 'место', 'места', 'мест')} с ≥ 3 обращениями по одной теме; "
                f"в первых {len(chronic)}: {count_ru(repeats, 'повтор', 'повтора', 'повторов')}; "
                f"чаще всего: {chronic[0]['place']} "
                f"({chronic[0]['appeals']})")
        if "contractors" in kinds:
            share = float(rec.get("done_not_held_share", 0.0))
            names = [f["department"] for f in evidence.fixes_not_holding[:3]]
            failed = sum(f["not_held"] for f in evidence.fixes_not_holding)
            add("contractors", "Контроль подрядчиков: приёмка работ с фотофиксацией и "
                "повторный выезд через 30 дней", "; ".join(names),
                f"доля повторов после ответа «выполнено» с {_percent(share)} до "
                f"≤ {_percent(share / 2)} за {MONITORING_DAYS} дней",
                f"{count_ru(failed, 'ответ', 'ответа', 'ответов')} «выполнено» из "
                f"{rec.get('done_answers', 0)} с повтором "
                f"в течение {rec.get('window_days', 60):g} дней")
        if "programme" in kinds:
            plans = Counter((p["programme"] or "адресная программа (название уточнить)",
                             p["planned_year"])
                            for p in evidence.planned_not_arrived)
            (programme, year), _ = plans.most_common(1)[0]
            n_places = len({p["place"] for p in evidence.planned_not_arrived})
            due = _add_working_days(start, _DAYS["programme"])
            when = f" {year}" if year else ""
            add("programme", f"Включение адресов в программу «{programme}»{when} с датой работ",
                owner, f"включить {count_ru(n_places, 'адрес', 'адреса', 'адресов')} в "
                f"программу «{programme}»{when} до {due:%d.%m.%Y}",
                f"{count_ru(len(evidence.planned_not_arrived), 'ответ', 'ответа', 'ответов')} "
                "«запланировано», после которых по "
                "тому же месту и теме было новое обращение")
        refusal = evidence.out_of_competence
        if refusal and "routing" in kinds:
            route_to = refusal.get("route_to")
            add("routing", f"Исправление маршрутизации темы «{refusal['topic']}»",
                "МЦУ (куратор правил маршрутизации)" + (f", {route_to}" if route_to else ""),
                f"правило маршрутизации для темы «{refusal['topic']}»: отказов «не в "
                "компетенции» 0 за 60 дней",
                f"{count_ru(refusal['count'], 'отказ', 'отказа', 'отказов')} «не в компетенции»",
                refusal.get("proposal"))
    else:
        add("inspection", "Обследование мест и подтверждение причины", owner,
            "акт обследования, перечень адресов", GENERIC_NOTE)
        add("fix", "Устранение нарушений по обращениям и план работ", owner,
            "ответы заявителям с фотофиксацией; утверждённый план работ", GENERIC_NOTE)
    stages.sort(key=lambda stage: stage.deadline)
    baseline = rec.get("repeats")
    monitoring_target = (f"повторные обращения по теме −50 % за {MONITORING_DAYS} дней "
                         f"(сейчас {baseline}); оценка «разность разностей» "
                         "(mcu-nlp root-causes --follow-up)" if baseline
                         else "обращения по теме не растут; оценка «разность разностей» "
                              "(mcu-nlp root-causes --follow-up)")
    basis = card.follow_up.summary_ru() if card.follow_up is not None else \
        "сравнение с сопоставимыми местами до и после старта"
    add("monitoring", "Мониторинг результата", owner, monitoring_target, basis)
    return stages


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
    return facts + _evidence_facts(card)


def _answer_examples(card: RootCause) -> list[str]:
    if card.evidence is None:
        return []
    return [f"«{e['outcome']}»" + (f" ({e['note']})" if e.get("note") else "") + f": {e['text']}"
            for e in card.evidence.answer_examples]


def _evidence_facts(card: RootCause) -> list[tuple[str, str]]:
    """The recurrence and outcome evidence as (key, value) rows."""
    from mcu_nlp.root_causes.evidence import RANK_BASIS

    evidence = card.evidence
    if evidence is None:
        return []
    rec = evidence.recurrence
    facts = []
    if card.rank is not None:
        facts.append(("Место в рейтинге", f"№ {card.rank} — по: {RANK_BASIS}"))
    if rec:
        facts.append(("Повторы", (
            f"{rec['appeals_at_repeat_places']} из {rec['appeals']} обращений — в местах с "
            f"повторами ({rec['places_with_repeats']} мест); повторов {rec['repeats']}; после "
            f"ответа «выполнено» — {rec['repeats_after_done']} "
            f"({rec['reopened_share']:.1%} обращений); ответов «выполнено» с повтором в "
            f"течение {rec['window_days']:g} дней: {rec['done_not_held']} из "
            f"{rec['done_answers']} ({rec['done_not_held_share']:.0%})")))
        for place in rec.get("chronic_places", [])[:3]:
            history = ", ".join(
                f"{e['created_at'][8:10]}.{e['created_at'][5:7]} {e['outcome']}"
                + (" (повтор после «выполнено»)" if e["after_fix"] else "")
                for e in place["history"])
            facts.append(("Хроническое место", f"{place['place']} — {place['topic']}: "
                          f"{place['appeals']} обращений; {history}"))
    if evidence.outcomes:
        facts.append(("Ответы", "; ".join(f"{o['label_ru']} {o['count']} ({o['share']:.0%})"
                                          for o in evidence.outcomes)))
    if evidence.fixes_not_holding:
        facts.append(("Исправления не держатся", "; ".join(
            f"{f['department']}: {f['not_held']} из {f['done_answers']} «выполнено»"
            for f in evidence.fixes_not_holding[:3])))
    if evidence.planned_not_arrived:
        facts.append(("Запланировано, но повтор", "; ".join(
            f"{p['place']} — {p['programme'] or 'программа не названа'}"
            + (f" {p['planned_year']}" if p["planned_year"] else "")
            + f" (ответ {p['answered_at'] or '—'}, повтор {p['repeat_at']})"
            for p in evidence.planned_not_arrived[:3])))
    refusal = evidence.out_of_competence
    if refusal:
        facts.append(("Не в компетенции",
                      f"{count_ru(refusal['count'], 'отказ', 'отказа', 'отказов')}; "
                      + (refusal.get("proposal") or "")))
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
        answers = _answer_examples(card)
        if answers:
            document.add_heading("Примеры ответов", level=2)
            for example in answers:
                document.add_paragraph(example, style="List Bullet")
        document.add_heading("Этапы", level=2)
        if roadmap_basis(card) == "generic":
            document.add_paragraph(GENERIC_NOTE)
        stages = document.add_table(rows=1, cols=5)
        stages.style = "Table Grid"
        for cell, name in zip(stages.rows[0].cells,
                              ("Этап", "Ответственный", "Срок", "Целевой показатель", "Основание"),
                              strict=True):
            cell.text = name
        for stage in suggest_stages(card, start):
            cells = stages.add_row().cells
            cells[0].text, cells[1].text = stage.name, stage.owner
            cells[2].text, cells[3].text = f"{stage.deadline:%d.%m.%Y}", stage.result
            cells[4].text = stage.basis + (f" Предложение правила: {stage.proposal}"
                                           if stage.proposal else "")
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
        parts.append("</ul>")
        answers = _answer_examples(card)
        if answers:
            parts.append("<h3>Примеры ответов</h3><ul>")
            parts += [f"<li>{esc(example)}</li>" for example in answers]
            parts.append("</ul>")
        parts.append("<h3>Этапы</h3>")
        if roadmap_basis(card) == "generic":
            parts.append(f"<p>{esc(GENERIC_NOTE)}</p>")
        parts.append("<table><tr><th>Этап</th><th>Ответственный</th>"
                     "<th>Срок</th><th>Целевой показатель</th><th>Основание</th></tr>")
        for stage in suggest_stages(card, start):
            proposal = (f"<br><b>Предложение правила:</b> {esc(stage.proposal)}"
                        if stage.proposal else "")
            parts.append(f"<tr><td>{esc(stage.name)}</td><td contenteditable='true'>"
                         f"{esc(stage.owner)}</td><td contenteditable='true'>"
                         f"{stage.deadline:%d.%m.%Y}</td><td contenteditable='true'>"
                         f"{esc(stage.result)}</td><td>{esc(stage.basis)}{proposal}</td></tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(cards: Sequence[RootCause], path: str | Path, *, start: date | None = None) -> Path:
    """Write :func:`render_html` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(cards, start=start), encoding="utf-8")
    return path
