"""Chart geometry: the energy history and power timeline charts of the model page, computed here
and drawn as inline SVG by ``web/templates/charts.html``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry.pages.common import format_tick
from registry.pages.rows import LabelRow
from schemas.results import component_energy_j

MAX_SERIES_POINTS = 1500
"""Power samples drawn per component and chart; longer series are thinned evenly."""


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float
    text: str


class XY(Protocol):
    @property
    def x(self) -> float: ...

    @property
    def y(self) -> float: ...


def polyline(points: Iterable[XY]) -> str:
    """An SVG ``points`` attribute through the points' (x, y)."""
    return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in points)


def nice_ticks(upper: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``upper``."""
    if upper <= 0 or not math.isfinite(upper):
        return [0.0, 1.0]
    raw = upper / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < upper - 1e-12 * upper:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


@dataclass
class HistoryPoint:
    x: float
    y: float
    y_low: float
    y_high: float
    text: str
    row: LabelRow


@dataclass
class HistoryChart:
    """Energy per functional unit of a model's labels in one peer group, oldest first."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[HistoryPoint]
    y_ticks: list[Tick]
    bands: list[Tick]
    unit: str

    @property
    def polyline(self) -> str:
        return polyline(self.points)


def history_chart(
    rows: Sequence[LabelRow], bands: Sequence[float] | None, scale: Sequence[str], unit: str
) -> HistoryChart:
    width, height, left, right, top, bottom = 640, 240, 64, 36, 16, 44
    ordered = sorted(rows, key=lambda r: (r.created_at, r.label_id))
    highest = max((r.energy_ci95_high_wh for r in ordered), default=1.0)
    ticks = nice_ticks(highest * 1.1)
    y_max = ticks[-1]

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / y_max)

    span = width - left - right
    points = []
    for index, row in enumerate(ordered):
        x = left + span * ((index + 0.5) / len(ordered))
        low = row.energy_ci95_low_wh if row.energy_ci95_low_wh is not None else row.energy_wh
        points.append(
            HistoryPoint(
                x=x,
                y=y_of(row.energy_wh),
                y_low=y_of(low),
                y_high=y_of(row.energy_ci95_high_wh),
                text=row.revision,
                row=row,
            )
        )
    band_ticks = [
        Tick(value=b, pos=y_of(b), text=f"{scale[i]}/{scale[i + 1]}")
        for i, b in enumerate(bands or [])
        if b <= y_max and i + 1 < len(scale)
    ]
    return HistoryChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=points,
        y_ticks=[Tick(value=t, pos=y_of(t), text=format_tick(t)) for t in ticks],
        bands=band_ticks,
        unit=unit,
    )


@dataclass
class Segment:
    """A drawn piece of one component's power: a flat line (counter) or a polyline (samples)."""

    points: str
    flat: bool


@dataclass
class Series:
    name: str
    device: str
    css: str
    method: str
    idle_power_w: float | None
    idle_y: float | None = None
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Window:
    name: str
    x0: float
    x1: float
    duration_s: float
    energy_j: float
    mean_power_w: float
    units: float | None
    concurrency: int | None = None
    """chat-serving: the level the window ran at."""


@dataclass
class TimelineChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    windows: list[Window]
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    idle_power_w: float | None


def _thin(samples: Sequence[Sequence[float]], limit: int) -> Sequence[Sequence[float]]:
    if len(samples) <= limit:
        return samples
    step = len(samples) / limit
    kept = [samples[int(i * step)] for i in range(limit)]
    kept[-1] = samples[-1]
    return kept


def _level(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def timeline_chart(predicate: Mapping[str, Any]) -> TimelineChart | None:
    """The measured power of every window (idle baseline, then each trial) of a label's traces.

    Counter readings give the window's mean power (a flat line); power samples are drawn as
    sampled. Each component's idle power is marked across the whole chart. None when the label
    has no usable traces.
    """
    try:
        traces = predicate["traces"]
        idle = traces["idle"]
        windows_raw: list[tuple[str, Mapping[str, Any]]] = [("idle", idle)] + [
            (f"trial {int(t.get('index', i)) + 1}", t) for i, t in enumerate(traces["trials"])
        ]
        origin = float(idle["t_start_s"])
        end = max(float(w["t_end_s"]) for _, w in windows_raw)
    except (KeyError, TypeError, ValueError):
        return None
    if end <= origin:
        return None
    width, height, left, right, top, bottom = 720, 260, 56, 16, 28, 40
    span = end - origin

    def x_of(t: float) -> float:
        return left + (width - left - right) * (t - origin) / span

    # Per window and component: (t0, t1, [(t, W)], mean power).
    drawn: list[tuple[str, Mapping[str, Any], list[tuple[float, float]], float]] = []
    windows: list[Window] = []
    peak = 0.0
    idle_power: dict[str, float] = {}
    for name, window in windows_raw:
        try:
            t0, t1 = float(window["t_start_s"]), float(window["t_end_s"])
            components = list(window["components"])
        except (KeyError, TypeError, ValueError):
            return None
        duration = t1 - t0
        total_j = 0.0
        for component in components:
            try:
                energy_j = component_energy_j(component, t0, t1)
            except (KeyError, TypeError, ValueError):
                return None
            total_j += energy_j
            mean_w = energy_j / duration if duration > 0 else 0.0
            if "samples" in component:
                points = [(float(t), float(p)) for t, p in component["samples"]]
            else:
                points = [(t0, mean_w), (t1, mean_w)]
            peak = max([peak, mean_w, *(p for _, p in points)])
            key = str(component.get("name", "?"))
            if component.get("node"):  # multi-node: one series per component and node
                key += f" · {component['node']}"
            if name == "idle":
                idle_power[key] = idle_power.get(key, 0.0) + mean_w
            drawn.append((key, component, points, mean_w))
        windows.append(
            Window(
                name=name,
                x0=x_of(t0),
                x1=x_of(t1),
                duration_s=duration,
                energy_j=total_j,
                mean_power_w=total_j / duration if duration > 0 else 0.0,
                units=float(window["units"]) if "units" in window else None,
                concurrency=_level(window.get("concurrency")),
            )
        )
    y_ticks_values = nice_ticks(peak * 1.1 if peak > 0 else 1.0)
    y_max = y_ticks_values[-1]

    def y_of(watts: float) -> float:
        return top + (height - top - bottom) * (1 - watts / y_max)

    series: dict[str, Series] = {}
    for key, component, points, _ in drawn:
        if key not in series:
            baseline = idle_power.get(key)
            series[key] = Series(
                name=key,
                device=str(component.get("device", "")),
                css=f"series-{len(series) % 4}",
                method=str(component.get("method", "")),
                idle_power_w=baseline,
                idle_y=y_of(baseline) if baseline is not None else None,
            )
        thinned = _thin(points, MAX_SERIES_POINTS)
        series[key].segments.append(
            Segment(
                points=" ".join(f"{x_of(t):.1f},{y_of(p):.1f}" for t, p in thinned),
                flat="samples" not in component,
            )
        )
    x_values = nice_ticks(span, count=7)
    return TimelineChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        windows=windows,
        series=list(series.values()),
        x_ticks=[
            Tick(value=v, pos=x_of(origin + v), text=format_tick(v)) for v in x_values if v <= span
        ],
        y_ticks=[Tick(value=v, pos=y_of(v), text=format_tick(v)) for v in y_ticks_values],
        idle_power_w=sum(idle_power.values()) if idle_power else None,
    )


# ------------------------------------------------------------------------ energy against quality


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices (in input order) of the points on the Pareto frontier of (energy, quality): those
    that no other point dominates, a point dominating another when it uses no more energy, scores
    no lower, and is strictly better on one of the two. Identical points are all on it.

    One sweep in energy order: within a group of equal energy only the best quality can be on
    the frontier, and only when it beats every point of less energy."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier: list[int] = []
    best = -math.inf
    start = 0
    while start < len(order):
        energy = points[order[start]][0]
        end = start
        while end < len(order) and points[order[end]][0] == energy:
            end += 1
        top = points[order[start]][1]
        if top > best:
            frontier.extend(i for i in order[start:end] if points[i][1] == top)
            best = top
        start = end
    return sorted(frontier)


@dataclass(frozen=True)
class ParetoInput:
    """One model's current label: its energy per functional unit and measured quality."""

    label_id: str
    vendor: str
    model: str
    energy_wh: float
    quality: float
    hardware_class: str = ""
    size_class_label: str = ""
    url: str = ""


@dataclass
class ParetoPoint:
    item: ParetoInput
    x: float
    y: float
    frontier: bool
    text: str
    text_x: float
    text_y: float
    anchor: str


@dataclass
class ParetoChart:
    """Energy per functional unit (x; log scale when the range is wide) against measured quality
    (y, 0-100%) of a group's models, with the frontier as a staircase: the best quality to be had
    for at most a given energy."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[ParetoPoint]
    frontier: list[ParetoPoint]
    """The frontier's points, least energy first."""
    staircase: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    log_scale: bool
    unit: str


LOG_SCALE_RATIO = 10.0
"""A wider range of energies than this (highest / lowest) is drawn on a log scale."""
MAX_POINT_LABELS = 24
"""More points than this: only the frontier's are named on the chart (the tables name all)."""


def _log_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """Domain (whole decades around ``low``..``high``) and ticks at 1, 2 and 5 per decade (only
    decades when the domain spans more than three)."""
    lo = math.floor(math.log10(low))
    hi = max(math.ceil(math.log10(high)), lo + 1)
    steps = (1.0,) if hi - lo > 3 else (1.0, 2.0, 5.0)
    ticks = [m * 10.0**e for e in range(lo, hi + 1) for m in steps if m * 10.0**e <= 10.0**hi]
    return 10.0**lo, 10.0**hi, ticks


def _place_labels(
    points: list[ParetoPoint], plot_left: float, plot_right: float, line: float = 13.0
) -> None:
    """Name each point beside it, moving a name down a line at a time (at most four) while it
    would overlap one already placed. The frontier's staircase leaves each of its points to the
    right and reaches it from below, so a frontier point is named on its left (above it when
    there is no room there); any other point on its right (left near the right edge)."""
    placed: list[tuple[float, float, float]] = []  # (x0, x1, baseline y)
    for point in sorted(points, key=lambda p: (p.y, p.x)):
        width = len(point.text) * 6.3
        y = point.y + 4
        if point.frontier and point.x - 9 - width >= plot_left:
            point.anchor, point.text_x = "end", point.x - 9
        elif point.frontier:
            point.anchor, point.text_x, y = "start", point.x + 4, point.y - 10
        elif point.x + 8 + width <= plot_right:
            point.anchor, point.text_x = "start", point.x + 8
        else:
            point.anchor, point.text_x = "end", point.x - 8
        x0 = point.text_x - width if point.anchor == "end" else point.text_x
        for _ in range(4):
            if not any(
                abs(y - py) < line and x0 < px1 and px0 < x0 + width for px0, px1, py in placed
            ):
                break
            y += line
        point.text_y = y
        placed.append((x0, x0 + width, y))


def pareto_chart(items: Sequence[ParetoInput], unit: str) -> ParetoChart | None:
    """The chart of a group's models (None when there is none to draw)."""
    if not items:
        return None
    width, height, left, right, top, bottom = 720, 380, 64, 24, 20, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    energies = [i.energy_wh for i in items]
    low, high = min(energies), max(energies)
    log_scale = low > 0 and high / low > LOG_SCALE_RATIO
    if log_scale:
        x_min, x_max, x_values = _log_ticks(low, high)

        def x_of(value: float) -> float:
            span = math.log10(x_max) - math.log10(x_min)
            return left + plot_w * (math.log10(value) - math.log10(x_min)) / span
    else:
        x_values = nice_ticks(high * 1.1 if high > 0 else 1.0)
        x_max = x_values[-1]

        def x_of(value: float) -> float:
            return left + plot_w * value / x_max

    def y_of(share: float) -> float:
        return top + plot_h * (1 - min(max(share, 0.0), 1.0))

    on_front = set(pareto_frontier([(i.energy_wh, i.quality) for i in items]))
    points = [
        ParetoPoint(
            item=item,
            x=x_of(item.energy_wh),
            y=y_of(item.quality),
            frontier=index in on_front,
            text=item.model if len(item.model) <= 22 else item.model[:21] + "…",
            text_x=0.0,
            text_y=0.0,
            anchor="start",
        )
        for index, item in enumerate(items)
    ]
    named = points if len(points) <= MAX_POINT_LABELS else [p for p in points if p.frontier]
    _place_labels(named, left, width - right)
    for point in points:
        if point not in named:
            point.text = ""
    frontier = sorted(
        (p for p in points if p.frontier), key=lambda p: (p.item.energy_wh, p.item.quality)
    )
    steps: list[str] = []
    for index, point in enumerate(frontier):
        if index:
            steps.append(f"{point.x:.1f},{frontier[index - 1].y:.1f}")
        steps.append(f"{point.x:.1f},{point.y:.1f}")
    return ParetoChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=points,
        frontier=frontier,
        staircase=" ".join(steps),
        x_ticks=[Tick(value=v, pos=x_of(v), text=format_tick(v)) for v in x_values],
        y_ticks=[
            Tick(value=v, pos=y_of(v), text=f"{v * 100:.0f}%") for v in (0, 0.25, 0.5, 0.75, 1)
        ],
        log_scale=log_scale,
        unit=unit,
    )
