"""The estimate meters integrate to exactly what their models predict."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_runner.devices.base import MeterError
from bench_runner.devices.estimate import (
    DEFAULT_CPU_W_PER_CORE,
    DEFAULT_GPU_IDLE_FRACTION,
    CpuTimes,
    EstimatedCpuMeter,
    EstimatedGpuMeter,
    physical_core_count,
    read_proc_stat,
)
from schemas.results import component_energy_j
from tests.devices.conftest import FakeClock


class FakeStat:
    """Cumulative /proc/stat ticks that the test advances."""

    def __init__(self) -> None:
        self.busy = 1_000
        self.total = 10_000

    def __call__(self) -> CpuTimes:
        return CpuTimes(busy=self.busy, total=self.total)

    def run(self, ticks: int, utilisation: float) -> None:
        self.busy += round(ticks * utilisation)
        self.total += ticks


def test_gpu_estimate_energy_equals_the_model(clock: FakeClock, validate_component):
    meter = EstimatedGpuMeter(tdp_w=300.0, idle_w=60.0, utilisation=lambda t0, t1: 0.5, clock=clock)
    assert (meter.component, meter.method, meter.measured) == ("gpu", "estimate", False)
    meter.begin_window("w")
    clock.advance(10.0)
    component = meter.end_window("w")
    validate_component(component, "sampled_power")
    predicted_j = (60.0 + (300.0 - 60.0) * 0.5) * 10.0
    assert component_energy_j(component, 0, 0) == pytest.approx(predicted_j)
    assert not hasattr(meter, "interval_s")  # the label would report it as a sampling interval


def test_gpu_estimate_defaults_to_full_utilisation(clock: FakeClock):
    meter = EstimatedGpuMeter(tdp_w=400.0, clock=clock)
    assert meter.idle_w == pytest.approx(DEFAULT_GPU_IDLE_FRACTION * 400.0)
    meter.begin_window("w")
    clock.advance(3.0)
    assert component_energy_j(meter.end_window("w"), 0, 0) == pytest.approx(1200.0)
    assert meter.power_w() == pytest.approx(400.0)
    assert "conservative" in meter.model


def test_gpu_utilisation_sees_the_window(clock: FakeClock):
    seen: list[tuple[float, float]] = []

    def utilisation(t0: float, t1: float) -> float:
        seen.append((t0, t1))
        return 2.0  # clamped to 1

    meter = EstimatedGpuMeter(tdp_w=100.0, idle_w=0.0, utilisation=utilisation, clock=clock)
    t0 = clock()
    meter.begin_window("w")
    clock.advance(4.0)
    component = meter.end_window("w")
    assert seen == [(t0, t0 + 4.0)]
    assert component["samples"] == [[t0, 100.0], [t0 + 4.0, 100.0]]


def test_cpu_estimate_energy_equals_the_model(clock: FakeClock, validate_component):
    stat = FakeStat()
    meter = EstimatedCpuMeter(tdp_w=200.0, stat_reader=stat, clock=clock)
    meter.begin_window("w")
    stat.run(ticks=8_000, utilisation=0.25)
    clock.advance(10.0)
    component = meter.end_window("w")
    validate_component(component, "sampled_power")
    assert component_energy_j(component, 0, 0) == pytest.approx(200.0 * 0.25 * 10.0)


def test_cpu_default_tdp_per_core(clock: FakeClock):
    stat = FakeStat()
    meter = EstimatedCpuMeter(cores=8, stat_reader=stat, clock=clock)
    assert meter.tdp_w == pytest.approx(8 * DEFAULT_CPU_W_PER_CORE)
    assert "Green Algorithms" in meter.tdp_source
    meter.begin_window("w")
    stat.run(ticks=1_000, utilisation=1.0)
    clock.advance(5.0)
    assert component_energy_j(meter.end_window("w"), 0, 0) == pytest.approx(96.0 * 5.0)
    # live power: utilisation since the previous power_w() call (here: since construction)
    assert meter.power_w() == pytest.approx(96.0)
    stat.run(ticks=1_000, utilisation=0.5)
    assert meter.power_w() == pytest.approx(48.0)


def test_cpu_window_without_ticks_is_conservative(clock: FakeClock):
    meter = EstimatedCpuMeter(tdp_w=50.0, stat_reader=FakeStat(), clock=clock)
    meter.begin_window("w")
    clock.advance(0.001)
    assert component_energy_j(meter.end_window("w"), 0, 0) == pytest.approx(0.05)


def test_overlapping_cpu_windows(clock: FakeClock):
    stat = FakeStat()
    meter = EstimatedCpuMeter(tdp_w=100.0, stat_reader=stat, clock=clock)
    meter.begin_window("outer")
    stat.run(1_000, 1.0)
    clock.advance(1.0)
    meter.begin_window("inner")
    stat.run(1_000, 0.0)
    clock.advance(1.0)
    inner = meter.end_window("inner")
    outer = meter.end_window("outer")
    assert component_energy_j(inner, 0, 0) == pytest.approx(0.0)
    assert component_energy_j(outer, 0, 0) == pytest.approx(100.0 * 0.5 * 2.0)
    with pytest.raises(MeterError, match="never opened"):
        meter.end_window("outer")


def test_read_proc_stat(tmp_path: Path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\nintr 12345\n")
    times = read_proc_stat(stat)
    assert times == CpuTimes(busy=100 + 5 + 50 + 3 + 2 + 10, total=170 + 800 + 20)
    stat.write_text("intr 1\n")
    with pytest.raises(MeterError):
        read_proc_stat(stat)
    assert read_proc_stat().total > 0  # the real one


def test_physical_core_count(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    blocks = [
        f"processor\t: {i}\nphysical id\t: {i // 4}\ncore id\t\t: {i % 2}\n" for i in range(8)
    ]
    cpuinfo.write_text("\n".join(blocks))
    assert physical_core_count(cpuinfo) == 4  # 2 sockets x 2 cores, 2 threads each
    cpuinfo.write_text("processor\t: 0\nmodel name\t: ARM\n")
    assert physical_core_count(cpuinfo) is None
    assert physical_core_count(tmp_path / "missing") is None


def test_invalid_parameters():
    with pytest.raises(ValueError, match="tdp_w"):
        EstimatedGpuMeter(tdp_w=0)
    with pytest.raises(ValueError, match="idle_w"):
        EstimatedGpuMeter(tdp_w=100, idle_w=200)
    with pytest.raises(ValueError, match="tdp_w"):
        EstimatedCpuMeter(tdp_w=-1, stat_reader=FakeStat())
