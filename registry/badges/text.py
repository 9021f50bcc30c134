"""Badge text: cleaning, escaping and measuring.

Text widths come from the per-character table of 11 px Verdana that shields.io's badge-maker
measures with (anafanafo's, shipped as ``registry/data/verdana_11px.json``), summed the same way.
Every text that reaches an SVG goes through :func:`clean_text` (control characters, lone
surrogates, non-characters and bidirectional controls removed, whitespace collapsed) and then
:func:`xml_escape`; :func:`fit_text` cuts a text to a maximum width with an ellipsis.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

MAX_INPUT_CHARS = 1024
"""Input beyond this many characters is dropped before anything else looks at it."""

ELLIPSIS = "\u2026"
EN_DASH = "\u2013"
LESS_EQUAL = "\u2264"
TIMES = "\u00d7"
MIDDLE_DOT = "\u00b7"
CO2E = "CO\u2082e"
CHECK_MARK = "\u2713"

# Characters removed from every text: C0 and C1 controls (tab, newline and friends become
# spaces first), lone surrogates, the BMP non-characters XML 1.0 forbids (and the other
# non-characters of that block), and the bidirectional embedding, override and isolate controls,
# which would let a name reorder the text it is drawn in.
_SPACES = str.maketrans(dict.fromkeys("\t\n\r\x0b\x0c\x85\u2028\u2029", " "))
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})


def clean_text(text: str) -> str:
    """``text`` safe to draw: unsafe characters removed, whitespace collapsed and trimmed."""
    text = _UNSAFE.sub("", text[:MAX_INPUT_CHARS].translate(_SPACES))
    return " ".join(text.split())


def xml_escape(text: str) -> str:
    """Escape for XML element content and (double- or single-quoted) attribute values."""
    return text.translate(_XML_ESCAPES)


@dataclass(frozen=True)
class _WidthTable:
    lows: list[int]
    highs: list[int]
    widths: list[float]
    ascii: list[float | None]
    em: float


@cache
def _width_table() -> _WidthTable:
    raw = resources.files("registry").joinpath("data/verdana_11px.json").read_text("utf-8")
    ranges: list[list[Any]] = json.loads(raw)["ranges"]
    lows = [int(r[0]) for r in ranges]
    highs = [int(r[1]) for r in ranges]
    widths = [float(r[2]) for r in ranges]

    def lookup(cp: int) -> float | None:
        i = bisect_right(lows, cp) - 1
        return widths[i] if i >= 0 and cp <= highs[i] else None

    em = lookup(ord("m"))
    assert em is not None
    return _WidthTable(lows, highs, widths, [lookup(cp) for cp in range(128)], em)


def char_width(char: str) -> float:
    """Advance width (px) of one character in 11 px Verdana, as anafanafo gives it: 0 for
    control characters, the width of ``m`` for a character the table does not know."""
    table = _width_table()
    cp = ord(char)
    if cp <= 31 or cp == 127:
        return 0.0
    if cp < 128:
        width = table.ascii[cp]
    else:
        i = bisect_right(table.lows, cp) - 1
        width = table.widths[i] if i >= 0 and cp <= table.highs[i] else None
    return table.em if width is None else width


def text_width(text: str) -> float:
    """Width (px) of ``text`` in 11 px Verdana: the per-character widths summed left to right
    (the same floating-point sum as anafanafo's)."""
    total = 0.0
    for char in text:
        total += char_width(char)
    return total


def preferred_width(text: str) -> int:
    """badge-maker's ``preferredWidthOf``: the width truncated to whole pixels, rounded up to an
    odd number ("increase chances of pixel grid alignment")."""
    width = int(text_width(text))
    return width + 1 if width % 2 == 0 else width


def fit_text(text: str, max_px: float, *, scale: float = 1.0) -> str:
    """``text`` if it fits in ``max_px`` at ``scale`` x 11 px Verdana, else its longest prefix
    that fits with an ellipsis after it."""
    if text_width(text) * scale <= max_px:
        return text
    budget = max_px / scale - char_width(ELLIPSIS)
    total = 0.0
    for index, char in enumerate(text):
        total += char_width(char)
        if total > budget:
            return text[:index].rstrip() + ELLIPSIS
    return text  # pragma: no cover - unreachable: the whole text did not fit
