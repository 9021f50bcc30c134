"""HTML pages: leaderboard, model, vendor, compare, methodology and the API reference.

One module per page (``leaderboard``, ``model``, ``vendor``, ``compare``, ``methodology``,
``api_docs``: ``/docs``), the label views they list (``rows``), what the model page adds for one
label (``facts``: chat-serving levels, nodes, meter bias, flags in plain words), the chart
geometry (``charts``; ``series_chart``: across revisions and in production) and what every page
shares (``common``: the template environment, filters, page headers and links).
``common`` is the only module that reads ``web/``: Jinja2 templates from ``web/templates``
(autoescaped; every text from the database goes through the template engine, never into markup
by hand); the app serves the assets of ``web/static``. A page route calls the same services as
its JSON twin; neither calls the other. Pages work without JavaScript: sorting and filtering are
links and GET forms, charts are inline SVG computed here; ``web/static/app.js`` only adds copy
buttons.

``router`` holds every page route (each page module adds its own when the package imports it).
"""

from __future__ import annotations

# The page modules: importing one adds its routes to ``router``.
from registry.pages import api_docs, compare, leaderboard, methodology, model, vendor
from registry.pages.charts import (
    MAX_SERIES_POINTS,
    HistoryChart,
    HistoryPoint,
    ParetoChart,
    ParetoInput,
    ParetoPoint,
    Segment,
    Series,
    Tick,
    TimelineChart,
    Window,
    history_chart,
    nice_ticks,
    pareto_chart,
    pareto_frontier,
    timeline_chart,
)
from registry.pages.common import (
    CONTENT_SECURITY_POLICY,
    PAGE_HEADERS,
    WEB_DIR,
    format_date,
    format_number,
    format_percent,
    format_tick,
    not_found,
    render,
    router,
)
from registry.pages.compare import CompareColumn, CompareGroup, compare_csv, compare_page
from registry.pages.leaderboard import DEFAULT_SORT, LEADERBOARD_MAX_LABELS, SORT_KEYS, phase_for
from registry.pages.methodology import methodology_page
from registry.pages.model import LabelSection, embed_snippets, model_page
from registry.pages.rows import VENDOR_PAGE_LABELS, LabelRow, label_row
from registry.pages.vendor import vendor_page

LEADERBOARD_PAGE_SIZE = 50
"""Rows on one leaderboard page; ``leaderboard`` reads it from here on every request."""


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_SORT",
    "LEADERBOARD_MAX_LABELS",
    "LEADERBOARD_PAGE_SIZE",
    "MAX_SERIES_POINTS",
    "PAGE_HEADERS",
    "SORT_KEYS",
    "VENDOR_PAGE_LABELS",
    "WEB_DIR",
    "CompareColumn",
    "CompareGroup",
    "HistoryChart",
    "HistoryPoint",
    "LabelRow",
    "LabelSection",
    "ParetoChart",
    "ParetoInput",
    "ParetoPoint",
    "Segment",
    "Series",
    "Tick",
    "TimelineChart",
    "Window",
    "api_docs",
    "compare",
    "compare_csv",
    "compare_page",
    "embed_snippets",
    "format_date",
    "format_number",
    "format_percent",
    "format_tick",
    "history_chart",
    "label_row",
    "leaderboard",
    "methodology",
    "methodology_page",
    "model",
    "model_page",
    "nice_ticks",
    "not_found",
    "pareto_chart",
    "pareto_frontier",
    "phase_for",
    "render",
    "router",
    "timeline_chart",
    "vendor",
    "vendor_page",
]
