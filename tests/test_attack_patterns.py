"""Attack: every regular expression that runs on citizen text must be linear in its length.

A 20,000-character appeal (the longest accepted) built to make a backtracking regex rescan its
input — runs of ``1.``, letters ending in ``@``, long whitespace, unclosed tags — must be
searched by every pattern of the text pipeline in a fraction of a second. A quadratic pattern
takes seconds to minutes here (``URL_RE`` took 26 s on ``1.1.1…`` before it was fixed), so the
limits below are generous and still catch it; a deadline interrupts a runaway search so the
test fails instead of hanging.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

N = 20_000  # the longest accepted appeal text (mcu_nlp.ingest.MAX_TEXT_CHARS)
PATTERN_LIMIT_S = 1.0  # all searches of one pattern over one attack input
FUNCTION_LIMIT_S = 3.0  # one text function (normalization, placeholders...) on one input

# Packages whose module-level patterns run on appeal texts, addresses or uploaded files.
PACKAGES = ("mcu_nlp.text", "mcu_nlp.ingest", "mcu_nlp.routing", "mcu_nlp.incidents",
            "mcu_nlp.root_causes")
MODULES = ("mcu_nlp.classifiers.features",)


def _repeat(unit: str, tail: str = "") -> str:
    return unit * ((N - len(tail)) // len(unit)) + tail


ATTACKS: dict[str, str] = {
    "1.": _repeat("1."),
    "a.": _repeat("a."),
    "a.ru": _repeat("a.", "ru"),
    "1-": _repeat("1-"),
    "-1": _repeat("-1"),
    "a-": _repeat("a-"),
    "a@": _repeat("a", "@"),
    "a@a.": _repeat("a@a."),
    "а-б": _repeat("а", "б"),
    "А": _repeat("А"),
    "Аб-": _repeat("Аб-"),
    "Аб ": _repeat("Аб "),
    "digits": _repeat("1"),
    "digits-x": _repeat("1", "x"),
    "1 ": _repeat("1 "),
    "1/": _repeat("1/"),
    "8 ": _repeat("8 "),
    "+7 ": _repeat("+7 "),
    "8(": "8" + _repeat("("),
    "spaces": _repeat(" ", "x"),
    "spaces-tabs": _repeat(" \t", "!"),
    "newlines": _repeat("\n"),
    "space-newline": _repeat(" \n", "x"),
    ", ": _repeat(", ", "x"),
    "dots": _repeat("."),
    "dash": _repeat("-"),
    "parens": _repeat("("),
    "www.": _repeat("www."),
    "http": "http://" + _repeat("a", "."),
    "http-punct": _repeat("http://)"),
    "<a ": _repeat("<a "),
    "<script>": _repeat("<script>"),
    "<script ": _repeat("<script "),
    "<!--": _repeat("<!"),
    "&#": _repeat("&#"),
    "[id": _repeat("[id1|"),
    "кв": "кв" + _repeat(" ", "x"),
    "кв-list": "кв. 1" + _repeat(", 1"),
    "квартира-этаж": "квартира 5" + _repeat(" ", "x"),
    "ул": "ул" + _repeat(" ", "x"),
    "ул-ул": _repeat("ул "),
    "город": "город" + _repeat(" ", "\n\n"),
    "район": "Центральный" + _repeat(" ", "x район"),
    "МО": "МО" + _repeat(" ", "\n\n"),
    "quotes": _repeat('"'),
    "quote-colon": _repeat('" '),
    "at": _repeat("@"),
    "underscore": _repeat("а_"),
    "mixed": _repeat("a1.-_@ "),
}


class _Overrun(Exception):
    """A search ran past its deadline."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (the re engine checks signals while it runs)."""

    def fire(*_: object) -> None:
        raise _Overrun

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _collect(value: object, name: str, found: dict[str, re.Pattern[str]], depth: int = 0) -> None:
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            found[name] = value
    elif isinstance(value, tuple | list) and depth < 3:
        for i, item in enumerate(value):
            _collect(item, f"{name}[{i}]", found, depth + 1)
    elif isinstance(value, dict) and depth < 3:
        for key, item in value.items():
            _collect(item, f"{name}[{key!r}]", found, depth + 1)


def _patterns() -> dict[str, re.Pattern[str]]:
    """Every compiled pattern at module level (also inside tuples, lists and dicts)."""
    names: list[str] = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
    names += MODULES  # after the packages, so a re-exported pattern keeps its home's name
    found: dict[str, re.Pattern[str]] = {}
    for module_name in names:
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            _collect(value, f"{module_name}.{attribute}", found)
    unique: dict[tuple[str, int], str] = {}
    for name, pattern in found.items():  # one test per distinct pattern (EMAIL_RE is re-exported)
        unique.setdefault((pattern.pattern, pattern.flags), name)
    return {name: found[name] for name in unique.values()}


PATTERNS = _patterns()


def test_the_known_patterns_are_collected() -> None:
    """The collector sees the patterns that were slow before (a guard against a silent skip)."""
    from mcu_nlp.ingest import build
    from mcu_nlp.text import addresses, masking, normalize

    collected = {id(pattern) for pattern in PATTERNS.values()}
    for expected in (normalize.URL_RE, normalize.EMAIL_RE, normalize.PHONE_RE,
                     masking.APARTMENT_RE, masking._AFTER_STREET_NAME,
                     addresses._NUMBER_AFTER_STREET, build._BLANK_LINES):
        assert id(expected) in collected, expected.pattern
    assert len(PATTERNS) >= 40


def _exercise(pattern: re.Pattern[str], text: str) -> None:
    pattern.search(text)
    pattern.match(text)
    for _ in pattern.finditer(text):
        pass


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_is_linear_on_adversarial_text(name: str) -> None:
    """search, match and finditer over every attack input stay far below a second each."""
    pattern = PATTERNS[name]
    slow: list[str] = []
    for attack, text in ATTACKS.items():
        started = time.perf_counter()
        try:
            with _deadline(PATTERN_LIMIT_S * 5):
                _exercise(pattern, text)
        except _Overrun:
            slow.append(f"{attack}: interrupted after {PATTERN_LIMIT_S * 5:.0f} s")
            continue
        elapsed = time.perf_counter() - started
        if elapsed > PATTERN_LIMIT_S:
            slow.append(f"{attack}: {elapsed:.2f} s")
    assert not slow, f"{name} ({pattern.pattern[:80]!r}) is slow on: {', '.join(slow)}"


def _text_functions() -> dict[str, Callable[[str], object]]:
    from mcu_nlp.classifiers.features import prepare_text
    from mcu_nlp.ingest.build import _clean_html, looks_binary
    from mcu_nlp.text.addresses import parse_address_field
    from mcu_nlp.text.masking import _mask_by_rules
    from mcu_nlp.text.normalize import (
        key_text,
        normalize_text,
        replace_placeholders,
        strip_html,
    )

    return {
        "normalize_text": normalize_text,
        "strip_html": strip_html,
        "replace_placeholders": replace_placeholders,
        "key_text": key_text,
        "prepare_text": prepare_text,
        "mask_by_rules": _mask_by_rules,
        "parse_address_field": parse_address_field,
        "clean_html": _clean_html,
        "looks_binary": looks_binary,
    }


@pytest.mark.parametrize("function_name", sorted(_text_functions()))
def test_text_function_is_fast_on_adversarial_text(function_name: str) -> None:
    """The functions that chain those patterns (and the hand-written HTML scan) stay fast."""
    function = _text_functions()[function_name]
    slow: list[str] = []
    for attack, text in ATTACKS.items():
        started = time.perf_counter()
        try:
            with _deadline(FUNCTION_LIMIT_S * 3):
                function(text)
        except _Overrun:
            slow.append(f"{attack}: interrupted")
            continue
        elapsed = time.perf_counter() - started
        if elapsed > FUNCTION_LIMIT_S:
            slow.append(f"{attack}: {elapsed:.2f} s")
    assert not slow, f"{function_name} is slow on: {', '.join(slow)}"


def test_fixed_patterns_keep_their_matches_on_ordinary_text() -> None:
    """The rewritten patterns still find what they found before on everyday appeals."""
    from mcu_nlp.classifiers.features import prepare_text
    from mcu_nlp.text.addresses import parse_address_field
    from mcu_nlp.text.masking import _mask_by_rules
    from mcu_nlp.text.normalize import URL_RE, replace_placeholders, strip_html

    assert [m.group(0) for m in URL_RE.finditer(
        "см. gu.spb.ru/1234, http://a.ru/x. и www.site.ru; смотрите...site.ru/a и сайт-site.ru/b"
    )] == ["gu.spb.ru/1234", "http://a.ru/x", "www.site.ru", "site.ru/a", "site.ru/b"]
    assert URL_RE.search("версия 1.1.1.1 и 2-2-2") is None
    assert replace_placeholders("пишите a.b@mail.ru или 8 (921) 123-45-67") == (
        "пишите  EMAIL  или  PHONE ")
    prepared = prepare_text("Звоните 8-921-123-45-67, пишите ivan@mail.ru, https://x.ru/a")
    assert "phonex" in prepared and "emailx" in prepared and "urlx" in prepared
    assert strip_html("a<script>x</script>b<!-- c -->d<SCRIPT>e") == "a b de"
    assert strip_html("<style>p{}</style>текст<br>ещё") == " текст\nещё"
    assert _mask_by_rules("кв.  12, 14 и 16, квартиры 1 этажа") == (
        "кв. [НОМЕР], квартиры 1 этажа")
    district = parse_address_field("Санкт-Петербург, Центральный   район")
    assert district is not None and district.parts[-1].value == "Центральный"
