"""Badges and label cards as SVG: pure rendering (no web framework, no database).

The flat badge (``flat``) reproduces the layout and text metrics of shields.io's ``badge-maker``
(the "flat" style): text widths (``text``) come from the same per-character table of 11 px
Verdana that badge-maker measures with (anafanafo's, shipped as
``registry/data/verdana_11px.json``), summed the same way, truncated to whole pixels and rounded
up to an odd number. ``message`` decides what a label's badge says; ``quality`` how a quality
figure reads; ``card`` draws the full label card; ``svg`` writes the elements and holds the
colours both use. ``tests/test_badges.py`` compares widths and whole SVGs with badge-maker.

Every text that reaches an SVG goes through :func:`clean_text` (control characters, lone
surrogates, non-characters and bidirectional controls removed, whitespace collapsed) and then is
XML-escaped, in element content and in attributes alike. Texts of unbounded length are cut to a
maximum width with an ellipsis. The SVGs load nothing and run nothing: no external reference, no
script, no style sheet.
"""

from __future__ import annotations

from registry.badges.card import CARD_WIDTH, CardFacts, render_card, render_unlabelled_card
from registry.badges.flat import MAX_TEXT_WIDTH_PX, FlatLayout, flat_layout, render_flat
from registry.badges.message import (
    BADGE_LABEL,
    METRICS,
    TIERS,
    VERIFIED_TEXT,
    BadgeFacts,
    BadgeText,
    Metric,
    Standing,
    Tier,
    badge_text,
    endpoint_json,
    format_figure,
    quality_suffix,
    render_badge,
    unit_suffix,
    unit_words,
)
from registry.badges.quality import (
    METRIC_NAMES,
    NOT_REPORTED,
    DeclaredFigure,
    QualityStatus,
    declared_figures,
    format_declared_value,
    format_share,
    metric_name,
    metric_short,
    quality_status,
    short_reason,
)
from registry.badges.svg import (
    FONT_FAMILY,
    GRADE_COLORS,
    NAMED_COLORS,
    NEUTRAL_COLOR,
    WARNING_COLOR,
    brightness,
    svg_color,
)
from registry.badges.text import (
    CHECK_MARK,
    CO2E,
    ELLIPSIS,
    EN_DASH,
    LESS_EQUAL,
    MAX_INPUT_CHARS,
    MIDDLE_DOT,
    TIMES,
    char_width,
    clean_text,
    fit_text,
    preferred_width,
    text_width,
    xml_escape,
)

__all__ = [
    "BADGE_LABEL",
    "CARD_WIDTH",
    "CHECK_MARK",
    "CO2E",
    "ELLIPSIS",
    "EN_DASH",
    "FONT_FAMILY",
    "GRADE_COLORS",
    "LESS_EQUAL",
    "MAX_INPUT_CHARS",
    "MAX_TEXT_WIDTH_PX",
    "METRICS",
    "METRIC_NAMES",
    "MIDDLE_DOT",
    "NAMED_COLORS",
    "NEUTRAL_COLOR",
    "NOT_REPORTED",
    "TIERS",
    "TIMES",
    "VERIFIED_TEXT",
    "WARNING_COLOR",
    "BadgeFacts",
    "BadgeText",
    "CardFacts",
    "DeclaredFigure",
    "FlatLayout",
    "Metric",
    "QualityStatus",
    "Standing",
    "Tier",
    "badge_text",
    "brightness",
    "char_width",
    "clean_text",
    "declared_figures",
    "endpoint_json",
    "fit_text",
    "flat_layout",
    "format_declared_value",
    "format_figure",
    "format_share",
    "metric_name",
    "metric_short",
    "preferred_width",
    "quality_status",
    "quality_suffix",
    "render_badge",
    "render_card",
    "render_flat",
    "render_unlabelled_card",
    "short_reason",
    "svg_color",
    "text_width",
    "unit_suffix",
    "unit_words",
    "xml_escape",
]
