"""Attack: strings longer than their columns, NUL and control characters, through the API.

Each attack used to end in a 500 on PostgreSQL (SQLite stores over-long strings silently):
a key with a 152-character name could not write anything, a 65-character label name broke a
correction, a NUL in a long text broke the insert. Now every one is a 422 at the edge, or is
stored cleaned, on SQLite and PostgreSQL alike, and ``/health`` keeps answering.
"""

from __future__ import annotations

import sqlalchemy as sa
from conftest import auth

from api import schemas
from mcu_nlp.storage.limits import actor_limit, column_limit, fit_actor, string_limits
from mcu_nlp.storage.models import AppealRow, AuditRow, CorrectionRow

TEXT = "Во дворе дома не вывозят мусор уже вторую неделю, контейнеры переполнены, просим помочь"


def appeal(source_id: str = "a-1", **fields) -> dict:
    return {"source_id": source_id, "created_at": "2021-03-01T10:00:00", "text": TEXT, **fields}


def test_limits_are_read_from_the_storage_rows():
    limits = string_limits()
    assert limits["appeals"]["address"] == 500 and limits["audit_log"]["actor"] == 100
    assert limits["human_labels"]["label"] == 64 and limits["api_keys"]["name"] == 200
    assert actor_limit() == 100
    assert len(fit_actor("key:7:" + "я" * 300)) == 100
    fields = schemas.AppealIn.model_fields
    assert any(getattr(m, "max_length", None) == column_limit("appeals", "source_id")
               for m in fields["source_id"].metadata)


def test_a_key_with_a_long_name_can_write_and_is_audited(api):
    name = "оператор " + "д" * 143  # 152 characters: its actor is longer than the column
    created = api.post("/v1/keys", json={"role": "operator", "name": name},
                       headers=auth(api, "admin"))
    assert created.status_code == 201, created.text
    headers = {"X-API-Key": created.json()["key"]}
    stored = api.post("/v1/appeals", json=appeal(), headers=headers)
    assert stored.status_code == 201, stored.text
    appeal_id = stored.json()["appeal"]["id"]
    corrected = api.post(f"/v1/appeals/{appeal_id}/correction", headers=headers,
                         json={"labels": {"department": "Администрация Невского района"}})
    assert corrected.status_code == 200, corrected.text
    store = api.services.store
    with store.session() as session:
        actors = session.scalars(sa.select(AuditRow.actor)).all()
        authors = session.scalars(sa.select(CorrectionRow.author)).all()
    assert authors and all(len(a) <= 100 for a in [*actors, *authors])
    assert any(a.startswith("key:") and "оператор" in a for a in authors)


def test_key_names_over_the_column_or_with_controls_are_refused(api):
    for name in ("к" * 201, "ключ\x00", "ключ\x1b[31m"):
        response = api.post("/v1/keys", json={"role": "operator", "name": name},
                            headers=auth(api, "admin"))
        assert response.status_code == 422, (name, response.text)
    assert api.get("/health").status_code == 200


def test_long_label_names_in_a_correction_are_a_422(api):
    stored = api.post("/v1/appeals", json=appeal(), headers=auth(api)).json()
    appeal_id = stored["appeal"]["id"]
    for labels in ({"д" * 65: "Администрация Невского района"}, {"department": "Ж" * 501},
                   {"depart\x00ment": "Администрация Невского района"}):
        response = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                            json={"labels": labels})
        assert response.status_code == 422, response.text
    assert api.get("/health").status_code == 200
    good = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                    json={"labels": {"department": "Администрация Невского района"}})
    assert good.status_code == 200, good.text


def test_over_long_fields_of_an_appeal_are_a_422(api):
    attacks = [
        appeal("и" * 201),
        appeal("id\x00nul"),
        appeal(territory="т" * 201),
        appeal(address="а" * 501),
        appeal(address="ул. Ленина\x00 1"),
        appeal(labels={"к" * 65: "мусор"}),
    ]
    for body in attacks:
        response = api.post("/v1/appeals", json=body, headers=auth(api))
        assert response.status_code == 422, (body, response.text)
    assert api.get("/health").status_code == 200
    # nothing half-stored; a good appeal still goes through
    ok = api.post("/v1/appeals", json=appeal("fine", address="а" * 500, territory="т" * 200),
                  headers=auth(api))
    assert ok.status_code == 201, ok.text
    with api.services.store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AppealRow)) == 1


def test_a_nul_in_a_long_text_is_stored_cleaned(api):
    text = TEXT + "\x00" + " и во дворе темно, фонари не горят" * 5
    response = api.post("/v1/appeals", json=appeal("nul-1", text=text), headers=auth(api))
    assert response.status_code == 201, response.text
    assert "\x00" not in response.json()["appeal"]["text"]
    with api.services.store.session() as session:
        stored = session.scalar(sa.select(AppealRow.text))
    assert stored == text.replace("\x00", "").strip()
    again = api.post("/v1/appeals", json=appeal("nul-1", text=text), headers=auth(api))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_binary_text_is_still_refused(api):
    response = api.post("/v1/appeals", json=appeal(text="\x00\x01\x02" + TEXT),
                        headers=auth(api))
    assert response.status_code == 422
    assert api.get("/health").status_code == 200
