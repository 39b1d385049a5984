"""The weekly/quarterly analytical note (DOCX, HTML, PDF) and the ЦУР export.

:func:`build_note` computes the figures (pure); :func:`note_blocks` lays them out with charts;
``writers`` renders DOCX/HTML/PDF; ``cur_export`` writes the machine-readable export.
Charts import matplotlib, so import them from their modules when needed.
"""

from mcu_nlp.reports.note import AnalyticalNote, CountRow, NoteAlert, NoteRootCause, build_note
from mcu_nlp.reports.periods import Period, previous_period, report_period

__all__ = [
    "AnalyticalNote",
    "CountRow",
    "NoteAlert",
    "NoteRootCause",
    "Period",
    "build_note",
    "previous_period",
    "report_period",
]
