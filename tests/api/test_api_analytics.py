"""Analytics endpoints (root causes, incidents, alerts, reports, rating) over a store of real SPb
appeals: about 900 appeals of January–April 2021 from the session slice, imported once per module.

Root-cause clustering itself (BERTopic: UMAP's JIT compilation alone takes a minute in a fresh
process) is exercised by the ``slow`` test; the other root-cause tests swap in a stand-in that
groups appeals by the portal's fine topic, so they check the HTTP side: periods, caching, errors.
Every analysis runs as a background job; this module's app never waits for one inline, so each
request goes the ``202 Accepted`` → ``GET /v1/jobs/{id}`` → same request again way (``settled``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analytics_jobs import settled
from conftest import app_with_imported, auth
from sklearn.feature_extraction.text import TfidfVectorizer

from api.analytics import AnalyticsData
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.root_causes import RootCauseAnalysis

SCAN_DAY = "2021-04-04"  # the 16.03 rise is over by then (resolved), the 02.04 one still open


def grouped_by_fine_topic(frame: pd.DataFrame) -> RootCauseAnalysis:
    """Stand-in analysis: one root cause per fine topic of at least 5 appeals, via real cards."""
    from mcu_nlp.root_causes.cards import build_cards

    reason = frame["label_reason"].fillna("")
    sizes = reason.map(reason.value_counts())
    codes, names = pd.factorize(reason)
    topics = np.where((sizes >= 5).to_numpy() & (reason != "").to_numpy(), codes, -1)
    words = {i: [(w.lower(), 1.0) for w in str(name).split()[:3]] for i, name in enumerate(names)}
    vectors = TfidfVectorizer().fit_transform(frame["text"].fillna("")).toarray()
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cards = build_cards(frame, topics, words, vectors, topic_column="label_reason",
                        department_column="label_department")
    return RootCauseAnalysis(cards=cards, n_appeals=len(frame),
                             outlier_share=float(np.mean(topics == -1)), topics=topics,
                             frame=frame)


@pytest.fixture(scope="module")
def client(spb_slice, bundle_dirs, bundle_loader, tmp_path_factory):
    """The app over an SQLite store holding every 2nd slice appeal of 2021, fake-v1 active."""
    from fastapi.testclient import TestClient

    from mcu_nlp.services.keys import create_key

    rows = spb_slice[spb_slice["created_at"] >= "2021-01-01"].iloc[::2]
    app, store, services, summary = app_with_imported(
        tmp_path_factory.mktemp("analytics_api"), rows, bundle_dirs, bundle_loader)
    assert summary.stored > 800
    app.state.analytics = AnalyticsData(store, analyze=grouped_by_fine_topic,
                                         inline_wait=0)
    keys = {role: create_key(store, role=role) for role in ("operator", "analyst", "admin")}
    with TestClient(app) as test_client:
        test_client.keys, test_client.services, test_client.rows = keys, services, rows
        yield test_client
    store.dispose()


ANALYST_ROUTES = [
    ("get", "/v1/root-causes"), ("get", "/v1/root-causes/0"), ("get", "/v1/incidents"),
    ("get", "/v1/alerts"), ("post", "/v1/alerts/scan"), ("post", "/v1/alerts/1/ack"),
    ("get", "/v1/reports/note?period=week"), ("get", "/v1/reports/cur-export?period=week"),
    ("get", "/v1/departments/rating?period=week"),
]


@pytest.mark.parametrize(("method", "path"), ANALYST_ROUTES)
def test_analytics_need_an_analyst_key(client, method, path):
    call = getattr(client, method)
    assert call(path).status_code == 401
    assert call(path, headers={"X-API-Key": "mcu_wrong"}).status_code == 401
    refused = call(path, headers=auth(client, "operator"))
    assert refused.status_code == 403 and "analyst" in refused.json()["detail"]


@pytest.mark.parametrize(("path", "fragment"), [
    ("/v1/root-causes?since=2021-03-10&until=2021-03-01", "after until"),
    ("/v1/root-causes?since=2019-01-01&until=2021-03-01", "at most 400 days"),
    ("/v1/root-causes?since=2021-13-01", "date"),
    ("/v1/root-causes?top=0", "top"),
    ("/v1/incidents?limit=100000", "limit"),
    ("/v1/incidents?min_similarity=2", "min_similarity"),
    ("/v1/alerts?status=closed", "status"),
    ("/v1/alerts?dimension=colour", "unknown dimension"),
    ("/v1/alerts?since=2021-03-10&until=2021-03-01", "after until"),
    ("/v1/reports/note?period=month", "period"),
    ("/v1/reports/note?period=week&format=pdf", "format"),
    ("/v1/reports/note?period=week&end=2019-03-01", "holds no stored appeal"),
    ("/v1/reports/cur-export?period=week&format=xml", "format"),
    ("/v1/departments/rating", "period"),
    ("/v1/departments/rating?period=quarter&end=yesterday", "date"),
])
def test_bad_parameters_are_a_422_with_a_reason(client, path, fragment):
    response = client.get(path, headers=auth(client, "analyst"))
    assert response.status_code == 422, response.text
    assert fragment in response.text


@pytest.mark.parametrize(("query", "fragment"), [
    ("?date=2021-06-01", "after the newest stored appeal"),
    ("?date=2021-01-10", "history"),
    ("?date=2021-03-31&lookback=0", "lookback"),
])
def test_bad_scan_requests_are_refused(client, query, fragment):
    response = settled(client, "post", f"/v1/alerts/scan{query}", headers=auth(client, "analyst"))
    assert response.status_code == 422 and fragment in response.text


def test_root_causes_list_card_and_cache(client):
    analytics = client.app.state.analytics
    runs = analytics.runs
    query = "since=2021-03-01&until=2021-03-31"
    response = settled(client, "get", f"/v1/root-causes?{query}&top=3",
                       headers=auth(client, "admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    march = client.rows[client.rows["created_at"].str.startswith("2021-03")]
    assert body["period"] == {"since": "2021-03-01", "until": "2021-03-31", "territory": None}
    assert body["n_appeals"] == len(march)
    assert 0 < len(body["root_causes"]) <= 3 < body["n_root_causes"]
    top = body["root_causes"][0]
    assert top["size"] == march["reason"].value_counts().iloc[0]
    assert top["dominant_topic"] == march["reason"].value_counts().index[0]
    assert "weekly_counts" not in top and top["trend"]["direction"] in (
        "growing", "stable", "falling")
    card = settled(client, "get", f"/v1/root-causes/{top['id']}?{query}",
                   headers=auth(client, "analyst"))
    assert card.status_code == 200
    assert sum(card.json()["weekly_counts"].values()) == top["size"]
    assert top["responsible"]["label"] and top["scope"]["n_territories"] >= 1
    stages = card.json()["roadmap"]["stages"]  # deadlines from the period's end
    assert stages and all(stage["target"] for stage in stages)
    assert card.json()["roadmap"]["start"] == "2021-03-31"
    assert analytics.runs == runs + 1  # the card came from the cached analysis
    missing = settled(client, "get", f"/v1/root-causes/99999?{query}",
                      headers=auth(client, "analyst"))
    assert missing.status_code == 404 and "same since" in missing.text


def test_root_causes_of_a_territory_and_of_an_empty_period(client):
    district = client.rows["district"].value_counts().index[0]
    response = settled(client, "get", "/v1/root-causes",
                       params={"since": "2021-02-01", "until": "2021-03-31",
                               "territory": district.upper()},
                       headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    body = response.json()
    in_district = client.rows[(client.rows["district"] == district)
                              & (client.rows["created_at"] >= "2021-02-01")
                              & (client.rows["created_at"] < "2021-04-01")]
    assert body["n_appeals"] == len(in_district)
    assert {t["territory"] for c in body["root_causes"] for t in c["territories"]} == {district}
    nothing = settled(client, "get", "/v1/root-causes?since=2020-01-01&until=2020-02-01",
                         headers=auth(client, "analyst"))
    assert nothing.status_code == 404 and "no stored appeals" in nothing.text
    few = settled(client, "get", "/v1/root-causes?since=2021-03-01&until=2021-03-01",
                     headers=auth(client, "analyst"))
    assert few.status_code == 404 and "widen the period" in few.text


def test_scan_stores_explained_alerts_and_rescan_adds_none(client):
    response = settled(client, "post", f"/v1/alerts/scan?date={SCAN_DAY}&lookback=28",
                           headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["as_of"] == SCAN_DAY and first["created"]
    listed = client.get("/v1/alerts?limit=500", headers=auth(client, "analyst")).json()
    assert listed["total"] == len(first["created"])
    excesses = [a["excess"] for a in listed["items"]]
    assert excesses == sorted(excesses, reverse=True)
    for alert in listed["items"]:
        assert alert["observed"] == sum(d["observed"] for d in alert["days"])
        assert alert["title"].startswith("Рост: ")
        assert date(2021, 3, 9) <= date.fromisoformat(alert["last_day"]) <= date(2021, 4, 5)
    explained = [a for a in listed["items"] if a["explanation"]]
    assert explained and explained[0]["explanation"]["summary"]
    assert "words" in explained[0]["explanation"] and "drivers" in explained[0]["explanation"]
    again = settled(client, "post", f"/v1/alerts/scan?date={SCAN_DAY}&lookback=28",
                        headers=auth(client, "analyst")).json()
    assert again["created"] == []
    assert client.get("/v1/alerts", headers=auth(client, "analyst")).json()["total"] == \
        listed["total"]
    audit = list_audit(client.services.store, entity="alert")
    assert [e.action for e in audit[:2]] == ["alert.scan", "alert.scan"]


def test_alert_filters(client):
    every = client.get("/v1/alerts?limit=500", headers=auth(client, "analyst")).json()["items"]
    assert every, "the scan test stores alerts first"
    dimension = every[0]["dimension"]
    only = client.get(f"/v1/alerts?dimension={dimension}&limit=500",
                      headers=auth(client, "analyst")).json()
    assert only["total"] == sum(a["dimension"] == dimension for a in every)
    day = every[0]["first_day"]
    since = client.get(f"/v1/alerts?since={day}&limit=500", headers=auth(client, "analyst"))
    assert all(a["last_day"] >= day for a in since.json()["items"])
    until = client.get(f"/v1/alerts?until={day}&limit=500", headers=auth(client, "analyst"))
    assert all(a["first_day"] <= day for a in until.json()["items"])
    assert since.json()["total"] + until.json()["total"] >= len(every)
    for status in ("new", "resolved"):
        page = client.get(f"/v1/alerts?status={status}&limit=500",
                          headers=auth(client, "analyst")).json()
        assert page["total"] == sum(a["status"] == status for a in every)


def test_ack_changes_status_and_is_audited(client):
    new = client.get("/v1/alerts?status=new", headers=auth(client, "analyst")).json()["items"]
    assert new, "the scan leaves at least one open alert"
    alert_id = new[0]["id"]
    response = client.post(f"/v1/alerts/{alert_id}/ack", json={"comment": "смотрим"},
                           headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    acked = response.json()
    assert acked["status"] == "acknowledged"
    assert acked["status_changed_by"].startswith("key:")
    entry = list_audit(client.services.store, entity="alert", entity_id=str(alert_id))
    assert [e.action for e in entry] == ["alert.ack"]
    assert entry[0].details["comment"] == "смотрим" and entry[0].actor == acked["status_changed_by"]
    twice = client.post(f"/v1/alerts/{alert_id}/ack", headers=auth(client, "analyst"))
    assert twice.status_code == 200
    assert len(list_audit(client.services.store, entity="alert", entity_id=str(alert_id))) == 1
    # a later scan keeps the person's acknowledgement while the rise goes on
    settled(client, "post", f"/v1/alerts/scan?date={SCAN_DAY}&lookback=28",
            headers=auth(client, "analyst"))
    ids = client.get("/v1/alerts?status=acknowledged",
                     headers=auth(client, "analyst")).json()["items"]
    assert [a["id"] for a in ids] == [alert_id]
    resolved = client.get("/v1/alerts?status=resolved", headers=auth(client, "analyst")).json()
    if resolved["items"]:
        conflict = client.post(f"/v1/alerts/{resolved['items'][0]['id']}/ack",
                               headers=auth(client, "analyst"))
        assert conflict.status_code == 409 and "resolved" in conflict.text
    assert client.post("/v1/alerts/999999/ack",
                       headers=auth(client, "analyst")).status_code == 404


def test_note_as_json_html_and_docx(client):
    week = client.rows[(client.rows["created_at"] >= "2021-03-29")
                       & (client.rows["created_at"] < "2021-04-05")]
    response = settled(client, "get", "/v1/reports/note?period=week&end=2021-04-04",
                          headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    note = response.json()
    assert note["period"] == {"kind": "week", "start": "2021-03-29", "end": "2021-04-04"}
    assert note["totals"]["current"] == len(week)
    by_channel = {row["code"]: row["current"] for row in note["by_channel"]}
    assert sum(by_channel.values()) == len(week)
    assert note["alerts"], "stored alerts of the week appear in the note"
    html = settled(client, "get", "/v1/reports/note?period=week&end=2021-04-04&format=html",
                      headers=auth(client, "analyst"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<h1" in html.text and str(len(week)) in html.text
    docx = settled(client, "get", "/v1/reports/note?period=quarter&end=2021-03-31&format=docx",
                      headers=auth(client, "analyst"))
    assert docx.status_code == 200 and "note_quarter_2021-01-01_2021-03-31.docx" in \
        docx.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(docx.content)) as document:
        assert "word/document.xml" in document.namelist()


def test_cur_export_json_and_csv_agree(client):
    query = "period=quarter&end=2021-03-31"
    document = settled(client, "get", f"/v1/reports/cur-export?{query}",
                       headers=auth(client, "analyst"))
    assert document.status_code == 200, document.text
    doc = document.json()
    quarter = client.rows[(client.rows["created_at"] >= "2021-01-01")
                          & (client.rows["created_at"] < "2021-04-01")]
    assert doc["schema"] == "mcu-nlp/cur-export" and doc["totals"]["received"] == len(quarter)
    topics = {row["topic"]: row["received"] for row in doc["by_topic"]}
    assert topics == quarter["category"].value_counts().to_dict()
    table = settled(client, "get", f"/v1/reports/cur-export?{query}&format=csv",
                       headers=auth(client, "analyst"))
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    received = [r for r in rows if r["section"] == "totals" and r["metric"] == "received"]
    assert [int(r["value"]) for r in received] == [len(quarter)]


def test_department_rating(client):
    response = settled(client, "get", "/v1/departments/rating?period=quarter&end=2021-03-31",
                          headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["start"] == "2021-01-01"
    departments = body["departments"]
    ranked = [d for d in departments if d["ranked"]]
    assert ranked and [d["rank"] for d in ranked] == list(range(1, len(ranked) + 1))
    assert [d["score"] for d in ranked] == sorted((d["score"] for d in ranked), reverse=True)
    quarter = client.rows[(client.rows["created_at"] >= "2021-01-01")
                          & (client.rows["created_at"] < "2021-04-01")]
    received = {d["department"]: d["received"] for d in departments}
    expected = quarter["department"].value_counts()
    assert all(received.get(name, 0) == count for name, count in expected.items())


def test_incidents_merge_posted_duplicates(client):
    text = "Во дворе дома 5 по улице Тестовой третий день не вывозят мусор, контейнеры переполнены"
    reason = "Мусор на внутридворовой территории"
    ids = []
    for n, hour in enumerate((9, 11, 15)):
        body = {"source": "test", "source_id": f"dup-{n}", "channel": "pos",
                "created_at": f"2021-03-15T{hour:02d}:00:00", "territory": "Тестовый",
                "address": "г.Санкт-Петербург, Тестовая улица, дом 5",
                "text": text + ("!" * n), "labels": {"reason": reason}}
        stored = client.post("/v1/appeals", json=body, headers=auth(client, "operator"))
        assert stored.status_code == 201, stored.text
        ids.append(f"dup-{n}")
    response = settled(client, "get", "/v1/incidents?since=2021-03-14&until=2021-03-16",
                          headers=auth(client, "analyst"))
    assert response.status_code == 200, response.text
    body = response.json()
    ours = [i for i in body["incidents"] if set(ids) <= set(i["appeal_ids"])]
    assert len(ours) == 1 and ours[0]["size"] == 3 and ours[0]["territory"] == "Тестовый"
    assert body["n_incidents"] >= 1 and body["n_merged_appeals"] >= 3
    limited = settled(client, "get",
                      "/v1/incidents?since=2021-03-14&until=2021-03-16&territory=тестовый",
                         headers=auth(client, "analyst")).json()
    assert limited["n_appeals"] == 3 and limited["incidents"][0]["size"] == 3


@pytest.mark.slow
def test_real_root_cause_clustering_through_the_api(client):
    """BERTopic on three weeks of stored appeals, through the endpoint (a minute when cold)."""
    client.app.state.analytics = AnalyticsData(client.services.store, inline_wait=0)
    try:
        response = settled(client, "get", "/v1/root-causes?since=2021-03-01&until=2021-03-21",
                              headers=auth(client, "analyst"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["n_root_causes"] >= 2 and body["outlier_share"] < 0.5
        assert all(c["title"] and c["examples"] for c in body["root_causes"])
    finally:
        client.app.state.analytics = AnalyticsData(client.services.store,
                                                   analyze=grouped_by_fine_topic, inline_wait=0)


def test_empty_store_is_a_409(bundle_dirs, bundle_loader, tmp_path: Path):
    from fastapi.testclient import TestClient

    from api.main import build_services, create_app
    from mcu_nlp.services.keys import create_key
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import Settings
    from mcu_nlp.storage import Store

    store = Store.from_url(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"], activate=True)
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings, services=build_services(settings, store=store,
                                                       loader=bundle_loader),
                     model_sync_seconds=None)
    headers = {"X-API-Key": create_key(store, role="analyst")}
    with TestClient(app) as empty:
        for path in ("/v1/root-causes", "/v1/incidents", "/v1/reports/note?period=week",
                     "/v1/departments/rating?period=quarter"):
            response = empty.get(path, headers=headers)
            assert response.status_code == 409 and "holds no appeals" in response.text, path
        assert empty.post("/v1/alerts/scan", headers=headers).status_code == 409
        assert empty.get("/v1/alerts", headers=headers).json() == {"total": 0, "items": []}
    store.dispose()
