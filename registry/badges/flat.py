"""The flat badge: the layout of shields.io's ``badge-maker`` "flat" style.

Text widths are truncated to whole pixels and rounded up to an odd number. The rest of the layout
(5 px horizontal padding, the 1 px overlap of the message, the ``scale(.1)`` text at font size 110,
the shadow text, the gradient and the rounded clip path) follows ``badge-maker/lib/
badge-renderers.js``. ``tests/test_badges.py`` compares widths and whole SVGs with badge-maker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.badges.svg import FONT_FAMILY, brightness, el, svg_color
from registry.badges.text import clean_text, fit_text, preferred_width, xml_escape

MAX_TEXT_WIDTH_PX = 480
"""Widest label or message text a flat badge draws; longer text ends in an ellipsis."""


def _text_colors(background: str) -> tuple[str, str]:
    """(text, shadow) colours on a background, as badge-maker picks them."""
    if brightness(background) <= 0.69:
        return "#fff", "#010101"
    return "#333", "#ccc"


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
    shadow_el = el(
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
    text_el = el(
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
    gradient = el(
        "linearGradient",
        [("id", f"s{id_suffix}"), ("x2", 0), ("y2", "100%")],
        el("stop", [("offset", 0), ("stop-color", "#bbb"), ("stop-opacity", ".1")])
        + el("stop", [("offset", 1), ("stop-opacity", ".1")]),
    )
    clip = el(
        "clipPath",
        [("id", f"r{id_suffix}")],
        el("rect", [("width", width), ("height", height), ("rx", 3), ("fill", "#fff")]),
    )
    background = el(
        "g",
        [("clip-path", f"url(#r{id_suffix})")],
        el("rect", [("width", layout.left_width), ("height", height), ("fill", left_color)])
        + el(
            "rect",
            [
                ("x", layout.left_width),
                ("width", layout.right_width),
                ("height", height),
                ("fill", right_color),
            ],
        )
        + el("rect", [("width", width), ("height", height), ("fill", f"url(#s{id_suffix})")]),
    )
    foreground = el(
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
    return el(
        "svg",
        [
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("xmlns:xlink", "http://www.w3.org/1999/xlink"),
            ("width", width),
            ("height", height),
            ("role", "img"),
            ("aria-label", accessible),
        ],
        el("title", [], xml_escape(accessible)) + gradient + clip + background + foreground,
    )
