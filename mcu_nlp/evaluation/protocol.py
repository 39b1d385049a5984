"""The fixed split of ``EVAL.md``: train / validation by time, test, and the unseen-text subset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mcu_nlp.text.normalize import key_text

SPB_CUTOFF = "2021-04-01"
VALIDATION_SHARE = 0.10
SPLIT_VALUES = ("train", "validation", "test")
# Small data: the certification part gets at least this many rows (up to a quarter of train).
MIN_CERTIFICATION_ROWS = 500
MAX_CERTIFICATION_SHARE = 0.25


def certification_rows(n_train: int, share: float = VALIDATION_SHARE) -> int:
    """Rows of the time tail held out to certify thresholds (the validation part).

    ``share`` of train, as EVAL.md fixes for the reference data (4,883 of 48,827 rows); small
    exports hold out more — up to :data:`MIN_CERTIFICATION_ROWS`, never more than a quarter of
    train — since a certificate needs a few hundred rows to route anything (132 routed rows for
    95 % at 90 % confidence with 2 % of them wrong).
    """
    n = max(1, int(round(n_train * share)))
    return max(n, min(MIN_CERTIFICATION_ROWS, int(n_train * MAX_CERTIFICATION_SHARE)))


@dataclass(slots=True)
class ProtocolSplit:
    """Row frames of one protocol split. ``fit`` is train without its validation tail."""

    train: pd.DataFrame
    fit: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    unseen: np.ndarray  # boolean mask over ``test``: text never seen in train

    def summary(self) -> dict[str, int]:
        """Row counts of each part."""
        return {
            "train": len(self.train),
            "fit": len(self.fit),
            "validation": len(self.validation),
            "test": len(self.test),
            "unseen": int(self.unseen.sum()),
        }


def labelled_rows(frame: pd.DataFrame, label: str) -> pd.Series:
    """Rows that carry ``label`` and a text (an export's empty rows are skipped, not an error)."""
    keep = frame[label].notna() & (frame[label].astype(str).str.strip() != "")
    if "text" in frame.columns:
        keep &= frame["text"].notna() & (frame["text"].astype(str).str.strip() != "")
    return keep


def _unseen_mask(train: pd.DataFrame, test: pd.DataFrame, text_col: str) -> np.ndarray:
    # Empty cells of an export stay NaN through astype(str) with pandas' string dtype.
    seen = set(train[text_col].fillna("").astype(str).map(key_text))
    return ~test[text_col].fillna("").astype(str).map(key_text).isin(seen).to_numpy()


def split_by_time(
    frame: pd.DataFrame,
    *,
    time_col: str = "created_at",
    cutoff: str = SPB_CUTOFF,
    text_col: str = "text",
    id_col: str | None = "id",
    validation_share: float = VALIDATION_SHARE,
) -> ProtocolSplit:
    """Sort by time (ties by id); train before ``cutoff``, test from it; validation = train tail."""
    times = pd.to_datetime(frame[time_col], errors="coerce", format="mixed")
    if times.isna().any():
        bad = int(times.isna().sum())
        raise ValueError(f"{bad} rows have no parseable {time_col!r}; fix or drop them first")
    keys = [time_col] + ([id_col] if id_col and id_col in frame.columns else [])
    ordered = frame.assign(**{time_col: times}).sort_values(keys, kind="stable")
    ordered = ordered.reset_index(drop=True)
    is_train = (ordered[time_col] < pd.Timestamp(cutoff)).to_numpy()
    train, test = ordered[is_train], ordered[~is_train]
    if train.empty or test.empty:
        raise ValueError(f"cutoff {cutoff} leaves an empty train or test part")
    return _with_validation_tail(train, test, text_col, validation_share)


def split_by_column(
    frame: pd.DataFrame,
    *,
    split_col: str,
    text_col: str = "text",
    time_col: str | None = None,
    validation_share: float = VALIDATION_SHARE,
) -> ProtocolSplit:
    """Use a column with values train / validation / test (no validation: train's tail is used)."""
    values = frame[split_col].astype(str).str.lower()
    unknown = sorted(set(values) - set(SPLIT_VALUES))
    if unknown:
        raise ValueError(f"{split_col!r} has values {unknown}; expected {SPLIT_VALUES}")
    ordered = frame.sort_values(time_col, kind="stable") if time_col else frame
    values = values.loc[ordered.index]
    test = ordered[values == "test"].reset_index(drop=True)
    if (values == "validation").any():
        fit = ordered[values == "train"].reset_index(drop=True)
        validation = ordered[values == "validation"].reset_index(drop=True)
        train = pd.concat([fit, validation], ignore_index=True)
        return ProtocolSplit(
            train=train,
            fit=fit,
            validation=validation,
            test=test,
            unseen=_unseen_mask(train, test, text_col),
        )
    return _with_validation_tail(ordered[values == "train"], test, text_col, validation_share)


def _with_validation_tail(
    train: pd.DataFrame, test: pd.DataFrame, text_col: str, validation_share: float
) -> ProtocolSplit:
    train = train.reset_index(drop=True)
    test = test.reset_index(drop=True)
    n_validation = certification_rows(len(train), validation_share)
    return ProtocolSplit(
        train=train,
        fit=train.iloc[:-n_validation].reset_index(drop=True),
        validation=train.iloc[-n_validation:].reset_index(drop=True),
        test=test,
        unseen=_unseen_mask(train, test, text_col),
    )
