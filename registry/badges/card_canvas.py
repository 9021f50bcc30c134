"""The label card's drawing surface: the card's width, margins and inks, a :class:`Canvas` that
lays out text and rules top to bottom, the label's link, and the SVG frame around it all."""

from __future__ import annotations

from registry.badges.svg import FONT_FAMILY, el
from registry.badges.text import clean_text, fit_text, text_width, xml_escape

CARD_WIDTH = 360
PAD = 16
INK = "#111"
MUTED = "#555"
LINK = "#0b57d0"
VERIFIED_INK = "#006b2b"
# The card's texts are fitted with the 11 px Verdana widths scaled to their size, times these:
# bold runs wider than regular, and the fallback fonts (DejaVu Sans) wider than Verdana.
REGULAR_SLACK = 1.04
BOLD_SLACK = 1.2


class Canvas:
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
        fill: str = INK,
        max_px: float = CARD_WIDTH - 2 * PAD,
        y: float | None = None,
    ) -> float:
        """Draw cleaned, fitted, escaped text; return its estimated width."""
        scale = size / 11 * (BOLD_SLACK if bold else REGULAR_SLACK)
        shown = fit_text(clean_text(text), max_px, scale=scale)
        attrs: list[tuple[str, str | float]] = [("x", x), ("y", self.y if y is None else y)]
        if size != 12:
            attrs.append(("font-size", size))
        if bold:
            attrs.append(("font-weight", "bold"))
        if anchor != "start":
            attrs.append(("text-anchor", anchor))
        if fill != INK:
            attrs.append(("fill", fill))
        self.parts.append(el("text", attrs, xml_escape(shown)))
        return text_width(shown) * scale

    def rule(self, thickness: float) -> None:
        self.parts.append(
            el(
                "rect",
                [
                    ("x", PAD),
                    ("y", self.y),
                    ("width", CARD_WIDTH - 2 * PAD),
                    ("height", thickness),
                ],
            )
        )
        self.y += thickness

    def row(
        self, left: str, right: str, *, size: float = 12, bold: bool = False, href: str = ""
    ) -> None:
        """A line with ``left`` at the left margin (a link to ``href`` when given, e.g. the
        method of the figure) and ``right`` flush right."""
        used = self.text(PAD, left, size=size, bold=bold, max_px=CARD_WIDTH * 0.55)
        if href:
            self.parts[-1] = el("a", [("href", clean_text(href))], self.parts[-1])
        room = CARD_WIDTH - 2 * PAD - used - 10
        self.text(CARD_WIDTH - PAD, right, size=size, bold=bold, anchor="end", max_px=room)


def card_link(card: Canvas, url: str) -> str:
    """The label's URL, in one or two lines, inside a link."""
    url = clean_text(url)
    inner = Canvas()
    inner.y = card.y
    size = 9.5
    if text_width(url) * size / 11 * REGULAR_SLACK <= CARD_WIDTH - 2 * PAD:
        inner.text(PAD, url, size=size, fill=LINK)
    else:
        head, sep, tail = url.rpartition("/")
        inner.text(PAD, head + sep, size=size, fill=LINK)
        inner.y += 13
        inner.text(PAD, tail, size=size, fill=LINK)
    card.y = inner.y
    return el("a", [("href", url)], "".join(inner.parts))


def card_svg(aria: str, height: int, parts: list[str]) -> str:
    aria = clean_text(aria)
    frame = el(
        "rect",
        [
            ("x", 1),
            ("y", 1),
            ("width", CARD_WIDTH - 2),
            ("height", height - 2),
            ("rx", 4),
            ("fill", "#fff"),
            ("stroke", INK),
            ("stroke-width", 2),
        ],
    )
    body = el(
        "g",
        [("fill", INK), ("font-family", FONT_FAMILY), ("font-size", 12)],
        "".join(parts),
    )
    return el(
        "svg",
        [
            ("xmlns", "http://www.w3.org/2000/svg"),
            ("width", CARD_WIDTH),
            ("height", height),
            ("viewBox", f"0 0 {CARD_WIDTH} {height}"),
            ("role", "img"),
            ("aria-label", aria),
        ],
        el("title", [], xml_escape(aria)) + frame + body,
    )
