r"""Curator regexes in Python syntax, run by RE2: linear time whatever the pattern.

Curators write rule regexes in Python's syntax (``(?i)прокуратур``, ``\bв суд\b``), and every
rule runs on every appeal, so one pattern such as ``(а+)+б`` in Python's backtracking engine
would stall the router for seconds per appeal. Here a pattern is parsed by Python's own parser
(so the syntax, and the errors for a broken pattern, stay Python's) and rewritten for RE2
(``google-re2``), whose automata never backtrack: the time is linear in the text's length.

RE2 lacks backreferences, lookahead and lookbehind, atomic groups and possessive quantifiers;
a pattern with one of them is refused with :class:`UnsupportedPattern`. Python's classes are
Unicode-aware and RE2's ``\w \d \s \b`` are ASCII-only, so they are rewritten: ``\w`` becomes
``[\p{L}\p{N}_]`` and so on. A word boundary ``\b``, which RE2 cannot express for Cyrillic, is
found by Python (``\b`` is a zero-width, linear scan) and marked in the text with a
non-character; the rewritten pattern requires the mark where ``\b`` stood and skips marks
elsewhere. ``\B`` is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

try:  # Python 3.11+
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

__all__ = ["RulePattern", "UnsupportedPattern", "compile_rule_regex"]

MARK = "\ufdd0"
"""The word-boundary mark: a Unicode non-character, replaced in texts before marking."""
_MARK = r"\x{FDD0}"
_BOUNDARY = re.compile(r"\b")

# Python's Unicode classes in RE2 syntax (class contents, without brackets).
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
_SPACE = r"\t\n\x{0B}\f\r\x{1C}-\x{1F} \x{85}\p{Z}"
_ASCII = {_WORD: "0-9A-Za-z_", _DIGIT: "0-9", _SPACE: r"\t\n\x{0B}\f\r "}
# Python's idiom for "letters only": [^\W\d_], [^\W_], [^\W\d].
_WORD_WITHOUT = {frozenset({"digit", "_"}): r"\p{L}\p{Nl}\p{No}",
                 frozenset({"_"}): r"\p{L}\p{N}", frozenset({"digit"}): r"\p{L}\p{Nl}\p{No}_"}
_MAX_PATTERN_CHARS = 2_000


class UnsupportedPattern(ValueError):
    """A pattern that cannot be run in linear time (or is not a valid Python regex)."""


@dataclass(frozen=True, slots=True)
class RulePattern:
    r"""A compiled curator regex.

    Attributes:
        source: The pattern as the curator wrote it (Python syntax).
        translated: The same pattern in RE2 syntax.
        marks_boundaries: Whether the text must carry word-boundary marks (the pattern has ``\b``).
    """

    source: str
    translated: str
    marks_boundaries: bool
    _compiled: Any

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text`` (linear time in its length)."""
        subject = _marked(text) if self.marks_boundaries else text
        return self._compiled.search(subject) is not None


_last_marked: tuple[str, str] = ("", "")


def _marked(text: str) -> str:
    """``text`` with :data:`MARK` at every (Unicode, Python) word boundary; the last one cached."""
    global _last_marked
    cached_text, cached = _last_marked
    if text == cached_text:
        return cached
    marked = _BOUNDARY.sub(MARK, text.replace(MARK, "\ufffd"))
    _last_marked = (text, marked)  # a tuple swap is atomic: threads never see half an entry
    return marked


@lru_cache(maxsize=1024)
def compile_rule_regex(pattern: str) -> RulePattern:
    r"""Compile a curator regex (Python syntax) for RE2.

    Raises:
        UnsupportedPattern: The pattern does not compile in Python, uses a construct RE2
            cannot run (backreference, lookaround, atomic group, possessive quantifier, ``\B``),
            or is too large.
    """
    if len(pattern) > _MAX_PATTERN_CHARS:
        raise UnsupportedPattern(f"the pattern is longer than {_MAX_PATTERN_CHARS} characters")
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        raise UnsupportedPattern(f"does not compile: {error}") from error
    flags = parsed.state.flags
    translator = _Translator(marks=_has_boundary(parsed.data))
    body = translator.sequence(parsed.data, flags)
    translated = f"(?i:{body})" if flags & re.IGNORECASE else body
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(translated, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
        raise UnsupportedPattern(f"cannot be run in linear time (RE2: {reason})") from error
    return RulePattern(pattern, translated, translator.marks, compiled)


def _has_boundary(items: Any) -> bool:
    for op, value in items:
        if op is sre.AT and value is sre.AT_BOUNDARY:
            return True
        for nested in _children(op, value):
            if _has_boundary(nested):
                return True
    return False


def _children(op: Any, value: Any) -> list[Any]:
    if op is sre.BRANCH:
        return list(value[1])
    if op is sre.SUBPATTERN:
        return [value[3]]
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [value[2]]
    if op is sre.ATOMIC_GROUP:
        return [value]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [value[1]]
    return []


def _char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\x{{{code:X}}}"


class _Translator:
    """Emits RE2 syntax for a parsed Python pattern."""

    def __init__(self, marks: bool) -> None:
        self.marks = marks

    def _skip_mark(self) -> str:
        return f"{_MARK}?" if self.marks else ""

    def sequence(self, items: Any, flags: int) -> str:
        parts: list[str] = []
        previous_boundary = False
        for op, value in items:
            boundary = op is sre.AT and value is sre.AT_BOUNDARY
            if not (boundary and previous_boundary):  # \b\b is \b
                parts.append(self.item(op, value, flags))
            previous_boundary = boundary
        return "".join(parts)

    def item(self, op: Any, value: Any, flags: int) -> str:  # noqa: C901, PLR0911, PLR0912
        if op is sre.LITERAL:
            return self._skip_mark() + _char(value)
        if op is sre.NOT_LITERAL:
            return self._skip_mark() + f"[^{_char(value)}{self._mark_in_class()}]"
        if op is sre.ANY:
            newline = "" if flags & re.DOTALL else r"\n"
            if not self.marks:
                return "(?s:.)" if flags & re.DOTALL else "."
            return f"{self._skip_mark()}[^{newline}{_MARK}]"
        if op is sre.IN:
            return self._skip_mark() + self._set(value, flags)
        if op is sre.BRANCH:
            return "(?:" + "|".join(self.sequence(branch, flags) for branch in value[1]) + ")"
        if op is sre.SUBPATTERN:
            _, add, remove, items = value
            inner = self.sequence(items, (flags | add) & ~remove)
            if add & re.IGNORECASE and not flags & re.IGNORECASE:
                return f"(?i:{inner})"
            if remove & re.IGNORECASE and flags & re.IGNORECASE:
                return f"(?-i:{inner})"
            return f"(?:{inner})"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, items = value
            lazy = "?" if op is sre.MIN_REPEAT else ""
            return f"(?:{self.sequence(items, flags)}){_quantifier(low, high)}{lazy}"
        if op is sre.AT:
            return self._at(value, flags)
        if op is sre.POSSESSIVE_REPEAT or op is sre.ATOMIC_GROUP:
            raise UnsupportedPattern("possessive quantifiers and atomic groups ((?>...), *+, ++) "
                                     "are not supported; use plain * and + (rules never backtrack)")
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise UnsupportedPattern(r"backreferences (\1, (?P=name), (?(1)...)) are not supported")
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            raise UnsupportedPattern("lookahead and lookbehind ((?=...), (?!...), (?<=...), "
                                     "(?<!...)) are not supported")
        raise UnsupportedPattern(f"the construct {op} is not supported")

    def _mark_in_class(self) -> str:
        return _MARK if self.marks else ""

    def _at(self, where: Any, flags: int) -> str:
        skip = self._skip_mark()
        if where is sre.AT_BOUNDARY:
            return _MARK
        if where is sre.AT_NON_BOUNDARY:
            raise UnsupportedPattern(r"\B (not a word boundary) is not supported")
        if where is sre.AT_BEGINNING:
            return "(?m:^)" if flags & re.MULTILINE else r"\A"
        if where is sre.AT_BEGINNING_STRING:
            return r"\A"
        if where is sre.AT_END:  # Python's $: the end, or before a final line break
            return f"{skip}(?m:$)" if flags & re.MULTILINE else f"{skip}(?:\\n?{skip}\\z)"
        if where is sre.AT_END_STRING:
            return f"{skip}\\z"
        raise UnsupportedPattern(f"the anchor {where} is not supported")

    def _set(self, items: Any, flags: int) -> str:  # noqa: C901
        r"""A character class; Python's \w \d \s inside it keep their Unicode meaning."""
        ascii_only = bool(flags & re.ASCII)

        def category(content: str) -> str:
            return _ASCII[content] if ascii_only else content

        negate = False
        positive: list[str] = []
        complements: list[str] = []  # class contents whose complement belongs to the set
        removed: set[str] = set()  # for the [^\W\d_] idiom
        for op, value in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                positive.append(_char(value))
                removed.add("_" if value == ord("_") else "other")
            elif op is sre.RANGE:
                positive.append(self._range(*value))
                removed.add("other")
            elif op is sre.CATEGORY:
                name = str(value)
                content = {"CATEGORY_DIGIT": _DIGIT, "CATEGORY_WORD": _WORD,
                           "CATEGORY_SPACE": _SPACE, "CATEGORY_NOT_DIGIT": _DIGIT,
                           "CATEGORY_NOT_WORD": _WORD, "CATEGORY_NOT_SPACE": _SPACE}.get(name)
                if content is None:
                    raise UnsupportedPattern(f"the class {name} is not supported")
                if name.startswith("CATEGORY_NOT_"):
                    complements.append(category(content))
                else:
                    positive.append(category(content))
                    removed.add("digit" if content == _DIGIT else "other")
            else:
                raise UnsupportedPattern(f"the class item {op} is not supported")
        mark = self._mark_in_class()
        if not complements:
            return f"[^{''.join(positive)}{mark}]" if negate else f"[{''.join(positive)}]"
        if not negate:
            parts = ([f"[{''.join(positive)}]"] if positive else []) + [
                f"[^{content}{mark}]" for content in complements]
            return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        if len(complements) == 1 and not positive:  # [^\W] is \w
            return f"[{complements[0]}]"
        letters = _WORD_WITHOUT.get(frozenset(removed))
        if complements == [_WORD] and letters is not None:  # [^\W\d_]: letters
            return f"[{letters}]"
        raise UnsupportedPattern(
            r"a negated class that mixes \W, \S or \D with other items (such as [^\W\d]) is "
            r"not supported; list the characters instead, e.g. [а-яёa-z]")

    def _range(self, low: int, high: int) -> str:
        mark = ord(MARK)
        if self.marks and low <= mark <= high:  # a class must never swallow the mark
            pieces = ([f"{_char(low)}-{_char(mark - 1)}"] if low < mark else []) + (
                [f"{_char(mark + 1)}-{_char(high)}"] if high > mark else [])
            return "".join(pieces)
        return f"{_char(low)}-{_char(high)}"


def _quantifier(low: int, high: Any) -> str:
    unbounded = high is sre.MAXREPEAT
    if unbounded:
        return "*" if low == 0 else "+" if low == 1 else f"{{{low},}}"
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"
