"""Attack: two alert scans that both miss a rise's row and both insert it.

Before: the second insert broke ``alerts.dedup_key``'s unique constraint and ``POST
/v1/alerts/scan`` answered 500. Now the insert is ``ON CONFLICT DO NOTHING`` and the scan that
lost takes the winner's row, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

import mcu_nlp.services.alerts as alerts
from mcu_nlp.storage.models import AlertRow
from mcu_nlp.trends.alerts import AlarmDay, TrendAlert

DAY = date(2021, 3, 10)
RISE = TrendAlert(dimension="topic", value="Мусор", days=(
    AlarmDay(day=DAY, observed=40, expected=10.0, upper=20.0, p_value=1e-6, rule="poisson"),))


@pytest.fixture
def fixed_scan(monkeypatch):
    calls = {"barrier": None}

    def scan(frame, *, as_of, lookback_days, existing, **_):
        if calls["barrier"] is not None:  # both scans have read the rows before either writes
            calls["barrier"].wait(timeout=10)
        return [RISE]

    monkeypatch.setattr(alerts, "scan_alerts", scan)
    return calls


def _rows(store) -> list[AlertRow]:
    with store.session() as session:
        return list(session.scalars(sa.select(AlertRow)))


def test_a_row_another_scan_inserted_meanwhile_is_taken_not_inserted_again(store, fixed_scan):
    first = alerts.scan_and_store(store, pd.DataFrame(), as_of=DAY)
    assert len(first.created) == 1
    # The row becomes invisible to the next scan's read (as if another scan inserted it after
    # that read): its last day is moved out of the scan's horizon.
    with store.session() as session:
        session.execute(sa.update(AlertRow).values(last_seen_at=datetime(2000, 1, 1)))
    again = alerts.scan_and_store(store, pd.DataFrame(), as_of=DAY)
    assert again.created == []
    rows = _rows(store)
    assert len(rows) == 1 and rows[0].dedup_key == alerts.dedup_key(RISE)
    assert rows[0].last_seen_at == datetime(2021, 3, 10)  # rewritten from the new scan


@pytest.mark.parametrize("store", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_two_concurrent_scans_store_one_row(store, fixed_scan):
    fixed_scan["barrier"] = threading.Barrier(2)
    errors: list[BaseException] = []
    outcomes = []

    def run() -> None:
        try:
            outcomes.append(alerts.scan_and_store(store, pd.DataFrame(), as_of=DAY))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(len(o.created) for o in outcomes) == [0, 1]
    assert len(_rows(store)) == 1
