"""Meter health against a fake NVML: sampler gaps and skipped ticks, transient errors retried
with a bound, frozen power readings, counter resets caught by polling (docs/meters.md)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pynvml
import pytest

from bench_runner.devices import health
from bench_runner.devices.base import MeterError
from bench_runner.devices.counter import NvmlCounterMeter
from bench_runner.devices.nvml import list_gpus
from bench_runner.devices.sampler import NvmlSamplingMeter
from schemas.results import component_energy_j
from tests.devices.conftest import FakeClock, FakeGpu, FakeNvml

UUID = "GPU-aaaaaaaa-0000-1111-2222-333333333333"


def failing(codes: list[int], then: Callable[[], int]) -> Callable[[], int]:
    """A reading that raises the real NVML errors ``codes`` in turn, then reads ``then``."""
    pending = list(codes)
    calls = {"n": 0}

    def read() -> int:
        calls["n"] += 1
        if pending:
            raise pynvml.NVMLError(pending.pop(0))
        return then()

    read.calls = calls  # type: ignore[attr-defined]
    return read


def sampler(fake: FakeNvml, clock: FakeClock, **gpu: object) -> NvmlSamplingMeter:
    fake.add(FakeGpu(uuid=UUID, energy_mj=None, **gpu))  # type: ignore[arg-type]
    return NvmlSamplingMeter(list_gpus()[0], clock=clock, start=False, retry_sleep=clock.sleep)


def sample_every(meter: NvmlSamplingMeter, clock: FakeClock, steps_s: list[float]) -> None:
    for step_s in steps_s:
        clock.advance(step_s)
        meter.sample()


# --- gaps and skipped ticks --------------------------------------------------------------------


def test_gap_stats_counts_the_ticks_a_gap_holds():
    assert health.gap_stats([0.0, 0.1, 0.2, 0.6, 0.7], 0.1) == (pytest.approx(0.4), 3)
    assert health.gap_stats([0.0, 0.14, 0.28], 0.1) == (pytest.approx(0.14), 0)  # jitter only
    assert health.gap_stats([0.0, 0.15], 0.1) == (pytest.approx(0.15), 1)
    assert health.gap_stats([5.0], 0.1) == (0.0, 0)
    assert health.gap_flag_s(0.1) == pytest.approx(0.5)
    assert health.gap_invalid_s(0.1) == 2.0
    assert health.gap_invalid_s(0.5) == 10.0


def test_window_records_its_largest_gap_and_skipped_ticks(
    fake_nvml: FakeNvml, clock: FakeClock, validate_component
):
    meter = sampler(fake_nvml, clock, power_mw=200_000)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 5 + [0.4] + [0.1] * 4)  # a 0.4 s gap: 3 ticks missed
    component = meter.end_window("w")
    validate_component(component, "sampled_power")
    assert component["largest_gap_s"] == pytest.approx(0.4)
    assert component["skipped_ticks"] == 3
    assert component_energy_j(component, 0, 0) == pytest.approx(200.0 * 1.3)
    assert meter.health_flags == []  # 0.4 s is within 5 intervals


def test_gap_over_five_intervals_flags_the_run(
    fake_nvml: FakeNvml, clock: FakeClock, caplog: pytest.LogCaptureFixture
):
    meter = sampler(fake_nvml, clock, power_mw=200_000)
    meter.begin_window("w")
    with caplog.at_level("WARNING"):
        sample_every(meter, clock, [0.1, 0.1, 0.8, 0.1])
        component = meter.end_window("w")
    assert component["largest_gap_s"] == pytest.approx(0.8)
    assert component["skipped_ticks"] == 7
    assert meter.health_flags == ["sampler-gap"]
    assert "flagged sampler-gap" in caplog.text


def test_gap_over_the_bound_invalidates_the_window(fake_nvml: FakeNvml, clock: FakeClock):
    meter = sampler(fake_nvml, clock, power_mw=200_000)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1, 2.5, 0.1])
    with pytest.raises(MeterError, match=r"2\.50 s without a power sample .* the run stops"):
        meter.end_window("w")


def test_stalled_thread_skips_ticks_and_says_so(fake_nvml: FakeNvml, clock: FakeClock):
    """The sampler's own thread: one wait overruns by 0.65 s (the process was descheduled); the
    thread skips the missed ticks instead of bursting, and the window counts them."""
    fake_nvml.add(FakeGpu(uuid=UUID, energy_mj=None, power_mw=150_000))
    gpu = list_gpus()[0]
    meter: NvmlSamplingMeter | None = None
    waits: list[float] = []
    result = {}

    def world_sleep(delay_s: float) -> None:
        assert meter is not None
        waits.append(delay_s)
        clock.advance(delay_s + (0.65 if len(waits) == 10 else 0.0))
        if len(waits) == 1:
            meter.begin_window("w")
        if len(waits) == 30:
            result["w"] = meter.end_window("w")
            meter.stop()

    meter = NvmlSamplingMeter(gpu, interval_s=0.1, clock=clock, sleep=world_sleep, start=False)
    meter.start()
    assert meter._thread is not None
    meter._thread.join(10)
    assert not meter._thread.is_alive()
    component = result["w"]
    assert component["largest_gap_s"] == pytest.approx(0.75)
    assert component["skipped_ticks"] == 7
    assert meter.health_flags == ["sampler-gap"]


# --- transient errors --------------------------------------------------------------------------


def test_transient_errors_are_retried_and_flagged(fake_nvml: FakeNvml, clock: FakeClock):
    codes = [pynvml.NVML_ERROR_UNKNOWN, pynvml.NVML_ERROR_TIMEOUT]
    read = failing(codes, lambda: 120_000)
    meter = sampler(fake_nvml, clock, power_mw=read)
    t_before = clock()
    _t, power_w = meter.sample()
    assert power_w == 120.0
    assert read.calls["n"] == 3  # type: ignore[attr-defined]
    assert clock() - t_before == pytest.approx(0.01 + 0.02)  # the backoff
    assert meter.transient_retries == 2
    assert meter.health_flags == ["transient-errors"]


def test_transient_errors_past_the_bound_fail(fake_nvml: FakeNvml, clock: FakeClock):
    read = failing([pynvml.NVML_ERROR_UNKNOWN] * 4, lambda: 120_000)
    meter = sampler(fake_nvml, clock, power_mw=read)
    with pytest.raises(MeterError, match="Unknown Error"):
        meter.sample()
    assert read.calls["n"] == 1 + len(health.RETRY_BACKOFF_S)  # type: ignore[attr-defined]


def test_lost_gpu_is_not_retried(fake_nvml: FakeNvml, clock: FakeClock):
    read = failing([pynvml.NVML_ERROR_GPU_IS_LOST], lambda: 120_000)
    meter = sampler(fake_nvml, clock, power_mw=read)
    with pytest.raises(MeterError, match="GPU is lost"):
        meter.sample()
    assert read.calls["n"] == 1  # type: ignore[attr-defined]
    assert meter.health_flags == []


def test_counter_retries_a_timeout(fake_nvml: FakeNvml, clock: FakeClock):
    gpu = fake_nvml.add(FakeGpu(uuid=UUID))
    meter = NvmlCounterMeter(
        list_gpus()[0], clock=clock, poll_interval_s=None, retry_sleep=clock.sleep
    )
    gpu.energy_mj = failing([pynvml.NVML_ERROR_TIMEOUT], lambda: 7)
    assert meter.read_energy_j() == pytest.approx(0.007)
    assert meter.health_flags == ["transient-errors"]


# --- frozen readings ---------------------------------------------------------------------------


def test_frozen_reading_under_load_invalidates_a_sampled_window(
    fake_nvml: FakeNvml, clock: FakeClock
):
    meter = sampler(fake_nvml, clock, power_mw=250_000, utilisation_pct=97)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 60)  # 6 s of exactly 250.000 W at 97 % utilisation
    assert meter.health_flags == ["frozen-reading"]
    with pytest.raises(MeterError, match=r"stayed at 250 W for \d\.\d s while GPU 0 utilisation"):
        meter.end_window("w")


def test_steady_idle_reading_is_not_frozen(fake_nvml: FakeNvml, clock: FakeClock):
    meter = sampler(fake_nvml, clock, power_mw=56_380, utilisation_pct=0)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 100)
    meter.end_window("w")
    assert meter.health_flags == []


def test_moving_reading_under_load_is_not_frozen(fake_nvml: FakeNvml, clock: FakeClock):
    """Under load NVML's reading moves every 100 ms or so (unchanged at most 0.29 s on the A100
    capture): nothing is flagged."""
    values = iter(range(250_000, 260_000, 10))
    meter = sampler(fake_nvml, clock, power_mw=lambda: next(values), utilisation_pct=100)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 100)
    meter.end_window("w")
    assert meter.health_flags == []


def test_frozen_reading_before_a_window_leaves_it_alone(fake_nvml: FakeNvml, clock: FakeClock):
    power = {"mw": 250_000}
    meter = sampler(fake_nvml, clock, power_mw=lambda: power["mw"], utilisation_pct=100)
    sample_every(meter, clock, [0.1] * 60)
    assert meter.health_flags == ["frozen-reading"]
    power["mw"] = 251_000
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 10)
    assert component_energy_j(meter.end_window("w"), 0, 0) == pytest.approx(251.0)


def test_without_utilisation_a_frozen_sampled_reading_goes_undetected(
    fake_nvml: FakeNvml, clock: FakeClock
):
    meter = sampler(fake_nvml, clock, power_mw=250_000, utilisation_pct=None)
    meter.begin_window("w")
    sample_every(meter, clock, [0.1] * 60)
    meter.end_window("w")
    assert meter.health_flags == []


def counter_meter(fake: FakeNvml, clock: FakeClock, **gpu: object) -> NvmlCounterMeter:
    fake.add(FakeGpu(uuid=UUID, **gpu))  # type: ignore[arg-type]
    return NvmlCounterMeter(
        list_gpus()[0], clock=clock, poll_interval_s=None, retry_sleep=clock.sleep
    )


def energy_at(clock: FakeClock, power_w: float, base_mj: int = 5_000_000) -> Callable[[], int]:
    t0 = clock()
    return lambda: base_mj + round((clock() - t0) * power_w * 1000)


def test_counter_meter_flags_a_frozen_reading_the_counter_contradicts(
    fake_nvml: FakeNvml, clock: FakeClock
):
    """No utilisation figure, but the counter advances at 300 W while the reading stays at
    250 W: flagged; the window's energy comes from the counter, so it stands."""
    meter = counter_meter(
        fake_nvml,
        clock,
        energy_mj=energy_at(clock, 300.0),
        power_mw=250_000,
        utilisation_pct=None,
    )
    meter.begin_window("w")
    for _ in range(4):
        clock.advance(2.0)
        meter.poll()
    component = meter.end_window("w")
    assert meter.health_flags == ["frozen-reading"]
    assert component["polls"] == 4
    assert component_energy_j(component, 0, 0) == pytest.approx(2400.0)


def test_counter_meter_flags_a_frozen_reading_under_load(fake_nvml: FakeNvml, clock: FakeClock):
    meter = counter_meter(
        fake_nvml, clock, energy_mj=energy_at(clock, 250.0), power_mw=250_000, utilisation_pct=99
    )
    for _ in range(4):
        clock.advance(2.0)
        meter.poll()
    assert meter.health_flags == ["frozen-reading"]


def test_counter_meter_steady_reading_that_agrees_is_fine(fake_nvml: FakeNvml, clock: FakeClock):
    meter = counter_meter(
        fake_nvml, clock, energy_mj=energy_at(clock, 60.0), power_mw=60_000, utilisation_pct=0
    )
    for _ in range(10):
        clock.advance(2.0)
        meter.poll()
    assert meter.health_flags == []


# --- counter resets ----------------------------------------------------------------------------


def test_counter_reset_is_caught_by_polling_and_apportioned(
    fake_nvml: FakeNvml, clock: FakeClock, validate_component, caplog: pytest.LogCaptureFixture
):
    """200 W for 10 s, polled every 2 s; the driver is reloaded 5 s in (the counter restarts at
    0). The 2 s between the polls around the reset get the power before it: 2,000 J in all."""
    state = {"base_mj": 9_000_000, "t0": clock()}

    def counter_mj() -> int:
        return state["base_mj"] + round((clock() - state["t0"]) * 200.0 * 1000)

    meter = counter_meter(fake_nvml, clock, energy_mj=counter_mj, power_mw=200_000)
    meter.begin_window("w")
    for second in range(1, 11):
        clock.advance(1.0)
        if second == 5:
            state["base_mj"], state["t0"] = 0, clock()
        if second in (2, 4, 6, 8):
            meter.poll()
    with caplog.at_level("WARNING"):
        component = meter.end_window("w")
    validate_component(component, "counter_reading")
    assert (component["polls"], component["resets"]) == (4, 1)
    assert component["counter_start_j"] == pytest.approx(9000.0)
    assert component["counter_end_j"] == pytest.approx(1000.0)  # 5 s at 200 W since the reset
    assert component["energy_j"] == pytest.approx(2000.0)
    assert component_energy_j(component, 0, 0) == pytest.approx(2000.0)
    assert meter.health_flags == ["counter-reset"]
    assert "was reset 1 time(s) in window 'w'" in caplog.text


def test_reset_counts_only_for_the_windows_open_at_the_time(fake_nvml: FakeNvml, clock: FakeClock):
    gpu_state = {"mj": 50_000}
    meter = counter_meter(fake_nvml, clock, energy_mj=lambda: gpu_state["mj"], power_mw=100_000)
    meter.begin_window("before")
    clock.advance(1.0)
    gpu_state["mj"] += 100_000
    before = meter.end_window("before")
    gpu_state["mj"] = 1_000  # reset while no window is open
    meter.poll()
    meter.begin_window("after")
    clock.advance(1.0)
    gpu_state["mj"] += 100_000
    after = meter.end_window("after")
    assert before["resets"] == after["resets"] == 0
    assert component_energy_j(after, 0, 0) == pytest.approx(100.0)
    assert meter.health_flags == []


def test_counter_poll_thread_polls_open_windows(fake_nvml: FakeNvml, closing):
    fake_nvml.add(FakeGpu(uuid=UUID, energy_mj=lambda: round(time.monotonic() * 100_000)))
    meter = closing(NvmlCounterMeter(list_gpus()[0], poll_interval_s=0.01))
    meter.begin_window("w")
    time.sleep(0.2)
    component = meter.end_window("w")
    assert component["polls"] >= 3
    assert component["resets"] == 0
    meter.close()
    assert meter._thread is not None
    assert not meter._thread.is_alive()


def test_counter_poll_interval_is_validated(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUID))
    with pytest.raises(ValueError, match="poll_interval_s"):
        NvmlCounterMeter(list_gpus()[0], poll_interval_s=0)
