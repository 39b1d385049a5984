"""Which source column becomes which field of an :class:`~mcu_nlp.records.Appeal`.

A :class:`ColumnMapping` is all a curator has to write to read a new export. The defaults below
(:data:`IM_EXPORT`, :data:`POS_EXPORT`, :data:`FZ59_EXPORT`, :data:`SPB_PORTAL`) follow the column
names of the real exports we have seen; a municipality whose export differs copies one with
:func:`dataclasses.replace` and changes the names that differ.

Column names are matched loosely: case, ``ё``/``е``, spaces and punctuation are ignored, so
``«Рег. номер»`` matches ``«Рег.номер»`` and ``«рег номер»``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mcu_nlp.ingest.result import IngestError
from mcu_nlp.records import Channel

_NON_WORD = re.compile(r"[\W_]+")


def column_key(name: object) -> str:
    """The loose form of a column name used for matching (``«Рег. номер»`` → ``"регномер"``)."""
    return _NON_WORD.sub("", str(name).replace("\ufeff", "").casefold().replace("ё", "е"))


@dataclass(frozen=True)
class ColumnMapping:
    """How the columns of one export map onto an appeal.

    Attributes:
        text: Column with the citizen's text (required).
        created_at: Column with the filing time (required).
        id: Column with the source-side id; ``None`` derives a stable id from the filing time and
            text, so re-sending the same file stays idempotent.
        territory: Column, or columns tried in order (first non-empty value wins).
        address: Column, or columns joined with ``", "`` (e.g. street + house).
        channel: Column naming the channel per row; ``None`` uses ``default_channel``.
        default_channel: Channel for rows without a recognised channel value.
        source: Name of the exporting system, stored with every appeal (ids are unique within it).
        labels: Label name → column, for labels the source already carries (topic, department).
        rename: Source column → metadata key, for the columns that go to metadata under a domain
            name. Every column not used above goes to metadata, under its own name unless renamed.
        date_fields: Metadata keys holding timestamps; stored as ISO 8601 strings.
        int_fields: Metadata keys holding whole numbers.
        float_fields: Metadata keys holding decimals (coordinates).
        html_fields: Metadata keys whose text may contain HTML (answers); stripped like the text.
        html_text: Whether texts may contain HTML (ПОС, 59-ФЗ): tags and entities are stripped.
        strip_excel_quote: Drop the leading ``'`` that Excel exports put before text cells.

    Dates are read as ISO 8601 first, then in the Russian day-first forms (``24.12.2025 20:06``);
    a time with a UTC offset keeps its wall-clock time and drops the offset.
    """

    text: str
    created_at: str
    id: str | None = None
    territory: str | Sequence[str] | None = None
    address: str | Sequence[str] | None = None
    channel: str | None = None
    default_channel: Channel = Channel.OTHER
    source: str = "generic"
    labels: Mapping[str, str] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)
    date_fields: Sequence[str] = ()
    int_fields: Sequence[str] = ()
    float_fields: Sequence[str] = ()
    html_fields: Sequence[str] = ()
    html_text: bool = False
    strip_excel_quote: bool = False

    def resolve(self, header: Sequence[str]) -> ResolvedMapping:
        """Find the mapped columns in ``header``.

        Raises:
            IngestError: A required column (text, created_at, or id when mapped) is missing.
        """
        index: dict[str, int] = {}
        for position, name in enumerate(header):
            index.setdefault(column_key(name), position)

        def find(name: str | None) -> int | None:
            return None if name is None else index.get(column_key(name))

        required = {"text": self.text, "created_at": self.created_at, "id": self.id}
        missing = [f"{role} ← «{name}»" for role, name in required.items()
                   if name is not None and find(name) is None]
        if missing:
            raise IngestError(
                f"required column(s) not found: {', '.join(missing)}; the file has columns "
                f"{list(header)[:40]}. Pass a ColumnMapping naming the right columns.")

        def find_many(names: str | Sequence[str] | None) -> tuple[int, ...]:
            if names is None:
                return ()
            names = (names,) if isinstance(names, str) else tuple(names)
            return tuple(p for p in (find(n) for n in names) if p is not None)

        labels = {label: p for label, column in self.labels.items()
                  if (p := find(column)) is not None}
        territory, address = find_many(self.territory), find_many(self.address)
        channel = find(self.channel)
        core = {find(self.text), find(self.created_at), find(self.id), channel, *labels.values()}
        # A single territory/address column is the field itself; the parts of a composite
        # one are also kept in metadata, so no source value is lost.
        if len(territory) == 1:
            core.add(territory[0])
        if len(address) == 1:
            core.add(address[0])
        renamed = {column_key(k): v for k, v in self.rename.items()}
        metadata: dict[str, int] = {}
        for position, name in enumerate(header):
            if position in core or not str(name).strip():
                continue
            key = renamed.get(column_key(name), str(name).strip())
            if key in metadata:  # a repeated column name: keep both values
                key = f"{key}_{position + 1}"
            metadata[key] = position
        return ResolvedMapping(
            mapping=self, text=find(self.text), created_at=find(self.created_at),  # type: ignore[arg-type]
            id=find(self.id), territory=territory, address=address, channel=channel,
            labels=labels, metadata=metadata)


@dataclass(frozen=True)
class ResolvedMapping:
    """A :class:`ColumnMapping` bound to the column positions of one file's header."""

    mapping: ColumnMapping
    text: int
    created_at: int
    id: int | None
    territory: tuple[int, ...]
    address: tuple[int, ...]
    channel: int | None
    labels: dict[str, int]
    metadata: dict[str, int]


_CHANNEL_ALIASES = {
    **{column_key(v): Channel.POS for v in ("пос", "pos", "госуслуги", "решаем вместе",
                                            "платформа обратной связи")},
    **{column_key(v): Channel.FZ59 for v in ("59-фз", "59fz", "59-fz", "обращение", "фз59")},
    **{column_key(v): Channel.IM for v in ("им", "im", "инцидент менеджмент", "инцидент",
                                           "vk", "вконтакте", "ok", "одноклассники", "telegram",
                                           "телеграм")},
    **{column_key(v): Channel.GOSPABLIKI for v in ("госпаблики", "gospabliki", "госпаблик")},
    **{column_key(v): Channel.PORTAL for v in ("portal", "портал")},
    column_key("other"): Channel.OTHER,
}


def parse_channel(value: str | None, default: Channel) -> Channel | None:
    """The channel a source value names, or ``None`` when it names none we know.

    ``default`` is returned for an empty value.
    """
    if value is None or not value.strip():
        return default
    return _CHANNEL_ALIASES.get(column_key(value))


IM_EXPORT = ColumnMapping(
    id="ID", text="Текст инцидента", created_at="Дата создания",
    territory=("Муниципалитет", "Населенный пункт"), address=("Улица", "Дом"),
    default_channel=Channel.IM, source="im_export",
    labels={"topic_group": "Группа тем", "topic": "Тема", "department": "Отдел",
            "executor": "Исполнитель"},
    rename={"Номер инцидента": "incident_number", "Дата окончания": "closed_dt",
            "Регион": "region", "Муниципалитет": "municipality",
            "Населенный пункт": "settlement", "Улица": "street", "Дом": "house",
            "Объект": "object", "Тип инцидента": "incident_type", "Итог": "outcome",
            "Текущий шаг инцидента": "last_status", "Причина закрытия": "close_reason",
            "Аудитория": "audience", "Вовлеченность": "engagement",
            "1ый ответ ПИ": "answer_1", "2ой ответ ПИ": "answer_2", "3ий ответ ПИ": "answer_3"},
    date_fields=("closed_dt",), int_fields=("audience", "engagement"),
    strip_excel_quote=True,
)
"""Инцидент Менеджмент export, column names as in the ЦУР system's XLSX export."""

POS_EXPORT = ColumnMapping(
    id="Номер", text="Текст сообщения", created_at="Дата создания",
    territory=("Муниципальное образование", "Населенный пункт"), address="Адрес",
    default_channel=Channel.POS, source="pos_export",
    labels={"topic": "Рубрика", "subtopic": "Подрубрика", "department": "Ответственный"},
    rename={"Статус": "last_status", "Дата ответа": "first_answer_dt",
            "Текст ответа": "answer_text", "Срок ответа": "due_dt",
            "Дата изменения статуса": "last_status_dt", "Оценка": "rating",
            "Муниципальное образование": "municipality", "Населенный пункт": "settlement"},
    date_fields=("first_answer_dt", "due_dt", "last_status_dt"), int_fields=("rating",),
    html_fields=("answer_text",), html_text=True, strip_excel_quote=True,
)
"""ПОС («Решаем вместе») message export: a default a curator overrides where names differ."""

FZ59_EXPORT = ColumnMapping(
    id="Рег. номер", text="Содержание", created_at="Дата регистрации",
    territory=("Территория", "Муниципальное образование", "Район"), address="Адрес заявителя",
    default_channel=Channel.FZ59, source="fz59_export",
    labels={"topic": "Тематика", "department": "Исполнитель"},
    rename={"Вид обращения": "appeal_kind", "Форма поступления": "intake_form",
            "Статус": "last_status", "Дата ответа": "first_answer_dt",
            "Срок исполнения": "due_dt", "Текст ответа": "answer_text",
            "Территория": "territory_raw", "Муниципальное образование": "municipality",
            "Район": "district"},
    date_fields=("first_answer_dt", "due_dt"),
    html_fields=("answer_text",), html_text=True, strip_excel_quote=True,
)
"""59-ФЗ appeal register export (СЭД/ССТУ style): «Адрес заявителя» stands in for the place of
the problem, which formal appeals rarely give separately. A default a curator overrides."""

SPB_PORTAL = ColumnMapping(
    id="id", text="text", created_at="created_at", territory="district", address="address",
    default_channel=Channel.PORTAL, source="spb_portal",
    labels={"category": "category", "reason": "reason", "department": "department",
            "department_group": "department_group", "city_object": "city_object"},
    date_fields=("first_answer_dt", "last_answer_dt", "last_status_dt"),
    int_fields=("n_user_messages", "category_id", "reason_id", "n_reason_changes", "n_routes",
                "n_answers", "dup_group_size"),
    float_fields=("latitude", "longitude"),
)
"""The «Наш Санкт-Петербург» portal file in ``shared/data/spb_our_city_appeals``."""

KNOWN_EXPORTS: dict[str, ColumnMapping] = {
    "spb_portal": SPB_PORTAL, "im": IM_EXPORT, "pos": POS_EXPORT, "fz59": FZ59_EXPORT,
}

_GENERIC_CANDIDATES = {
    "id": ("id", "номер", "number", "рег номер", "регистрационный номер", "uid"),
    "text": ("text", "текст", "message", "сообщение", "содержание", "текст обращения",
             "текст сообщения", "body"),
    "created_at": ("created_at", "created", "date", "datetime", "дата", "дата создания",
                   "дата регистрации", "дата обращения", "timestamp"),
    "territory": ("territory", "district", "район", "территория", "муниципалитет",
                  "муниципальное образование", "населенный пункт"),
    "address": ("address", "адрес"),
    "channel": ("channel", "канал", "источник"),
}


def detect_kind(header: Sequence[str]) -> str:
    """Name the known export whose required columns all appear in ``header``, else ``generic``."""
    keys = {column_key(name) for name in header}
    for kind in ("im", "pos", "fz59", "spb_portal"):
        mapping = KNOWN_EXPORTS[kind]
        needed = [mapping.text, mapping.created_at, mapping.id]
        if kind == "spb_portal":  # its core names are generic; its labels give it away
            needed += list(mapping.labels.values()) + ["district"]
        if all(column_key(n) in keys for n in needed if n is not None):
            return kind
    return "generic"


def guess_mapping(header: Sequence[str]) -> ColumnMapping:
    """A mapping for an unknown export from common English and Russian column names.

    Raises:
        IngestError: No text or date column could be recognised.
    """
    keys = {column_key(name): name for name in header}

    def pick(role: str) -> str | None:
        return next((keys[column_key(c)] for c in _GENERIC_CANDIDATES[role]
                     if column_key(c) in keys), None)

    text, created_at = pick("text"), pick("created_at")
    if text is None or created_at is None:
        raise IngestError(
            "cannot tell which columns hold the text and the filing date; the file has columns "
            f"{list(header)[:40]}. Pass a ColumnMapping(text=..., created_at=...).")
    return ColumnMapping(text=text, created_at=created_at, id=pick("id"),
                         territory=pick("territory"), address=pick("address"),
                         channel=pick("channel"))
