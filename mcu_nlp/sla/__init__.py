"""Deadlines, overdue and at-risk appeals, answer quality, satisfaction, department rating.

Deadlines per channel follow the Russian working-day calendar (:mod:`mcu_nlp.calendar`).

Pure functions over an appeals DataFrame (layout of ``mcu_nlp.ingest.appeals_to_frame``):
:func:`annotate_sla` adds the per-appeal columns as known at a moment, :func:`quality_table`
aggregates a period by any grouping, :func:`department_rating` scores departments.
"""

from mcu_nlp.sla.config import AppealColumns, Outcome, SlaConfig, load_sla_config
from mcu_nlp.sla.quality import QUALITY_COLUMNS, quality_summary, quality_table
from mcu_nlp.sla.rating import COMPONENTS, DepartmentScore, department_rating, rating_records
from mcu_nlp.sla.timeliness import annotate_sla, compute_deadlines

__all__ = [
    "COMPONENTS",
    "QUALITY_COLUMNS",
    "AppealColumns",
    "DepartmentScore",
    "Outcome",
    "SlaConfig",
    "annotate_sla",
    "compute_deadlines",
    "department_rating",
    "load_sla_config",
    "quality_summary",
    "quality_table",
    "rating_records",
]
