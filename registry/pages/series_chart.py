"""The model page's chart across revisions and time: one hardware class of a group, its benchmark
labels as points (revision under each) and its production periods as a line, with the benchmark
figure they are compared with and the drift limit above it. Computed here, drawn as inline SVG by
``web/templates/charts.html`` (``series``); the figures come from ``services.series``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from registry.pages.charts import Tick, nice_ticks, polyline
from registry.pages.common import format_number, format_tick, unit_name_for
from registry.services.series import (
    BenchmarkPoint,
    Change,
    DriftReference,
    ModelSeries,
    OperationalPoint,
    Track,
    drift_tolerance,
)

MAX_NAMED_REVISIONS = 12
"""More benchmark points than this: the revisions are not written under them (the table has
them)."""


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    when: datetime
    energy_wh: float
    text: str = ""
    current: bool = False
    flagged: bool = False
    """A production period above the drift limit (drawn as a triangle, not a dot)."""

    @property
    def triangle(self) -> str:
        return (
            f"{self.x:.1f},{self.y - 6:.1f} {self.x - 5.5:.1f},{self.y + 4:.1f} "
            f"{self.x + 5.5:.1f},{self.y + 4:.1f}"
        )


@dataclass(frozen=True)
class Frame:
    """A chart's size and the margins around its plot area, in px."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


SERIES_FRAME = Frame(width=720, height=260, left=64, right=88, top=16, bottom=48)
"""The model page's series chart: the right margin holds the names of the benchmark figure and
the drift limit."""


@dataclass(frozen=True)
class SeriesChart(Frame):
    benchmark: list[ChartPoint]
    production: list[ChartPoint]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    reference_y: float | None
    """The benchmark figure production is compared with (the current label's)."""
    limit_y: float | None
    """The drift limit: that figure x (1 + the tolerance)."""
    unit: str

    @property
    def benchmark_line(self) -> str:
        return polyline(self.benchmark)

    @property
    def production_line(self) -> str:
        return polyline(self.production)

    @property
    def flagged(self) -> list[ChartPoint]:
        return [p for p in self.production if p.flagged]


@dataclass(frozen=True)
class TimeScale:
    """A chart's scales over time and energy: x from the earliest to the latest instant across
    the plot (one instant: the middle), y from 0 up to a round tick above the highest figure.
    Shared by the model page's chart and the vendor page's (``pages.vendor_chart``)."""

    frame: Frame
    start: datetime
    end: datetime
    ticks: list[float]

    @cached_property
    def span_s(self) -> float:
        """Seconds from the start to the end (computed once: every point's ``x`` needs it)."""
        return (self.end - self.start).total_seconds()

    def x(self, when: datetime) -> float:
        frame = self.frame
        if self.span_s <= 0:
            return frame.left + frame.plot_width / 2
        return frame.left + frame.plot_width * (when - self.start).total_seconds() / self.span_s

    def y(self, value: float) -> float:
        return self.frame.top + self.frame.plot_height * (1 - value / self.ticks[-1])

    @property
    def x_ticks(self) -> list[Tick]:
        """Five dates from the first to the last (one when they are the same)."""
        span = self.end - self.start
        instants = (
            [self.start] if self.span_s <= 0 else [self.start + span * (i / 4) for i in range(5)]
        )
        return [Tick(value=0.0, pos=self.x(t), text=t.date().isoformat()) for t in instants]

    @property
    def y_ticks(self) -> list[Tick]:
        return [Tick(value=t, pos=self.y(t), text=format_tick(t)) for t in self.ticks]


def time_scale(
    times: Sequence[datetime],
    energies: Sequence[float],
    frame: Frame,
) -> TimeScale:
    """The scales of a chart of these instants (at least one) and figures in ``frame``."""
    highest = max(energies, default=0.0)
    return TimeScale(
        frame=frame,
        start=min(times),
        end=max(times),
        ticks=nice_ticks(highest * 1.1 if highest > 0 else 1.0),
    )


def series_chart(
    benchmark: Sequence[BenchmarkPoint],
    production: Sequence[OperationalPoint],
    reference: DriftReference | None,
    unit: str,
) -> SeriesChart | None:
    """The chart of one hardware class (points oldest first); None when there is nothing to
    draw. Time runs along x (a label's date; a period's end), energy per functional unit up."""
    if not benchmark and not production:
        return None
    energies = [p.energy_per_unit_wh for p in benchmark]
    energies += [p.energy_per_1k_requests_wh for p in production]
    if reference is not None:
        energies.append(reference.limit_wh)
    scale = time_scale(
        [p.created_at for p in benchmark] + [p.period_end for p in production],
        energies,
        SERIES_FRAME,
    )
    named = len(benchmark) <= MAX_NAMED_REVISIONS
    return SeriesChart(
        **vars(SERIES_FRAME),  # its fields (asdict would deep-copy each)
        benchmark=[
            ChartPoint(
                x=scale.x(p.created_at),
                y=scale.y(p.energy_per_unit_wh),
                when=p.created_at,
                energy_wh=p.energy_per_unit_wh,
                text=p.revision if named else "",
                current=p.current,
            )
            for p in benchmark
        ],
        production=[
            ChartPoint(
                x=scale.x(p.period_end),
                y=scale.y(p.energy_per_1k_requests_wh),
                when=p.period_end,
                energy_wh=p.energy_per_1k_requests_wh,
                flagged=p.drift_flagged,
            )
            for p in production
        ],
        x_ticks=scale.x_ticks,
        y_ticks=scale.y_ticks,
        reference_y=scale.y(reference.energy_per_unit_wh) if reference is not None else None,
        limit_y=scale.y(reference.limit_wh) if reference is not None else None,
        unit=unit,
    )


# -- what the model page shows of a hardware class ---------------------------------------------

RECENT_PERIODS = 48
"""Production periods listed in the table under the chart (the newest; the series JSON has
them all)."""


def signed_percent(relative: float | None) -> str:
    """``-12.3%``, ``+40.0%``; an em dash without a figure."""
    return "—" if relative is None else f"{relative * 100:+.1f}%"


def change_text(name: str, earlier: BenchmarkPoint, found: Change | None, unit: str) -> str:
    """``Since the previous revision (v1, 2026-03-01): -12.3% (-0.052 Wh per 1,000 requests).``"""
    if found is None:
        return ""
    absolute = found.absolute_wh
    sign = "+" if absolute > 0 else "-" if absolute < 0 else ""
    return (
        f"Since the {name} revision ({earlier.revision}, {earlier.created_at.date().isoformat()}):"
        f" {signed_percent(found.relative)} ({sign}{format_number(abs(absolute))} {unit})."
    )


@dataclass(frozen=True)
class TrackView:
    """One hardware class of a group across revisions and time: the chart, the changes since the
    previous and the first revision, and the production periods with their drift."""

    suite: str
    task: str
    phase: str
    hardware_class: str
    unit: str
    chart: SeriesChart | None
    track: Track | None
    production: list[OperationalPoint]
    """Oldest first."""
    reference: DriftReference | None
    tolerance: float = field(default_factory=drift_tolerance)

    @property
    def since_previous(self) -> str:
        if self.track is None or self.track.previous is None:
            return ""
        name = "previous" if len(self.track.revisions) > 2 else "previous (and first)"
        return change_text(name, self.track.previous, self.track.since_previous, self.unit)

    @property
    def since_first(self) -> str:
        """Empty unless there are three revisions or more (with two, the first is the
        previous)."""
        if self.track is None or len(self.track.revisions) < 3:
            return ""
        return change_text("first", self.track.first, self.track.since_first, self.unit)

    @staticmethod
    def percent(relative: float | None) -> str:
        return signed_percent(relative)

    @staticmethod
    def share(value: float | None) -> str:
        """A share of time (utilisation, idle) as a whole percent; an em dash without one."""
        return "—" if value is None else f"{value * 100:.0f}%"

    @property
    def latest_period(self) -> OperationalPoint | None:
        return self.production[-1] if self.production else None

    @property
    def drifted(self) -> list[OperationalPoint]:
        return [p for p in self.production if p.drift_flagged]

    @property
    def recent(self) -> list[OperationalPoint]:
        """The newest periods, newest first (the table under the chart)."""
        return self.production[::-1][:RECENT_PERIODS]


def track_views(found: ModelSeries) -> dict[tuple[str, str, str, str], TrackView]:
    """Per suite, task, phase and hardware class: what the model page shows."""
    views: dict[tuple[str, str, str, str], TrackView] = {}
    for group in found.groups:
        unit = unit_name_for(group.functional_unit)
        classes = {p.hardware_class for p in group.benchmark}
        classes |= {p.hardware_class for p in group.operational}
        for hardware_class in sorted(classes):
            benchmark = [p for p in group.benchmark if p.hardware_class == hardware_class]
            production = [p for p in group.operational if p.hardware_class == hardware_class]
            reference = group.references.get(hardware_class)
            views[(group.suite, group.task, group.phase, hardware_class)] = TrackView(
                suite=group.suite,
                task=group.task,
                phase=group.phase,
                hardware_class=hardware_class,
                unit=unit,
                chart=series_chart(benchmark, production, reference, unit),
                track=group.track(hardware_class),
                production=production,
                reference=reference,
            )
    return views
