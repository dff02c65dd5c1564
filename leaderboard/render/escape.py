"""Untrusted team names, made safe for each output.

Team names are participant text. Every output first makes them "plain" (`plain_name`:
control characters -> spaces, bidirectional controls removed, so a U+202E override cannot
flip the rest of a row) and then escapes them for its own format (`markdown_text`,
`html_text`; JSON escapes in `leaderboard.render.board_json`).
"""

from __future__ import annotations

import html
import re

# Bidirectional embeddings, overrides, isolates and marks: removing them means a name cannot
# reorder the text around it. ZWJ (U+200D) stays: emoji sequences need it.
BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;", "|": "&#124;"}


def plain_name(text: str) -> str:
    """`text` as one line of plain text: control characters and line breaks become spaces,
    bidi controls are dropped, outer whitespace is stripped (Markdown strips it anyway)."""
    return _CONTROL.sub(" ", text.translate(BIDI_CONTROLS)).strip()


def markdown_text(text: str) -> str:
    """Escape untrusted text for a GFM table cell: it renders literally, in one cell.

    HTML-significant characters and `|` become entities (a literal `|` is always a cell
    separator, so `&#124;` is the one spelling no table parser splits on); every other ASCII
    punctuation character is backslash-escaped, which CommonMark defines as literal."""
    out = []
    for char in plain_name(text):
        if char in _MD_ENTITIES:
            out.append(_MD_ENTITIES[char])
        elif char in _ASCII_PUNCT:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def html_text(text: str) -> str:
    """Escape untrusted text for HTML/SVG content and quoted attribute values."""
    return html.escape(plain_name(text), quote=True)


def short_name(team: str, limit: int = 60) -> str:
    """A plain team name for a chart label: cut at `limit` characters, since a 200-character
    name would squeeze the plot to nothing (tables keep names whole)."""
    name = plain_name(team)
    return name if len(name) <= limit else name[: limit - 1] + "…"
