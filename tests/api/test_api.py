"""The HTTP API through FastAPI's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from conftest import auth

GAS = "В подъезде дома сильно пахнет газом, соседи не открывают"


def test_only_health_is_open(api):
    assert api.get("/health").json() == {"status": "ok"}
    for method, path in [("get", "/ready"), ("get", "/metrics"), ("post", "/v1/classify"),
                         ("get", "/v1/queue"), ("get", "/v1/models"), ("get", "/openapi.json"),
                         ("get", "/docs"), ("get", "/v1/appeals/1")]:
        response = getattr(api, method)(path)
        assert response.status_code == 401, (path, response.status_code)
    assert api.get("/ready", headers={"X-API-Key": "mcu_wrong"}).status_code == 401
    bearer = {"Authorization": f"Bearer {api.keys['analyst']}"}
    assert api.get("/ready", headers=bearer).json()["model_version"] == "fake-v1"
    assert "mcu_http_requests_total" in api.get("/metrics", headers=bearer).text
    assert api.get("/openapi.json", headers=bearer).json()["paths"]["/v1/classify"]


def test_roles_are_enforced(api):
    body = {"text": "Мусор во дворе"}
    assert api.post("/v1/classify", json=body, headers=auth(api, "analyst")).status_code == 403
    assert api.post("/v1/models/fake-v2/activate", headers=auth(api)).status_code == 403
    assert api.post("/v1/keys", json={"role": "admin"}, headers=auth(api)).status_code == 403
    assert api.get("/v1/queue", headers=auth(api, "analyst")).status_code == 200


def test_classify_returns_topics_department_urgency_and_routing(api):
    response = api.post("/v1/classify", headers=auth(api),
                        json={"text": "Мусор на детской площадке во дворе", "district": "Невский",
                              "channel": "pos", "top_k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "fake-v1"
    assert set(body["predictions"]) == {"category", "department"}
    top = body["predictions"]["category"]["top"]
    assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
    assert body["routing"]["decision"] in ("auto", "review")
    assert body["routing"]["decided_by"].startswith(("threshold:", "review:", "rule:"))
    assert body["predictions"]["department"]["explanation"]
    gas = api.post("/v1/classify", headers=auth(api), json={"text": GAS}).json()
    assert gas["routing"]["decided_by"] == "rule:emergency-gas"
    assert gas["urgency"]["score"] > 0.9 and gas["urgency"]["reasons"][0]["id"] == "gas"


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"text": ""}, 422, "empty"),
    ({"text": "   "}, 422, "empty"),
    ({"text": "я" * 20_001}, 422, "20000"),
    ({"text": "The trash is everywhere"}, 422, "not in Russian"),
    ({"text": "мусор", "colour": "red"}, 422, "colour"),
    ({"text": "мусор", "channel": "fax"}, 422, "channel"),
    ({}, 422, "text"),
])
def test_bad_classify_input_is_a_clear_4xx(api, body, status, fragment):
    response = api.post("/v1/classify", json=body, headers=auth(api))
    assert response.status_code == status
    assert fragment in response.text


def test_malformed_and_oversized_bodies(api):
    headers = {**auth(api), "content-type": "application/json"}
    assert api.post("/v1/classify", content=b"{not json", headers=headers).status_code == 422
    assert api.post("/v1/classify", content="{\"text\": \"мусор\"}".encode("cp1251"),
                    headers=headers).status_code in (400, 422)
    huge = json.dumps({"text": "а" * 1_100_000}).encode()
    assert api.post("/v1/classify", content=huge, headers=headers).status_code == 413


def test_batch_answers_good_items_and_flags_bad_ones(api):
    items = [{"text": "Мусор во дворе"}, {"text": ""}, {"text": "Hello world"},
             {"text": "Не горит свет в парадной"}]
    response = api.post("/v1/classify/batch", json={"items": items}, headers=auth(api))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert "empty" in results[1]["error"] and results[0]["result"]["predictions"]
    too_many = {"items": [{"text": "мусор"}] * 257}
    assert api.post("/v1/classify/batch", json=too_many, headers=auth(api)).status_code == 422


def test_post_appeal_is_idempotent_and_readable(api):
    body = {"source": "pos", "source_id": "A-1", "channel": "pos",
            "created_at": "2021-01-12T10:00:00", "text": GAS, "district": "Невский",
            "labels": {"category": "Содержание МКД"}}
    first = api.post("/v1/appeals", json=body, headers=auth(api))
    assert first.status_code == 201, first.text
    second = api.post("/v1/appeals", json=body, headers=auth(api))
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    appeal = first.json()["appeal"]
    assert second.json()["appeal"]["id"] == appeal["id"]
    read = api.get(f"/v1/appeals/{appeal['id']}", headers=auth(api, "analyst")).json()
    assert read["source_labels"] == {"category": "Содержание МКД"}
    assert read["routing"]["decided_by"] == "rule:emergency-gas"
    assert read["review_status"] == "open"
    queue = api.get("/v1/queue", headers=auth(api)).json()
    assert queue["items"][0]["appeal_id"] == appeal["id"]
    bad = api.post("/v1/appeals", json={**body, "source_id": "A-2", "text": ""}, headers=auth(api))
    assert bad.status_code == 422
    assert api.get("/v1/appeals/999999", headers=auth(api)).status_code == 404


def test_correction_resolves_review_and_is_audited(api):
    body = {"source_id": "B-1", "created_at": "2021-01-12T10:00:00", "text": GAS}
    appeal_id = api.post("/v1/appeals", json=body, headers=auth(api)).json()["appeal"]["id"]
    # Not a class of the active model: a curator approves the value first.
    assert api.post("/v1/taxonomy/department", json={"values": ["Аварийная служба"]},
                    headers=auth(api, "admin")).status_code == 200
    response = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                        json={"labels": {"department": "Аварийная служба"}, "comment": "газ"})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["corrected_labels"] == {"department": "Аварийная служба"}
    assert out["review_status"] == "resolved" and out["routing"]["decision"] == "manual"
    assert out["corrections"][0]["author"].startswith("key:")
    unknown = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                       json={"labels": {"colour": "red"}})
    assert unknown.status_code == 422 and "unknown label" in unknown.text
    assert api.get("/v1/queue", headers=auth(api)).json()["total"] == 0


def test_import_upload_is_idempotent_and_reports_rejects(api, spb_slice):
    frame = spb_slice.iloc[:40].copy()
    frame.loc[frame.index[3], "text"] = "   "
    data = frame.to_csv(index=False).encode()
    files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}
    first = api.post("/v1/appeals/import?kind=spb_portal", files=files, headers=auth(api))
    assert first.status_code == 200, first.text
    out = first.json()
    assert out["stored"] + out["duplicates"] + out["rejected"] == 40 and out["rejected"] >= 1
    files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}
    again = api.post("/v1/appeals/import?kind=spb_portal", files=files, headers=auth(api)).json()
    assert again["stored"] == 0 and again["duplicates"] == out["stored"]


@pytest.mark.parametrize(("name", "content", "status"), [
    ("export.exe", b"MZ\x90\x00", 415),
    ("export.csv", b"\x00\x01\x02\xff\xfe binary", 400),
    ("export.json", b"{\"not\": [", 400),
    ("export.csv", "колонка\nзначение\n".encode(), 400),
])
def test_malformed_files_are_refused(api, name, content, status):
    files = {"file": (name, io.BytesIO(content), "application/octet-stream")}
    response = api.post("/v1/appeals/import", files=files, headers=auth(api))
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_models_list_and_activate(api):
    models = api.get("/v1/models", headers=auth(api)).json()
    assert {m["version"]: m["active"] for m in models} == {"fake-v1": True, "fake-v2": False}
    response = api.post("/v1/models/fake-v2/activate", headers=auth(api, "admin"))
    assert response.status_code == 200 and response.json()["active"]
    body = api.post("/v1/classify", json={"text": "Мусор во дворе"}, headers=auth(api)).json()
    assert body["model_version"] == "fake-v2"
    assert api.post("/v1/models/nope/activate", headers=auth(api, "admin")).status_code == 404


def test_rules_can_be_replaced_by_an_admin(api):
    admin = auth(api, "admin")
    new = ("version: '2'\nrules:\n  - id: litter\n    when: {keywords: ['мусор']}\n"
           "    then: {department: 'Отдел чистоты'}\n")
    assert api.put("/v1/rules", json={"yaml": "rules: ["}, headers=admin).status_code == 422
    assert api.put("/v1/rules", json={"yaml": new}, headers=admin).json()["version"] == "2"
    body = api.post("/v1/classify", json={"text": "Мусор во дворе"}, headers=auth(api)).json()
    assert body["routing"]["decided_by"] == "rule:litter"
    assert body["routing"]["department"] == "Отдел чистоты"


def test_admin_creates_keys(api):
    response = api.post("/v1/keys", json={"role": "analyst", "name": "BI"},
                        headers=auth(api, "admin"))
    assert response.status_code == 201
    key = response.json()["key"]
    assert api.get("/v1/queue", headers={"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_retrain_with_the_real_bundle_then_serve_it(api, spb_slice, tmp_path):
    """The lead's ModelBundle through the whole path: retrain from the store, activate, classify."""
    from mcu_nlp.services.models import ModelRegistry, default_loader
    from mcu_nlp.services.retrain import labelled_frame, retrain
    from mcu_nlp.services.taxonomy import active_taxonomy
    from mcu_nlp.storage.models import HumanLabelRow

    data = spb_slice.iloc[:500].to_csv(index=False).encode()
    files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}
    assert api.post("/v1/appeals/import?kind=spb_portal", files=files,
                    headers=auth(api)).json()["stored"] > 400
    services = api.services
    with services.store.session() as session:  # people confirmed the imported labels
        session.execute(sa.update(HumanLabelRow).values(confirmed=True))
    labels = ["category", "department"]
    taxonomy = active_taxonomy(services.registry.holder.current.bundle, labels, curated_path=None)
    registry = ModelRegistry(services.store, services.registry.holder, loader=default_loader)
    report = retrain(services.store, registry, out_root=tmp_path, version="real-r1",
                     labels=["category", "department"], activate="always", min_rows=100)
    assert report.activated
    # The holdout is the newest labelled appeals; the new version must beat naming their most
    # frequent category for every one of them.
    holdout = labelled_frame(services.store, labels,
                             taxonomy=taxonomy).iloc[-report.holdout_rows:].dropna(
                                 subset=["category"])
    majority = holdout["category"].value_counts(normalize=True).iloc[0]
    accuracy = report.new_metrics["category"]["accuracy"]
    assert report.new_metrics["category"]["rows"] == len(holdout) == report.holdout_rows
    assert accuracy > majority + 0.15, (accuracy, majority)
    body = api.post("/v1/classify", headers=auth(api),
                    json={"text": "Мусор во дворе не вывозят", "district": "Невский"}).json()
    assert body["model_version"] == "real-r1"
    assert body["predictions"]["category"]["top"][0]["value"] == "Благоустройство"
    models = {m["version"]: m for m in api.get("/v1/models", headers=auth(api)).json()}
    assert models["real-r1"]["active"] and models["real-r1"]["metrics"]["holdout"]
