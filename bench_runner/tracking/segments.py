"""Contiguous measurement segments of a long run, with bounded memory and the exact energy.

A run of hours or weeks (``carbonlabel.track``) or a deployment watched period after period
(``carbonlabel watch``) is cut into segments: windows of every meter, each opened before the
previous one is closed, so no energy falls between them. Segments lengthen as a run grows
(:func:`target_length_s`: the base length, doubled every :data:`SEGMENTS_PER_LEVEL` segments), so
a year-long run has a few hundred segments, not millions.

Power samples (meters that sample rather than count) are downsampled by **bucket means**: a
bucket of consecutive samples becomes two samples at its edges, both at the bucket's mean power
(its trapezoid integral over its length), where neighbouring buckets meet at the same time. The
trapezoid integral of the result, the energy, is exactly that of the original (up to float
rounding), and the schema's time order holds (equal times are allowed; their interval is 0 s).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench_runner.devices.base import Meter, TraceComponent
from schemas.window_energy import component_energy_j

#: segments at each length before the length doubles
SEGMENTS_PER_LEVEL = 16
#: per-window figures that are means over the window's time (merged weighted by length; the
#: others are counts, merged by adding them)
WEIGHTED_EXTRAS = frozenset({"utilisation"})
#: power samples kept per component trace while the run goes on (a segment is downsampled when
#: it closes); the label's own budget is :data:`LABEL_SAMPLE_BUDGET`
MAX_SAMPLES_PER_TRACE = 2_000
#: power samples in a whole label (all segments, all components), so a label stays far below the
#: registry's 1 MiB body limit
LABEL_SAMPLE_BUDGET = 20_000


def target_length_s(index: int, base_s: float) -> float:
    """The length segment ``index`` (0-based) closes at: ``base_s``, doubled every
    :data:`SEGMENTS_PER_LEVEL` segments."""
    return base_s * 2.0 ** (index // SEGMENTS_PER_LEVEL)


def trapezoid_j(samples: Sequence[Sequence[float]]) -> float:
    return math.fsum(
        (float(t1) - float(t0)) * (float(p0) + float(p1)) / 2.0
        for (t0, p0), (t1, p1) in itertools.pairwise(samples)
    )


def bucket_means(samples: Sequence[Sequence[float]], max_samples: int) -> list[list[float]]:
    """``samples`` ([t_s, power_w], in time order) as at most ``max_samples`` samples with the
    same trapezoid integral: buckets of consecutive intervals, each as two samples at its mean
    power. Returned unchanged when already short enough."""
    if max_samples < 4:
        raise ValueError("max_samples must be at least 4")
    if len(samples) <= max_samples:
        return [[float(t), float(p)] for t, p in samples]
    intervals = len(samples) - 1
    buckets = max_samples // 2
    out: list[list[float]] = []
    for b in range(buckets):
        lo = b * intervals // buckets
        hi = (b + 1) * intervals // buckets
        if hi <= lo:
            continue
        chunk = samples[lo : hi + 1]
        t0, t1 = float(chunk[0][0]), float(chunk[-1][0])
        # a zero-length bucket: any power integrates to 0 J over it
        mean_w = trapezoid_j(chunk) / (t1 - t0) if t1 > t0 else float(chunk[0][1])
        out.append([t0, mean_w])
        out.append([t1, mean_w])
    return out


def downsample(component: TraceComponent, max_samples: int) -> TraceComponent:
    """A component with its power samples bucket-averaged to ``max_samples`` (counters as they
    are)."""
    if "samples" not in component or len(component["samples"]) <= max_samples:
        return component
    return {**component, "samples": bucket_means(component["samples"], max_samples)}


def _key(component: TraceComponent) -> tuple[str, str, str]:
    return (
        str(component.get("name")),
        str(component.get("device", "")),
        str(component.get("node", "")),
    )


def merge_components(first: TraceComponent, second: TraceComponent) -> TraceComponent:
    """One meter's trace over two consecutive windows as one window's trace (the second window
    was opened before the first was closed, so nothing falls between them)."""
    if _key(first) != _key(second) or first.get("method") != second.get("method"):
        raise ValueError("can only merge one meter's traces")
    if "samples" in first:
        last_t = float(first["samples"][-1][0])
        tail = [s for s in second["samples"] if float(s[0]) > last_t]
        return {**first, "samples": [*first["samples"], *tail]}
    merged: TraceComponent = {
        **first,
        "counter_end_j": second["counter_end_j"],
    }
    for name in ("polls", "resets"):
        if name in first or name in second:
            merged[name] = int(first.get(name, 0)) + int(second.get(name, 0))
    energy_j = component_energy_j(first, 0.0, 0.0) + component_energy_j(second, 0.0, 0.0)
    span = first.get("counter_range_j")
    if merged.get("resets") or (span and energy_j >= float(span)):
        # the counter's two readings no longer tell the energy: state the sum
        merged["resets"] = max(int(merged.get("resets", 0)), 1)
        merged["energy_j"] = energy_j
    return merged


@dataclass
class Segment:
    """One closed window of every meter, with the work done in it."""

    t_start_s: float
    t_end_s: float
    components: list[TraceComponent]
    units: int = 0
    samples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def length_s(self) -> float:
        return self.t_end_s - self.t_start_s

    def merged_with(self, later: Segment) -> Segment:
        by_key = {_key(c): c for c in later.components}
        components = [merge_components(c, by_key[_key(c)]) for c in self.components]
        samples = None
        if self.samples is not None or later.samples is not None:
            samples = (self.samples or 0) + (later.samples or 0)
        extra = dict(self.extra)
        for name, value in later.extra.items():
            if name in WEIGHTED_EXTRAS and name in extra:  # a mean over time: weighted by length
                first_s, later_s = self.length_s, later.length_s
                total_s = first_s + later_s
                extra[name] = (
                    (extra[name] * first_s + value * later_s) / total_s if total_s > 0 else value
                )
            elif isinstance(value, int | float):
                extra[name] = extra.get(name, 0) + value
            else:
                extra[name] = value
        return Segment(
            self.t_start_s, later.t_end_s, components, self.units + later.units, samples, extra
        )

    def trace(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": index,
            "units": self.units,
            "t_start_s": self.t_start_s,
            "t_end_s": self.t_end_s,
            "components": self.components,
        }
        if self.samples is not None:
            out["samples"] = self.samples
        out.update(self.extra)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "t_start_s": self.t_start_s,
            "t_end_s": self.t_end_s,
            "components": self.components,
            "units": self.units,
            "samples": self.samples,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        return cls(
            float(data["t_start_s"]),
            float(data["t_end_s"]),
            list(data["components"]),
            int(data["units"]),
            None if data.get("samples") is None else int(data["samples"]),
            dict(data.get("extra") or {}),
        )


class Segmenter:
    """Keeps one window of every meter open at all times: :meth:`cut` opens the next window and
    then closes the current one, so consecutive segments meet."""

    def __init__(self, meters: Sequence[Meter], clock: Any) -> None:
        if not meters:
            raise ValueError("no meters: nothing would be measured")
        self.meters = list(meters)
        self.clock = clock
        self._n = 0
        self._key = self._open()
        self.t_start_s = self.clock()

    def _open(self) -> str:
        key = f"segment-{self._n}"
        self._n += 1
        for meter in self.meters:
            meter.begin_window(key)
        return key

    def cut(self, *, reopen: bool = True) -> tuple[float, float, list[TraceComponent]]:
        """Close the open window (opening the next first, unless ``reopen`` is false); returns
        its start, end and components, power samples downsampled to
        :data:`MAX_SAMPLES_PER_TRACE`."""
        current = self._key
        if reopen:
            self._key = self._open()
        t_end = self.clock()
        components = [
            downsample(meter.end_window(current), MAX_SAMPLES_PER_TRACE) for meter in self.meters
        ]
        t_start, self.t_start_s = self.t_start_s, t_end
        return t_start, t_end, components


def fit_to_budget(segments: list[Segment], budget: int = LABEL_SAMPLE_BUDGET) -> list[Segment]:
    """Segments whose power samples add up to at most about ``budget`` (each trace gets an even
    share, at least 4): bucket means, so the energy stays the same."""
    traces = sum(1 for s in segments for c in s.components if "samples" in c)
    total = sum(len(c["samples"]) for s in segments for c in s.components if "samples" in c)
    if not traces or total <= budget:
        return segments
    per_trace = max(4, (budget // traces) // 2 * 2)
    return [
        Segment(
            s.t_start_s,
            s.t_end_s,
            [downsample(c, per_trace) for c in s.components],
            s.units,
            s.samples,
            s.extra,
        )
        for s in segments
    ]
