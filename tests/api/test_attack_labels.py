"""Poisoning the retraining: labels a caller sends do not become people's labels.

An operator key can send labels with an appeal and corrections with any value; ``retrain
--activate auto`` must neither learn values nobody approved nor judge the new version on labels
nobody confirmed. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import auth

from mcu_nlp.records import Appeal, Channel
from mcu_nlp.services.appeals import correct_appeal
from mcu_nlp.services.audit import list_audit
from mcu_nlp.services.imports import import_appeals
from mcu_nlp.services.retrain import RetrainError, labelled_frame, retrain
from mcu_nlp.services.taxonomy import active_taxonomy, bundle_classes
from mcu_nlp.storage.models import HumanLabelRow

POISON = "Реклама казино — лучшие ставки"
TEXT = "Во дворе дома 5 по улице Ленина третью неделю не вывозят мусор, контейнеры переполнены"


def classes(api, label: str = "category") -> list[str]:
    return sorted(bundle_classes(api.services.registry.holder.current.bundle, label))


def post(api, source_id: str, labels: dict[str, str] | None = None, text: str = TEXT) -> int:
    body = {"source_id": source_id, "created_at": "2021-03-01T10:00:00", "text": text,
            "labels": labels or {}}
    response = api.post("/v1/appeals", json=body, headers=auth(api))
    assert response.status_code == 201, response.text
    return response.json()["appeal"]["id"]


def human_labels(store, appeal_id: int) -> list[tuple[str, str, str, bool]]:
    with store.session() as session:
        rows = session.execute(sa.select(HumanLabelRow.label, HumanLabelRow.value,
                                         HumanLabelRow.origin, HumanLabelRow.confirmed)
                               .where(HumanLabelRow.appeal_id == appeal_id)
                               .order_by(HumanLabelRow.id)).all()
    return [tuple(row) for row in rows]


def test_a_poisoned_correction_is_refused_until_an_admin_approves_the_value(api):
    appeal_id = post(api, "P-1")
    store = api.services.store

    refused = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                       json={"labels": {"category": POISON}})
    assert refused.status_code == 422, refused.text
    assert "not an approved value of 'category'" in refused.json()["detail"]
    assert "POST /v1/taxonomy/category" in refused.json()["detail"]
    assert human_labels(store, appeal_id) == []  # nothing stored, nothing to train on
    assert not [e for e in list_audit(store, entity="appeal", entity_id=str(appeal_id))
                if e.action == "appeal.correct"]
    # A value of the active model's taxonomy is accepted.
    known = classes(api)[0]
    ok = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                  json={"labels": {"category": known}})
    assert ok.status_code == 200, ok.text
    # Only an admin extends the taxonomy; operators and analysts cannot.
    for role in ("operator", "analyst"):
        denied = api.post("/v1/taxonomy/category", json={"values": [POISON]},
                          headers=auth(api, role))
        assert denied.status_code == 403
    assert api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                    json={"labels": {"category": POISON}}).status_code == 422
    added = api.post("/v1/taxonomy/category", json={"values": [POISON]},
                     headers=auth(api, "admin"))
    assert added.status_code == 200, added.text
    assert POISON in added.json()["labels"][0]["curated_values"]
    assert [e.action for e in list_audit(store, entity="label", entity_id="category")] == [
        "taxonomy.add"]
    now = api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                   json={"labels": {"category": POISON}})
    assert now.status_code == 200, now.text
    listed = api.get("/v1/taxonomy", headers=auth(api, "analyst")).json()
    category = next(item for item in listed["labels"] if item["label"] == "category")
    assert POISON in category["curated_values"] and known in category["model_values"]


def test_imported_labels_are_source_labels_until_a_person_confirms_them(api):
    store = api.services.store
    known = classes(api)[0]
    other = classes(api)[1]
    appeal_id = post(api, "S-1", labels={"category": known})
    second = post(api, "S-2", labels={"category": known})

    assert human_labels(store, appeal_id) == [("category", known, "source", False)]
    assert labelled_frame(store, ["category"]).empty  # not a training label
    # A file import is the same path: its labels wait for a person too.
    summary = import_appeals(store, api.services.classifier, [Appeal(
        id="F-1", channel=Channel.PORTAL, source="spb_portal",
        created_at=datetime(2021, 3, 2, 9), text=TEXT, labels={"category": known})])
    assert human_labels(store, summary.stored_ids[0]) == [("category", known, "source", False)]
    assert labelled_frame(store, ["category"]).empty

    # A person setting the same value confirms the source label.
    assert api.post(f"/v1/appeals/{appeal_id}/correction", headers=auth(api),
                    json={"labels": {"category": known}}).status_code == 200
    assert ("category", known, "source", True) in human_labels(store, appeal_id)
    # A person setting another value leaves the source label unconfirmed.
    assert api.post(f"/v1/appeals/{second}/correction", headers=auth(api),
                    json={"labels": {"category": other}}).status_code == 200
    assert ("category", known, "source", False) in human_labels(store, second)
    frame = labelled_frame(store, ["category"]).set_index("appeal_id")["category"]
    assert frame.to_dict() == {appeal_id: known, second: other}


class ConstantBundle:
    """Predicts one value for every appeal (confident), so accuracy names the truth used."""

    def __init__(self, version: str, label: str, value: str) -> None:
        self.version, self.labels, self.thresholds = version, [label], {label: 0.5}
        self.value = value

    def predict(self, frame: pd.DataFrame, top_k: int = 3) -> list[dict]:
        return [{self.labels[0]: SimpleNamespace(top=[(self.value, 0.99)], confident=True)}
                for _ in range(len(frame))]


def test_retrain_with_planted_source_noise_scores_on_confirmed_labels_only(api, tmp_path):
    """Source labels (noise) arrive for every appeal, people confirm some; the holdout that
    decides activation is the newest people-confirmed share, never a source label."""
    store, services = api.services.store, api.services
    truth, noise = classes(api)[:2]
    start = datetime(2021, 1, 1, 8)
    appeals = [Appeal(id=f"N-{i}", channel=Channel.PORTAL, source="spb_portal",
                      created_at=start + timedelta(hours=i), text=f"{TEXT}, заявка {i}",
                      labels={"category": noise}) for i in range(120)]
    ids = import_appeals(store, services.classifier, appeals).stored_ids
    assert len(ids) == 120
    # People confirm the true value of every third appeal (40 appeals over the whole period).
    confirmed = ids[::3]
    for appeal_id in confirmed:
        correct_appeal(store, appeal_id, {"category": truth}, author="key:1:operator",
                       allowed_labels=["category"])
    # And an attacker's values outside the taxonomy, planted past the API's check, never count.
    for appeal_id in ids[1::3][:10]:
        correct_appeal(store, appeal_id, {"category": POISON}, author="key:9:operator",
                       allowed_labels=["category"])
    seen: dict[str, pd.DataFrame] = {}

    def train_fn(frame, *, labels, version, out_dir, validation_frame):
        seen["train"] = pd.concat([frame, validation_frame])
        out_dir.mkdir(parents=True)
        return ConstantBundle(version, "category", truth)

    report = retrain(store, services.registry, out_root=tmp_path, labels=["category"],
                     version="noisy-r1", activate="never", train_fn=train_fn, min_rows=20,
                     source_labels=True, min_holdout_rows=5)
    newest = sorted(confirmed)[-report.holdout_rows:]
    assert report.holdout_rows == 6  # 15 % of the 40 confirmed appeals, not of 120 source ones
    # Every holdout label is a person's (truth): the constant model scores 1.0; on the source
    # noise it would score 0.0.
    assert report.new_metrics["category"] == {**report.new_metrics["category"], "rows": 6,
                                              "accuracy": 1.0}
    assert report.holdout_from == str(start + timedelta(hours=3 * (len(confirmed) - 6)))
    train = seen["train"]
    assert not set(train["appeal_id"]) & set(newest)
    assert POISON not in set(train["category"])
    # Source labels train (configured), but only those older than the holdout: a time split.
    from_source = train[~train["appeal_id"].isin(confirmed)]
    assert len(from_source) > 0 and set(from_source["category"]) == {noise}
    assert from_source["created_at"].max() < pd.Timestamp(report.holdout_from)

    # Not configured: only people's labels train.
    report = retrain(store, services.registry, out_root=tmp_path, labels=["category"],
                     version="noisy-r2", activate="never", train_fn=train_fn, min_rows=20,
                     min_holdout_rows=5)
    assert set(seen["train"]["appeal_id"]) <= set(confirmed)
    assert set(seen["train"]["category"]) == {truth}
    assert report.new_metrics["category"]["accuracy"] == 1.0


def test_auto_activation_needs_a_confirmed_holdout(api, tmp_path):
    """Only source labels in the store: a new version may train on them (configured) but can
    never win the comparison, since no person confirmed anything to score it on."""
    store, services = api.services.store, api.services
    truth = classes(api)[0]
    appeals = [Appeal(id=f"U-{i}", channel=Channel.PORTAL, source="spb_portal",
                      created_at=datetime(2021, 2, 1) + timedelta(hours=i),
                      text=f"{TEXT}, заявка {i}", labels={"category": truth})
               for i in range(60)]
    import_appeals(store, services.classifier, appeals)

    def train_fn(frame, *, labels, version, out_dir, validation_frame):
        out_dir.mkdir(parents=True)
        return ConstantBundle(version, "category", truth)

    with pytest.raises(RetrainError, match="confirmed by people"):
        retrain(store, services.registry, out_root=tmp_path, labels=["category"],
                version="src-r0", activate="auto", train_fn=train_fn, min_rows=20)
    report = retrain(store, services.registry, out_root=tmp_path, labels=["category"],
                     version="src-r1", activate="auto", train_fn=train_fn, min_rows=20,
                     source_labels=True)
    assert report.holdout_rows == 0 and not report.wins and not report.activated
    assert services.registry.holder.current.version == "fake-v1"


def test_retrain_ignores_values_outside_the_taxonomy(api):
    store = api.services.store
    appeal_id = post(api, "T-1")
    correct_appeal(store, appeal_id, {"category": POISON}, author="key:9:operator",
                   allowed_labels=["category"])
    taxonomy = active_taxonomy(api.services.registry.holder.current.bundle, ["category"],
                               curated_path=api.services.settings.taxonomy_file)
    assert labelled_frame(store, ["category"])["category"].tolist() == [POISON]
    assert labelled_frame(store, ["category"], taxonomy=taxonomy).empty
