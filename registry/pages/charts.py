"""Chart geometry: the energy history and power timeline charts of the model page, computed here
and drawn as inline SVG by ``web/templates/charts.html``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


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
