"""Markdown for values that come from result files: summary.md and the CI report share it.

Everything a result file holds (model names, scenario names, engine versions, URLs...) may be
hostile or simply odd; these helpers turn any value into text that renders as itself.
"""

from __future__ import annotations

import html
import math
import re
from urllib.parse import quote, urlsplit

# Escaped wherever they occur: emphasis, code, links, tables, headings, strikethrough, math.
_MD_PUNCTUATION = re.compile(r"([\\`*\[\]|#~$])")
# `_` only opens or closes emphasis next to a non-alphanumeric, so `chat_short` can stay as is
# (kinder to people reading the file in a terminal); `_x_` and `__init__` are escaped.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# At the start of a value (a list item, a table cell): list markers (`- x`, `1. x`) and rules
# (`---`, `===`). `-1.5` and `--max-model-len` are left alone.
_MD_LEADING_MARKER = re.compile(r"^([-+=](?=\s|[-+= ]*$)|\d+[.)](?=\s|$))")
# What a forge turns into a notification or a cross-reference: `@user`, `@org/team`, `#123`,
# `!12` (GitLab merge requests).
_MENTION = re.compile(r"([@#!])(?=[A-Za-z0-9])")
WORD_JOINER = "\u2060"


def md_escape(value: object) -> str:
    """`value` as literal Markdown text: it renders as itself, cannot start a list, heading,
    table cell, link, emphasis or HTML element, and stays on one line (whitespace collapses)."""
    text = " ".join(str(value).split())
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = _MD_LEADING_MARKER.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], text)
    # Entities, not backslash escapes: they also hold inside raw HTML (a PR comment's
    # <details>), and `\&lt;` would show the entity's text.
    return html.escape(text, quote=False)


def html_text(value: object) -> str:
    """`value` as literal text inside an HTML block (a `<summary>`), where Markdown is not
    parsed and backslash escapes would show: entities only, on one line."""
    return html.escape(" ".join(str(value).split()), quote=True)


def neutralize_mentions(text: str) -> str:
    """Keep a forge from notifying `@someone` or cross-referencing `#123` because a result file
    says so: an invisible word joiner after the sign breaks the pattern, the text reads the same.
    For text that is already escaped (the joiner is not Markdown syntax)."""
    return _MENTION.sub(lambda m: m.group(1) + WORD_JOINER, text)


def safe_url(value: str) -> str | None:
    """An http(s) URL made safe for a Markdown link destination (no spaces, parentheses, angle
    brackets, pipes or backticks), or None for anything else (javascript:, relative...)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(text, safe=":/?#@!$&'*+,;=%-._~")


def format_number(value: float | None) -> str:
    """Rounded for reading: about three significant digits, thousands separated; – for none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) or value == 0:
        return f"{value:,.0f}"
    size = abs(value)
    decimals = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 1 else 3
    return f"{value:,.{decimals}f}"
