"""SVG writing shared by the flat badge and the label card: elements with escaped attributes,
numbers as JavaScript prints them, and shields.io's colours."""

from __future__ import annotations

import re
from collections.abc import Sequence

from registry.badges.text import xml_escape

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


def el(name: str, attrs: Sequence[tuple[str, str | float]], content: str = "") -> str:
    if content:
        return f"<{name}{_attrs(attrs)}>{content}</{name}>"
    return f"<{name}{_attrs(attrs)}/>"


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
