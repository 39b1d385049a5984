"""The operator's queue page in a real browser, on SQLite and PostgreSQL.

Keyboard-only work (Enter, digits, the class search), undo with Backspace, two operators who
never get the same item, and a bulk correction that changes exactly the number it showed.
"""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from mcu_nlp.services import console_queue as cq
from mcu_nlp.storage.models import (
    AuditRow,
    CorrectionRow,
    HumanLabelRow,
    ReviewItemRow,
)

# Functions, not expressions: the page's CSP forbids eval, which string expressions need.
READY = "document.getElementById('queue-app').dataset.busy === '0'"
OPEN = "document.getElementById('appeal-body').dataset.appealId"


def wait_ready(page) -> None:  # noqa: ANN001 - a Playwright page
    """The page finished its requests (claims, the open appeal)."""
    page.wait_for_function(f"() => {READY}")


def current_id(page) -> int:  # noqa: ANN001
    value = page.get_attribute("#appeal-body", "data-appeal-id")
    assert value, "no appeal is open"
    return int(value)


def wait_moved_from(page, appeal_id: int) -> None:  # noqa: ANN001
    page.wait_for_function(f"id => {READY} && {OPEN} && {OPEN} !== id", arg=str(appeal_id))


def screen_ids(page) -> list[int]:  # noqa: ANN001
    return [int(v) for v in page.eval_on_selector_all(
        "#item-list li[data-appeal-id]", "els => els.map(e => e.dataset.appealId)")]


def selected(page, label: str) -> str:  # noqa: ANN001
    return page.get_attribute(f".label-block[data-label='{label}'] .option.selected",
                              "data-value")


def test_an_operator_decides_ten_items_by_keyboard_and_undoes_the_last(new_page, live_console):
    store = live_console.store
    page = new_page("oper1")
    page.goto(f"{live_console.url}/console/queue?audit=0")
    wait_ready(page)
    assert len(screen_ids(page)) == cq.SCREEN_SIZE
    # the words that drove the suggestion are highlighted, the text stays text
    assert page.locator("#a-text mark").count() > 0
    assert page.locator("#a-text script, #a-text img").count() == 0
    departments = page.evaluate(
        "fetch('/console/queue/classes').then(r => r.json()).then(d => d.classes.department)")
    decided: dict[int, str] = {}
    for n in range(10):
        appeal_id = current_id(page)
        suggested = selected(page, "department")
        if n % 3 == 1:  # the first alternative
            page.keyboard.press("1")
            assert selected(page, "department") != suggested
        elif n == 5:  # any class, through the search box
            target = next(d for d in departments if d != suggested and len(d) > 12)
            page.keyboard.press("/")
            page.keyboard.type(target[:12])
            page.keyboard.press("Enter")
            assert selected(page, "department") == target
        decided[appeal_id] = selected(page, "department")
        page.keyboard.press("Enter")
        wait_moved_from(page, appeal_id)
    assert page.locator("#recent li[data-decision-id]").count() == 10

    ids = list(decided)
    with store.session() as session:
        labels = dict(session.execute(sa.select(HumanLabelRow.appeal_id, HumanLabelRow.value)
                                      .where(HumanLabelRow.origin == "correction",
                                             HumanLabelRow.label == "department")).all())
        assert labels == decided
        corrected = set(session.scalars(sa.select(CorrectionRow.appeal_id)
                                        .where(CorrectionRow.label == "department")))
        assert corrected == set(ids)
        audited = session.execute(sa.select(AuditRow.entity_id, AuditRow.actor, AuditRow.details)
                                  .where(AuditRow.action == "appeal.correct")).all()
        assert sorted(int(a[0]) for a in audited) == sorted(ids)
        assert all(a[1].endswith(":oper1") and a[2]["model_version"] == "fake-v1"
                   and "department" in a[2]["scores"] for a in audited)
        assert session.scalar(sa.select(sa.func.count()).select_from(ReviewItemRow).where(
            ReviewItemRow.appeal_id.in_(ids), ReviewItemRow.status == "resolved")) == 10

    # Backspace undoes the last decision: the appeal comes back on screen, its labels restored
    last = ids[-1]
    page.keyboard.press("Backspace")
    page.wait_for_function(f"id => {READY} && {OPEN} === id", arg=str(last))
    assert page.locator("#recent li[data-decision-id]").count() == 9
    with store.session() as session:
        item = session.scalar(sa.select(ReviewItemRow).where(ReviewItemRow.appeal_id == last))
        assert item.status == "open" and item.claimed_by.endswith(":oper1")
        assert session.scalar(sa.select(sa.func.count()).select_from(HumanLabelRow).where(
            HumanLabelRow.appeal_id == last, HumanLabelRow.origin == "correction")) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow).where(
            CorrectionRow.appeal_id == last)) == 0
        undo = session.scalars(sa.select(AuditRow).where(AuditRow.action == cq.UNDO_ACTION)).all()
        assert [int(u.entity_id) for u in undo] == [last] and undo[0].actor.endswith(":oper1")

    # s skips: the item goes back to the queue for others, off this screen
    page.keyboard.press("s")
    wait_moved_from(page, last)
    assert last not in screen_ids(page)
    with store.session() as session:
        item = session.scalar(sa.select(ReviewItemRow).where(ReviewItemRow.appeal_id == last))
        assert item.status == "open" and item.claimed_by is None

    # the JSON routes check every input: CSRF, known classes, ranges
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["mcu_session"]
    token = page.get_attribute("meta[name=csrf-token]", "content")
    current = current_id(page)
    with httpx.Client(base_url=live_console.url, cookies={"mcu_session": cookie},
                      headers={"X-CSRF-Token": token}) as client:
        decide = f"/console/queue/item/{current}/decide"
        assert client.post(decide, json={"labels": {"department": departments[0]}},
                           headers={"X-CSRF-Token": "forged"}).status_code == 403
        for labels in ({"department": "Нет такого получателя"}, {"reason": departments[0]},
                       {"department": "x" * 501}, {}):
            assert client.post(decide, json={"labels": labels}).status_code == 422
        assert client.post("/console/queue/item/0/open").status_code == 422
        assert client.post(f"/console/queue/item/{2**31}/open").status_code == 422
        assert client.post("/console/queue/claim", json={"size": 1000}).status_code == 422
        assert client.post("/console/queue/claim", json={"territory": "x" * 201}).status_code == 422
        assert client.post("/console/queue/bulk", json={
            "label": "department", "value": departments[0], "expected": 0}).status_code == 422
        # a free item (the skipped one) may be decided
        assert client.post(f"/console/queue/item/{last}/decide",
                           json={"labels": {"department": departments[0]}}).status_code == 200
    with store.session() as session:  # the refused requests changed nothing
        assert session.scalar(sa.select(sa.func.count()).select_from(CorrectionRow).where(
            CorrectionRow.appeal_id == current)) == 0


def test_two_operators_never_share_an_item_and_bulk_changes_exactly_n(new_page, live_console):
    store = live_console.store
    first, second = new_page("oper1"), new_page("oper2")
    # both pages claim at the same moment
    first.evaluate("location.reload()")
    second.evaluate("location.reload()")
    first.wait_for_load_state()
    second.wait_for_load_state()
    wait_ready(first)
    wait_ready(second)
    ones, twos = screen_ids(first), screen_ids(second)
    assert len(ones) == len(twos) == cq.SCREEN_SIZE
    assert not set(ones) & set(twos)
    assert current_id(first) != current_id(second)
    with store.session() as session:
        held = dict(session.execute(sa.select(ReviewItemRow.appeal_id, ReviewItemRow.claimed_by)
                                    .where(ReviewItemRow.claimed_by.is_not(None))).all())
    assert {i for i, who in held.items() if who.endswith(":oper1")} == set(ones)
    assert {i for i, who in held.items() if who.endswith(":oper2")} == set(twos)

    # the busiest territory: oper2 holds some of it, oper1 corrects the rest in bulk
    with store.session() as session:
        territory = session.scalar(sa.text(
            "SELECT a.territory FROM appeals a JOIN review_queue r ON r.appeal_id = a.id "
            "WHERE r.status = 'open' GROUP BY a.territory ORDER BY COUNT(*) DESC LIMIT 1"))
    second.select_option("#queue-filter select[name=territory]", territory)
    wait_ready(second)
    held_by_two = set(screen_ids(second))
    assert held_by_two
    first.select_option("#queue-filter select[name=territory]", territory)
    wait_ready(first)
    assert not set(screen_ids(first)) & held_by_two
    first.click("#bulk-open")
    first.wait_for_function(
        "() => /^\\d+$/.test(document.getElementById('bulk-count').textContent)")
    shown = int(first.inner_text("#bulk-count"))
    with store.session() as session:
        matching = session.scalar(sa.text(
            "SELECT COUNT(*) FROM review_queue r JOIN appeals a ON a.id = r.appeal_id "
            "WHERE r.status = 'open' AND a.territory = :t"), {"t": territory})
    assert shown == matching - len(held_by_two) and shown > 0
    first.select_option("#bulk-label", "department")
    value = first.eval_on_selector("#bulk-value", "s => s.options[s.options.length - 1].value")
    first.select_option("#bulk-value", value)
    assert first.inner_text("#bulk-n") == str(shown)
    first.click("#bulk-confirm")
    first.wait_for_function("() => !document.getElementById('bulk-dialog').open")
    wait_ready(first)
    with store.session() as session:
        changed = set(session.scalars(sa.select(CorrectionRow.appeal_id).where(
            CorrectionRow.label == "department", CorrectionRow.new_value == value)))
        assert len(changed) == shown and not changed & held_by_two
        left = set(session.scalars(sa.text(
            "SELECT r.appeal_id FROM review_queue r JOIN appeals a ON a.id = r.appeal_id "
            "WHERE r.status = 'open' AND a.territory = :t"), {"t": territory}))
        assert left == held_by_two
        bulk = session.scalars(sa.select(AuditRow).where(AuditRow.action == "queue.bulk")).all()
        assert len(bulk) == 1 and bulk[0].details["changed"] == shown
