"""Badges and label cards as SVG: pure rendering (no web framework, no database).

The flat badge reproduces the layout and text metrics of shields.io's ``badge-maker`` (the
"flat" style): text widths come from the same per-character table of 11 px Verdana that
badge-maker measures with (anafanafo's, shipped as ``registry/data/verdana_11px.json``), summed
the same way, truncated to whole pixels and rounded up to an odd number. The rest of the layout
(5 px horizontal padding, the 1 px overlap of the message, the ``scale(.1)`` text at font size 110,
the shadow text, the gradient and the rounded clip path) follows ``badge-maker/lib/
badge-renderers.js``. ``tests/test_badges.py`` compares widths and whole SVGs with badge-maker.

Every text that reaches an SVG goes through :func:`clean_text` (control characters, lone
surrogates, non-characters and bidirectional controls removed, whitespace collapsed) and then is
XML-escaped, in element content and in attributes alike. Texts of unbounded length are cut to a
maximum width with an ellipsis. The SVGs load nothing and run nothing: no external reference, no
script, no style sheet.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

Metric = Literal["grade", "energy", "co2e"]
METRICS: tuple[Metric, ...] = ("grade", "energy", "co2e")

BADGE_LABEL = "carbon label"
FONT_FAMILY = "Verdana,Geneva,DejaVu Sans,sans-serif"

# shields.io's named colours (badge-maker/lib/color.js), by grade.
NAMED_COLORS: dict[str, str] = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "yellowgreen": "#a4a61d",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#555",
    "lightgrey": "#9f9f9f",
}
GRADE_COLORS: dict[str, str] = {
    "A": "brightgreen",
    "B": "green",
    "C": "yellow",
    "D": "orange",
    "E": "red",
}
NEUTRAL_COLOR = "lightgrey"
"""Estimated labels, ungraded labels and unknown models."""
WARNING_COLOR = "red"

MAX_TEXT_WIDTH_PX = 480
"""Widest label or message text a flat badge draws; longer text ends in an ellipsis."""
MAX_INPUT_CHARS = 1024
"""Input beyond this many characters is dropped before anything else looks at it."""

ELLIPSIS = "\u2026"
EN_DASH = "\u2013"
LESS_EQUAL = "\u2264"
TIMES = "\u00d7"
MIDDLE_DOT = "\u00b7"
CO2E = "CO\u2082e"
CHECK_MARK = "\u2713"
VERIFIED_TEXT = f"{CHECK_MARK} verified"
"""Appended to a verified label's badge message: ``B · 12.4 Wh/1k · ✓ verified``."""

# ------------------------------------------------------------------------------------------
# Text: cleaning, escaping, measuring
# ------------------------------------------------------------------------------------------

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


def _num(value: float) -> str:
    """A number as JavaScript prints it in an attribute (integers without a decimal point)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _attrs(attrs: Sequence[tuple[str, str | float]]) -> str:
    return "".join(
        f' {name}="{xml_escape(value) if isinstance(value, str) else _num(value)}"'
        for name, value in attrs
    )


def _el(name: str, attrs: Sequence[tuple[str, str | float]], content: str = "") -> str:
    if content:
        return f"<{name}{_attrs(attrs)}>{content}</{name}>"
    return f"<{name}{_attrs(attrs)}/>"


# ------------------------------------------------------------------------------------------
# Colours
# ------------------------------------------------------------------------------------------

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def svg_color(color: str) -> str:
    """A named shields.io colour or a hex colour, as the SVG fill badge-maker would use."""
    if color in NAMED_COLORS:
        return NAMED_COLORS[color]
    match = _HEX.match(color)
    if match is None:
        raise ValueError(f"not a named or hex colour: {color!r}")
    return "#" + match.group(1).lower()


def brightness(color: str) -> float:
    """badge-maker's brightness of a hex colour: (299 R + 587 G + 114 B) / 255000, 2 decimals."""
    digits = svg_color(color)[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return float(f"{(r * 299 + g * 587 + b * 114) / 255000:.2f}")


def _text_colors(background: str) -> tuple[str, str]:
    """(text, shadow) colours on a background, as badge-maker picks them."""
    if brightness(background) <= 0.69:
        return "#fff", "#010101"
    return "#333", "#ccc"


# ------------------------------------------------------------------------------------------
# The flat badge
# ------------------------------------------------------------------------------------------

_HORIZ_PADDING = 5
_HEIGHT = 20
_ID_SUFFIX = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class FlatLayout:
    """The horizontal layout of a flat badge (px), as badge-maker computes it (no logo)."""

    label: str
    message: str
    label_width: int
    """Width of the label text (its ``textLength`` / 10); 0 without a label."""
    message_width: int
    left_width: int
    right_width: int
    label_margin: int
    message_margin: int

    @property
    def width(self) -> int:
        return self.left_width + self.right_width


def flat_layout(label: str, message: str, *, max_text_px: float = MAX_TEXT_WIDTH_PX) -> FlatLayout:
    """Clean and fit both texts, then lay them out as badge-maker's ``Flat`` badge does."""
    label = fit_text(clean_text(label), max_text_px)
    message = fit_text(clean_text(message), max_text_px)
    has_label = bool(label)
    label_width = preferred_width(label) if label else 0
    left_width = label_width + 2 * _HORIZ_PADDING if has_label else 0
    message_width = preferred_width(message)
    message_margin = left_width - (1 if message else 0)
    if not has_label:
        message_margin += 1
    return FlatLayout(
        label=label,
        message=message,
        label_width=label_width,
        message_width=message_width,
        left_width=left_width,
        right_width=message_width + 2 * _HORIZ_PADDING,
        label_margin=1,
        message_margin=message_margin,
    )


def _badge_text(margin: int, content: str, background: str, text_width: int) -> str:
    if not content:
        return ""
    fill, shadow = _text_colors(background)
    x = 10 * (margin + 0.5 * text_width + _HORIZ_PADDING)
    body = xml_escape(content)
    shadow_el = _el(
        "text",
        [
            ("aria-hidden", "true"),
            ("x", x),
            ("y", 150),
            ("fill", shadow),
            ("fill-opacity", ".3"),
            ("transform", "scale(.1)"),
            ("textLength", 10 * text_width),
        ],
        body,
    )
    text_el = _el(
        "text",
        [
            ("x", x),
            ("y", 140),
            ("transform", "scale(.1)"),
            ("fill", fill),
            ("textLength", 10 * text_width),
        ],
        body,
    )
    return shadow_el + text_el


def render_flat(
    label: str,
    message: str,
    color: str,
    *,
    label_color: str = "grey",
    id_suffix: str = "",
    max_text_px: float = MAX_TEXT_WIDTH_PX,
) -> str:
    """A shields.io "flat" badge: the same SVG that ``badge-maker`` makes for these texts and
    colours (after :func:`clean_text` and :func:`fit_text`), without links or logo.

    ``id_suffix`` keeps the gradient and clip-path ids apart when several badges are inlined in
    one HTML document (letters, digits, ``-`` and ``_`` only).
    """
    if not _ID_SUFFIX.match(id_suffix):
        raise ValueError("id_suffix: letters, digits, '-' and '_' only")
    layout = flat_layout(label, message, max_text_px=max_text_px)
    right_color = svg_color(color)
    left_color = svg_color(label_color) if layout.label else right_color
    accessible = f"{layout.label}: {layout.message}" if layout.label else layout.message
    width, height = layout.width, _HEIGHT
    gradient = _el(
        "linearGradient",
        [("id", f"s{id_suffix}"), ("x2", 0), ("y2", "100%")],
        _el("stop", [("offset", 0), ("stop-color", "#bbb"), ("stop-opacity", ".1")])
        + _el("stop", [("offset", 1), ("stop-opacity", ".1")]),
    )
    clip = _el(
        "clipPath",
        [("id", f"r{id_suffix}")],
        _el("rect", [("width", width), ("height", height), ("rx", 3), ("fill", "#fff")]),
    )
    background = _el(
        "g",
        [("clip-path", f"url(#r{id_suffix})")],
        _el("rect", [("width", layout.left_width), ("height", height), ("fill", left_color)])
        + _el(
            "rect",
            [
                ("x", layout.left_width),
                ("width", layout.right_width),
                ("height", height),
                ("fill", right_color),
            ],
        )
        + _el("rect", [("width", width), ("height", height), ("fill", f"url(#s{id_suffix})")]),
    )
    foreground = _el(
        "g",
        [
            ("fill", "#fff"),
            ("text-anchor", "middle"),
            ("font-family", FONT_FAMILY),
            ("text-rendering", "geometricPrecision"),
            ("font-size", 110),
        ],
        _badge_text(layout.label_margin, layout.label, left_color, layout.label_width)
        + _badge_text(layout.message_margin, layout.message, right_color, layout.message_width),
    )
    return _el(
        "svg",
        [
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("xmlns:xlink", "http://www.w3.org/1999/xlink"),
            ("width", width),
            ("height", height),
            ("role", "img"),
            ("aria-label", accessible),
        ],
        _el("title", [], xml_escape(accessible)) + gradient + clip + background + foreground,
    )


# ------------------------------------------------------------------------------------------
# What a badge says
# ------------------------------------------------------------------------------------------

Standing = Literal["ok", "compromised"]
Tier = Literal["self-reported", "verified"]
TIERS: tuple[Tier, ...] = ("self-reported", "verified")


@dataclass(frozen=True)
class BadgeFacts:
    """The few figures of one label a badge shows."""

    grade: str | None
    measured: bool
    energy_per_unit_wh: float
    co2e_per_unit_g: float
    functional_unit: str
    standing: Standing = "ok"
    """``compromised``: the label lost its standing (``labels.standing``): it was logged after its
    signing key's reported ``compromised_since``."""
    tier: Tier = "self-reported"
    """``verified`` once an auditor's reproduced figures agree with the label's."""


@dataclass(frozen=True)
class BadgeText:
    label: str
    message: str
    color: str
    """A shields.io named colour."""


def format_figure(value: float) -> str:
    """A figure for people: 3 significant digits from 1 up (no exponent), 2 below 1."""
    if not math.isfinite(value):
        return "?"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    digits = min(12, 1 - math.floor(math.log10(magnitude)))
    return f"{value:.{digits}f}"


def unit_suffix(functional_unit: str) -> str:
    """``1k-inferences`` -> ``1k``; ``step`` -> ``step``; anything else as it is."""
    return {"1k-inferences": "1k", "step": "step"}.get(functional_unit, functional_unit)


def unit_words(functional_unit: str) -> str:
    return {"1k-inferences": "1k inferences", "step": "training step"}.get(
        functional_unit, functional_unit
    )


def badge_text(facts: BadgeFacts | None, metric: Metric = "grade") -> BadgeText:
    """Label, message and colour of the badge of one label (None: the model has no label)."""
    if facts is None:
        return BadgeText(BADGE_LABEL, "not labelled", NEUTRAL_COLOR)
    if facts.standing == "compromised":
        return BadgeText(BADGE_LABEL, "key compromised", WARNING_COLOR)
    per = unit_suffix(facts.functional_unit)
    energy = f"{format_figure(facts.energy_per_unit_wh)} Wh/{per}"
    figure = (
        f"{format_figure(facts.co2e_per_unit_g)} g {CO2E}/{per}" if metric == "co2e" else energy
    )
    suffix = f" {MIDDLE_DOT} {VERIFIED_TEXT}" if facts.tier == "verified" else ""
    if not facts.measured:
        return BadgeText(BADGE_LABEL, f"estimated {MIDDLE_DOT} {figure}{suffix}", NEUTRAL_COLOR)
    if facts.grade is None or facts.grade not in GRADE_COLORS:
        prefix = "not graded"
        return BadgeText(BADGE_LABEL, f"{prefix} {MIDDLE_DOT} {figure}{suffix}", NEUTRAL_COLOR)
    color = GRADE_COLORS[facts.grade]
    if metric == "grade":
        return BadgeText(BADGE_LABEL, f"{facts.grade} {MIDDLE_DOT} {figure}{suffix}", color)
    return BadgeText(BADGE_LABEL, f"{figure}{suffix}", color)


def render_badge(text: BadgeText, *, id_suffix: str = "") -> str:
    return render_flat(text.label, text.message, text.color, id_suffix=id_suffix)


def endpoint_json(text: BadgeText, *, cache_seconds: int = 300) -> dict[str, Any]:
    """The shields.io endpoint document (https://shields.io/badges/endpoint-badge): only keys
    of its schema."""
    return {
        "schemaVersion": 1,
        "label": clean_text(text.label),
        "message": clean_text(text.message),
        "color": text.color,
        "cacheSeconds": cache_seconds,
    }


# ------------------------------------------------------------------------------------------
# The label card
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardFacts:
    """Everything the label card shows about one label."""

    vendor: str
    vendor_display_name: str
    model: str
    revision: str
    task: str
    phase: str
    functional_unit: str
    measured: bool
    grade: str | None
    graded_under: str | None
    percentile: float | None
    methodology_version: str | None
    energy_mean_wh: float
    energy_ci95_low_wh: float | None
    energy_ci95_high_wh: float
    co2e_mean_g: float
    zone: str
    pue: float | None
    intensity_g_per_kwh: float | None
    carbon_basis: str | None
    accelerator: str | None
    accelerator_count: int | None
    hardware_class: str
    components: Sequence[tuple[str, str]] = field(default_factory=tuple)
    created_at: datetime | None = None
    keyid: str = ""
    key_status: str | None = None
    standing: Standing = "ok"
    url: str = ""
    tier: Tier = "self-reported"
    verified_by: Sequence[str] = field(default_factory=tuple)
    """Display names of the auditors whose reproduced figures agree with the label's."""


CARD_WIDTH = 360
_PAD = 16
_INK = "#111"
_MUTED = "#555"
_LINK = "#0b57d0"
_VERIFIED_INK = "#006b2b"
# The card's texts are fitted with the 11 px Verdana widths scaled to their size, times these:
# bold runs wider than regular, and the fallback fonts (DejaVu Sans) wider than Verdana.
_REGULAR_SLACK = 1.04
_BOLD_SLACK = 1.2


class _Card:
    """Accumulates the elements of a card top to bottom."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.y = 0.0

    def text(
        self,
        x: float,
        text: str,
        *,
        size: float = 12,
        bold: bool = False,
        anchor: str = "start",
        fill: str = _INK,
        max_px: float = CARD_WIDTH - 2 * _PAD,
        y: float | None = None,
    ) -> float:
        """Draw cleaned, fitted, escaped text; return its estimated width."""
        scale = size / 11 * (_BOLD_SLACK if bold else _REGULAR_SLACK)
        shown = fit_text(clean_text(text), max_px, scale=scale)
        attrs: list[tuple[str, str | float]] = [("x", x), ("y", self.y if y is None else y)]
        if size != 12:
            attrs.append(("font-size", size))
        if bold:
            attrs.append(("font-weight", "bold"))
        if anchor != "start":
            attrs.append(("text-anchor", anchor))
        if fill != _INK:
            attrs.append(("fill", fill))
        self.parts.append(_el("text", attrs, xml_escape(shown)))
        return text_width(shown) * scale

    def rule(self, thickness: float) -> None:
        self.parts.append(
            _el(
                "rect",
                [
                    ("x", _PAD),
                    ("y", self.y),
                    ("width", CARD_WIDTH - 2 * _PAD),
                    ("height", thickness),
                ],
            )
        )
        self.y += thickness

    def row(self, left: str, right: str, *, size: float = 12, bold: bool = False) -> None:
        """A line with ``left`` at the left margin and ``right`` flush right."""
        used = self.text(_PAD, left, size=size, bold=bold, max_px=CARD_WIDTH * 0.55)
        room = CARD_WIDTH - 2 * _PAD - used - 10
        self.text(CARD_WIDTH - _PAD, right, size=size, bold=bold, anchor="end", max_px=room)


def _percentile_text(percentile: float | None) -> str:
    if percentile is None:
        return "no current peers to compare with yet"
    return f"better than {round(percentile)}% of current peers"


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "unknown"


def render_card(facts: CardFacts) -> str:
    """The full label card: a nutrition-label style SVG, ``CARD_WIDTH`` px wide."""
    card = _Card()
    per = unit_words(facts.functional_unit)
    model = f"{facts.vendor}/{facts.model}"
    card.y = 36
    card.text(_PAD, "Carbon Label", size=22, bold=True)
    card.y += 20
    card.text(_PAD, model, size=13, bold=True)
    card.y += 16
    card.text(_PAD, f"by {facts.vendor_display_name}", size=11, fill=_MUTED)
    card.y += 15
    card.text(
        _PAD,
        f"revision {facts.revision} {MIDDLE_DOT} {facts.task} {MIDDLE_DOT} {facts.phase}",
        size=11,
        fill=_MUTED,
    )
    card.y += 8
    card.rule(8)

    # Grade
    top = card.y + 10
    if facts.standing == "compromised":
        letter, color, headline = "!", NAMED_COLORS[WARNING_COLOR], "Key compromised"
        lines = ["signed with a key reported compromised", "this label has lost its standing"]
    elif not facts.measured:
        letter, color, headline = "?", NAMED_COLORS[NEUTRAL_COLOR], "Estimated"
        lines = ["energy estimated, not measured:", "no grade"]
    elif facts.grade is None or facts.grade not in GRADE_COLORS:
        letter, color, headline = EN_DASH, NAMED_COLORS[NEUTRAL_COLOR], "Not graded"
        lines = ["no grade band for this task and hardware"]
    else:
        letter = facts.grade
        color = NAMED_COLORS[GRADE_COLORS[facts.grade]]
        headline = f"Grade {facts.grade}"
        lines = [
            _percentile_text(facts.percentile),
            "on the upper bound of the 95% CI",
            f"grading v{facts.graded_under or '?'}",
        ]
    card.parts.append(
        _el(
            "rect",
            [("x", _PAD), ("y", top), ("width", 60), ("height", 60), ("rx", 6), ("fill", color)],
        )
    )
    card.text(_PAD + 30, letter, size=40, bold=True, anchor="middle", fill="#fff", y=top + 45)
    text_x = _PAD + 74
    room = CARD_WIDTH - _PAD - text_x
    card.text(text_x, headline, size=15, bold=True, max_px=room, y=top + 16)
    for i, line in enumerate(lines):
        card.text(text_x, line, size=11, max_px=room, y=top + 33 + 14 * i)
    card.y = top + 70
    card.rule(4)

    # Energy
    card.y += 18
    card.row(f"Energy per {per}", f"{format_figure(facts.energy_mean_wh)} Wh", bold=True)
    card.y += 16
    low = facts.energy_ci95_low_wh
    interval = (
        f"{format_figure(low)} {EN_DASH} {format_figure(facts.energy_ci95_high_wh)} Wh"
        if low is not None
        else f"{LESS_EQUAL} {format_figure(facts.energy_ci95_high_wh)} Wh"
    )
    card.row("95% confidence interval", interval, size=11)
    card.y += 8
    card.rule(1)

    # Carbon
    card.y += 18
    card.row(f"{CO2E} per {per}", f"{format_figure(facts.co2e_mean_g)} g", bold=True)
    card.y += 16
    carbon = [f"zone {facts.zone}"]
    if facts.pue is not None:
        carbon.append(f"PUE {format_figure(facts.pue)}")
    if facts.intensity_g_per_kwh is not None:
        basis = f" ({facts.carbon_basis})" if facts.carbon_basis else ""
        carbon.append(f"{format_figure(facts.intensity_g_per_kwh)} g {CO2E}/kWh{basis}")
    card.text(_PAD, f" {MIDDLE_DOT} ".join(carbon), size=11, fill=_MUTED)
    card.y += 8
    card.rule(1)

    # Hardware
    card.y += 18
    accelerator = facts.accelerator or "none"
    if facts.accelerator_count and facts.accelerator_count > 1:
        accelerator = f"{facts.accelerator_count} {TIMES} {accelerator}"
    card.row("Hardware", accelerator)
    card.y += 16
    card.row("class", facts.hardware_class, size=11)
    card.y += 8
    card.rule(1)

    # Method
    card.y += 18
    card.row("Method", "measured" if facts.measured else "estimated")
    card.y += 16
    components = ", ".join(f"{name}: {method}" for name, method in facts.components) or "none"
    card.text(_PAD, components, size=11, fill=_MUTED)
    card.y += 8
    card.rule(1)

    card.y += 18
    versions = f"v{facts.methodology_version or '?'}"
    if facts.graded_under:
        versions += f" {MIDDLE_DOT} grading v{facts.graded_under}"
    card.row("Methodology", versions)
    card.y += 8
    card.rule(1)
    card.y += 18
    card.row("Date", _date(facts.created_at))
    card.y += 8
    card.rule(4)

    # Verification and link
    card.y += 18
    if facts.standing == "compromised":
        verified = f"signature valid, key {facts.keyid[:12]} compromised"
        fill = NAMED_COLORS[WARNING_COLOR]
    else:
        verified = f"signature verified {MIDDLE_DOT} key {facts.keyid[:12]}"
        fill = _INK
    card.text(_PAD, verified, size=11, fill=fill)
    card.y += 16
    card.text(
        _PAD, _tier_text(facts), size=11, bold=facts.tier == "verified", fill=_tier_fill(facts)
    )
    if facts.url:
        card.y += 16
        link = _card_link(card, facts.url)
        card.parts.append(link)
    card.y += 14
    height = math.ceil(card.y)
    aria = (
        f"Carbon label of {model}: "
        + (
            f"grade {facts.grade}, {_percentile_text(facts.percentile)}"
            if facts.measured and facts.grade
            else ("estimated, no grade" if not facts.measured else "not graded")
        )
        + f"; {format_figure(facts.energy_mean_wh)} Wh and "
        f"{format_figure(facts.co2e_mean_g)} g CO2e per {per}; "
        + ("verified" if facts.tier == "verified" else "self-reported")
    )
    return _card_svg(aria, height, card.parts)


def _tier_text(facts: CardFacts) -> str:
    """``Verified by <auditors>`` or ``Self-reported``."""
    if facts.tier != "verified":
        return "Self-reported (not reproduced by an auditor)"
    names = [clean_text(name) for name in facts.verified_by if clean_text(name)]
    if not names:
        return f"{CHECK_MARK} Verified by an auditor"
    shown = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
    return f"{CHECK_MARK} Verified by {shown}"


def _tier_fill(facts: CardFacts) -> str:
    return _VERIFIED_INK if facts.tier == "verified" else _MUTED


def _card_link(card: _Card, url: str) -> str:
    """The label's URL, in one or two lines, inside a link."""
    url = clean_text(url)
    inner = _Card()
    inner.y = card.y
    size = 9.5
    if text_width(url) * size / 11 * _REGULAR_SLACK <= CARD_WIDTH - 2 * _PAD:
        inner.text(_PAD, url, size=size, fill=_LINK)
    else:
        head, sep, tail = url.rpartition("/")
        inner.text(_PAD, head + sep, size=size, fill=_LINK)
        inner.y += 13
        inner.text(_PAD, tail, size=size, fill=_LINK)
    card.y = inner.y
    return _el("a", [("href", url)], "".join(inner.parts))


def _card_svg(aria: str, height: int, parts: list[str]) -> str:
    aria = clean_text(aria)
    frame = _el(
        "rect",
        [
            ("x", 1),
            ("y", 1),
            ("width", CARD_WIDTH - 2),
            ("height", height - 2),
            ("rx", 4),
            ("fill", "#fff"),
            ("stroke", _INK),
            ("stroke-width", 2),
        ],
    )
    body = _el(
        "g",
        [("fill", _INK), ("font-family", FONT_FAMILY), ("font-size", 12)],
        "".join(parts),
    )
    return _el(
        "svg",
        [
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("width", CARD_WIDTH),
            ("height", height),
            ("viewBox", f"0 0 {CARD_WIDTH} {height}"),
            ("role", "img"),
            ("aria-label", aria),
        ],
        _el("title", [], xml_escape(aria)) + frame + body,
    )


def render_unlabelled_card(vendor: str, model: str) -> str:
    """The card of a model the registry holds no current label for."""
    card = _Card()
    card.y = 36
    card.text(_PAD, "Carbon Label", size=22, bold=True)
    card.y += 20
    card.text(_PAD, f"{vendor}/{model}", size=13, bold=True)
    card.y += 12
    card.rule(8)
    card.y += 24
    card.text(_PAD, "not labelled", size=15, bold=True, fill=_MUTED)
    card.y += 18
    card.text(_PAD, "this registry holds no current label for this model", size=11, fill=_MUTED)
    card.y += 16
    aria = f"Carbon label of {vendor}/{model}: not labelled"
    return _card_svg(aria, math.ceil(card.y), card.parts)
