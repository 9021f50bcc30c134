"""The label card: a nutrition-label style SVG of everything one label says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from registry.badges.card_canvas import (
    CARD_WIDTH,
    INK,
    MUTED,
    PAD,
    REGULAR_SLACK,
    VERIFIED_INK,
    Canvas,
    card_link,
    card_svg,
)
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
    text_width,
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
    method_url: str = ""
    """The methodology page (``{public_url}/methodology``): each section's title links to its
    part of it when the card is opened on its own."""
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
    #: the footprint beyond the operational CO2e (``services.footprint``'s statuses): grams and
    #: litres per functional unit, None when the label has no figure, with why
    dynamic_wh: float | None = None
    """Energy per unit above the idle power, and the idle power (the label's results)."""
    idle_power_w: float | None = None
    market_g: float | None = None
    """Market-based CO2e per unit and the hourly carbon-free score, when the label declares them."""
    cfe_score: float | None = None
    embodied_g: float | None = None
    embodied_status: str = "not-reported"
    water_l: float | None = None
    water_status: str = "not-reported"
    """chat-serving: the vendor named the engine; the server did not report it."""


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
    card = Canvas()
    per = unit_words(facts.functional_unit)
    model = f"{facts.vendor}/{facts.model}"
    card.y = 36
    card.text(PAD, "Carbon Label", size=22, bold=True)
    card.y += 20
    card.text(PAD, model, size=13, bold=True)
    card.y += 16
    card.text(PAD, f"by {facts.vendor_display_name}", size=11, fill=MUTED)
    card.y += 15
    card.text(
        PAD,
        f"revision {facts.revision} {MIDDLE_DOT} {facts.task} {MIDDLE_DOT} {facts.phase}",
        size=11,
        fill=MUTED,
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
            [("x", PAD), ("y", top), ("width", 60), ("height", 60), ("rx", 6), ("fill", color)],
        )
    )
    card.text(PAD + 30, letter, size=40, bold=True, anchor="middle", fill="#fff", y=top + 45)
    text_x = PAD + 74
    room = CARD_WIDTH - PAD - text_x
    headline_size = 13 if facts.size_class_label and facts.grade in GRADE_COLORS else 15
    card.text(text_x, headline, size=headline_size, bold=True, max_px=room, y=top + 16)
    for i, line in enumerate(lines):
        card.text(text_x, line, size=11, max_px=room, y=top + 33 + 14 * i)
    card.y = top + 70
    card.rule(4)

    # Energy
    card.y += 18
    card.row(
        f"Energy per {per}",
        f"{format_figure(facts.energy_mean_wh)} Wh",
        bold=True,
        href=_method(facts, "protocol"),
    )
    card.y += 16
    low = facts.energy_ci95_low_wh
    interval = (
        f"{format_figure(low)} {EN_DASH} {format_figure(facts.energy_ci95_high_wh)} Wh"
        if low is not None
        else f"{LESS_EQUAL} {format_figure(facts.energy_ci95_high_wh)} Wh"
    )
    card.row("95% confidence interval", interval, size=11)
    if facts.dynamic_wh is not None and facts.idle_power_w is not None:
        card.y += 16
        idle = format_figure(facts.idle_power_w)
        split = f"{format_figure(facts.dynamic_wh)} Wh {MIDDLE_DOT} idle {idle} W"
        card.row("dynamic (above idle)", split, size=11)
    if facts.energy_per_output_token_j is not None:
        card.y += 16
        per_token = f"{format_figure(facts.energy_per_output_token_j)} J/token"
        card.row("per output token", per_token, size=11)
    if facts.serving_concurrency is not None:
        for line in _serving_lines(facts):
            card.y += 16
            card.text(PAD, line, size=11, fill=MUTED)
    card.y += 8
    card.rule(1)

    _quality_section(card, facts)

    # Carbon
    card.y += 18
    card.row(
        f"{CO2E} per {per}",
        f"{format_figure(facts.co2e_mean_g)} g",
        bold=True,
        href=_method(facts, "carbon"),
    )
    card.y += 16
    carbon = [f"zone {facts.zone}"]
    if facts.pue is not None:
        carbon.append(f"PUE {format_figure(facts.pue)}")
    if facts.intensity_g_per_kwh is not None:
        basis = f" ({facts.carbon_basis})" if facts.carbon_basis else ""
        carbon.append(f"{format_figure(facts.intensity_g_per_kwh)} g {CO2E}/kWh{basis}")
    card.text(PAD, f" {MIDDLE_DOT} ".join(carbon), size=11, fill=MUTED)
    _footprint_rows(card, facts, per)
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
    card.text(PAD, components, size=11, fill=MUTED)
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
        fill = INK
    card.text(PAD, verified, size=11, fill=fill)
    card.y += 16
    card.text(
        PAD, _tier_text(facts), size=11, bold=facts.tier == "verified", fill=_tier_fill(facts)
    )
    if facts.url:
        card.y += 16
        link = card_link(card, facts.url)
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
    return card_svg(aria, height, card.parts)


_NOT_SHOWN = {
    "not-reported": "not reported",
    "unknown-hardware": "unknown hardware",
    "unknown-zone": "unknown zone",
}


def _method(facts: CardFacts, section: str) -> str:
    return f"{facts.method_url}#{section}" if facts.method_url else ""


def _figure_or_why(value: float | None, status: str, unit: str, scale: float = 1.0) -> str:
    if value is None:
        return _NOT_SHOWN.get(status, status)
    return f"{format_figure(value * scale)} {unit}"


def _footprint_rows(card: Canvas, facts: CardFacts, per: str) -> None:
    """Market-based CO2e when declared, then embodied CO2e, the total and water, each with its
    figure or why there is none."""
    if facts.market_g is not None and facts.cfe_score is not None:
        card.y += 16
        market = f"{format_figure(facts.market_g)} g {MIDDLE_DOT} CFE {facts.cfe_score:.0%}"
        card.row("market-based (declared)", market, size=11)
    card.y += 16
    embodied = _figure_or_why(facts.embodied_g, facts.embodied_status, "g")
    card.row(f"+ embodied {CO2E} (estimate)", embodied, size=11, href=_method(facts, "embodied"))
    if facts.embodied_g is not None:
        card.y += 16
        total = format_figure(facts.co2e_mean_g + facts.embodied_g)
        card.row(
            f"Total {CO2E} per {per}",
            f"{total} g",
            size=11,
            bold=True,
            href=_method(facts, "total"),
        )
    card.y += 16
    water = _figure_or_why(facts.water_l, facts.water_status, "mL", scale=1000.0)
    card.row(f"Water per {per}", water, size=11, href=_method(facts, "water"))


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
    if text_width(clean_text(text)) * REGULAR_SLACK <= CARD_WIDTH - 2 * PAD:
        return [text]
    engine = clean_text(facts.serving_engine or "")
    named = "declared engine" if facts.serving_engine_declared else "engine"
    return [f"at concurrency {facts.serving_concurrency}", f"{named} {engine}"]


def _quality_words(facts: CardFacts) -> str:
    if facts.quality_status == "measured":
        return f"{metric_name(facts.quality_metric)} {format_share(facts.quality_value)}"
    return NOT_REPORTED if facts.quality_status == "not-reported" else UNAVAILABLE


def _quality_section(card: Canvas, facts: CardFacts) -> None:
    """The measured quality figure with its metric and items, or why there is none, then the
    declared figures, each flagged "declared"."""
    card.y += 18
    if facts.quality_status == "measured":
        card.row(
            metric_name(facts.quality_metric),
            format_share(facts.quality_value),
            bold=True,
            href=_method(facts, "quality"),
        )
        card.y += 16
        items = f" on {facts.quality_items} items" if facts.quality_items else ""
        card.text(PAD, f"quality measured in the same run{items}", size=11, fill=MUTED)
    elif facts.quality_status == "unavailable":
        card.row("Quality", UNAVAILABLE, bold=True, href=_method(facts, "quality"))
        card.y += 16
        card.text(PAD, short_reason(facts.quality_reason), size=11, fill=MUTED)
    else:
        card.row("Quality", NOT_REPORTED, bold=True, href=_method(facts, "quality"))
    for figure in facts.declared[:2]:
        card.y += 16
        card.text(PAD, f"declared: {figure.text}", size=11, fill=MUTED)
    if len(facts.declared) > 2:
        card.y += 16
        card.text(PAD, f"and {len(facts.declared) - 2} more declared", size=11, fill=MUTED)
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
    return VERIFIED_INK if facts.tier == "verified" else MUTED


def render_unlabelled_card(vendor: str, model: str) -> str:
    """The card of a model the registry holds no current label for."""
    card = Canvas()
    card.y = 36
    card.text(PAD, "Carbon Label", size=22, bold=True)
    card.y += 20
    card.text(PAD, f"{vendor}/{model}", size=13, bold=True)
    card.y += 12
    card.rule(8)
    card.y += 24
    card.text(PAD, "not labelled", size=15, bold=True, fill=MUTED)
    card.y += 18
    card.text(PAD, "this registry holds no current label for this model", size=11, fill=MUTED)
    card.y += 16
    aria = f"Carbon label of {vendor}/{model}: not labelled"
    return card_svg(aria, math.ceil(card.y), card.parts)
