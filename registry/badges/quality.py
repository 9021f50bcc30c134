"""How a label's quality reads on badges, cards and pages: metric names, the figure as a share,
a short form of the reason a label has none, and declared figures.

The measured figure is the registry's recomputation of the label's per-item outcomes
(``labels.quality``); declared figures (``quality.declared``, e.g. from lm-evaluation-harness)
are shown beside it, always flagged "declared", never in its place. A label without a figure
says so in words ("not reported", "unavailable"), never as zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from registry.badges.text import clean_text

QualityStatus = Literal["measured", "unavailable", "not-reported"]

METRIC_NAMES = {
    "gsm8k-exact-match": "GSM8K exact match",
    "accuracy": "BANKING77 accuracy",
}
"""Display names of the measured metrics (``quality.measured.metric``)."""
METRIC_SHORT = {"gsm8k-exact-match": "GSM8K", "accuracy": "BANKING77"}
"""What a badge message says after the figure: ``41.5% GSM8K``."""

NOT_REPORTED = "not reported"
UNAVAILABLE = "unavailable"


def metric_name(metric: str | None) -> str:
    """``gsm8k-exact-match`` -> ``GSM8K exact match``; an unknown metric as it is."""
    if not metric:
        return "quality"
    return METRIC_NAMES.get(metric, metric)


def metric_short(metric: str | None) -> str:
    if not metric:
        return "quality"
    return METRIC_SHORT.get(metric, metric)


def format_share(value: float | None) -> str:
    """A 0..1 figure as a percentage with one decimal (``41.5%``); ``not reported`` for none."""
    if value is None or not math.isfinite(value):
        return NOT_REPORTED
    return f"{value * 100:.1f}%"


def short_reason(reason: str | None, limit: int = 80) -> str:
    """The first clause of an unavailable reason (up to a colon or semicolon), cut at ``limit``
    characters: ``generated images have no reference labels``."""
    text = clean_text(reason or "")
    head = re.split(r"[:;]\s", text, maxsplit=1)[0].rstrip(" .")
    if len(head) > limit:
        head = head[: limit - 1].rstrip() + "\u2026"
    return head or UNAVAILABLE


@dataclass(frozen=True)
class DeclaredFigure:
    """One figure the vendor declared (not measured, not checked by the registry)."""

    metric: str
    value: float
    task: str
    source: str
    filter: str | None = None
    n_samples: int | None = None

    @property
    def text(self) -> str:
        """``gsm8k exact_match (strict-match) 45.2%``."""
        name = f"{self.task} {self.metric}"
        if self.filter:
            name += f" ({self.filter})"
        return f"{name} {format_declared_value(self.value)}"

    @property
    def value_text(self) -> str:
        return format_declared_value(self.value)


def format_declared_value(value: float) -> str:
    """A declared figure: a share as a percentage, anything else as stated."""
    if not math.isfinite(value):
        return "?"
    if 0 <= value <= 1:
        return f"{value * 100:.1f}%"
    return f"{value:g}"


def declared_figures(quality: Mapping[str, Any] | None) -> tuple[DeclaredFigure, ...]:
    """The declared figures of a label's ``quality`` (the schema has checked their shape)."""
    figures = []
    for item in (quality or {}).get("declared") or []:
        if not isinstance(item, Mapping):
            continue
        value = item.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        n_samples = item.get("n_samples")
        figures.append(
            DeclaredFigure(
                metric=str(item.get("metric", "")),
                value=float(value),
                task=str(item.get("task", "")),
                source=str(item.get("source", "")),
                filter=str(item["filter"]) if item.get("filter") else None,
                n_samples=n_samples if isinstance(n_samples, int) else None,
            )
        )
    return tuple(figures)


def quality_status(suite: str, value: float | None) -> QualityStatus:
    """From the typed columns alone: a measured figure, or none because its suite-2+ label says
    why (the schema requires a figure or a reason there), or none because suite 1 has no quality."""
    if value is not None:
        return "measured"
    return "not-reported" if suite == "1" else "unavailable"
