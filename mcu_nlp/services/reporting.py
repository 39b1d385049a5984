"""Reporting services: the analytical note, the department rating and the ЦУР export.

The CLI (``mcu-nlp report``, ``mcu-nlp export-cur``) and the API routers are thin faces over
these functions. Appeals come in as one DataFrame through :func:`load_appeals_frame`, which reads
the store when it holds appeals, or an export file, or the reference SPb file; everything after
that is pure (``mcu_nlp.sla``, ``mcu_nlp.reports``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from mcu_nlp.records import Appeal, Channel
from mcu_nlp.reports.cur_export import cur_document, write_cur_export
from mcu_nlp.reports.layout import note_blocks
from mcu_nlp.reports.note import AnalyticalNote, build_note
from mcu_nlp.reports.periods import PeriodKind, report_period
from mcu_nlp.reports.routing_quality import RoutingPrecisionSection
from mcu_nlp.reports.writers import docx_to_pdf, render_docx, render_html
from mcu_nlp.settings import get_settings
from mcu_nlp.sla.config import SlaConfig, load_sla_config
from mcu_nlp.sla.rating import DepartmentScore, department_rating, rating_records
from mcu_nlp.sla.timeliness import annotate_sla
from mcu_nlp.storage.db import redact_url

__all__ = [
    "ReportFormat",
    "build_report",
    "cur_export_document",
    "department_rating_report",
    "export_cur",
    "load_appeals_frame",
    "load_items",
    "render_report",
    "write_report",
]

log = logging.getLogger(__name__)

ReportFormat = Literal["docx", "html", "pdf"]
STORE = "store"


def frame_from_store(url: str) -> pd.DataFrame | None:
    """Every stored appeal as a frame (``label_`` from people, ``pred_`` from the latest model).

    Returns None when the store does not exist or holds no appeals.
    """
    from sqlalchemy import inspect

    from mcu_nlp.storage.db import make_engine
    from mcu_nlp.storage.models import AppealRow

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(AppealRow.__tablename__):
            return None
        with engine.connect() as conn:
            frame, _ = appeals_frame_part(conn)
    finally:
        engine.dispose()
    return None if frame.empty else frame


def appeals_frame_part(conn: Any, *, after: int = 0, upto: int | None = None
                       ) -> tuple[pd.DataFrame, list[int]]:
    """The stored appeals with ``after < id <= upto`` as a frame, and their store ids in row order.

    The layout of :func:`frame_from_store` (which reads every appeal through it), rows ordered by
    store id, so a cached frame grows by appending the part after its newest id.

    Args:
        conn: An open SQLAlchemy connection to the store.
        after: Read appeals with a larger id only.
        upto: Read appeals up to this id (None: all).
    """
    from sqlalchemy import select

    from mcu_nlp.ingest import appeals_to_frame
    from mcu_nlp.storage.models import AppealRow, HumanLabelRow, PredictionRow

    def within(column: Any) -> list[Any]:
        bounds = [column > after] if after else []
        return bounds + ([column <= upto] if upto is not None else [])

    rows = conn.execute(select(AppealRow.id, AppealRow.source, AppealRow.source_id,
                               AppealRow.channel, AppealRow.created_at, AppealRow.text,
                               AppealRow.territory, AppealRow.address, AppealRow.extra)
                        .where(*within(AppealRow.id)).order_by(AppealRow.id)).all()
    if not rows:
        return appeals_to_frame([]), []
    labels, predictions = labels_and_predictions(
        conn, select(HumanLabelRow.appeal_id, HumanLabelRow.label, HumanLabelRow.value,
                     HumanLabelRow.origin).where(*within(HumanLabelRow.appeal_id)),
        select(PredictionRow.appeal_id, PredictionRow.label, PredictionRow.value,
               PredictionRow.recorded_at).where(*within(PredictionRow.appeal_id)))
    appeals = []
    for r in rows:
        try:
            channel = Channel(r.channel)
        except ValueError:
            channel = Channel.OTHER
        appeals.append(Appeal(id=r.source_id, channel=channel, source=r.source,
                              created_at=r.created_at, text=r.text, territory=r.territory,
                              address=r.address, labels=labels.get(r.id, {}),
                              metadata=dict(r.extra or {})))
    frame = appeals_to_frame(appeals)
    position = {r.id: i for i, r in enumerate(rows)}
    by_label: dict[str, dict[int, str]] = {}
    for appeal_id, values in predictions.items():
        if appeal_id in position:  # an appeal stored after its rows were read waits for next time
            for label, value in values.items():
                by_label.setdefault(label, {})[position[appeal_id]] = value
    for label, values in by_label.items():
        frame[f"pred_{label}"] = pd.Series(values, dtype="object").reindex(frame.index)
    return frame, [r.id for r in rows]


def labels_and_predictions(conn: Any, label_query: Any, prediction_query: Any
                           ) -> tuple[dict[int, dict[str, str]], dict[int, dict[str, str]]]:
    """Per appeal id: its human labels (a correction beats the source's) and latest predictions.

    Args:
        conn: An open SQLAlchemy connection to the store.
        label_query: Selects ``appeal_id, label, value, origin`` of human labels.
        prediction_query: Selects ``appeal_id, label, value, recorded_at`` of predictions.
    """
    labels: dict[int, dict[str, str]] = {}
    corrected: set[tuple[int, str]] = set()
    for lab in conn.execute(label_query):
        key = (lab.appeal_id, lab.label)
        if key in corrected:
            continue  # a person's correction beats what the source said
        labels.setdefault(lab.appeal_id, {})[lab.label] = lab.value
        if lab.origin == "correction":
            corrected.add(key)
    latest: dict[tuple[int, str], tuple[Any, str]] = {}
    for pred in conn.execute(prediction_query):
        key = (pred.appeal_id, pred.label)
        if key not in latest or pred.recorded_at >= latest[key][0]:
            latest[key] = (pred.recorded_at, pred.value)
    predictions: dict[int, dict[str, str]] = {}
    for (appeal_id, label), (_, value) in latest.items():
        predictions.setdefault(appeal_id, {})[label] = value
    return labels, predictions


def load_appeals_frame(source: str | Path | None = None) -> pd.DataFrame:
    """The appeals to report on, as a frame in the layout of ``appeals_to_frame``.

    Args:
        source: An export file (any format ``mcu_nlp.ingest.read_appeals`` reads); ``"store"``
            for the store at ``get_settings().store_url``; None for the store when it holds
            appeals, else the reference SPb file (``get_settings().spb_appeals_path()``).

    Raises:
        LookupError: ``"store"`` was asked for and holds no appeals.
        mcu_nlp.ingest.IngestError: The file cannot be read, or no row of it could.
    """
    from mcu_nlp.ingest import IngestError, appeals_to_frame, read_appeals

    settings = get_settings()
    if source is None or str(source) == STORE:
        frame = frame_from_store(settings.store_url)
        if frame is not None:
            log.info("read %d appeals from the store", len(frame))
            return frame
        if source is not None:
            raise LookupError(f"the store at {redact_url(settings.store_url)} holds no appeals")
        source = settings.spb_appeals_path()
        log.info("store is empty; reading the reference file %s", source)
    result = read_appeals(source)
    if result.errors:
        log.warning("%s: %d rows could not be read (first: line %s, %s)", source,
                    len(result.errors), result.errors[0].line, result.errors[0].reason)
    if not result.appeals:
        raise IngestError(f"{source}: no appeal could be read")
    return appeals_to_frame(result.appeals)


def load_items(path: str | Path | None) -> list[dict[str, Any]]:
    """Alerts or root causes from a JSON file (a list of objects, or ``{"items": [...]}``)."""
    if path is None:
        return []
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = data.get("items", data.get("alerts", data.get("root_causes"))) \
        if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return items


def build_report(frame: pd.DataFrame, *, period: PeriodKind, end: date | datetime | str,
                 alerts: Iterable[Any] | None = None, root_causes: Iterable[Any] | None = None,
                 sla_config: SlaConfig | str | Path | None = None, topic: str = "category",
                 territory: str = "territory", department: str = "department",
                 top: int | None = 10, municipality: str | None = None,
                 routing_quality: RoutingPrecisionSection | None = None) -> AnalyticalNote:
    """The analytical note's figures for the ``period`` ending on ``end``.

    ``routing_quality`` (from :func:`mcu_nlp.services.routing_quality.note_section`) adds the
    section on the precision of auto-routing.
    """
    config = sla_config if isinstance(sla_config, SlaConfig) else load_sla_config(sla_config)
    return build_note(frame, report_period(period, end), config=config, alerts=alerts,
                      root_causes=root_causes, topic=topic, territory=territory,
                      department=department, top=top, municipality=municipality,
                      routing_quality=routing_quality)


def render_report(note: AnalyticalNote, fmt: ReportFormat) -> bytes:
    """The note as DOCX, HTML (UTF-8) or PDF bytes."""
    blocks = note_blocks(note)
    if fmt == "html":
        return render_html(blocks).encode("utf-8")
    docx = render_docx(blocks)
    if fmt == "docx":
        return docx
    if fmt == "pdf":
        return docx_to_pdf(docx)
    raise ValueError(f"unknown report format {fmt!r}; use docx, html or pdf")


def write_report(note: AnalyticalNote, fmt: ReportFormat, out: str | Path) -> Path:
    """Render the note and write it to ``out`` (parent folders created)."""
    path = Path(out)
    data = render_report(note, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def department_rating_report(frame: pd.DataFrame, *, period: PeriodKind,
                             end: date | datetime | str,
                             sla_config: SlaConfig | str | Path | None = None,
                             department: str = "department") -> list[DepartmentScore]:
    """The department rating for the period (for ``/v1/departments/rating``)."""
    config = sla_config if isinstance(sla_config, SlaConfig) else load_sla_config(sla_config)
    p = report_period(period, end)
    work = frame.copy()
    column = department if department in work else f"label_{department}"
    if column not in work and f"pred_{department}" in work:
        column = f"pred_{department}"
    config = config.model_copy(update={
        "columns": config.columns.model_copy(update={"department": column})})
    annotated = annotate_sla(work, p.as_of, config)
    return rating_records(department_rating(annotated, p.start, p.end, config))


def cur_export_document(frame: pd.DataFrame, *, period: PeriodKind, end: date | datetime | str,
                        municipality: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The ЦУР export as a dict (every topic and territory listed)."""
    note = build_report(frame, period=period, end=end, top=None, municipality=municipality,
                        **kwargs)
    return cur_document(note, municipality)


def export_cur(frame: pd.DataFrame, *, period: PeriodKind, end: date | datetime | str,
               out_dir: str | Path, municipality: str | None = None,
               **kwargs: Any) -> tuple[Path, Path]:
    """Write the ЦУР export (JSON and CSV) into ``out_dir``; returns both paths."""
    note = build_report(frame, period=period, end=end, top=None, municipality=municipality,
                        **kwargs)
    return write_cur_export(note, out_dir, municipality)


def latest_complete_week_end(frame: pd.DataFrame) -> date:
    """The last Sunday on or before the newest appeal's day (default ``--end``)."""
    newest = pd.to_datetime(frame["created_at"]).max().date()
    return newest - timedelta(days=(newest.weekday() + 1) % 7)
