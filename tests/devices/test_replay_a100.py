"""Replay a real A100 power trace through a faked NVML and the sampling meter's own thread.

Data: tests/data/a100-step-load (Yang, Adámek & Armour, SC'24; MIT licence; see its README).
The fake ``nvmlDeviceGetPowerUsage`` returns the latest ``power_draw_w`` row at or before the
fake clock's time, as NVML returns the sensor's latest reading. The meter samples at 10 Hz in its
thread; the fake ``sleep`` moves the clock and opens/closes the window at the load marks.
"""

from __future__ import annotations

import bisect
import csv
import itertools
from pathlib import Path
from typing import Any

import pytest

from bench_runner.devices.base import clip_samples
from bench_runner.devices.nvml import list_gpus
from bench_runner.devices.sampler import NvmlSamplingMeter
from bench_runner.devices.validate import NVML_COLUMNS, REFERENCE_COLUMNS, read_power_csv
from bench_runner.devices.validate import energy_j as window_energy_j
from schemas.results import component_energy_j
from tests.devices.conftest import DATA_DIR, FakeClock, FakeGpu, FakeNvml

TRACE_DIR = DATA_DIR / "a100-step-load"
#: the full-rate meter capture (1.7 MB), where this checkout sits beside the shared data
SHARED_METER = (
    Path(__file__).resolve().parents[3]
    / "shared/data/gpu-power-traces/a100-step-load/meter_power.csv"
)
#: the external meter on every power rail, over the same window (from the full-rate
#: meter_power.csv; tests/data has its 5 ms bin means; the source README rounds it to 1,188 J)
METER_ENERGY_J = 1187.9
#: a direct trapezoid over every nvml_power.csv row with the window edges interpolated
FULL_RATE_ENERGY_J = 1121.9


def load_trace(directory: Path = TRACE_DIR) -> tuple[list[tuple[float, float]], list[float]]:
    with (directory / "nvml_power.csv").open(newline="") as f:
        rows = [(float(r["unix_s"]), float(r["power_draw_w"])) for r in csv.DictReader(f)]
    with (directory / "load_marks.csv").open(newline="") as f:
        marks = [float(r["unix_s"]) for r in csv.DictReader(f)]
    return rows, marks


def trapezoid_j(points: list[list[float]] | list[tuple[float, float]]) -> float:
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(points))


def interpolate_w(rows: list[tuple[float, float]], t_s: float) -> float:
    times = [t for t, _ in rows]
    i = bisect.bisect_right(times, t_s)
    (t0, p0), (t1, p1) = rows[i - 1], rows[i]
    return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)


def test_reference_figures_from_the_csv():
    """Pin the references: a direct trapezoid, independent of the meter and of clip_samples."""
    rows, marks = load_trace()
    t0, t1 = marks[0], marks[1]
    assert t1 - t0 == pytest.approx(5.970, abs=1e-3)
    inside = [(t, p) for t, p in rows if t0 < t < t1]
    full = trapezoid_j([(t0, interpolate_w(rows, t0)), *inside, (t1, interpolate_w(rows, t1))])
    assert full == pytest.approx(FULL_RATE_ENERGY_J, abs=0.05)
    assert trapezoid_j(clip_samples(rows, t0, t1)) == pytest.approx(full, rel=1e-12)
    # the source README's 1,120 J and 1,110 J come from the rows inside the window only, without
    # its edges (every row, and every 8th row, about 10 Hz)
    assert trapezoid_j(inside) == pytest.approx(1120.3, abs=0.05)
    assert trapezoid_j(inside[::8]) == pytest.approx(1109.9, abs=0.05)


def replay(
    fake_nvml: FakeNvml, t_begin_s: float, t_end_s: float, phase_s: float
) -> tuple[dict[str, Any], NvmlSamplingMeter]:
    """The sampling meter's own thread at 10 Hz over the NVML trace; the window opens at
    ``t_begin_s`` and closes at ``t_end_s`` on the trace's clock. Returns its component."""
    rows, _marks = load_trace()
    times = [t for t, _ in rows]
    clock = FakeClock(t_begin_s - 1.0 + phase_s)

    def power_mw() -> int:
        i = bisect.bisect_right(times, clock()) - 1
        return round(rows[max(i, 0)][1] * 1000)

    # busy from the load's start until NVML shows it off, as the capture's utilisation_pct says
    fake_nvml.add(
        FakeGpu(
            uuid="GPU-a100",
            name="NVIDIA A100",
            energy_mj=None,
            power_mw=power_mw,
            utilisation_pct=lambda: 100 if t_begin_s <= clock() < t_begin_s + 6.2 else 0,
        )
    )
    gpu = list_gpus()[0]
    result: dict[str, dict[str, Any]] = {}
    meter: NvmlSamplingMeter | None = None
    events = [(t_begin_s, "begin"), (t_end_s, "end")]

    def world_sleep(delay_s: float) -> None:
        """Move the clock; open and close the window when the clock passes the load marks."""
        assert meter is not None
        target_s = clock() + delay_s
        while events and events[0][0] <= target_s:
            t_event, action = events.pop(0)
            clock.t_s = t_event
            if action == "begin":
                meter.begin_window("load")
            else:
                result["load"] = meter.end_window("load")
                meter.stop()
        clock.t_s = target_s

    meter = NvmlSamplingMeter(gpu, interval_s=0.1, clock=clock, sleep=world_sleep, start=False)
    meter.start()
    assert meter._thread is not None
    meter._thread.join(10)  # the world stops the meter after the window closes
    assert not meter._thread.is_alive()
    meter.close()
    return result["load"], meter


@pytest.mark.parametrize("phase_s", [0.0, 0.03, 0.055, 0.06])
def test_sampling_meter_replays_the_a100_trace(
    fake_nvml: FakeNvml, phase_s: float, validate_component
):
    _rows, marks = load_trace()
    t0, t1 = marks[0], marks[1]
    component, meter = replay(fake_nvml, t0, t1, phase_s)
    validate_component(component, "sampled_power")
    samples = component["samples"]
    assert samples[0][0] == t0
    assert samples[-1][0] == t1
    steps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    assert max(steps) <= 0.1 + 1e-6  # 10 Hz, plus the edge samples
    assert 59 <= len(samples) <= 62
    # a healthy sampler: no gap over one interval, no tick skipped, nothing frozen or retried
    assert component["largest_gap_s"] <= 0.1 + 1e-6
    assert component["skipped_ticks"] == 0
    assert meter.health_flags == []

    energy_j = component_energy_j(component, t0, t1)
    assert energy_j == pytest.approx(FULL_RATE_ENERGY_J, rel=0.01)
    # NVML's sensor reads low against the external meter on this card: 5-8 % under
    shortfall = (METER_ENERGY_J - energy_j) / METER_ENERGY_J
    assert 0.05 <= shortfall <= 0.08


def test_copied_meter_trace_gives_the_reference_figure():
    """The 5 ms bin means in tests/data keep the meter's energy over the load window."""
    meter = read_power_csv(TRACE_DIR / "meter_power.csv", REFERENCE_COLUMNS)
    _rows, marks = load_trace()
    assert window_energy_j(meter, marks[0], marks[1]) == pytest.approx(METER_ENERGY_J, abs=0.05)


@pytest.mark.skipif(not SHARED_METER.exists(), reason="the shared capture is not on this machine")
def test_copied_meter_trace_matches_the_full_capture():
    full = read_power_csv(SHARED_METER, REFERENCE_COLUMNS)
    binned = read_power_csv(TRACE_DIR / "meter_power.csv", REFERENCE_COLUMNS)
    _rows, marks = load_trace()
    for t0, t1 in [(marks[0], marks[1]), (marks[1], marks[2]), (marks[0], marks[1] + 1.0)]:
        assert window_energy_j(binned, t0, t1) == pytest.approx(
            window_energy_j(full, t0, t1), rel=1e-4
        )


def test_settling_at_full_rate_leaves_the_steady_under_reading():
    """Every NVML row, no sampler: NVML is 5.56 % under the meter over the load window; with the
    end edge read 1 s after the load stops, 4.99 % under over that window: the lag behind the
    steps (about 0.05-0.09 s here) is inside it, NVML's steady under-reading is what is left."""
    meter_rows = read_power_csv(TRACE_DIR / "meter_power.csv", REFERENCE_COLUMNS)
    nvml_rows = read_power_csv(TRACE_DIR / "nvml_power.csv", NVML_COLUMNS)
    _rows, marks = load_trace()
    t0, t1 = marks[0], marks[1]

    def error(t_end_s: float) -> float:
        reference_j = window_energy_j(meter_rows, t0, t_end_s)
        return (window_energy_j(nvml_rows, t0, t_end_s) - reference_j) / reference_j

    assert error(t1) == pytest.approx(-0.0556, abs=0.0005)
    assert error(t1 + NvmlSamplingMeter.settle_s) == pytest.approx(-0.0499, abs=0.0005)


@pytest.mark.parametrize("phase_s", [0.0, 0.03, 0.05, 0.06, 0.09])
def test_settling_brings_the_step_closer_to_the_external_meter(fake_nvml: FakeNvml, phase_s: float):
    """The protocol reads a window's end edge settle_s (NVML: 1 s) after its last step. Replayed
    through the sampler at 10 Hz, that moves the window's energy closer to the external meter's
    over the same window at every phase of the samples against the step."""
    meter_rows = read_power_csv(TRACE_DIR / "meter_power.csv", REFERENCE_COLUMNS)
    _rows, marks = load_trace()
    t0, t1 = marks[0], marks[1]
    settle_s = NvmlSamplingMeter.settle_s
    assert settle_s == 1.0

    errors = {}
    for label, t_end in (("without", t1), ("with", t1 + settle_s)):
        fake_nvml.gpus.clear()
        component, _meter = replay(fake_nvml, t0, t_end, phase_s)
        nvml_j = component_energy_j(component, t0, t_end)
        reference_j = window_energy_j(meter_rows, t0, t_end)
        errors[label] = (nvml_j - reference_j) / reference_j
    # without settling -5.4 to -6.2 %, with it -4.8 to -5.9 % (by the samples' phase); the
    # improvement is 0.2 to 0.8 points
    assert -0.062 <= errors["without"] <= -0.053
    assert -0.059 <= errors["with"] <= -0.047
    assert abs(errors["with"]) <= abs(errors["without"]) - 0.002
