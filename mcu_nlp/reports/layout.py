"""The note as a sequence of blocks (headings, paragraphs, tables, figures) in Russian.

The DOCX and HTML writers only render these blocks, so both formats always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from mcu_nlp.reports.charts import note_charts
from mcu_nlp.reports.note import AnalyticalNote, CountRow
from mcu_nlp.reports.routing_quality import RoutingPrecisionSection

__all__ = ["Block", "Bullets", "Figure", "Heading", "Paragraph", "Table", "note_blocks"]


@dataclass(slots=True)
class Heading:
    """A section heading (level 0 is the title)."""

    text: str
    level: int = 1


@dataclass(slots=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str
    italic: bool = False


@dataclass(slots=True)
class Bullets:
    """A bulleted list."""

    items: list[str]


@dataclass(slots=True)
class Table:
    """A table with a header row; numbers already formatted."""

    header: list[str]
    rows: list[list[str]]
    widths: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Figure:
    """A PNG chart with a caption."""

    png: bytes
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def fmt_int(value: float | int | None) -> str:
    """12 345 (thin spaces), or a dash."""
    return "—" if value is None else f"{int(value):,}".replace(",", "\u202f")


def fmt_share(value: float | None) -> str:
    """A share in [0, 1] as «62,6 %», or a dash."""
    return "—" if value is None else f"{100 * value:.1f}\u00a0%".replace(".", ",")


def fmt_num(value: float | None, digits: int = 1) -> str:
    """A number with a decimal comma, or a dash."""
    return "—" if value is None else f"{value:.{digits}f}".replace(".", ",")


def fmt_change(row: CountRow) -> str:
    """«+12 (+5,3 %)» or «+12 (нов.)» when the previous count was 0."""
    pct = "нов." if row.change_pct is None else f"{row.change_pct:+.1f}\u00a0%".replace(".", ",")
    return f"{row.change:+d} ({pct})"


def _day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d.%m.%Y")


def _count_table(rows: list[CountRow], first: str) -> Table:
    return Table([first, "Отчётный период", "Предыдущий период", "Изменение"],
                 [[r.name, fmt_int(r.current), fmt_int(r.previous), fmt_change(r)]
                  for r in rows], widths=[8.0, 2.6, 2.6, 3.0])


def _quality_table(note: AnalyticalNote) -> Table:
    q, p = note.quality, note.quality_previous
    spec = [
        ("Поступило сообщений", "received", fmt_int),
        ("Срок ответа истёк в периоде", "due", fmt_int),
        ("  из них отвечено в срок", "answered_in_time", fmt_int),
        ("Доля ответов в срок", "in_time_share", fmt_share),
        ("Медианное время до первого ответа, дней", "median_first_answer_days", fmt_num),
        ("  то же, рабочих дней", "median_first_answer_working_days", fmt_num),
        ("Закрыто сообщений", "closed", fmt_int),
        ("  решение подтверждено заявителем", "satisfied", fmt_int),
        ("  закрыто автоматически", "auto_closed", fmt_int),
        ("Доля подтверждённых решений", "satisfied_share", fmt_share),
        ("Доля переадресованных", "rerouted_share", fmt_share),
        ("Доля повторных обращений заявителя", "reopened_share", fmt_share),
        ("Без ответа на конец периода", "open_end", fmt_int),
        ("  из них просрочено", "overdue_open", fmt_int),
        ("  под риском просрочки", "at_risk", fmt_int),
    ]
    return Table(["Показатель", "Отчётный период", "Предыдущий период"],
                 [[label, f(q.get(key)), f(p.get(key))] for label, key, f in spec],
                 widths=[9.0, 3.5, 3.5])


def _rating_table(note: AnalyticalNote, limit: int) -> Table:
    rows = []
    for r in note.rating[:limit]:
        rows.append([str(r.rank) if r.rank else "—", r.department,
                     fmt_num(r.score), fmt_share(r.timeliness), fmt_share(r.satisfaction),
                     fmt_share(r.routing), fmt_share(r.backlog), fmt_int(r.received)])
    return Table(["№", "Ответственный получатель", "Балл", "В срок", "Подтвер­ждено",
                  "Без переадре­сации", "Без просрочки", "Посту­пило"], rows,
                 widths=[1.0, 5.6, 1.3, 1.7, 2.0, 2.1, 1.8, 1.7])


_LABELS_RU = {"department": "Получатель", "category": "Тематика", "reason": "Причина"}
_STATUS_RU = {"ok": "цель подтверждена", "below_target": "ниже цели",
              "insufficient": "мало проверенных"}


def _threshold(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}".replace(".", ",")


def _routing_blocks(section: RoutingPrecisionSection, number: int) -> list[Block]:
    """«Точность автоматической маршрутизации»: the audit sample's estimate per label and month."""
    share = "" if section.audit_share is None else f" ({fmt_share(section.audit_share)} решений)"
    blocks: list[Block] = [
        Heading(f"{number}. Точность автоматической маршрутизации"),
        Paragraph(f"Точность автоматических решений оценивается по случайной выборке{share}, "
                  "которую проверяют операторы: подтверждённое решение — верное, исправленное — "
                  "ошибка. Интервал — 95 % (Клоппер — Пирсон); нижняя граница — односторонняя, "
                  f"с доверием {fmt_share(section.confidence)}. Цель — "
                  f"{fmt_share(section.target)}: если по {section.min_evidence} и более "
                  "проверенным решениям нижняя граница ниже цели, порог уверенности модели "
                  "повышается автоматически. Исправления остальных автоматических решений "
                  "учитывают только замеченные ошибки и в оценку не входят."),
    ]
    if section.rows:
        rows = []
        for r in section.rows:
            interval = ("—" if r.interval_low is None else
                        f"{fmt_share(r.interval_low)} – {fmt_share(r.interval_high)}")
            later = (f"{fmt_int(r.later_corrected)} из {fmt_int(r.later_base)}"
                     if r.later_base else "—")
            rows.append([_LABELS_RU.get(r.label, r.label), f"{r.month[5:]}.{r.month[:4]}",
                         fmt_int(r.auto_routed), fmt_int(r.audited), fmt_int(r.audited_correct),
                         fmt_share(r.estimate), interval, fmt_share(r.lower_bound), later])
        blocks.append(Table(["Метка", "Месяц", "Авто", "Прове­рено", "Верно", "Точность",
                             "95 % интервал", "Нижняя граница", "Исправлено позже"], rows,
                            widths=[2.4, 1.5, 1.3, 1.4, 1.3, 1.6, 3.0, 1.7, 2.2]))
    else:
        blocks.append(Paragraph("Автоматически направленных сообщений в эти месяцы нет."))
    if section.thresholds:
        blocks.append(Table(
            ["Метка", "Порог модели", "Повышен до", "Действует", "Состояние"],
            [[_LABELS_RU.get(t.label, t.label), _threshold(t.bundle_threshold),
              _threshold(t.override), _threshold(t.effective_threshold),
              _STATUS_RU.get(t.status, t.status)] for t in section.thresholds],
            widths=[3.0, 2.5, 2.5, 2.5, 4.0]))
    return blocks


def note_blocks(note: AnalyticalNote, rating_rows: int = 20) -> list[Block]:
    """The note as blocks, charts included (rendered here, once for every format)."""
    charts = note_charts(note)
    t, q = note.totals, note.quality
    start, end = _day(note.period["start"]), _day(note.period["end"])
    pstart, pend = _day(note.previous_period["start"]), _day(note.previous_period["end"])
    blocks: list[Block] = [
        Heading(note.title, 0),
        Paragraph(f"Отчётный период: {start} – {end}. Период сравнения: {pstart} – {pend}. "
                  f"Сформировано {note.generated_at.replace('T', ' ')}.", italic=True),
        Heading("1. Основные показатели"),
        Bullets([
            f"Поступило сообщений: {fmt_int(t.current)} (предыдущий период: "
            f"{fmt_int(t.previous)}; изменение {fmt_change(t)}).",
            f"Доля ответов в установленный срок: {fmt_share(q.get('in_time_share'))} "
            f"(срок истёк у {fmt_int(q.get('due'))} сообщений).",
            f"Доля решений, подтверждённых заявителями: {fmt_share(q.get('satisfied_share'))} "
            f"из {fmt_int(q.get('closed'))} закрытых.",
            f"На конец периода без ответа {fmt_int(q.get('open_end'))} сообщений, из них "
            f"просрочено {fmt_int(q.get('overdue_open'))}, под риском просрочки "
            f"{fmt_int(q.get('at_risk'))}.",
        ]),
        Figure(charts["daily"], "Рисунок 1. Поступление сообщений по дням"),
        Heading("2. Поступление по каналам"),
        _count_table(note.by_channel, "Канал"),
        Heading("3. Тематики"),
        _count_table(note.top_topics, "Тематика"),
    ]
    figure_no = 2
    if "topics" in charts:
        blocks.append(Figure(charts["topics"], f"Рисунок {figure_no}. Основные тематики"))
        figure_no += 1
    blocks += [Heading("4. Территории"), _count_table(note.top_territories, "Территория")]
    if "territories" in charts:
        blocks.append(Figure(charts["territories"], f"Рисунок {figure_no}. Территории"))
        figure_no += 1
    blocks.append(Heading("5. Рост количества сообщений: причины и факторы"))
    if note.alerts:
        blocks.append(Bullets([f"{a.title}. {a.explanation}".strip() for a in note.alerts]))
    else:
        blocks.append(Paragraph("Сигналы о росте за период не поступали."))
    if note.growing_topics:
        blocks.append(Paragraph("Наибольший прирост относительно предыдущего периода:"))
        blocks.append(_count_table(note.growing_topics, "Тематика"))
    blocks.append(Heading("6. Первопричины"))
    if note.root_causes:
        items = []
        for c in note.root_causes:
            size = f" ({fmt_int(c.size)} сообщ.)" if c.size is not None else ""
            example = f" Пример: «{c.examples[0]}»" if c.examples else ""
            items.append(f"{c.title}{size}. {c.description}{example}".strip())
        blocks.append(Bullets(items))
    else:
        blocks.append(Paragraph("Анализ первопричин за период не проводился."))
    blocks += [
        Heading("7. Сроки и качество ответов, удовлетворённость"),
        _quality_table(note),
        Figure(charts["outcomes"], f"Рисунок {figure_no}. Итоги закрытых сообщений"),
    ]
    figure_no += 1
    blocks += [Heading("8. Рейтинг ответственных получателей"),
               Paragraph("Балл = 100 × взвешенное среднее долей: ответы в срок, подтверждённые "
                         "решения, сообщения без переадресации, открытые сообщения без "
                         "просрочки (методика — docs/department_rating.md). Получатели с малым "
                         "числом сообщений не ранжируются."),
               _rating_table(note, rating_rows)]
    if "rating" in charts:
        blocks.append(Figure(charts["rating"], f"Рисунок {figure_no}. Рейтинг и ответы в срок"))
    section = 9
    if note.routing_quality is not None:
        blocks += _routing_blocks(note.routing_quality, section)
        section += 1
    blocks += [Heading(f"{section}. Методика и оговорки"),
               Bullets([f"Срок ответа, {k}: {v}." for k, v in note.deadlines.items()]
                       + ["Рабочие дни — по производственному календарю РФ (праздники и "
                          "переносы).", *note.caveats,
                          "Персональные данные в тексте справки обезличены."])]
    return blocks
