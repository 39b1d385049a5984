"""Attack: curator rule regexes run on every appeal, so they must never backtrack.

Python's engine takes 2.8 s for ``(а+)+б`` on 24 characters and doubles with each one more; the
rules now run on RE2 through :mod:`mcu_nlp.routing.safe_regex`, and a pattern RE2 cannot run is
refused when the rules file is loaded, with the rule's id in the message.
"""

from __future__ import annotations

import re
import time

import pytest

from mcu_nlp.routing import RuleSubject, load_rules, parse_rules_text
from mcu_nlp.routing.lemmas import lemmas_of
from mcu_nlp.routing.rules import DEFAULT_RULES_PATH, RulesError
from mcu_nlp.routing.safe_regex import UnsupportedPattern, compile_rule_regex

N = 20_000
LIMIT_S = 0.5  # a backtracking engine needs seconds (24 chars) to ages (20,000) on these


def _rules(*patterns: str, rule_id: str = "attack") -> str:
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in patterns)
    return (f"version: 1\nrules:\n  - id: {rule_id}\n    when: {{regex: [{quoted}]}}\n"
            "    then: {review: true}\n")


CATASTROPHIC = {
    "(а+)+б": "а" * N,
    "(a|a)*b": "a" * N,
    "(a|aa)+$": "a" * N + "!",
    r"^(\d+)+$": "1" * N + "x",
    r"(\w+\s?)+$": "слово " * (N // 6) + "!",
    r"(.*a){12}x": "a" * N,
    r"(?i)\b(\w+)*\b\s+x": "ю" * N,
    r"([а-я]+-?)*[а-я]+!": "а-" * (N // 2),
}


@pytest.mark.parametrize("pattern", sorted(CATASTROPHIC))
def test_catastrophic_pattern_runs_in_linear_time(pattern: str) -> None:
    """A pattern that is exponential for Python's re is accepted and answers at once."""
    book = parse_rules_text(_rules(pattern))
    text = CATASTROPHIC[pattern]
    subject = RuleSubject(text=text, lemmas=())
    started = time.perf_counter()
    matched = book.matching(subject)
    elapsed = time.perf_counter() - started
    assert elapsed < LIMIT_S, f"{pattern!r} took {elapsed:.2f} s on {len(text):,} characters"
    assert matched == []  # none of the attack texts matches


def test_the_reported_pattern_is_fast_on_24_and_on_20000_characters() -> None:
    """The pattern from the report, on the length that took 2.8 s and on a full-size appeal."""
    pattern = compile_rule_regex("(а+)+б")
    for text in ("а" * 24, "а" * N):
        started = time.perf_counter()
        assert pattern.search(text) is False
        assert time.perf_counter() - started < LIMIT_S
    assert pattern.search("а" * N + "б") is True


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"(a)\1", "backreferences"),
    (r"(?P<x>a)(?P=x)", "backreferences"),
    (r"(a)?(?(1)b|c)", "backreferences"),
    (r"(?<=улиц)а", "lookahead and lookbehind"),
    (r"(?<!не )работает", "lookahead and lookbehind"),
    (r"газ(?=ом)", "lookahead and lookbehind"),
    (r"газ(?!ель)", "lookahead and lookbehind"),
    (r"(?>а+)б", "possessive quantifiers and atomic groups"),
    (r"а++б", "possessive quantifiers and atomic groups"),
    (r"\Bсуд", r"\\B"),
    (r"(", "does not compile"),
    (r"a{2000}", "cannot be run in linear time"),
])
def test_pattern_re2_cannot_run_is_refused_naming_the_rule(pattern: str, reason: str) -> None:
    """The rules file is refused as a whole; the message names the rule, the regex and why."""
    with pytest.raises(RulesError, match=reason) as caught:
        parse_rules_text(_rules("(?i)прокуратур", pattern, rule_id="bad-rule-7"))
    message = str(caught.value)
    assert "'bad-rule-7'" in message and repr(pattern) in message


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    (r"(?i)\bв суд\b", "Подам в суд на управляющую компанию", True),
    (r"(?i)\bв суд\b", "ПОДАМ В СУД!", True),
    (r"(?i)\bв суд\b", "обратимся в суды", False),
    (r"(?i)\bв суд\b", "дома в судаке", False),
    (r"(?i)\bв\s+суд\b", "обращусь в\u00a0суд", True),
    (r"(?i)исков\w* заявлени", "подготовлено исковое заявление", True),
    (r"(?i)исков\w* заявлени", "иск заявлен", False),
    (r"(?i)прокуратур", "Жалоба в ПРОКУРАТУРУ района", True),
    (r"[^\W\d_]+ский\b", "Калининский район", True),
    (r"[^\W\d_]+ский\b", "123ский", False),
    (r"\d{3}-\d{2}-\d{2}", "тел. 246-80-13", True),
    (r"\d{3}-\d{2}-\d{2}", "тел. 246-8-13", False),
    (r"(?m)^Добрый день$", "Здравствуйте\nДобрый день\nжалоба", True),
    (r"день$", "Добрый день\n", True),
    (r"\bкв\.?\s*\d+\b", "дом 5 кв. 12", True),
    (r"\bкв\.?\s*\d+\b", "дом 5 ккв 12", False),
])
def test_rule_regex_keeps_python_meaning(pattern: str, text: str, expected: bool) -> None:
    """Unicode \\w, \\b and \\s, flags and anchors mean what they mean in Python's re."""
    assert bool(re.search(pattern, text)) is expected  # the reference
    assert compile_rule_regex(pattern).search(text) is expected


def test_packaged_rules_still_fire_and_run_fast_on_a_long_appeal() -> None:
    """The shipped rules file loads unchanged; its regex rule fires and stays linear."""
    book = load_rules(DEFAULT_RULES_PATH)
    text = "Если не устраните, подам в суд. "
    assert [rule.id for rule in book.matching(RuleSubject(text, lemmas_of(text)))] == [
        "legal-escalation"]
    long_text = ("в " * (N // 2))[:N]
    subject = RuleSubject(long_text, ())
    started = time.perf_counter()
    assert book.matching(subject) == []
    assert time.perf_counter() - started < LIMIT_S


@pytest.mark.parametrize("pattern", [r"\bсуд\b", r"а\bб", r"а\b.б", r"\b", r"а.б"])
def test_word_boundary_mark_in_the_text_cannot_fake_a_boundary(pattern: str) -> None:
    """A text carrying the internal boundary mark itself is read as Python reads it."""
    from mcu_nlp.routing.safe_regex import MARK

    compiled = compile_rule_regex(pattern)
    for text in (f"в{MARK}суд{MARK}ы", f"всуд{MARK}", f"а{MARK}б", MARK, f"{MARK}{MARK}",
                 f"а {MARK}б", f"а{MARK}{MARK}б"):
        assert compiled.search(text) is bool(re.search(pattern, text)), text


def test_unsupported_pattern_is_a_value_error() -> None:
    """The API turns a refused rules file into a 422: the error is a ValueError."""
    with pytest.raises(UnsupportedPattern):
        compile_rule_regex(r"(a)\1")
    assert issubclass(UnsupportedPattern, ValueError)
