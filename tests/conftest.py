"""Shared fixtures: real data from ``../shared/data`` (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(os.environ.get("MCU_SHARED_DATA_DIR",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SPB_APPEALS = SHARED_DATA / "spb_our_city_appeals" / "appeals.csv.gz"
OMSK_INCIDENTS = SHARED_DATA / "omsk_incident_management_sample" / "incidents_sample.csv"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with the reference data sets."""
    if not SPB_APPEALS.exists():
        pytest.fail(f"reference data not found at {SHARED_DATA}; set MCU_SHARED_DATA_DIR")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spb_frame(shared_data: Path) -> pd.DataFrame:
    """All 59,889 SPb appeals, read once per session (treat as read-only)."""
    return pd.read_csv(SPB_APPEALS, dtype={"id": "int64"}, keep_default_na=True)


@pytest.fixture(scope="session")
def spb_slice(spb_frame: pd.DataFrame) -> pd.DataFrame:
    """A small real slice: every 20th appeal in time order (about 3,000 rows, all months)."""
    return spb_frame.sort_values(["created_at", "id"]).iloc[::20].reset_index(drop=True).copy()
