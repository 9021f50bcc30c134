"""The vendor page's charts across revisions and time: per suite, task and phase, each model's
figure per revision on one hardware class (a line and a marker shape per model and hardware
class, newest revision last), with the change since the previous and since the first revision.
The tracks come from ``services.trends`` (:attr:`VendorSeries.groups`), the scales from
``series_chart.time_scale``; drawn as inline SVG by ``web/templates/charts.html``
(``vendor_series`` and ``vendor_changes``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from registry.pages.charts import Tick, polyline
from registry.pages.common import format_date, format_number, model_path, unit_name_for
from registry.pages.series_chart import Frame, signed_percent, time_scale
from registry.records import frozen_from
from registry.services.series import BenchmarkPoint, Change, Track
from registry.services.trends import TaskTracks, VendorSeries

MAX_CHARTED_TRACKS = 8
"""Lines per chart (a model on a hardware class): those with the most revisions, then by model
and hardware class; the page says how many more there are (the trend JSON has them all)."""

MARKER_RADIUS = 5.0


def _polygon(
    corners: int, inner: float = 0.0, turn: float = 0.0
) -> tuple[tuple[float, float], ...]:
    """Unit offsets of a regular polygon (a star when ``inner`` is given), first corner up."""
    steps = corners * 2 if inner else corners
    return tuple(
        (
            (inner if inner and i % 2 else 1.0) * math.sin(turn + 2 * math.pi * i / steps),
            -(inner if inner and i % 2 else 1.0) * math.cos(turn + 2 * math.pi * i / steps),
        )
        for i in range(steps)
    )


def _plus(turn: float) -> tuple[tuple[float, float], ...]:
    arm = 0.38
    outline = [
        (-arm, -1.0), (arm, -1.0), (arm, -arm), (1.0, -arm), (1.0, arm), (arm, arm),
        (arm, 1.0), (-arm, 1.0), (-arm, arm), (-1.0, arm), (-1.0, -arm), (-arm, -arm),
    ]  # fmt: skip
    cos, sin = math.cos(turn), math.sin(turn)
    return tuple((x * cos - y * sin, x * sin + y * cos) for x, y in outline)


SHAPES: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = (
    ("circle", ()),
    ("square", _polygon(4, turn=math.pi / 4)),
    ("triangle", _polygon(3)),
    ("diamond", _polygon(4)),
    ("triangle pointing down", _polygon(3, turn=math.pi)),
    ("plus", _plus(0.0)),
    ("cross", _plus(math.pi / 4)),
    ("star", _polygon(5, inner=0.45)),
)
"""One marker shape per line of a chart (:data:`MAX_CHARTED_TRACKS` of them): the lines differ
by shape, not by colour alone."""
SIZES = {"circle": 1.0, "square": 1.2, "triangle": 1.3, "triangle pointing down": 1.3}


def marker_path(shape: int, x: float, y: float, radius: float = MARKER_RADIUS) -> str:
    """The SVG path of marker ``shape`` (an index into :data:`SHAPES`) centred on ``x, y``: its
    first point, then the rest relative to it (:func:`_marker`, the same for every point)."""
    dx, dy, rest = _marker(shape % len(SHAPES), radius)
    return f"M{x + dx:.1f},{y + dy:.1f}{rest}"


@cache
def _marker(shape: int, radius: float) -> tuple[float, float, str]:
    """A marker at that radius, once: its first point's offset from the centre and the rest of
    its path in relative steps (``a`` arcs for the circle, ``l`` lines between corners). The
    corners' offsets from the first are rounded to 0.1 px before the steps are taken, so no
    rounding adds up along the outline: every corner is at most 0.1 px from where absolute
    coordinates would put it."""
    name, offsets = SHAPES[shape]
    r = radius * SIZES.get(name, 1.25)
    if not offsets:
        return (
            -r,
            0.0,
            f"a{r:.1f},{r:.1f} 0 1,0 {2 * r:.1f},0a{r:.1f},{r:.1f} 0 1,0 {-2 * r:.1f},0Z",
        )
    first_x, first_y = offsets[0][0] * r, offsets[0][1] * r
    tenths = [
        (round((dx * r - first_x) * 10), round((dy * r - first_y) * 10)) for dx, dy in offsets
    ]
    steps = "".join(
        f"l{_tenths(x1 - x0)},{_tenths(y1 - y0)}" for (x0, y0), (x1, y1) in pairwise(tenths)
    )
    return first_x, first_y, steps + "Z"


def _tenths(value: int) -> str:
    """A whole number of tenths as a decimal with one digit after the point (``-12`` ->
    ``-1.2``)."""
    return f"{value / 10:.1f}"


@dataclass(frozen=True)
class TrackPoint:
    x: float
    y: float
    path: str
    """The marker, centred on ``x, y``."""
    point: BenchmarkPoint
    when: str
    """``v2 (2026-03-01)``: the revision and its label's date, as the chart's texts print it."""
    figure: str
    """The energy per functional unit, formatted (``0.0521``)."""
    title: str
    """What the marker's tooltip says: ``vendor/model on hardware, v2 (2026-03-01): 0.0521
    Wh per 1,000 inferences`` (made here once: the template prints one value, not five)."""


@dataclass(frozen=True)
class TrackLine:
    """One model on one hardware class: its revisions' figures, oldest first."""

    model: str
    """``vendor/model``."""
    model_url: str
    hardware_class: str
    shape: str
    key_path: str
    """Its marker centred on 0, 0 (the legend's and the table's key)."""
    css: str
    points: list[TrackPoint]
    track: Track

    @property
    def polyline(self) -> str:
        return polyline(self.points)

    @property
    def described(self) -> str:
        """The points for the chart's description: ``v1 (2026-01-05) 0.0612, v2 (...) ...``
        (formatted here once: a Jinja loop with filters costs several times more)."""
        return ", ".join(f"{p.when} {p.figure}" for p in self.points)

    @property
    def first_to_latest(self) -> str:
        """``v1 (2026-01-05) 0.0612 → v4 (2026-09-21) 0.0521``: the first revision's figure and,
        with more than one, the latest's (made here: seven values a row in the template)."""
        first, latest = self.track.first, self.track.latest
        text = f"{first.revision} ({format_date(first.created_at)}) "
        text += format_number(first.energy_per_unit_wh)
        if len(self.track.revisions) > 1:
            text += f" → {latest.revision} ({format_date(latest.created_at)}) "
            text += format_number(latest.energy_per_unit_wh)
        return text

    @staticmethod
    def _change(found: Change | None) -> str:
        """``-12.3% (-0.052)``; an em dash with one revision."""
        if found is None:
            return "—"
        sign = "+" if found.absolute_wh > 0 else "-" if found.absolute_wh < 0 else ""
        return f"{signed_percent(found.relative)} ({sign}{format_number(abs(found.absolute_wh))})"

    @property
    def since_previous(self) -> str:
        return self._change(self.track.since_previous)

    @property
    def since_first(self) -> str:
        return self._change(self.track.since_first)


VENDOR_FRAME = Frame(width=720, height=260, left=64, right=24, top=16, bottom=48)


@dataclass(frozen=True)
class VendorChart(Frame):
    suite: str
    task: str
    phase: str
    unit: str
    lines: list[TrackLine]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    more: int
    """Lines not charted (fewer revisions)."""

    @property
    def points(self) -> int:
        return sum(len(line.points) for line in self.lines)


def _point(
    shape: int, x: float, y: float, point: BenchmarkPoint, line: str, unit: str
) -> TrackPoint:
    """A chart point; ``line``: its line's ``model on hardware``."""
    when = f"{point.revision} ({format_date(point.created_at)})"
    figure = format_number(point.energy_per_unit_wh)
    return frozen_from(
        TrackPoint,
        {
            "x": x,
            "y": y,
            "path": marker_path(shape, x, y),
            "point": point,
            "when": when,
            "figure": figure,
            "title": f"{line}, {when}: {figure} {unit}",
        },
    )


def vendor_chart(group: TaskTracks) -> VendorChart | None:
    """The chart of a group's tracks (at most :data:`MAX_CHARTED_TRACKS`); None without any.
    x: the date of each revision's label; y: energy per functional unit (mean)."""
    charted = group.tracks[:MAX_CHARTED_TRACKS]
    if not charted:
        return None
    points = [p for item in charted for p in item.track.revisions]
    scale = time_scale(
        [p.created_at for p in points],
        [p.energy_per_unit_wh for p in points],
        VENDOR_FRAME,
    )
    unit = unit_name_for(group.functional_unit)
    lines = []
    for index, item in enumerate(charted):
        vendor, _, name = item.model.partition("/")
        line = f"{item.model} on {item.track.hardware_class}"
        lines.append(
            TrackLine(
                model=item.model,
                model_url=model_path(vendor, name),
                hardware_class=item.track.hardware_class,
                shape=SHAPES[index][0],
                key_path=marker_path(index, 0.0, 0.0),
                css=f"series-{index % 4}",
                points=[
                    _point(
                        index, scale.x(p.created_at), scale.y(p.energy_per_unit_wh), p, line, unit
                    )
                    for p in item.track.revisions
                ],
                track=item.track,
            )
        )
    return VendorChart(
        **vars(VENDOR_FRAME),  # its fields (asdict would deep-copy each)
        suite=group.suite,
        task=group.task,
        phase=group.phase,
        unit=unit,
        lines=lines,
        x_ticks=scale.x_ticks,
        y_ticks=scale.y_ticks,
        more=len(group.tracks) - len(charted),
    )


def vendor_charts(found: VendorSeries) -> list[VendorChart]:
    """Per suite, task and phase with a comparable benchmark label: the vendor page's chart."""
    charts = (vendor_chart(group) for group in found.groups)
    return [chart for chart in charts if chart is not None]
