"""Meter validation: NVML's error and lag against an external power meter, from two captures.

``carbonlabel meters validate`` reads a capture in the layout of the shared GPU power traces
(``docs/meters.md``, "Validating a card"): the reference meter's ``unix_s, power_w``, what NVML
reported (``unix_s, power_draw_w, ...``) and optionally the instants the load was switched
(``unix_s``). Both power traces go through the runner's own integration: ``clip_samples`` (the
sampler's clipping, window edges interpolated) and ``schemas.results.component_energy_j`` (the
registry's trapezoids). The report gives NVML's relative energy error over the capture and per
load segment, the same figure for NVML sampled at the runner's interval, NVML's lag (cross-
correlation and the delay of each load step), and the bias bound and settling delay these
suggest for the card's class.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_runner.devices.base import clip_samples
from schemas.results import component_energy_j

Rows = list[tuple[float, float]]

#: the columns read: the reference's power, NVML's power (``nvidia-smi --query-gpu=power.draw``
#: or ``nvmlDeviceGetPowerUsage``); ``power_w`` is accepted for NVML too
REFERENCE_COLUMNS = ("power_w",)
NVML_COLUMNS = ("power_draw_w", "power_w")
#: the grid the lag is measured on (s); the reference is averaged over each step, NVML's latest
#: reading held (it reports the sensor's latest value)
LAG_GRID_S = 0.005
#: steps smaller than this share of the capture's power range are not load steps
MIN_STEP_FRACTION = 0.2


class ValidateError(ValueError):
    """A capture that cannot be read or compared; the message is one line."""


# --- reading -------------------------------------------------------------------------------------


def _open_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except FileNotFoundError:
        raise ValidateError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValidateError(f"{path}: cannot read it: {err}") from None
    if header is None:
        raise ValidateError(f"{path}: empty file (expected a header line)")
    return [h.strip() for h in header], rows


def _number(path: Path, line: int, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidateError(f"{path} line {line}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValidateError(f"{path} line {line}: {what} {text!r} is not a finite number")
    return value


def read_power_csv(path: Path, columns: Sequence[str]) -> Rows:
    """``(unix_s, power_w)`` rows from a CSV with a ``unix_s`` column and the first of
    ``columns`` present; times must increase, powers be non-negative, and there be 2 rows."""
    header, raw = _open_rows(path)
    if "unix_s" not in header:
        raise ValidateError(f"{path}: no unix_s column (columns: {', '.join(header)})")
    column = next((c for c in columns if c in header), None)
    if column is None:
        raise ValidateError(
            f"{path}: no {' or '.join(columns)} column (columns: {', '.join(header)})"
        )
    i_t, i_p = header.index("unix_s"), header.index(column)
    rows: Rows = []
    for line, cells in enumerate(raw, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) <= max(i_t, i_p):
            raise ValidateError(f"{path} line {line}: {len(cells)} fields, expected more")
        t_s = _number(path, line, cells[i_t], "unix_s")
        power_w = _number(path, line, cells[i_p], column)
        if power_w < 0:
            raise ValidateError(f"{path} line {line}: {column} {power_w} is negative")
        if rows and t_s <= rows[-1][0]:
            raise ValidateError(f"{path} line {line}: unix_s {t_s} does not increase")
        rows.append((t_s, power_w))
    if len(rows) < 2:
        raise ValidateError(f"{path}: {len(rows)} data rows; at least 2 are needed")
    return rows


def read_marks_csv(path: Path) -> list[float]:
    """The ``unix_s`` instants the load was switched, increasing."""
    header, raw = _open_rows(path)
    if "unix_s" not in header:
        raise ValidateError(f"{path}: no unix_s column (columns: {', '.join(header)})")
    i_t = header.index("unix_s")
    marks: list[float] = []
    for line, cells in enumerate(raw, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        t_s = _number(path, line, cells[i_t] if len(cells) > i_t else "", "unix_s")
        if marks and t_s <= marks[-1]:
            raise ValidateError(f"{path} line {line}: unix_s {t_s} does not increase")
        marks.append(t_s)
    return marks


# --- integration ---------------------------------------------------------------------------------


def energy_j(rows: Rows, t_start_s: float, t_end_s: float) -> float:
    """The trace's energy over a window, through the runner's clipping and the registry's
    trapezoids (the same code a sampled-power label component goes through)."""
    component = {
        "name": "gpu",
        "method": "nvml-power-sampling",
        "samples": clip_samples(rows, t_start_s, t_end_s),
    }
    return component_energy_j(component, t_start_s, t_end_s)


def latest_w(rows: Rows, times: list[float], t_s: float) -> float:
    """The latest reading at or before ``t_s`` (the first one before the trace starts)."""
    return rows[max(bisect.bisect_right(times, t_s) - 1, 0)][1]


def sampled_energy_j(rows: Rows, t_start_s: float, t_end_s: float, interval_s: float) -> float:
    """The energy the sampler would have measured: NVML's latest reading taken every
    ``interval_s`` from the window's start, and at its end."""
    times = [t for t, _ in rows]
    ticks = [t_start_s + k * interval_s for k in range(int((t_end_s - t_start_s) / interval_s) + 1)]
    if ticks[-1] < t_end_s:
        ticks.append(t_end_s)
    samples = [(t, latest_w(rows, times, t)) for t in ticks]
    return energy_j(samples, t_start_s, t_end_s)


# --- report --------------------------------------------------------------------------------------


@dataclass
class Segment:
    """Between two load marks (or a mark and an end of the overlap)."""

    index: int
    kind: str  # "load", "idle" or "segment" (no clear load level)
    t_start_s: float  # from the overlap's start
    t_end_s: float
    reference_j: float
    nvml_j: float
    relative_error: float
    reference_mean_w: float
    nvml_mean_w: float


@dataclass
class Step:
    """One load step: when each trace crossed half of its own step, and NVML 90 % of it."""

    mark_s: float  # from the overlap's start
    direction: str  # "up" or "down"
    reference_w: tuple[float, float]  # level before, after
    nvml_w: tuple[float, float]
    delay_s: float  # NVML's 50 % crossing after the reference's
    settle_s: float  # NVML's 90 % crossing after the reference's 50 % crossing


@dataclass
class Report:
    reference_path: str
    nvml_path: str
    reference_rows: int
    nvml_rows: int
    reference_rate_hz: float
    nvml_rate_hz: float
    overlap_s: float
    reference_j: float
    nvml_j: float
    relative_error: float
    interval_s: float
    sampled_j: float
    sampled_relative_error: float
    xcorr_lag_s: float
    xcorr_r: float
    segments: list[Segment] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    suggested_bias: float = 0.0
    suggested_settle_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate_hz(rows: Rows) -> float:
    return (len(rows) - 1) / (rows[-1][0] - rows[0][0])


def _grids(reference: Rows, nvml: Rows, t0: float, t1: float) -> tuple[Any, Any, Any]:
    """Both traces on a common grid: the reference averaged over each step, NVML held."""
    import numpy as np

    edges = np.arange(t0, t1 + LAG_GRID_S / 2, LAG_GRID_S)
    ref_t = np.array([t for t, _ in reference])
    ref_p = np.array([p for _, p in reference])
    bins = np.searchsorted(edges, ref_t, side="right") - 1
    inside = (bins >= 0) & (bins < len(edges) - 1)
    sums = np.bincount(bins[inside], weights=ref_p[inside], minlength=len(edges) - 1)
    counts = np.bincount(bins[inside], minlength=len(edges) - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    interpolated = np.interp(centres, ref_t, ref_p)
    ref_grid = np.where(counts > 0, sums / np.maximum(counts, 1), interpolated)
    nv_t = np.array([t for t, _ in nvml])
    nv_p = np.array([p for _, p in nvml])
    nv_grid = nv_p[np.clip(np.searchsorted(nv_t, centres, side="right") - 1, 0, len(nv_p) - 1)]
    return centres, ref_grid, nv_grid


def cross_correlation_lag(
    reference: Rows, nvml: Rows, t0: float, t1: float, max_lag_s: float
) -> tuple[float, float]:
    """The shift of NVML's trace (s, positive: NVML later) that best matches the reference,
    and the correlation there."""
    import numpy as np

    _centres, ref, nv = _grids(reference, nvml, t0, t1)
    steps = round(max_lag_s / LAG_GRID_S)
    best = (0.0, -math.inf)
    for k in range(-steps, steps + 1):
        a, b = (ref[: len(ref) - k], nv[k:]) if k >= 0 else (ref[-k:], nv[: len(nv) + k])
        if len(a) < 10 or a.std() == 0 or b.std() == 0:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best[1]:
            best = (k * LAG_GRID_S, r)
    return best


def _between(levels: tuple[float, float], fraction: float) -> float:
    return levels[0] + fraction * (levels[1] - levels[0])


def _crossing(times: Any, values: Any, start: int, level: float, up: bool) -> float | None:
    for i in range(start, len(values)):
        if (values[i] >= level) if up else (values[i] <= level):
            return float(times[i])
    return None


def step_responses(
    reference: Rows, nvml: Rows, marks: list[float], t0: float, t1: float
) -> list[Step]:
    """The delay of NVML behind the reference at each load mark with a clear step."""
    import numpy as np

    centres, ref, nv = _grids(reference, nvml, t0, t1)
    span_w = float(ref.max() - ref.min())
    bounds = [t0, *marks, t1]
    steps: list[Step] = []
    for k, mark in enumerate(marks, start=1):
        before = (max(bounds[k - 1], mark - 1.0), mark - 0.1)
        after = (mark + 1.0, min(bounds[k + 1] - 0.1, mark + 2.0))
        if before[1] <= before[0] or after[1] <= after[0]:
            continue

        def level(series: Any, span: tuple[float, float]) -> float:
            chosen = (centres >= span[0]) & (centres <= span[1])
            return float(series[chosen].mean())

        ref_levels = (level(ref, before), level(ref, after))
        nv_levels = (level(nv, before), level(nv, after))
        if abs(ref_levels[1] - ref_levels[0]) < MIN_STEP_FRACTION * span_w:
            continue
        up = ref_levels[1] > ref_levels[0]
        start = int(np.searchsorted(centres, mark - 0.5))

        ref_50 = _crossing(centres, ref, start, _between(ref_levels, 0.5), up)
        nv_50 = _crossing(centres, nv, start, _between(nv_levels, 0.5), up)
        nv_90 = _crossing(centres, nv, start, _between(nv_levels, 0.9), up)
        if ref_50 is None or nv_50 is None or nv_90 is None:
            continue
        steps.append(
            Step(
                mark_s=mark - t0,
                direction="up" if up else "down",
                reference_w=ref_levels,
                nvml_w=nv_levels,
                delay_s=nv_50 - ref_50,
                settle_s=nv_90 - ref_50,
            )
        )
    return steps


def validate_capture(
    reference: Rows,
    nvml: Rows,
    marks: Sequence[float] = (),
    *,
    interval_s: float = 0.1,
    max_lag_s: float = 3.0,
    reference_path: str = "",
    nvml_path: str = "",
) -> Report:
    """Compare NVML with the reference meter over the captures' common span."""
    t0 = max(reference[0][0], nvml[0][0])
    t1 = min(reference[-1][0], nvml[-1][0])
    if t1 - t0 < 1.0:
        raise ValidateError(
            f"the captures overlap for {max(t1 - t0, 0.0):.3f} s; at least 1 s is needed "
            "(do both use Unix time, unix_s?)"
        )
    if not interval_s > 0:
        raise ValidateError(f"the sampling interval must be > 0 s, not {interval_s}")
    inside = [m for m in marks if t0 < m < t1]
    ref_j, nv_j = energy_j(reference, t0, t1), energy_j(nvml, t0, t1)
    sampled_j = sampled_energy_j(nvml, t0, t1, interval_s)
    lag_s, r = cross_correlation_lag(reference, nvml, t0, t1, max_lag_s)
    report = Report(
        reference_path=reference_path,
        nvml_path=nvml_path,
        reference_rows=len(reference),
        nvml_rows=len(nvml),
        reference_rate_hz=_rate_hz(reference),
        nvml_rate_hz=_rate_hz(nvml),
        overlap_s=t1 - t0,
        reference_j=ref_j,
        nvml_j=nv_j,
        relative_error=(nv_j - ref_j) / ref_j,
        interval_s=interval_s,
        sampled_j=sampled_j,
        sampled_relative_error=(sampled_j - ref_j) / ref_j,
        xcorr_lag_s=lag_s,
        xcorr_r=r,
    )
    bounds = [t0, *inside, t1]
    for index, (a, b) in enumerate(itertools.pairwise(bounds)):
        seg_ref, seg_nv = energy_j(reference, a, b), energy_j(nvml, a, b)
        report.segments.append(
            Segment(
                index=index,
                kind="segment",
                t_start_s=a - t0,
                t_end_s=b - t0,
                reference_j=seg_ref,
                nvml_j=seg_nv,
                relative_error=(seg_nv - seg_ref) / seg_ref if seg_ref > 0 else 0.0,
                reference_mean_w=seg_ref / (b - a),
                nvml_mean_w=seg_nv / (b - a),
            )
        )
    _classify(report.segments)
    report.steps = step_responses(reference, nvml, inside, t0, t1)
    errors = [abs(report.relative_error)]
    errors += [abs(s.relative_error) for s in report.segments if s.kind == "load"]
    report.suggested_bias = math.ceil(round(max(errors) * 100, 6)) / 100
    settles = [s.settle_s for s in report.steps] + [max(lag_s, 0.0)]
    report.suggested_settle_s = math.ceil(round(max(settles) * 10, 6)) / 10
    return report


def _classify(segments: list[Segment]) -> None:
    """Load and idle segments: above or below the middle of the segments' mean powers, when
    those differ by a clear step."""
    if len(segments) < 2:
        return
    means = [s.reference_mean_w for s in segments]
    low, high = min(means), max(means)
    if high - low < MIN_STEP_FRACTION * high:
        return
    for segment in segments:
        segment.kind = "load" if segment.reference_mean_w > (low + high) / 2 else "idle"
