"""Root-cause evidence (issue #15): recurrence, outcome mix, failed fixes, plans, refusals, and
roadmap stages that follow the evidence instead of a fixed template."""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd

from mcu_nlp.root_causes.cards import RootCause, Trend
from mcu_nlp.root_causes.evidence import RANK_BASIS, attach_evidence, rank_cards
from mcu_nlp.root_causes.roadmap import GENERIC_NOTE, render_html, roadmap_basis, suggest_stages

DONE = "Уважаемый пользователь! Замечание устранено, мусор убран."
ROOF_DONE = "Работы по ремонту кровли выполнены."
PLANNED = "Ремонт кровли включён в адресную программу капитального ремонта на 2023 год."
REFUSED = "Данный вопрос не входит в компетенцию администрации района."
TRASH, ROOF = "Мусор на внутридворовой территории", "Протечка кровли"
HOUSING, ADMIN, FUND = "ЖА Центрального района", "Администрация Центрального района", \
    "Фонд капитального ремонта"


def _row(cluster: int, created: str, answered: str | None, answer: str | None, address: str,
         topic: str, department: str) -> dict[str, object]:
    return {"cluster": cluster, "id": f"a{created}{address[-2:]}", "created_at": created,
            "last_answer_dt": answered, "last_answer_text": answer, "address": address,
            "label_reason": topic, "label_department": department, "territory": "Центральный",
            "text": "текст обращения"}


def _frame() -> pd.DataFrame:
    rows = []
    # cluster 0: two chronic places where «done» does not hold
    for street in ("Мебельная улица, дом 1", "Мебельная улица, дом 2"):
        for day in ("2021-01-04", "2021-01-20", "2021-02-05"):
            answered = (pd.Timestamp(day) + pd.Timedelta(days=3)).isoformat()
            rows.append(_row(0, day, answered, DONE, f"г.Санкт-Петербург, {street}", TRASH,
                             HOUSING))
    # cluster 1: a planned roof repair with a later appeal, and refusals «не в компетенции»
    roof = "г.Санкт-Петербург, Невский проспект, дом 10"
    rows.append(_row(1, "2021-01-05", "2021-01-10", PLANNED, roof, ROOF, FUND))
    rows.append(_row(1, "2021-02-15", None, None, roof, ROOF, FUND))
    for k in range(3):
        rows.append(_row(1, f"2021-01-1{k}", f"2021-01-2{k}", REFUSED,
                         f"г.Санкт-Петербург, Литейный проспект, дом {k + 1}", ROOF, ADMIN))
    # elsewhere (cluster 2, no evidence): the fund fixes roofs; one-off appeals
    for k in range(3):
        rows.append(_row(2, f"2021-03-0{k + 1}", f"2021-03-1{k + 1}", ROOF_DONE,
                         f"г.Санкт-Петербург, Садовая улица, дом {k + 1}", ROOF, FUND))
    return pd.DataFrame(rows)


def _card(cluster: int, size: int, department: str) -> RootCause:
    return RootCause(
        id=cluster, title=f"Группа {cluster}", keywords=[], size=size, share=0.1,
        trend=Trend("stable", 1, 1, 1.0, 1.0), first_seen=datetime(2021, 1, 4),
        last_seen=datetime(2021, 3, 1), weekly_counts={}, top_places=[], dominant_topic=None,
        topic_share=0.0, department=department, department_share=1.0)


def _cards() -> tuple[pd.DataFrame, list[RootCause]]:
    frame = _frame()
    topics = frame["cluster"].to_numpy()
    cards = [_card(c, int((topics == c).sum()), d)
             for c, d in ((2, FUND), (1, FUND), (0, HOUSING))]
    return frame, attach_evidence(cards, frame, topics, topic_col="label_reason",
                                  department_col="label_department")


def test_evidence_per_card() -> None:
    frame, cards = _cards()
    by_id = {card.id: card for card in cards}
    trash = by_id[0].evidence
    assert trash is not None
    rec = trash.recurrence
    assert (rec["appeals"], rec["appeals_at_repeat_places"], rec["repeats"]) == (6, 6, 4)
    assert rec["repeats_after_done"] == 4 and rec["done_answers"] == 6
    assert rec["done_not_held"] == 4 and rec["chronic_places_total"] == 2
    assert len(rec["chronic_places"]) == 2 and rec["chronic_places"][0]["appeals"] == 3
    assert rec["chronic_places"][0]["history"][1]["after_fix"] is True
    assert trash.outcomes == [{"type": "done", "label_ru": "выполнено", "count": 6,
                               "share": 1.0}]
    assert trash.fixes_not_holding == [{"department": HOUSING, "done_answers": 6,
                                        "not_held": 4, "share": 0.667}]
    assert not trash.planned_not_arrived and trash.out_of_competence is None
    assert trash.answer_examples and len(trash.answer_examples[0]["text"]) <= 300
    roof = by_id[1].evidence
    assert roof is not None and not roof.fixes_not_holding
    assert roof.planned_not_arrived[0]["planned_year"] == 2023
    assert roof.planned_not_arrived[0]["programme"] == "адресная программа капитального ремонта"
    assert roof.planned_not_arrived[0]["repeat_at"] == "2021-02-15"
    refusal = roof.out_of_competence
    assert refusal["count"] == 3 and refusal["topic"] == ROOF
    # routed to the department that answers «done» on the topic where the others refused
    assert refusal["route_to"] == FUND and FUND in refusal["proposal"]
    labels = {o["label_ru"] for o in roof.outcomes}
    assert {"запланировано", "не в компетенции"} <= labels
    assert not by_id[2].evidence.has_any


def test_rank_by_recurrence_not_size() -> None:
    _, cards = _cards()
    ranked = rank_cards(cards)
    assert [card.id for card in ranked][0] == 0 and ranked[0].rank == 1
    data = ranked[0].to_dict()
    for name in ("recurrence", "outcomes", "fixes_not_holding", "planned_not_arrived",
                 "out_of_competence", "answer_examples", "rank", "rank_basis"):
        assert name in data
    assert data["rank_basis"] == RANK_BASIS
    json.dumps(data, ensure_ascii=False, default=str)


def test_stages_follow_the_evidence() -> None:
    _, cards = _cards()
    by_id = {card.id: card for card in cards}
    start = date(2021, 4, 1)
    trash = suggest_stages(by_id[0], start)
    roof = suggest_stages(by_id[1], start)
    generic = suggest_stages(by_id[2], start)
    assert [s.name for s in trash] != [s.name for s in roof]
    assert any("обследование 2 адресов" in s.name for s in trash)
    assert any("−50 %" in s.target and "2 адресам" in s.target for s in trash)
    contractor = next(s for s in trash if "подрядчик" in s.name)
    assert contractor.owner == HOUSING and "с 67 % до ≤ 33 %" in contractor.target
    assert not any("программу" in s.name or "маршрутизац" in s.name for s in trash)
    plan = next(s for s in roof if "программу" in s.name)
    assert "включить 1 адрес в программу «адресная программа капитального ремонта» 2023 до" \
        in plan.target
    routing = next(s for s in roof if "маршрутизац" in s.name)
    assert "отказов «не в компетенции» 0 за 60 дней" in routing.target
    assert routing.proposal and FUND in routing.proposal and ROOF in routing.proposal
    assert not any("подрядчик" in s.name for s in roof)
    for stages in (trash, roof, generic):
        assert stages[-1].name == "Мониторинг результата"
        assert [s.deadline for s in stages] == sorted(s.deadline for s in stages)
        assert all(s.owner and s.target for s in stages)
        assert all(set(s.to_dict()) >= {"title", "owner", "due", "target"} for s in stages)
    assert roadmap_basis(by_id[2]) == "generic" and len(generic) == 3
    assert roadmap_basis(by_id[0]) == "evidence"
    page = render_html([by_id[0], by_id[2]], start=start)
    assert GENERIC_NOTE in page and "Исправления не держатся" in page
    assert "Целевой показатель" in page and "Примеры ответов" in page


def test_no_answers_no_evidence() -> None:
    frame, _ = _cards()
    frame = frame.drop(columns=["last_answer_text"])
    card = _card(0, 6, HOUSING)
    (same,) = attach_evidence([card], frame, frame["cluster"].to_numpy(),
                              topic_col="label_reason", department_col="label_department")
    assert same.evidence is None and roadmap_basis(same) == "generic"
