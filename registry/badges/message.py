"""What a badge says: the label, message and colour of a label's flat badge, and the shields.io
endpoint document."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from registry.badges.flat import render_flat
from registry.badges.quality import format_share, metric_short, quality_status
from registry.badges.svg import GRADE_COLORS, NEUTRAL_COLOR, WARNING_COLOR
from registry.badges.text import CHECK_MARK, CO2E, MIDDLE_DOT, clean_text

Metric = Literal["grade", "energy", "co2e", "co2e-total"]
METRICS: tuple[Metric, ...] = ("grade", "energy", "co2e", "co2e-total")

BADGE_LABEL = "carbon label"
VERIFIED_TEXT = f"{CHECK_MARK} verified"
"""Appended to a verified label's badge message: ``B · 12.4 Wh/1k · ✓ verified``."""

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
    suite: str = "1"
    quality: float | None = None
    """The measured quality figure (0..1), None when the label has none."""
    quality_metric: str | None = None
    embodied_co2e_per_unit_g: float | None = None
    """The label's embodied CO2e (``carbon.embodied``), read only for ``metric=co2e-total``."""


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
    """``1k-inferences`` -> ``1k``; ``1k-requests`` -> ``1k requests``; ``step`` -> ``step``;
    anything else as it is."""
    return {"1k-inferences": "1k", "1k-requests": "1k requests", "step": "step"}.get(
        functional_unit, functional_unit
    )


def unit_words(functional_unit: str) -> str:
    return {
        "1k-inferences": "1k inferences",
        "1k-requests": "1k requests",
        "step": "training step",
    }.get(functional_unit, functional_unit)


def quality_suffix(facts: BadgeFacts) -> str:
    """What ``?quality=true`` appends: `` · 41.5% GSM8K``, `` · quality not reported`` (suite 1)
    or `` · quality unavailable`` (a suite-2 label that says why it has no figure)."""
    status = quality_status(facts.suite, facts.quality)
    if status == "measured":
        shown = f"{format_share(facts.quality)} {metric_short(facts.quality_metric)}"
    elif status == "not-reported":
        shown = "quality not reported"
    else:
        shown = "quality unavailable"
    return f" {MIDDLE_DOT} {shown}"


def badge_text(
    facts: BadgeFacts | None, metric: Metric = "grade", *, quality: bool = False
) -> BadgeText:
    """Label, message and colour of the badge of one label (None: the model has no label);
    ``quality``: append the measured quality figure (or why there is none)."""
    if facts is None:
        return BadgeText(BADGE_LABEL, "not labelled", NEUTRAL_COLOR)
    if facts.standing == "compromised":
        return BadgeText(BADGE_LABEL, "key compromised", WARNING_COLOR)
    per = unit_suffix(facts.functional_unit)
    energy = f"{format_figure(facts.energy_per_unit_wh)} Wh/{per}"
    figure = _figure(facts, metric, per, energy)
    suffix = f" {MIDDLE_DOT} {VERIFIED_TEXT}" if facts.tier == "verified" else ""
    if quality:
        suffix = quality_suffix(facts) + suffix
    if not facts.measured:
        return BadgeText(BADGE_LABEL, f"estimated {MIDDLE_DOT} {figure}{suffix}", NEUTRAL_COLOR)
    if facts.grade is None or facts.grade not in GRADE_COLORS:
        prefix = "not graded"
        return BadgeText(BADGE_LABEL, f"{prefix} {MIDDLE_DOT} {figure}{suffix}", NEUTRAL_COLOR)
    color = GRADE_COLORS[facts.grade]
    if metric == "grade":
        return BadgeText(BADGE_LABEL, f"{facts.grade} {MIDDLE_DOT} {figure}{suffix}", color)
    return BadgeText(BADGE_LABEL, f"{figure}{suffix}", color)


def _figure(facts: BadgeFacts, metric: Metric, per: str, energy: str) -> str:
    """The badge's figure: energy, operational CO2e, or operational plus embodied CO2e (a label
    without an embodied figure says its CO2e is operational only, never a smaller total)."""
    if metric == "co2e":
        return f"{format_figure(facts.co2e_per_unit_g)} g {CO2E}/{per}"
    if metric == "co2e-total":
        if facts.embodied_co2e_per_unit_g is None:
            return f"{format_figure(facts.co2e_per_unit_g)} g {CO2E}/{per} operational only"
        total = facts.co2e_per_unit_g + facts.embodied_co2e_per_unit_g
        return f"{format_figure(total)} g {CO2E}/{per} total"
    return energy


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
