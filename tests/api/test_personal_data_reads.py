"""Reads of personal data: analysts see masked texts, operators' and admins' raw reads are audited.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import pytest
from conftest import auth

from mcu_nlp.routing.audit_sample import AuditSampler
from mcu_nlp.services import personal_data
from mcu_nlp.services.audit import list_audit

NAME, PHONE, EMAIL = "Иванов Иван Петрович", "+7 921 123-45-67", "ivanov.ivan@mail.ru"
TEXT = (f"Здравствуйте, я {NAME}, телефон {PHONE}, почта {EMAIL}. Во дворе дома на улице "
        "Ленина третью неделю не вывозят мусор, контейнеры переполнены, прошу принять меры.")
ADDRESS = "ул. Ленина, д. 5, кв. 12"


def post(api, source_id: str, channel: str = "portal") -> int:
    body = {"source_id": source_id, "channel": channel, "created_at": "2021-03-01T10:00:00",
            "text": TEXT, "address": ADDRESS, "territory": "Невский"}
    response = api.post("/v1/appeals", json=body, headers=auth(api))
    assert response.status_code == 201, response.text
    return response.json()["appeal"]["id"]


def reads(api, appeal_id: int) -> list:
    return [e for e in list_audit(api.services.store, entity="appeal", entity_id=str(appeal_id))
            if e.action == "appeal.read"]


def actor_of(api, role: str) -> str:
    return api.services.keys.identity(api.keys[role]).actor


def assert_masked(text: str) -> None:
    for secret in (NAME, "Иванов", PHONE, "921", EMAIL, "кв. 12"):
        assert secret not in text, (secret, text)


def test_analyst_reads_a_masked_appeal_and_leaves_no_raw_read(api):
    appeal_id = post(api, "PD-1")
    response = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api, "analyst"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert_masked(body["text"])
    assert "[ФИО]" in body["text"] and "[ТЕЛЕФОН]" in body["text"] and "[EMAIL]" in body["text"]
    assert "не вывозят мусор" in body["text"]  # the problem itself stays readable
    assert body["address"] == "ул. Ленина, д. 5, кв. [НОМЕР]"  # the place, not the flat
    assert reads(api, appeal_id) == []


def test_applicant_address_of_a_59_fz_appeal_is_hidden_from_analysts(api):
    appeal_id = post(api, "PD-2", channel="59-fz")
    body = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api, "analyst")).json()
    assert body["address"] == "[АДРЕС]"
    assert_masked(body["text"])


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operator_and_admin_read_raw_text_and_each_read_is_audited(api, role):
    appeal_id = post(api, "PD-3")
    assert reads(api, appeal_id) == []
    for expected in (1, 2):
        body = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api, role)).json()
        assert body["text"] == TEXT and body["address"] == ADDRESS
        entries = reads(api, appeal_id)
        assert len(entries) == expected
    assert {e.actor for e in entries} == {actor_of(api, role)}
    assert entries[0].details["via"] == "GET /v1/appeals/{id}"
    assert entries[0].at is not None


def test_queue_is_masked_for_analysts_and_audited_for_operators(api):
    api.services.classifier.audit = AuditSampler(1.0, "all")  # routed or not, each is queued
    ids = [post(api, f"PD-Q{i}") for i in range(3)]
    analyst_page = api.get("/v1/queue", params={"status": "all"},
                           headers=auth(api, "analyst")).json()
    queued = {item["appeal_id"] for item in analyst_page["items"]}
    assert queued == set(ids)
    for item in analyst_page["items"]:
        assert_masked(item["text"])
    assert all(reads(api, appeal_id) == [] for appeal_id in ids)

    operator_page = api.get("/v1/queue", params={"status": "all"}, headers=auth(api)).json()
    assert operator_page["items"] and all(i["text"] == TEXT for i in operator_page["items"])
    for item in operator_page["items"]:
        entries = reads(api, item["appeal_id"])
        assert [(e.actor, e.details["via"]) for e in entries] == [
            (actor_of(api, "operator"), "GET /v1/queue")]
    assert {i["appeal_id"] for i in operator_page["items"]} == queued


def test_a_raw_read_that_cannot_be_audited_returns_nothing(api, monkeypatch):
    appeal_id = post(api, "PD-4")

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(personal_data, "record_audit", broken)
    with pytest.raises(RuntimeError, match="audit store down"):
        api.get(f"/v1/appeals/{appeal_id}", headers=auth(api))


SURNAME_TEXT = ("Пишет Анна Кузьмина, телефон +7 921 765-43-21. Во дворе не вывозят мусор, "
                "контейнеры переполнены.")


def explanation_words(body: dict) -> list[str]:
    return [str(pair[0]) for p in body["predictions"] for pair in p["explanation"]]


def test_explanation_words_are_masked_for_analysts(api):
    """A surname the model quotes as an explanation word reaches analysts as its placeholder."""
    body = {"source_id": "PD-X1", "channel": "portal", "created_at": "2021-03-01T10:00:00",
            "text": SURNAME_TEXT, "territory": "Невский"}
    stored = api.post("/v1/appeals", json=body, headers=auth(api))
    assert stored.status_code == 201, stored.text
    appeal_id = stored.json()["appeal"]["id"]
    # The caller's own text comes back as sent, explanation included (no read, nothing audited).
    assert "кузьмина" in explanation_words(stored.json()["appeal"])
    assert reads(api, appeal_id) == []

    raw = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api)).json()
    assert "кузьмина" in explanation_words(raw)  # the model does use the surname

    masked = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api, "analyst")).json()
    words = explanation_words(masked)
    assert len(words) == len(explanation_words(raw))  # weights kept, words masked in place
    assert "кузьмина" not in " ".join(words) and "[ФИО]" in words
    assert "Кузьмина" not in masked["text"] and "[ФИО]" in masked["text"]
    # Every word an analyst reads in an explanation is a word of the masked text they read.
    visible = {w.casefold().replace("ё", "е") for w in re.findall(r"\w+", masked["text"])}
    for word in words:
        for token in re.findall(r"\w+", word):
            key = token.casefold().replace("ё", "е")
            assert key.startswith("__d_") or key in visible, (token, words)


def test_correction_comment_and_manual_routing_reason_are_masked_for_analysts(api):
    appeal_id = post(api, "PD-C1")
    department = sorted(api.services.registry.holder.current.bundle.classes("department"))[0]
    comment = f"звонил {NAME}, {PHONE}, просил передать в другую службу"
    fixed = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                     json={"labels": {"department": department}, "comment": comment})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["routing"]["reason"] == comment  # the operator reads it raw
    masked = api.get(f"/v1/appeals/{appeal_id}", headers=auth(api, "analyst")).json()
    assert_masked(masked["corrections"][0]["comment"])
    assert masked["routing"]["decided_by"].startswith("human:")
    assert_masked(masked["routing"]["reason"])
    assert "просил передать в другую службу" in masked["routing"]["reason"]
    for word in explanation_words(masked):
        assert_masked(word)
