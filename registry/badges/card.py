"""The label card: a nutrition-label style SVG of everything one label says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from registry.badges.message import Standing, Tier, format_figure, unit_words
from registry.badges.quality import (
    NOT_REPORTED,
    UNAVAILABLE,
    DeclaredFigure,
    QualityStatus,
    format_share,
    metric_name,
    short_reason,
)
from registry.badges.svg import (
    FONT_FAMILY,
    GRADE_COLORS,
    NAMED_COLORS,
    NEUTRAL_COLOR,
    WARNING_COLOR,
    el,
)
from registry.badges.text import (
    CHECK_MARK,
    CO2E,
    EN_DASH,
    LESS_EQUAL,
    MIDDLE_DOT,
    TIMES,
    clean_text,
    fit_text,
    text_width,
    xml_escape,
)


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
    peers: int | None = None
    """Current measured peers (``percentile`` is None below the minimum for one)."""
    created_at: datetime | None = None
    keyid: str = ""
    key_status: str | None = None
    standing: Standing = "ok"
    url: str = ""
    tier: Tier = "self-reported"
    verified_by: Sequence[str] = field(default_factory=tuple)
    """Display names of the auditors whose reproduced figures agree with the label's."""
    suite: str = "1"
    size_class_label: str = ""
    """The model-size class the label is graded in (``≤ 20B parameters``); "" where none."""
    ungraded_reason: str | None = None
    """``non-standard-workload``: a shortened suite-2 run, stored but not graded."""
    quality_status: QualityStatus = "not-reported"
    quality_metric: str | None = None
    quality_value: float | None = None
    """The MEASURED figure (0..1): the registry's recomputation of the per-item outcomes."""
    quality_items: int | None = None
    quality_reason: str | None = None
    """Why a suite-2 label has no figure (``quality.unavailable_reason``)."""
    declared: Sequence[DeclaredFigure] = field(default_factory=tuple)
    """Figures the vendor declared: shown flagged, never as the measured one."""
    energy_per_output_token_j: float | None = None
    meter_bias_relative: float | None = None
    """The hardware class's meter bias bound the grade adds to the CI bound (grading 1.1 and
    2); None where the grade is on the CI bound alone (grading 1)."""
    serving_concurrency: int | None = None
    """chat-serving: the headline level's concurrency, which the card's figures are of."""
    serving_engine: str | None = None
    """chat-serving: the engine measured (``vllm 0.11.0``)."""
    serving_engine_declared: bool = False
    """chat-serving: the vendor named the engine; the server did not report it."""


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
        self.parts.append(el("text", attrs, xml_escape(shown)))
        return text_width(shown) * scale

    def rule(self, thickness: float) -> None:
        self.parts.append(
            el(
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


def _percentile_text(percentile: float | None, peers: int | None = None) -> str:
    if percentile is None:
        if peers:
            return f"too few peers ({peers}) for a percentile"
        return "no current peers to compare with yet"
    of = f"{peers} current peers" if peers else "current peers"
    return f"better than {round(percentile)}% of {of}"


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
        lines = ["estimated power, no meter read:", "no grade"]
    elif facts.grade is None or facts.grade not in GRADE_COLORS:
        letter, color, headline = EN_DASH, NAMED_COLORS[NEUTRAL_COLOR], "Not graded"
        lines = (
            ["a shortened run (non-standard workload):", "stored and shown, not graded"]
            if facts.ungraded_reason == "non-standard-workload"
            else ["no grade band for this task and hardware"]
        )
    else:
        letter = facts.grade
        color = NAMED_COLORS[GRADE_COLORS[facts.grade]]
        headline = f"Grade {facts.grade}"
        if facts.size_class_label:  # graded within its model-size class
            headline += f" {MIDDLE_DOT} {facts.size_class_label}"
        lines = [
            _percentile_text(facts.percentile, facts.peers),
            _basis_text(facts),
            f"grading v{facts.graded_under or '?'}",
        ]
    card.parts.append(
        el(
            "rect",
            [("x", _PAD), ("y", top), ("width", 60), ("height", 60), ("rx", 6), ("fill", color)],
        )
    )
    card.text(_PAD + 30, letter, size=40, bold=True, anchor="middle", fill="#fff", y=top + 45)
    text_x = _PAD + 74
    room = CARD_WIDTH - _PAD - text_x
    headline_size = 13 if facts.size_class_label and facts.grade in GRADE_COLORS else 15
    card.text(text_x, headline, size=headline_size, bold=True, max_px=room, y=top + 16)
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
    if facts.energy_per_output_token_j is not None:
        card.y += 16
        per_token = f"{format_figure(facts.energy_per_output_token_j)} J/token"
        card.row("per output token", per_token, size=11)
    if facts.serving_concurrency is not None:
        for line in _serving_lines(facts):
            card.y += 16
            card.text(_PAD, line, size=11, fill=_MUTED)
    card.y += 8
    card.rule(1)

    _quality_section(card, facts)

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
    versions = f"suite {facts.suite} {MIDDLE_DOT} v{facts.methodology_version or '?'}"
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
            f"grade {facts.grade}, {_percentile_text(facts.percentile, facts.peers)}"
            if facts.measured and facts.grade
            else ("estimated, no grade" if not facts.measured else "not graded")
        )
        + f"; {format_figure(facts.energy_mean_wh)} Wh and "
        f"{format_figure(facts.co2e_mean_g)} g CO2e per {per}"
        + (f" {_serving_text(facts)}" if facts.serving_concurrency is not None else "")
        + "; "
        + f"quality {_quality_words(facts)}; "
        + ("verified" if facts.tier == "verified" else "self-reported")
    )
    return _card_svg(aria, height, card.parts)


def _basis_text(facts: CardFacts) -> str:
    """What the grade is given on: the CI bound, widened by the meter bias bound."""
    if facts.meter_bias_relative is None:
        return "on the upper bound of the 95% CI"
    return f"on the 95% CI bound + {facts.meter_bias_relative * 100:.3g}% meter bias"


def _serving_text(facts: CardFacts) -> str:
    """``at concurrency 8 · vllm 0.11.0`` (``(declared)`` when the vendor named the engine)."""
    text = f"at concurrency {facts.serving_concurrency}"
    if facts.serving_engine:
        text += f" {MIDDLE_DOT} {facts.serving_engine}"
        if facts.serving_engine_declared:
            text += " (declared)"
    return text


def _serving_lines(facts: CardFacts) -> list[str]:
    """``_serving_text`` on one line where it fits, else the level and the engine on two (a
    long engine name is then cut at the card's width, the level and "declared" never)."""
    text = _serving_text(facts)
    if text_width(clean_text(text)) * _REGULAR_SLACK <= CARD_WIDTH - 2 * _PAD:
        return [text]
    engine = clean_text(facts.serving_engine or "")
    named = "declared engine" if facts.serving_engine_declared else "engine"
    return [f"at concurrency {facts.serving_concurrency}", f"{named} {engine}"]


def _quality_words(facts: CardFacts) -> str:
    if facts.quality_status == "measured":
        return f"{metric_name(facts.quality_metric)} {format_share(facts.quality_value)}"
    return NOT_REPORTED if facts.quality_status == "not-reported" else UNAVAILABLE


def _quality_section(card: _Card, facts: CardFacts) -> None:
    """The measured quality figure with its metric and items, or why there is none, then the
    declared figures, each flagged "declared"."""
    card.y += 18
    if facts.quality_status == "measured":
        card.row(metric_name(facts.quality_metric), format_share(facts.quality_value), bold=True)
        card.y += 16
        items = f" on {facts.quality_items} items" if facts.quality_items else ""
        card.text(_PAD, f"quality measured in the same run{items}", size=11, fill=_MUTED)
    elif facts.quality_status == "unavailable":
        card.row("Quality", UNAVAILABLE, bold=True)
        card.y += 16
        card.text(_PAD, short_reason(facts.quality_reason), size=11, fill=_MUTED)
    else:
        card.row("Quality", NOT_REPORTED, bold=True)
    for figure in facts.declared[:2]:
        card.y += 16
        card.text(_PAD, f"declared: {figure.text}", size=11, fill=_MUTED)
    if len(facts.declared) > 2:
        card.y += 16
        card.text(_PAD, f"and {len(facts.declared) - 2} more declared", size=11, fill=_MUTED)
    card.y += 8
    card.rule(1)


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
    return el("a", [("href", url)], "".join(inner.parts))


def _card_svg(aria: str, height: int, parts: list[str]) -> str:
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
            ("stroke", _INK),
            ("stroke-width", 2),
        ],
    )
    body = el(
        "g",
        [("fill", _INK), ("font-family", FONT_FAMILY), ("font-size", 12)],
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
