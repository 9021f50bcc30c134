"""A vendor's trend (issue 14, item 3): per suite, task and phase, each of its models' change from
its first to its latest revision on one hardware class (``services.series`` tracks: comparable
labels in good standing, a revision's figure its newest label), and one sentence a buyer can quote
(:func:`trend_sentence`; wording rules in docs/methodology.md#series-and-trends).

The vendor's comparable benchmark labels are read once (typed columns only, the newest
:data:`MAX_VENDOR_LABELS`; the answer says when older ones were left out).
The same tracks, per group (:attr:`VendorSeries.groups`), are what the vendor page charts
(``pages.vendor_chart``); production periods are not read here (the model page charts them).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from registry.db import read_mappings
from registry.models import LabelKind, Standing, Vendor
from registry.services.briefs import PlainLabel
from registry.services.series import LABELS, BenchmarkPoint, Track, descending, tracks_of

MAX_VENDOR_LABELS = 20_000
"""Comparable benchmark labels read for a vendor's trend (the newest)."""
NO_TREND = "No trend yet: no model has two revisions measured on the same hardware class."


@dataclass(frozen=True)
class ModelTrack:
    """One model's revisions on one hardware class of a group."""

    model: str
    suite: str
    task: str
    phase: str
    track: Track


@dataclass(frozen=True)
class Trend:
    """A group's trend: over the models with two revisions or more on one hardware class."""

    suite: str
    task: str
    phase: str
    models: int
    median_relative_change: float | None
    start: datetime
    end: datetime

    @property
    def sentence(self) -> str:
        return trend_sentence(self)


@dataclass(frozen=True)
class TaskTracks:
    """A group's model tracks (every model with a comparable label, one revision or more): most
    revisions first, then by model and hardware class. What the vendor page charts."""

    suite: str
    task: str
    phase: str
    functional_unit: str
    tracks: list[ModelTrack]


@dataclass
class VendorSeries:
    vendor: str
    display_name: str
    tracks: list[ModelTrack]
    trends: list[Trend]
    truncated: bool

    @property
    def headline(self) -> Trend | None:
        """The trend of the group with the most models (ties: the newest suite, then task and
        phase in name order); None when no model has two revisions."""
        return self.trends[0] if self.trends else None

    @property
    def trend(self) -> str:
        headline = self.headline
        return headline.sentence if headline is not None else NO_TREND

    @property
    def groups(self) -> list[TaskTracks]:
        """:attr:`tracks` per suite, task and phase (the newest suite first, then task and phase
        in name order); no query."""
        by_group: dict[tuple[str, str, str], list[ModelTrack]] = {}
        for item in self.tracks:
            by_group.setdefault((item.suite, item.task, item.phase), []).append(item)
        return [
            TaskTracks(
                suite=suite,
                task=task,
                phase=phase,
                functional_unit=found[0].track.latest.functional_unit,
                tracks=sorted(
                    found,
                    key=lambda t: (-len(t.track.revisions), t.model, t.track.hardware_class),
                ),
            )
            for (suite, task, phase), found in sorted(
                by_group.items(),
                key=lambda kv: (-len(kv[0][0]), descending(kv[0][0]), kv[0][1], kv[0][2]),
            )
        ]


def trend_sentence(trend: Trend) -> str:
    """The one line a buyer can quote (docs/methodology.md#series-and-trends):

    ``Across 3 models with more than one revision, energy per functional unit fell by a median of
    18% from first to latest revision (text-generation inference, suite 2, same hardware class,
    2025-03 to 2026-11).`` With one model: ``For 1 model with more than one revision, energy per
    functional unit fell by 18% ...``. The percentage is the median relative change rounded to a
    whole percent; "fell" below 0, "rose" above, "did not change (to the nearest percent)" at 0.
    """
    percent = round(abs(trend.median_relative_change or 0.0) * 100)
    median = "a median of " if trend.models > 1 else ""
    if trend.median_relative_change is None or percent == 0:
        moved = "did not change (to the nearest percent)"
    elif trend.median_relative_change < 0:
        moved = f"fell by {median}{percent}%"
    else:
        moved = f"rose by {median}{percent}%"
    who = (
        f"Across {trend.models} models" if trend.models > 1 else f"For {trend.models} model"
    ) + " with more than one revision"
    return (
        f"{who}, energy per functional unit {moved} from first to latest revision "
        f"({trend.task} {trend.phase}, suite {trend.suite}, same hardware class, "
        f"{trend.start:%Y-%m} to {trend.end:%Y-%m})."
    )


def vendor_series(session: Session, vendor: Vendor) -> VendorSeries:
    """Each of the vendor's models' first and latest revision per group and hardware class
    (comparable labels in good standing only), and each group's trend, most models first."""
    found = read_mappings(session.connection(), _vendor_statement(), {"vendor_id": vendor.id})
    rows: list[Any] = [PlainLabel(row) for row in found]
    truncated = len(rows) > MAX_VENDOR_LABELS
    points: dict[tuple[str, str, str, str], list[BenchmarkPoint]] = {}
    for row in rows[:MAX_VENDOR_LABELS]:
        points.setdefault((row.model_name, row.suite, row.task, row.phase), []).append(
            # the select keeps measured labels on the standard workload only
            BenchmarkPoint.of(row, measured=True, standard_workload=True)
        )
    tracks = [
        ModelTrack(f"{vendor.slug}/{name}", suite, task, phase, track)
        for (name, suite, task, phase), found in sorted(points.items())
        for track in tracks_of(found)
    ]
    return VendorSeries(
        vendor=vendor.slug,
        display_name=vendor.display_name,
        tracks=tracks,
        trends=_trends(tracks),
        truncated=truncated,
    )


@cache
def _vendor_statement() -> Any:
    """:func:`vendor_series`' read (the vendor by ``vendor_id``), built once."""
    c = LABELS.c
    return (
        select(
            c.model_name,  # the label's own copy of its model's name (it never changes)
            c.id,
            c.revision,
            c.suite,
            c.task,
            c.phase,
            c.hardware_class,
            c.functional_unit,
            c.created_at,
            c.energy_per_unit_wh,
            c.energy_ci95_high_wh,
            c.grade,
            c.current,
        )
        .where(
            c.vendor_id == bindparam("vendor_id"),
            c.kind == LabelKind.benchmark,
            c.standing == Standing.ok,
            c.measured,
            c.standard_workload,
        )
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(MAX_VENDOR_LABELS + 1)
    )


def _trends(tracks: Sequence[ModelTrack]) -> list[Trend]:
    """Per group, over the models with two revisions or more on a hardware class: the median of
    each model's relative change from first to latest revision (a model on several hardware
    classes: the median of its classes' changes, so that it counts once)."""
    per_group: dict[tuple[str, str, str], dict[str, list[Track]]] = {}
    for item in tracks:
        if len(item.track.revisions) > 1:
            key = (item.suite, item.task, item.phase)
            per_group.setdefault(key, {}).setdefault(item.model, []).append(item.track)
    trends = []
    for (suite, task, phase), by_model in per_group.items():
        changes = []
        for model_tracks in by_model.values():
            changes_of = (t.since_first for t in model_tracks)  # each computed once
            relative = [c.relative for c in changes_of if c is not None and c.relative is not None]
            if relative:
                changes.append(statistics.median(relative))
        counted = [t for model_tracks in by_model.values() for t in model_tracks]
        trends.append(
            Trend(
                suite=suite,
                task=task,
                phase=phase,
                models=len(by_model),
                median_relative_change=statistics.median(changes) if changes else None,
                start=min(t.first.created_at for t in counted),
                end=max(t.latest.created_at for t in counted),
            )
        )
    trends.sort(key=lambda t: (-t.models, -len(t.suite), descending(t.suite), t.task, t.phase))
    return trends
