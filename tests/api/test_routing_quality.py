"""Precision of auto-routing in production, end to end through the API (SQLite and PostgreSQL).

An audit sample of auto-routed appeals goes to the queue; operators confirm or correct it; the
realized precision per label and month comes with Clopper–Pearson bounds; enough wrong audits
raise the threshold (stored override, audit-log row, quality alert) and the router obeys it.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from analytics_jobs import settled
from conftest import auth

from mcu_nlp.routing.audit_sample import AuditSampler, sample_key
from mcu_nlp.routing.precision import clopper_pearson, lower_bound
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.classify import InvalidAppealText, check_text

WRONG = "Отдел, назначенный при проверке"


@pytest.fixture(scope="module")
def auto_rows(spb_slice: pd.DataFrame, loaded_bundles) -> pd.DataFrame:
    """Later slice rows whose department fake-v1 routes on its own, by filing time."""
    bundle = loaded_bundles["fake-v1"]
    later = spb_slice.iloc[len(spb_slice) // 2:].reset_index(drop=True)
    predictions = bundle.predict(later[["text", "district"]])
    threshold = bundle.thresholds["department"]
    keep = []
    for index, predicted in enumerate(predictions):
        try:
            check_text(later.loc[index, "text"])
        except InvalidAppealText:
            continue
        if predicted["department"].confidence >= threshold:
            keep.append(index)
    rows = later.loc[keep].copy()
    rows["confidence"] = [predictions[i]["department"].confidence for i in keep]
    assert len(rows) >= 40, "the slice must give enough auto-routed appeals"
    return rows.sort_values(["created_at", "id"]).reset_index(drop=True)


def sampler(api, share: float, seed: str = "fixed") -> AuditSampler:
    api.services.classifier.audit = AuditSampler(share, seed)
    return api.services.classifier.audit


def policy(api, **audit_settings) -> None:
    api.services.settings = api.services.settings.model_copy(update=audit_settings)


def post(api, row, prefix: str = "q") -> dict:
    body = {"source_id": f"{prefix}-{row.id}", "channel": "portal", "text": row.text,
            "created_at": datetime.fromisoformat(row.created_at).isoformat(),
            "territory": row.district}
    response = api.post("/v1/appeals", json=body, headers=auth(api))
    assert response.status_code == 201, response.text
    return response.json()["appeal"]


def post_threshold_routed(api, rows, count: int, prefix: str = "q") -> list[dict]:
    """Post rows until ``count`` were auto-routed by the department threshold (not a rule)."""
    out = []
    for row in rows.itertuples(index=False):
        appeal = post(api, row, prefix)
        if appeal["routing"]["decided_by"] == "threshold:department":
            out.append(appeal)
        if len(out) == count:
            return out
    raise AssertionError(f"only {len(out)} threshold-routed appeals")


def department(appeal: dict) -> dict:
    return next(p for p in appeal["predictions"] if p["label"] == "department")


def confirm(api, appeal_id: int) -> dict:
    response = api.post(f"/v1/queue/{appeal_id}/confirm", headers=auth(api))
    assert response.status_code == 200, response.text
    return response.json()


def correct(api, appeal_id: int, value: str = WRONG) -> dict:
    # The checker's department is not a class of the model: a curator approved it.
    approved = api.post("/v1/taxonomy/department", json={"values": [value]},
                        headers=auth(api, "admin"))
    assert approved.status_code == 200, approved.text
    response = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                        json={"labels": {"department": value}, "comment": "аудит"})
    assert response.status_code == 200, response.text
    return response.json()


def quality(api, role: str = "analyst", **params) -> dict:
    response = api.get("/v1/routing/quality", params=params, headers=auth(api, role))
    assert response.status_code == 200, response.text
    return response.json()


def totals(body: dict, label: str = "department") -> dict[str, int]:
    rows = [m for m in body["months"] if m["label"] == label]
    keys = ("auto_routed", "audited", "audited_correct", "later_base", "later_corrected")
    return {k: sum(m[k] for m in rows) for k in keys}


def test_audit_sample_is_drawn_at_the_configured_share_and_marked(api, auto_rows):
    half = sampler(api, 0.5)
    posted = [post(api, row, "s") for row in auto_rows.iloc[:40].itertuples(index=False)]
    auto = [a for a in posted if a["routing"]["decision"] == "auto"]
    assert len(auto) >= 30
    expected = {a["id"] for a in auto if half.sampled(sample_key("api", a["source_id"]))}
    assert 0.25 * len(auto) < len(expected) < 0.75 * len(auto)
    assert {a["id"] for a in posted if a["audit_sample"]} == expected
    for appeal in posted:
        if appeal["id"] in expected:  # still routed automatically: the audit comes after
            assert appeal["routing"]["decision"] == "auto" and appeal["routing"]["department"]
            assert appeal["review_status"] == "open" and appeal["audit_outcome"] is None
        elif appeal["routing"]["decision"] == "auto":
            assert appeal["review_status"] is None
    queue = api.get("/v1/queue", params={"audit": "true", "limit": 500},
                    headers=auth(api)).json()
    assert {i["appeal_id"] for i in queue["items"]} == expected
    by_id = {a["id"]: a for a in posted}
    for item in queue["items"]:
        assert item["audit"] is True and item["reason"].startswith("audit sample")
        assert item["suggested_department"] == by_id[item["appeal_id"]]["routing"]["department"]
    waiting = api.get("/v1/queue", params={"audit": "false", "limit": 500},
                      headers=auth(api)).json()
    assert not {i["appeal_id"] for i in waiting["items"]} & expected
    assert all(not i["audit"] for i in waiting["items"])

    sampler(api, 1.0)
    every = [post(api, row, "all") for row in auto_rows.iloc[40:46].itertuples(index=False)]
    assert all(a["audit_sample"] == (a["routing"]["decision"] == "auto") for a in every)
    sampler(api, 0.0)
    none = [post(api, row, "none") for row in auto_rows.iloc[46:52].itertuples(index=False)]
    assert not any(a["audit_sample"] for a in none)
    review = {"source_id": "r-1", "created_at": "2021-03-01T10:00:00",
              "text": "В подъезде сильно пахнет газом"}  # a curator rule sends it to review
    sampler(api, 1.0)
    gas = api.post("/v1/appeals", json=review, headers=auth(api)).json()["appeal"]
    assert gas["routing"]["decision"] == "review" and not gas["audit_sample"]


def test_audit_verdicts_give_the_estimate_and_its_interval(api, auto_rows):
    sampler(api, 1.0)
    audited = post_threshold_routed(api, auto_rows, 8)
    for appeal in audited[:5]:
        body = confirm(api, appeal["id"])
        verdict = {v["label"]: v for v in body["verdicts"]}
        assert verdict["department"]["correct"] and body["threshold_changes"] == []
    for appeal in audited[5:]:
        out = correct(api, appeal["id"])
        assert out["audit_outcome"] == "corrected" and out["review_status"] == "resolved"
    assert api.post(f"/v1/queue/{audited[0]['id']}/confirm",
                    headers=auth(api)).status_code == 409
    body = quality(api)
    assert body["model_version"] == "fake-v1"
    assert body["policy"]["min_evidence"] == 59 and body["policy"]["audit_share"] == 1.0
    got = totals(body)
    assert (got["audited"], got["audited_correct"]) == (8, 5)
    assert got["auto_routed"] >= 8
    for month in (m for m in body["months"] if m["label"] == "department" and m["audited"]):
        k, n = month["audited_correct"], month["audited"]
        assert month["estimate"] == pytest.approx(k / n)
        assert month["interval_95"] == pytest.approx(list(clopper_pearson(k, n)))
        assert month["lower_bound"] == pytest.approx(lower_bound(k, n, 0.95))
        assert month["audited_wrong"] == n - k and month["target"] == 0.95
    state = next(s for s in body["labels"] if s["label"] == "department")
    assert state["evidence"]["audited"] == 8 and state["evidence"]["correct"] == 5
    assert state["evidence"]["interval_95"] == pytest.approx(list(clopper_pearson(5, 8)))
    assert state["status"] == "insufficient" and state["override"] is None  # 8 < 59
    category = [m for m in body["months"] if m["label"] == "category"]
    assert sum(m["audited"] for m in category) == sum(m["audited_correct"] for m in category)

    # later corrections of appeals outside the sample: reported, never in the estimate
    sampler(api, 0.0)
    outside = post_threshold_routed(api, auto_rows.iloc[::-1], 2, prefix="late")
    assert api.post(f"/v1/queue/{outside[0]['id']}/confirm",
                    headers=auth(api)).status_code == 404
    correct(api, outside[0]["id"])
    after = totals(quality(api))
    assert (after["audited"], after["audited_correct"]) == (8, 5)
    assert after["later_corrected"] == 1 and after["later_base"] == got["later_base"] + 2
    assert api.get("/v1/routing/quality", headers=auth(api)).status_code == 403
    assert quality(api, "admin")["months"]
    assert api.get("/v1/alerts/quality", headers=auth(api, "analyst")).json()["total"] == 0


def test_wrong_audits_tighten_the_threshold_and_the_router_obeys(api, auto_rows):
    sampler(api, 1.0)
    # 8 audited items are enough for a flawless sample to clear 0.8 at 80 % confidence
    policy(api, audit_target_precision=0.8, audit_confidence=0.8, audit_min_items=5)
    bundle_threshold = api.services.registry.holder.current.bundle.thresholds["department"]
    audited = post_threshold_routed(api, auto_rows, 16)
    audited.sort(key=lambda a: -department(a)["confidence"])
    right, wrong = audited[:10], audited[10:]
    for appeal in right:
        assert confirm(api, appeal["id"])["threshold_changes"] == []
    for appeal in wrong:
        correct(api, appeal["id"])
    new = department(right[-1])["confidence"]  # the 10 above it: 10 of 10, bound 0.85 >= 0.8
    assert new > department(wrong[0])["confidence"] >= bundle_threshold

    body = quality(api)
    state = next(s for s in body["labels"] if s["label"] == "department")
    assert state["override"] == pytest.approx(new)
    assert state["effective_threshold"] == pytest.approx(new)
    assert state["bundle_threshold"] == pytest.approx(bundle_threshold)
    assert (state["evidence"]["audited"], state["evidence"]["correct"]) == (10, 10)
    assert state["status"] == "ok"
    assert totals(body)["audited"] == 16 and totals(body)["audited_correct"] == 10
    assert all(m["override"] == pytest.approx(new) for m in body["months"]
               if m["label"] == "department")
    stored = api.get("/v1/routing/overrides", headers=auth(api, "analyst")).json()
    assert [(o["label"], o["updated_by"]) for o in stored] == [("department", "system")]
    assert stored[0]["threshold"] == pytest.approx(new)

    entries = [e for e in list_audit(api.services.store, entity="routing_threshold")
               if e.action == "routing.threshold.tighten"]
    assert len(entries) == 1 and entries[0].actor == "system"
    details = entries[0].details
    assert details["before"] == pytest.approx(bundle_threshold)
    assert details["after"] == pytest.approx(new) and details["method"] == "estimate"
    assert "lower bound" in details["reason"] and details["lower_bound"] < 0.8

    alerts = api.get("/v1/alerts/quality", headers=auth(api, "analyst")).json()
    assert alerts["total"] == 1
    alert = alerts["items"][0]
    assert alert["kind"] == "quality:routing_precision" and alert["status"] == "new"
    assert alert["details"]["label"] == "department"
    assert alert["details"]["threshold_after"] == pytest.approx(new)
    assert "ниже цели" in alert["title"]
    ack = api.post(f"/v1/alerts/quality/{alert['id']}/ack", headers=auth(api, "analyst"))
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"

    # the router now sends what lies between the bundle's threshold and the new one to review
    below = wrong[0]
    text = {"text": below["text"], "territory": below["territory"], "channel": "portal"}
    routed = api.post("/v1/classify", json=text, headers=auth(api)).json()
    assert routed["routing"]["decision"] == "review"
    assert routed["routing"]["decided_by"] == "review:below-threshold:department"
    assert routed["predictions"]["department"]["threshold"] == pytest.approx(new)
    above = right[0]
    still = api.post("/v1/classify", headers=auth(api), json={
        "text": above["text"], "territory": above["territory"], "channel": "portal"}).json()
    assert still["routing"]["decision"] == "auto"
    stored = api.post("/v1/appeals", headers=auth(api), json={
        **text, "source_id": "after-tightening", "created_at": "2021-05-01T09:00:00"}).json()
    assert stored["appeal"]["routing"]["decision"] == "review"
    assert not stored["appeal"]["audit_sample"] and stored["appeal"]["review_status"] == "open"

    # an admin resets the override: the bundle's threshold again, the audit counts anew
    path = "/v1/routing/overrides/department/reset"
    assert api.post(path, headers=auth(api)).status_code == 403
    reset = api.post(path, json={"comment": "модель проверена"}, headers=auth(api, "admin"))
    assert reset.status_code == 200 and reset.json()["threshold"] is None
    assert api.post(path, headers=auth(api, "admin")).status_code == 404
    again = api.post("/v1/classify", json=text, headers=auth(api)).json()
    assert again["routing"]["decision"] == "auto"
    latest = list_audit(api.services.store, entity="routing_threshold")[0]
    assert latest.action == "routing.threshold.reset" and latest.details["after"] == \
        pytest.approx(bundle_threshold)
    state = next(s for s in quality(api)["labels"] if s["label"] == "department")
    assert state["override"] is None and state["evidence"]["audited"] == 0
    assert api.post("/v1/routing/quality/review", headers=auth(api, "admin")).json() == []


def test_weekly_note_shows_the_routing_precision_table(api, auto_rows):
    sampler(api, 1.0)
    latest = auto_rows.iloc[::-1]  # the newest appeals: the note's months
    audited = post_threshold_routed(api, latest, 6, prefix="note")
    for appeal in audited[:4]:
        confirm(api, appeal["id"])
    for appeal in audited[4:]:
        correct(api, appeal["id"])
    end = max(datetime.fromisoformat(a["created_at"]) for a in audited).date()
    response = settled(api, "get", "/v1/reports/note",
                       params={"period": "week", "end": end.isoformat()},
                       headers=auth(api, "analyst"))
    assert response.status_code == 200, response.text
    section = response.json()["routing_quality"]
    assert section["target"] == 0.95 and section["model_version"] == "fake-v1"
    start = end.toordinal() - 6
    first = date.fromordinal(start).replace(day=1)
    since = (first.replace(year=first.year - 1, month=12) if first.month == 1
             else first.replace(month=first.month - 1))
    expected = quality(api, since=since.isoformat(), until=end.isoformat())
    rows = [(r["label"], r["month"], r["audited"], r["audited_correct"], r["lower_bound"])
            for r in section["rows"]]
    assert rows == [(m["label"], m["month"], m["audited"], m["audited_correct"],
                     m["lower_bound"]) for m in expected["months"]]
    department_rows = [r for r in section["rows"] if r["label"] == "department"]
    assert sum(r["audited"] for r in department_rows) >= 1
    assert {t["label"] for t in section["thresholds"]} == {"category", "department"}
    html = settled(api, "get", "/v1/reports/note", headers=auth(api, "analyst"), params={
        "period": "week", "end": end.isoformat(), "format": "html"}).text
    assert "9. Точность автоматической маршрутизации" in html
    assert "10. Методика и оговорки" in html
    month = department_rows[-1]["month"]
    assert f"{month[5:]}.{month[:4]}" in html and "Клоппер" in html
