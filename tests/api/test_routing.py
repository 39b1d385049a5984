"""Curator rules, routing decisions, urgency and text checks (pure, no store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from mcu_nlp.routing import RuleSubject, load_lexicon, load_rules, parse_rules_text, route
from mcu_nlp.routing.lemmas import lemmas_of
from mcu_nlp.routing.rules import RulesError
from mcu_nlp.services.classify import InvalidAppealText, check_text


@dataclass
class Pred:
    label: str
    top: list[tuple[str, float]]
    confidence: float
    threshold: float | None
    explanation: list[tuple[str, float]]


def subject(text: str, **kwargs) -> RuleSubject:
    return RuleSubject(text, lemmas_of(text), **kwargs)


def department(value: str, confidence: float, threshold: float | None = 0.9) -> dict[str, Pred]:
    return {"department": Pred("department", [(value, confidence)], confidence, threshold, [])}


RULES = """
version: 7
rules:
  - id: graffiti-kalininsky
    when: {keywords: ["надписи на стене"], territory: ["Калининский"]}
    then: {department: "ЖА Калининского района"}
  - id: prosecutor
    when: {regex: ["(?i)прокуратур"]}
    then: {review: true, priority: high}
  - id: kids
    when: {keywords: ["опасно для детей"]}
    then: {priority: high}
  - id: roofs
    when: {topic: {label: category, in: ["Кровля"]}, channel: [pos]}
    then: {department: "Кровельная служба"}
"""


@pytest.fixture(scope="module")
def rules():
    return parse_rules_text(RULES)


def test_curator_rule_routes_by_keyword_and_territory(rules):
    decision = route(subject("Опять надписи на стенах дома", territory="калининский"),
                     department("Другой", 0.99), rules)
    assert (decision.decision, decision.department, decision.decided_by) == (
        "auto", "ЖА Калининского района", "rule:graffiti-kalininsky")
    other = route(subject("Опять надписи на стенах дома", territory="Невский"),
                  department("ЖА Невского", 0.99), rules)
    assert other.decided_by == "threshold:department" and other.department == "ЖА Невского"


def test_always_review_rule_wins_over_a_confident_model(rules):
    decision = route(subject("Пожалуюсь в прокуратуру!"), department("ЖА", 0.999), rules)
    assert decision.decision == "review" and decision.decided_by == "rule:prosecutor"
    assert decision.priority == "high"


def test_priority_rule_does_not_decide_but_raises_priority(rules):
    text = "Качели сломаны, опасно для детей"
    auto = route(subject(text), department("ЦКБ", 0.95, 0.9), rules)
    assert (auto.decision, auto.decided_by, auto.priority) == ("auto", "threshold:department",
                                                               "high")
    assert auto.rule_ids == ("kids",)
    low = route(subject(text), department("ЦКБ", 0.5, 0.9), rules)
    assert low.decision == "review" and low.decided_by == "review:below-threshold:department"
    none = route(subject(text), department("ЦКБ", 0.99, None), rules)
    assert none.decided_by == "review:no-threshold:department"
    assert route(subject(text), None, rules).decided_by == "review:no-model"


def test_topic_condition_needs_a_confident_topic(rules):
    def topics(confidence):
        return {"category": ("Кровля", confidence, 0.8)}

    sure = route(subject("Течет крыша", channel="pos", topics=topics(0.9)), None, rules)
    assert sure.decided_by == "rule:roofs"
    unsure = route(subject("Течет крыша", channel="pos", topics=topics(0.5)), None, rules)
    assert unsure.decided_by == "review:no-model"
    wrong_channel = route(subject("Течет крыша", channel="im", topics=topics(0.9)), None, rules)
    assert wrong_channel.decided_by == "review:no-model"


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nrules:\n  - id: a\n    when: {regex: ['(']}\n    then: {review: true}",
     "does not compile"),
    ("version: 1\nrules:\n  - id: a\n    when: {}\n    then: {review: true}", "at least one"),
    ("version: 1\nrules:\n  - id: a\n    when: {channel: [im]}\n    then: {priority: urgent}",
     "priority must be one of"),
    ("version: 1\nrules:\n  - id: a\n    when: {channel: [im]}\n    then: {review: true}\n"
     "  - id: a\n    when: {channel: [im]}\n    then: {review: true}", "used twice"),
    ("version: 1\nrules:\n  - id: a\n    when: {chanel: [im]}\n    then: {review: true}",
     "rules.0.when.chanel"),
    ("rules: [", "not valid YAML"),
    ("- just a list", "expected a mapping"),
])
def test_bad_rules_files_fail_with_the_place_and_reason(text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules_text(text)


def test_packaged_rules_and_lexicon_load():
    assert load_rules().version
    assert load_lexicon().version


@pytest.mark.parametrize(("text", "when", "entry"), [
    ("В подъезде сильно пахнет газом", datetime(2021, 7, 1), "gas"),
    ("Газом пахнет на лестнице", datetime(2021, 7, 1), "gas"),
    ("Чувствуется запах газа у лифта", datetime(2021, 7, 1), "gas"),
    ("Огромные сосульки висят над входом", datetime(2021, 1, 10), "icicles"),
    ("Третий день нет отопления в квартире", datetime(2021, 1, 10), "no-heating-winter"),
    ("Прорвало трубу, затопило подвал", datetime(2021, 7, 1), "flooding"),
])
def test_urgency_finds_the_situation(text, when, entry):
    urgency = load_lexicon().score(text, created_at=when)
    assert urgency.score > 0.5
    assert urgency.reasons[0].id == entry


def test_urgency_respects_seasons_and_stays_in_range():
    lexicon = load_lexicon()
    assert lexicon.score("Нет отопления", created_at=datetime(2021, 7, 15)).score == 0
    assert lexicon.score("Мусор во дворе не вывозят", created_at=datetime(2021, 1, 1)).score == 0
    both = lexicon.score("Пожар и запах газа, угроза жизни", created_at=datetime(2021, 1, 1))
    assert 0.95 < both.score <= 1.0 and len(both.reasons) == 3
    assert [r.weight for r in both.reasons] == sorted((r.weight for r in both.reasons),
                                                      reverse=True)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("   \n\t ", "empty"), ("а" * 20_001, "limit is 20000"),
    ("мусор\x00\x01\x02", "control characters"), ("The garbage is not collected", "not in Russian"),
    ("ÐŸÑ€Ð¸Ð²ÐµÑ‚ Ð¼ÑƒÑÐ¾Ñ€", "Latin-1"), ("12345 !!!", "no letters"),
    ("XXXX XXXXXX", "redacted"), ("мусор \ufffd\ufffd", "wrong encoding"),
])
def test_bad_texts_are_refused_with_a_reason(text, reason):
    with pytest.raises(InvalidAppealText, match=reason):
        check_text(text)


def test_redactions_and_latin_names_do_not_make_a_text_foreign():
    assert check_text("  Жилец XXXXXXXX XXXX сорвал ручки окон в подъезде  ").startswith("Жилец")
    assert check_text("Не работает Wi-Fi в парке") == "Не работает Wi-Fi в парке"
