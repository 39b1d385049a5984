"""The console queue's service: claims, decisions, undo, bulk corrections (SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from mcu_nlp.services import console_queue as cq
from mcu_nlp.services.taxonomy import active_taxonomy
from mcu_nlp.storage.models import (
    AuditRow,
    AuditVerdictRow,
    CorrectionRow,
    HumanLabelRow,
    PredictionRow,
    ReviewItemRow,
    RoutingDecisionRow,
    utcnow,
)

A, B = "user:1:oper1", "user:2:oper2"


@pytest.fixture
def env(store, bundle_dirs, bundle_loader, spb_slice, tmp_path):
    """A store with fake-v1 active and the newest 120 rows of the slice imported."""
    from api.main import build_services
    from mcu_nlp.services.imports import import_file
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import Settings

    ModelRegistry(store, loader=bundle_loader).register(bundle_dirs["fake-v1"], activate=True)
    services = build_services(Settings(data_dir=tmp_path), store=store, loader=bundle_loader)
    export = tmp_path / "export.csv"
    spb_slice.iloc[-120:].to_csv(export, index=False)
    import_file(store, services.classifier, export, kind="spb_portal")
    model = services.registry.holder.current
    taxonomy = active_taxonomy(model.bundle, ["category", "department"], curated_path=None,
                               model_version=model.version)
    return SimpleNamespace(store=store, services=services, taxonomy=taxonomy,
                           departments=sorted(taxonomy.values("department")),
                           topics=sorted(taxonomy.values("category")))


def _ids(result: cq.ClaimResult) -> list[int]:
    return [e.appeal_id for e in result.items]


def _open_count(store) -> int:
    with store.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ReviewItemRow)
                              .where(ReviewItemRow.status == "open"))


def _audit(store, action: str) -> list[AuditRow]:
    with store.session() as session:
        return list(session.scalars(sa.select(AuditRow).where(AuditRow.action == action)
                                    .order_by(AuditRow.id)))


def _other(values: list[str], value: str | None) -> str:
    return next(v for v in values if v != value)


def test_claims_are_exclusive_renewed_and_expire(env):
    flt = cq.QueueFilter()
    first = cq.claim_items(env.store, actor=A, flt=flt, size=5)
    second = cq.claim_items(env.store, actor=B, flt=flt, size=5)
    assert len(_ids(first)) == 5 and len(_ids(second)) == 5
    assert not set(_ids(first)) & set(_ids(second))
    assert first.matching == _open_count(env.store) and second.held_by_others == 5
    # asking again renews the same screen
    assert _ids(cq.claim_items(env.store, actor=A, flt=flt, size=5)) == _ids(first)
    # claims expire: eleven minutes later B may take A's items
    later = utcnow() + cq.CLAIM_TTL + timedelta(minutes=1)
    taken = cq.claim_items(env.store, actor=B, flt=flt, size=10, now=later)
    assert set(_ids(first)) <= set(_ids(taken))
    # nobody may open or decide another operator's live claim
    with pytest.raises(cq.QueueConflict):
        cq.open_item(env.store, _ids(first)[0], actor=A)


def test_the_screen_is_ordered_by_urgency_then_deadline_risk_then_age(env):
    items = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(), size=40).items
    urgencies = [i.urgency for i in items]
    assert urgencies == sorted(urgencies, reverse=True)
    ranks = [(-i.urgency, -cq.RISK_ORDER[i.risk], i.created_at) for i in items]
    assert ranks == sorted(ranks)
    assert all(i.deadline is not None and i.risk == "overdue" for i in items)  # 2021 appeals
    low = cq.claim_items(env.store, actor=B, flt=cq.QueueFilter(sort="confidence"),
                         size=20).items
    confidences = [i.confidence for i in low]
    assert confidences == sorted(confidences)


def test_filters_narrow_the_queue(env):
    with env.store.session() as session:
        territory = session.scalar(sa.text(
            "SELECT a.territory FROM appeals a JOIN review_queue r ON r.appeal_id = a.id "
            "GROUP BY a.territory ORDER BY COUNT(*) DESC LIMIT 1"))
        topic = session.scalar(sa.select(PredictionRow.value).where(
            PredictionRow.label == "category").limit(1))
    by_place = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(territory=territory),
                              size=50)
    assert by_place.items and all(i.territory == territory for i in by_place.items)
    by_topic = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(topic=topic), size=50)
    assert by_topic.items and all(i.suggested["category"] == topic for i in by_topic.items)
    # changing the filter released the claims that left the screen
    with env.store.session() as session:
        held = set(session.scalars(sa.select(ReviewItemRow.appeal_id)
                                   .where(ReviewItemRow.claimed_by == A)))
    assert held == {i.appeal_id for i in by_topic.items}
    assert cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(channel="im")).items == []


@pytest.mark.parametrize("operators", [6])
def test_concurrent_claims_never_share_an_item(env, operators):
    results: dict[str, list[int]] = {}
    barrier = threading.Barrier(operators)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait()
            results[name] = _ids(cq.claim_items(env.store, actor=name, flt=cq.QueueFilter(),
                                                size=8))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"user:{n}:op{n}",))
               for n in range(operators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == len(set(claimed)) == operators * 8


@pytest.mark.parametrize("store", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_postgres_claims_skip_rows_another_transaction_locked(env):
    first = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(), size=3)
    cq.release(env.store, actor=A)
    locked = _ids(first)[0]
    with env.store.engine.connect() as other:
        transaction = other.begin()
        other.execute(sa.text("SELECT id FROM review_queue WHERE appeal_id = :a FOR UPDATE"),
                      {"a": locked})
        started = time.monotonic()
        result = cq.claim_items(env.store, actor=B, flt=cq.QueueFilter(), size=3)
        assert time.monotonic() - started < 5  # never waited for the lock
        assert locked not in _ids(result) and _ids(result)[:2] == _ids(first)[1:]
        transaction.rollback()


def test_a_decision_is_a_correction_with_audit_and_resolves_the_item(env):
    item = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(audit=False), size=1).items[0]
    view = cq.open_item(env.store, item.appeal_id, actor=A)
    assert view["text"] and view["deadline"] and view["labels"]["department"]["suggested"]
    assert view["labels"]["department"]["explanation"]
    new_department = view["labels"]["department"]["alternatives"][0][0]
    topic = view["labels"]["category"]["suggested"]
    decision = cq.decide(env.store, item.appeal_id,
                         {"department": new_department, "category": topic}, actor=A,
                         taxonomy=env.taxonomy)
    assert decision.kind == "correct"
    with env.store.session() as session:
        review = session.scalar(sa.select(ReviewItemRow).where(
            ReviewItemRow.appeal_id == item.appeal_id))
        assert review.status == "resolved" and review.resolved_by == A
        assert review.claimed_by is None
        labels = {r.label: r.value for r in session.scalars(sa.select(HumanLabelRow).where(
            HumanLabelRow.appeal_id == item.appeal_id, HumanLabelRow.origin == "correction"))}
        assert labels == {"department": new_department, "category": topic}
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow).where(
            CorrectionRow.appeal_id == item.appeal_id)) == 2
    correct = [r for r in _audit(env.store, "appeal.correct")
               if r.entity_id == str(item.appeal_id)]
    assert len(correct) == 1 and correct[0].actor == A
    details = correct[0].details
    assert details["model_version"] == "fake-v1"
    assert details["before"]["department"] == view["labels"]["department"]["suggested"]
    assert details["scores"]["department"] == pytest.approx(
        view["labels"]["department"]["alternatives"][0][1])
    reads = [r for r in _audit(env.store, "appeal.read") if r.entity_id == str(item.appeal_id)]
    assert reads and reads[0].details["via"] == cq.VIA
    # decided: it is no one's to decide again
    with pytest.raises(cq.QueueConflict):
        cq.decide(env.store, item.appeal_id, {"department": new_department}, actor=B,
                  taxonomy=env.taxonomy)


def test_bad_labels_and_values_are_refused(env):
    item = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(), size=1).items[0]
    for labels in ({"department": "Нет такого ведомства"}, {"reason": "x"}, {},
                   {"category": " "}, {"department": "x" * 501}):
        with pytest.raises(cq.InvalidDecision):
            cq.decide(env.store, item.appeal_id, labels, actor=A, taxonomy=env.taxonomy)
    with pytest.raises(cq.ItemNotFound):
        cq.decide(env.store, 10**9, {"department": env.departments[0]}, actor=A,
                  taxonomy=env.taxonomy)
    assert _audit(env.store, "appeal.correct") == []


def test_undo_restores_the_labels_and_reopens_the_item(env):
    items = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(audit=False), size=2).items
    first, second = items[0].appeal_id, items[1].appeal_id
    made = []
    for appeal_id in (first, second):
        suggested = items[0].suggested["department"]
        made.append(cq.decide(env.store, appeal_id,
                              {"department": _other(env.departments, suggested)}, actor=A,
                              taxonomy=env.taxonomy))
    assert [d.appeal_id for d in cq.recent_decisions(env.store, actor=A)] == [second, first]
    undone = cq.undo(env.store, actor=A)  # the last one
    assert undone.appeal_id == second
    with env.store.session() as session:
        review = session.scalar(sa.select(ReviewItemRow).where(
            ReviewItemRow.appeal_id == second))
        assert review.status == "open" and review.claimed_by == A and review.resolved_by is None
        assert session.scalar(sa.select(sa.func.count()).select_from(HumanLabelRow).where(
            HumanLabelRow.appeal_id == second, HumanLabelRow.origin == "correction")) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow).where(
            CorrectionRow.appeal_id == second)) == 0
        assert all(not d.startswith("human:") for d in session.scalars(
            sa.select(RoutingDecisionRow.decided_by).where(
                RoutingDecisionRow.appeal_id == second)))
    undo_rows = _audit(env.store, cq.UNDO_ACTION)
    assert len(undo_rows) == 1 and undo_rows[0].details["decision"] == made[1].id
    assert [d.appeal_id for d in cq.recent_decisions(env.store, actor=A)] == [first]
    # B cannot undo A's decisions; a later change by someone else blocks the undo
    with pytest.raises(cq.ItemNotFound):
        cq.undo(env.store, actor=B, decision_id=made[0].id)
    from mcu_nlp.services.appeals import correct_appeal

    correct_appeal(env.store, first, {"category": env.topics[0]}, author="key:ops",
                   allowed_labels=["category", "department"])
    with pytest.raises(cq.QueueConflict):
        cq.undo(env.store, actor=A, decision_id=made[0].id)
    # the reopened item can be decided again
    again = cq.decide(env.store, second, {"department": env.departments[0]}, actor=A,
                      taxonomy=env.taxonomy)
    assert again.kind == "correct"


def test_an_audit_item_accepted_is_confirmed_and_undo_removes_the_verdicts(env):
    with env.store.session() as session:  # make one item an audit sample of auto-routing
        review = session.scalar(sa.select(ReviewItemRow).where(ReviewItemRow.audit.is_(False))
                                .order_by(ReviewItemRow.id).limit(1))
        review.audit = True
        decision = session.scalar(sa.select(RoutingDecisionRow).where(
            RoutingDecisionRow.appeal_id == review.appeal_id))
        decision.audit_sample, decision.decided_by = True, "threshold:department"
        decision.decision = "auto"
        appeal_id = review.appeal_id
    claimed = cq.claim_items(env.store, actor=A, flt=cq.QueueFilter(audit=True))
    assert _ids(claimed) == [appeal_id]
    view = cq.open_item(env.store, appeal_id, actor=A)
    accepted = {name: view["labels"][name]["suggested"] for name in ("department", "category")}
    made = cq.decide(env.store, appeal_id, accepted, actor=A, taxonomy=env.taxonomy)
    assert made.kind == "confirm" and made.audit
    with env.store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditVerdictRow)) >= 1
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow)) == 0
    assert len(_audit(env.store, "audit.confirm")) == 1
    cq.undo(env.store, actor=A)
    with env.store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditVerdictRow)) == 0
        review = session.scalar(sa.select(ReviewItemRow).where(
            ReviewItemRow.appeal_id == appeal_id))
        assert review.status == "open" and review.outcome is None


def test_bulk_changes_exactly_the_count_shown_or_refuses_when_stale(env):
    with env.store.session() as session:
        territory = session.scalar(sa.text(
            "SELECT a.territory FROM appeals a JOIN review_queue r ON r.appeal_id = a.id "
            "GROUP BY a.territory ORDER BY COUNT(*) DESC LIMIT 1"))
    flt = cq.QueueFilter(territory=territory)
    held = cq.claim_items(env.store, actor=B, flt=flt, size=2)  # another operator's screen
    shown = cq.bulk_count(env.store, actor=A, flt=flt)
    assert shown == held.matching - 2 and shown > 2
    value = env.departments[0]
    with pytest.raises(cq.StaleBulk) as stale:
        cq.bulk_correct(env.store, actor=A, flt=flt, label="department", value=value,
                        expected=shown + 1, taxonomy=env.taxonomy)
    assert stale.value.found == shown
    with pytest.raises(cq.InvalidDecision):
        cq.bulk_correct(env.store, actor=A, flt=flt, label="department", value="чужое",
                        expected=shown, taxonomy=env.taxonomy)
    with env.store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(ReviewItemRow).where(
            ReviewItemRow.claimed_by == A)) == 0  # the refused bulk claimed nothing
    done = cq.bulk_correct(env.store, actor=A, flt=flt, label="department", value=value,
                           expected=shown, taxonomy=env.taxonomy)
    assert done.changed == shown and not set(done.appeal_ids) & set(_ids(held))
    with env.store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow)) == shown
        assert session.scalar(sa.select(sa.func.count()).select_from(ReviewItemRow).where(
            ReviewItemRow.status == "open", ReviewItemRow.appeal_id.in_(done.appeal_ids))) == 0
    assert len(_audit(env.store, "queue.bulk")) == 1
    assert cq.bulk_count(env.store, actor=A, flt=flt) == 0


def test_history_shows_earlier_appeals_of_the_same_address(env):
    with env.store.session() as session:
        row = session.execute(sa.text(
            "SELECT a.address FROM appeals a WHERE a.address IS NOT NULL GROUP BY a.address "
            "HAVING COUNT(*) > 1 LIMIT 1")).first()
        if row is None:
            pytest.skip("no repeated address in this slice")
        ids = list(session.scalars(sa.text(
            "SELECT a.id FROM appeals a JOIN review_queue r ON r.appeal_id = a.id "
            "WHERE a.address = :x ORDER BY a.created_at DESC"), {"x": row[0]}))
    if not ids:
        pytest.skip("the repeated address has no queue item")
    view = cq.open_item(env.store, ids[0], actor=A)
    assert view["history"]["same_address"]
    assert all(h["appeal_id"] != ids[0] for h in view["history"]["same_address"])
    read = {r.entity_id for r in _audit(env.store, "appeal.read")}
    assert {str(h["appeal_id"]) for h in view["history"]["same_address"]} <= read
