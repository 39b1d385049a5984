"""Cleaning of raw appeal texts: HTML, invisible characters, whitespace, ё, quotes, dashes.

Appeals arrive from web forms, 59-ФЗ/ПОС exports (with HTML) and social networks. Every
function here is pure, cheap and total: it accepts any ``str`` and never raises on odd
Unicode, because one bad row must not sink a batch.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = [
    "EMAIL_RE",
    "PHONE_RE",
    "URL_RE",
    "key_text",
    "looks_like_html",
    "normalize_text",
    "replace_placeholders",
    "strip_html",
]

# --- HTML -------------------------------------------------------------------------------------

_HTML_TAG_NAMES = (
    "a|abbr|b|blockquote|body|br|center|code|div|em|font|h[1-6]|head|hr|html|i|img|li|meta|ol|p|"
    "pre|s|script|small|span|strong|style|sub|sup|table|tbody|td|th|thead|title|tr|u|ul"
)
# A text is treated as HTML only when it has a real tag name or an entity, so that a citizen's
# "температура <18, а должна быть >20" is never eaten by tag stripping.
_LOOKS_LIKE_HTML = re.compile(
    rf"</?(?:{_HTML_TAG_NAMES})\b[^<>]*>|&(?:[a-zA-Z][a-zA-Z0-9]{{1,31}}|#[0-9]{{1,7}}|#[xX][0-9a-fA-F]{{1,6}});",
    re.IGNORECASE,
)
# Blocks dropped with their content: <script>…</script> (and style, head, title) and comments.
# They are found by hand, not by one lazy regex, which rescans the rest of the text for every
# unclosed <script> and so is quadratic on «<script><script>…».
_BLOCK_NAMES = ("script", "style", "head", "title")
_BLOCK_START = re.compile(
    "<(?:" + "|".join(f"(?P<{name}>{name})" for name in _BLOCK_NAMES) + r")\b|<!--", re.IGNORECASE
)
_BLOCK_END = {name: re.compile(rf"</{name}\s*+>", re.IGNORECASE) for name in _BLOCK_NAMES}
_BREAKING_TAGS = re.compile(
    r"<(?:br|hr)\b[^<>]*>|</?(?:p|div|li|ul|ol|tr|table|blockquote|pre|h[1-6])\b[^<>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?>|<![^<>]*>")

# --- characters -------------------------------------------------------------------------------

# Unicode categories removed outright: control (Cc, except line breaks and tabs handled below),
# format (Cf: zero-width spaces and joiners, BOM, soft hyphen, bidi marks), surrogates (Cs,
# cannot be encoded to UTF-8) and private use (Co). Unassigned code points (Cn) are kept: a newer
# Unicode version may assign them and removing them would make the function version-dependent.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
_KEPT_CONTROLS = frozenset("\n\t")

_CHAR_MAP = str.maketrans(
    {
        "ё": "е",
        "Ё": "Е",
        # All double quotes to the ASCII one: «ёлка», „ёлка“ and "ёлка" are the same token.
        "«": '"',
        "»": '"',
        "„": '"',
        "“": '"',
        "”": '"',
        "‟": '"',
        "″": '"',
        "〝": '"',
        "〞": '"',
        "＂": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        # Hyphens, dashes and the minus sign to the ASCII hyphen-minus.
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\ufe58": "-",
        "\ufe63": "-",
        "\uff0d": "-",
    }
)
_MAPPED_CHARS = re.compile("[" + "".join(re.escape(chr(code)) for code in _CHAR_MAP) + "]")

# --- placeholders -----------------------------------------------------------------------------

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[\w.+-]*\w@\w[\w-]*(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])", re.IGNORECASE
)
"""An e-mail address (Cyrillic domains included)."""

URL_RE = re.compile(
    r"""(?<![\w@])
    (?:
        (?:https?|ftp)://[^\s<>"'«»]+
      | www\.[^\s<>"'«»]+
        # A bare domain does not start inside a run of domain characters: a start after each
        # «1.» of «1.1.1…» or «a-» of «a-a-a…» would rescan the run (a quadratic search).
      | (?<![a-z0-9.-]-)(?<![a-z0-9-]\.)(?:[a-z0-9-]++\.)+(?:ru|su|com|org|net|info|рф|me|ly|gl|io)/
        [^\s<>"'«»]*
    )
    (?<![.,;:!?)\]}])""",
    re.IGNORECASE | re.VERBOSE,
)
"""A web link: with a scheme, starting with ``www.``, or a bare ``site.ru/path``.

Linear in the text's length: each alternative has one way to split a string, and a bare domain
is tried only at the start of a run of domain characters."""

PHONE_RE = re.compile(
    r"""(?<![\w+])
    (?:
        (?:\+\s?7|8)[\s.-]*(?:\(\s*\d{3,5}\s*\)|\d{3,5})[\s.-]*\d{1,3}(?:[\s.-]*\d{2}){2}
      | 7[\s.-]*(?:\(\s*[3489]\d{2}\s*\)|[3489]\d{2})[\s.-]*\d{3}(?:[\s.-]*\d{2}){2}
      | \(\s*\d{3,5}\s*\)[\s.-]*\d{1,3}(?:[\s.-]*\d{2}){2}
      | 9\d{2}[\s-]*\d{3}(?:[\s-]*\d{2}){2}
      | \d{3}-\d{2}-\d{2}
    )
    (?![\w])""",
    re.VERBOSE,
)
"""A Russian phone number: ``+7 (812) 600-33-57``, ``8-921-123-45-67``, ``88126271744``,
``79119223402``, ``921 123 45 67``, ``(81370) 2-34-56`` or a city number written with dashes,
``679-07-91``. Digit runs glued to
other digits (13-digit request numbers) are not phones."""


def looks_like_html(text: str) -> bool:
    """Tell whether a text carries HTML markup or character entities.

    Args:
        text: Any text.

    Returns:
        True when the text has a known HTML tag or an entity such as ``&nbsp;``.
    """
    return _LOOKS_LIKE_HTML.search(text) is not None


def _drop_blocks(text: str) -> str:
    r"""Replace scripts, styles, heads, titles and comments (with their content) by a space.

    The same spans as ``<(script|style|head|title)\b[^>]*>.*?</\1\s*>|<!--.*?(?:-->|$)``
    (case-insensitive, ``.`` matching line breaks) replaced left to right, in linear time: once
    a block has no closing tag (or no ``>``) after some point, no later block of that name has
    one, so it is not looked for again.
    """
    pieces: list[str] = []
    position = kept_from = 0
    unclosed: set[str] = set()  # block names without a closing tag after ``position``
    no_tag_end = False  # no ">" after ``position``
    end_of_text = len(text) - 1 if text.endswith("\n") else len(text)  # where "$" matches
    while (start := _BLOCK_START.search(text, position)) is not None:
        name = start.lastgroup
        if name is None:  # a comment: up to "-->", else to the end ("$")
            close = text.find("-->", start.end())
            end = close + 3 if close != -1 else max(end_of_text, start.end())
        else:
            tag_end = -1 if no_tag_end or name in unclosed else text.find(">", start.end())
            no_tag_end = no_tag_end or (tag_end == -1 and name not in unclosed)
            close_tag = None if tag_end == -1 else _BLOCK_END[name].search(text, tag_end + 1)
            if close_tag is None:
                if tag_end != -1:
                    unclosed.add(name)
                position = start.start() + 1
                continue
            end = close_tag.end()
        pieces += (text[kept_from : start.start()], " ")
        position = kept_from = end
    pieces.append(text[kept_from:])
    return "".join(pieces)


def strip_html(text: str) -> str:
    """Turn an HTML fragment into plain text.

    Scripts, styles and comments are dropped; ``<br>``, ``<p>``, ``<div>``, list items and
    table rows become line breaks; other tags are removed; entities (``&nbsp;``, ``&laquo;``,
    ``&#171;``) are decoded. Double-escaped exports (``&amp;quot;``) are decoded until nothing
    changes, so the result never looks like HTML again.

    Args:
        text: An HTML fragment or plain text.

    Returns:
        The plain text; whitespace is not collapsed here (see :func:`normalize_text`).
    """
    # Each round strictly shortens the text, so the loop ends; 8 rounds cover any real export.
    for _ in range(8):
        stripped = _drop_blocks(text)
        stripped = _BREAKING_TAGS.sub("\n", stripped)
        stripped = _ANY_TAG.sub("", stripped)
        stripped = html.unescape(stripped)
        if stripped == text:
            break
        text = stripped
    return text


def _drop_invisible(text: str) -> str:
    # Almost every appeal is printable apart from line breaks: skip the per-character pass.
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    category = unicodedata.category
    return "".join(
        ch
        for ch in text
        if ch.isprintable() or ch in _KEPT_CONTROLS or category(ch) not in _REMOVED_CATEGORIES
    )


def normalize_text(text: str | None) -> str:
    """Normalize an appeal text for storage, search and models.

    Steps: HTML stripping (only when the text looks like HTML), line breaks unified, control
    and zero-width characters removed, Unicode NFC, ``ё`` → ``е``, all double quotes → ``"``,
    single quotes → ``'``, dashes and minus → ``-``, runs of spaces collapsed, spaces around line
    breaks and empty lines removed, ends stripped. Line breaks are kept: they separate an
    address from the complaint. The function is idempotent.

    Args:
        text: Raw text; ``None`` gives an empty string.

    Returns:
        The normalized text.

    Raises:
        TypeError: If ``text`` is neither a string nor ``None``.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects str, got {type(text).__name__}")
    if looks_like_html(text):
        text = strip_html(text)
    # str.splitlines knows every line break (\r\n, \r, \v, \f, \x85, \u2028, ...), str.split
    # every kind of space (NBSP, thin spaces, tabs); both run in C, unlike a regex.
    text = "\n".join(text.splitlines())
    text = _drop_invisible(text)
    text = unicodedata.normalize("NFC", text)
    if _MAPPED_CHARS.search(text):
        text = text.translate(_CHAR_MAP)
        # «Ё» + a combining mark becomes «Е» + the mark, which may compose anew («Ӗ», even «Ё»).
        for _ in range(4):
            if unicodedata.is_normalized("NFC", text):
                break
            text = unicodedata.normalize("NFC", text).translate(_CHAR_MAP)
    return "\n".join(filter(None, (" ".join(line.split()) for line in text.split("\n"))))


def replace_placeholders(text: str) -> str:
    """Replace e-mails, links and phone numbers by the tokens ``EMAIL``, ``URL`` and ``PHONE``.

    The tokens are surrounded by spaces so they stay separate words for tokenizers; e-mails go
    first because their domain would otherwise look like a link.

    Args:
        text: Plain (preferably normalized) text.

    Returns:
        The text with placeholders; whitespace is not collapsed again.
    """
    text = EMAIL_RE.sub(" EMAIL ", text)
    text = URL_RE.sub(" URL ", text)
    return PHONE_RE.sub(" PHONE ", text)


_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def key_text(text: str) -> str:
    """Return the duplicate key of the evaluation protocol (``../shared/EVAL.md``).

    Lower case; every character that is not a letter or digit replaced by a space; runs of
    spaces collapsed; stripped. Two appeals are "the same text" when their keys are equal.

    Args:
        text: Raw appeal text.

    Returns:
        The key.
    """
    return _NOT_LETTER_OR_DIGIT.sub(" ", text.lower()).strip()
