"""The figures of the analytical note (аналитическая справка), п. 2.10 of the Положение.

:func:`build_note` is pure: it takes an appeals frame (layout of
``mcu_nlp.ingest.appeals_to_frame``), a period, and optionally the growth alerts of
``mcu_nlp.trends`` and the root causes of ``mcu_nlp.root_causes``, and returns an
:class:`AnalyticalNote` of plain data that the DOCX/HTML writers, the ЦУР export and an API
router all use. Free text that comes in with alerts and root causes is masked here
(``mcu_nlp.text.masking.mask_personal_data``), so nothing downstream can leak it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from mcu_nlp.reports.periods import Period, previous_period
from mcu_nlp.reports.routing_quality import RoutingPrecisionSection
from mcu_nlp.sla.config import SlaConfig, load_sla_config
from mcu_nlp.sla.quality import quality_summary
from mcu_nlp.sla.rating import DepartmentScore, department_rating, rating_records
from mcu_nlp.sla.timeliness import annotate_sla, to_timestamps
from mcu_nlp.trends.counts import MISSING_VALUE, effective_label

__all__ = ["AnalyticalNote", "CountRow", "NoteAlert", "NoteRootCause", "build_note"]

CHANNEL_NAMES = {
    "59-fz": "Обращения (59-ФЗ)", "pos": "ПОС «Решаем вместе»", "im": "Инцидент Менеджмент",
    "gospabliki": "Госпаблики", "portal": "Городской портал", "other": "Прочие",
}


class CountRow(BaseModel):
    """Appeals of one value (channel, topic, territory) in the period and the previous one."""

    name: str
    code: str | None = Field(default=None, description="machine value (channel code)")
    current: int
    previous: int
    change: int
    change_pct: float | None = Field(description="None when the previous count is 0")


class NoteAlert(BaseModel):
    """A growth alert as the note shows it (text masked)."""

    title: str
    explanation: str = ""


class NoteRootCause(BaseModel):
    """A root cause as the note shows it (text masked)."""

    title: str
    size: int | None = None
    description: str = ""
    examples: list[str] = Field(default_factory=list)


class AnalyticalNote(BaseModel):
    """Everything the weekly/quarterly note says, as plain data."""

    title: str
    period: dict[str, str]
    previous_period: dict[str, str]
    generated_at: str
    data_first_day: str | None
    data_last_day: str | None
    totals: CountRow
    daily: list[dict[str, Any]]
    by_channel: list[CountRow]
    top_topics: list[CountRow]
    top_territories: list[CountRow]
    growing_topics: list[CountRow]
    alerts: list[NoteAlert]
    root_causes: list[NoteRootCause]
    quality: dict[str, float | int | None]
    quality_previous: dict[str, float | int | None]
    rating: list[DepartmentScore]
    deadlines: dict[str, str]
    deadline_rules: dict[str, dict[str, Any]]
    caveats: list[str]
    routing_quality: RoutingPrecisionSection | None = Field(
        default=None, description="precision of auto-routing (notes built from the store)")


def _mask(text: object) -> str:
    # Imported late so the figures work without the text stack; masking itself is never skipped.
    from mcu_nlp.text.masking import mask_personal_data

    return mask_personal_data(str(text)) if text is not None else ""


def _field(item: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(item, Mapping) and item.get(name) is not None:
            return item[name]
        if not isinstance(item, Mapping) and getattr(item, name, None) is not None:
            return getattr(item, name)
    return default


_CUTS_RU = {"topic_group": "группа тем", "topic": "тема", "department": "получатель",
            "territory": "территория", "channel": "канал", "total": "всего"}


def _alert_title(alert: Any) -> str:
    title = _field(alert, "title", "name")
    if title is not None:
        return str(title)
    # A mcu_nlp.trends TrendAlert (or its as_dict()): the cut, its value and the days.
    dimension, value = _field(alert, "dimension"), _field(alert, "value")
    if value is None:
        return str(alert)
    first, last = _field(alert, "first_day"), _field(alert, "last_day")
    span = f" ({first} – {last})" if first and last and first != last else \
        (f" ({first})" if first else "")
    return f"Рост: {_CUTS_RU.get(str(dimension), dimension)} «{value}»{span}"


def _alert_explanation(alert: Any) -> str:
    explanation = _field(alert, "explanation", "description", default="")
    summary = getattr(explanation, "summary", None)
    text = summary() if callable(summary) else str(explanation)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) if text else ""


def _alerts(alerts: Iterable[Any] | None) -> list[NoteAlert]:
    return [NoteAlert(title=_mask(_alert_title(a)), explanation=_mask(_alert_explanation(a)))
            for a in alerts or ()]


def _root_causes(causes: Iterable[Any] | None) -> list[NoteRootCause]:
    out = []
    for c in causes or ():
        size = _field(c, "size", "count", "n_appeals")
        examples = _field(c, "examples", "example_texts", default=[]) or []
        out.append(NoteRootCause(
            title=_mask(_field(c, "title", "name", "label", default=str(c))),
            size=int(size) if size is not None else None,
            description=_mask(_field(c, "description", "explanation", "summary", default="")),
            examples=[_mask(e) for e in list(examples)[:3]],
        ))
    return out


def _values(frame: pd.DataFrame, name: str) -> pd.Series:
    """A dimension's values: a plain column, else ``label_<name>``/``pred_<name>``."""
    if name in frame.columns:
        values = frame[name].astype("string").str.strip().replace("", pd.NA)
    else:
        try:
            values = effective_label(frame, name).astype("string")
        except KeyError:
            values = pd.Series(pd.NA, index=frame.index, dtype="string")
    return values.fillna(MISSING_VALUE).astype(str)


def _count_rows(current: pd.Series, previous: pd.Series, top: int | None = None,
                names: Mapping[str, str] | None = None) -> list[CountRow]:
    both = pd.concat([current.value_counts().rename("current"),
                      previous.value_counts().rename("previous")], axis=1).fillna(0).astype(int)
    both = both.sort_values(["current", "previous"], ascending=False)
    if top is not None:
        both = both.head(top)
    rows = []
    for name, r in both.iterrows():
        prev, cur = int(r["previous"]), int(r["current"])
        rows.append(CountRow(name=(names or {}).get(str(name), str(name)),
                             code=str(name) if names else None, current=cur,
                             previous=prev, change=cur - prev,
                             change_pct=round(100.0 * (cur - prev) / prev, 1) if prev else None))
    return rows


def build_note(frame: pd.DataFrame, period: Period, *, config: SlaConfig | None = None,
               alerts: Iterable[Any] | None = None, root_causes: Iterable[Any] | None = None,
               topic: str = "category", territory: str = "territory",
               department: str = "department", top: int | None = 10,
               municipality: str | None = None,
               now: datetime | None = None,
               routing_quality: RoutingPrecisionSection | None = None) -> AnalyticalNote:
    """Compute the note's figures for ``period``.

    Args:
        frame: Appeals (layout of ``appeals_to_frame``); not modified.
        period: The reporting period (see :func:`mcu_nlp.reports.periods.report_period`).
        config: SLA configuration (packaged defaults when None).
        alerts: Growth alerts (objects or dicts with ``title`` and ``explanation``).
        root_causes: Root causes (``title``, ``size``, ``description``, ``examples``).
        topic: Label (or column) that names the topic.
        territory: Column (or label) that names the territory.
        department: Label (or column) that names the responsible department.
        top: How many topics and territories to list (None: all).
        municipality: Name for the title.
        now: Generation time (for reproducible output in tests).
        routing_quality: The precision of auto-routing
            (:func:`mcu_nlp.services.routing_quality.note_section`); the section is left out
            when None (a note built from an export file knows no routing).
    """
    config = config or load_sla_config()
    work = frame.copy()
    work["_topic"] = _values(work, topic)
    work["_territory"] = _values(work, territory)
    work["_department"] = _values(work, department)
    cols = config.columns.model_copy(update={"department": "_department", "topic": "_topic",
                                             "territory": "_territory"})
    config = config.model_copy(update={"columns": cols})
    created = to_timestamps(work[cols.created_at])
    before = previous_period(period)

    def in_period(p: Period) -> pd.Series:
        return (created >= pd.Timestamp(p.start)) & (created < p.as_of)

    cur, prev = work[in_period(period)], work[in_period(before)]
    annotated = annotate_sla(work, period.as_of, config)
    annotated_prev = annotate_sla(work, before.as_of, config)

    days = pd.date_range(period.start, period.end, freq="D")
    daily_cur = created[in_period(period)].dt.normalize().value_counts()
    daily_prev = created[in_period(before)].dt.normalize().value_counts()
    daily = [{"date": d.date().isoformat(), "current": int(daily_cur.get(d, 0)),
              "previous": int(daily_prev.get(d - pd.Timedelta(days=(period.start
                                                                     - before.start).days), 0))}
             for d in days]

    topics_all = _count_rows(cur["_topic"], prev["_topic"])
    growing = sorted((r for r in topics_all if r.change > 0), key=lambda r: -r.change)[:5]
    channels = work[cols.channel].astype(str) if cols.channel in work else \
        pd.Series("other", index=work.index)
    rating = department_rating(annotated, period.start, period.end, config)

    caveats = []
    first = created.min()
    last = created.max()
    if pd.notna(first) and pd.Timestamp(before.start) < first.normalize():
        caveats.append(f"Данные начинаются {first:%d.%m.%Y}: предыдущий период "
                       f"({before.start:%d.%m.%Y} – {before.end:%d.%m.%Y}) охвачен не полностью, "
                       "сравнение с ним завышает рост.")
    if pd.notna(last) and last < period.as_of - pd.Timedelta(days=1):
        caveats.append(f"Данные заканчиваются {last:%d.%m.%Y}: последние дни периода неполные.")
    caveats.append("Ответственный получатель — исполнитель для закрытых сообщений и текущий "
                   "координатор для открытых; число переадресаций и статусы — на дату выгрузки.")

    place = f" ({municipality})" if municipality else ""
    return AnalyticalNote(
        title=f"Аналитическая справка по обращениям и сообщениям граждан{place}: "
              f"{period.title()}",
        period=period.to_dict(),
        previous_period=before.to_dict(),
        generated_at=(now or datetime.now()).replace(microsecond=0).isoformat(),
        data_first_day=first.date().isoformat() if pd.notna(first) else None,
        data_last_day=last.date().isoformat() if pd.notna(last) else None,
        totals=_count_rows(pd.Series("Всего", index=cur.index),
                           pd.Series("Всего", index=prev.index))[0]
        if len(cur) or len(prev) else CountRow(name="Всего", current=0, previous=0, change=0,
                                                change_pct=None),
        daily=daily,
        by_channel=_count_rows(channels[cur.index], channels[prev.index], names=CHANNEL_NAMES),
        top_topics=topics_all[:top] if top is not None else topics_all,
        top_territories=_count_rows(cur["_territory"], prev["_territory"], top=top),
        growing_topics=growing,
        alerts=_alerts(alerts),
        root_causes=_root_causes(root_causes),
        quality=quality_summary(annotated, period.start, period.end),
        quality_previous=quality_summary(annotated_prev, before.start, before.end),
        rating=rating_records(rating),
        deadlines={CHANNEL_NAMES.get(k, k): v.describe() for k, v in config.deadlines.items()},
        deadline_rules={k: {**v.model_dump(), "text": v.describe()}
                        for k, v in config.deadlines.items()},
        caveats=caveats,
        routing_quality=routing_quality,
    )


def note_period_bounds(note: AnalyticalNote) -> tuple[date, date]:
    """The note's period as dates."""
    return date.fromisoformat(note.period["start"]), date.fromisoformat(note.period["end"])
