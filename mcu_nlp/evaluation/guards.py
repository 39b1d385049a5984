"""Guards of the evaluation protocol: leaky inputs and thresholds chosen on test rows are refused.

EVAL.md names the traps: columns written after an appeal is filed (answers, statuses, follow-ups,
the coordinating or executing organisation, routing counts) and ``dup_group_size`` (counted over
the whole file, test included) must never be inputs; and a threshold must be chosen on rows that
are not the test rows. The runner calls these checks, so a recipe that breaks them stops with a
:class:`LeakageError` instead of printing a flattering figure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

# Written after filing (or computed over the whole file): never an input.
_LEAKY = re.compile(
    r"(^|_)(dup_group|answer|answers|status|followup|follow_up|executor|coordinator|controller"
    r"|responsible|n_routes|n_reason_changes|reason_path|resolved|closed_at|deadline_met"
    r"|rating|satisfaction)(_|$)",
    re.IGNORECASE,
)


class LeakageError(ValueError):
    """An evaluation that would measure something the system cannot know at filing time."""


def leaky_columns(columns: Sequence[str]) -> list[str]:
    """The names among ``columns`` that are known only after filing."""
    return [column for column in columns if _LEAKY.search(str(column))]


def check_features(columns: Sequence[str], label: str | None = None) -> None:
    """Refuse input columns written after filing, and the label itself as an input."""
    leaky = leaky_columns(columns)
    if label is not None and label in columns:
        leaky.append(label)
    if leaky:
        raise LeakageError(
            f"input columns {sorted(set(leaky))} are written after the appeal is filed (or are "
            "the label): they cannot be features (EVAL.md, traps)")


def check_threshold_rows(threshold_part: pd.DataFrame, test: pd.DataFrame) -> None:
    """Refuse a threshold part that shares rows with the test part.

    Rows are matched by ``id`` where both parts have one, else by (``text``, ``created_at``).
    Equal texts at different times are legitimate repeats, not shared rows.
    """
    if threshold_part.empty or test.empty:
        return
    if "id" in threshold_part.columns and "id" in test.columns:
        left = set(threshold_part["id"].dropna().astype(str))
        shared = left & set(test["id"].dropna().astype(str))
    elif {"text", "created_at"} <= set(threshold_part.columns) & set(test.columns):
        def keys(frame: pd.DataFrame) -> set[tuple[str, str]]:
            return set(zip(frame["text"].astype(str), frame["created_at"].astype(str),
                           strict=True))

        shared = keys(threshold_part) & keys(test)
    else:
        return
    if shared:
        raise LeakageError(
            f"{len(shared)} rows of the threshold part are test rows: a threshold chosen on test "
            "overstates coverage and precision; choose it on validation")
