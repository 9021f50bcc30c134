"""NVML meters against a fake NVML (no GPU needed)."""

from __future__ import annotations

import os
import threading
import time

import pynvml
import pytest

from bench_runner.devices import nvml
from bench_runner.devices.base import (
    ForeignProcesses,
    MeterError,
    MigEnabled,
    NvmlUnavailable,
)
from bench_runner.devices.counter import NvmlCounterMeter
from bench_runner.devices.gpu import make_gpu_meters
from bench_runner.devices.nvml import (
    FALLBACK_COUNTER_NOT_ADVANCING,
    FALLBACK_COUNTER_NOT_SUPPORTED,
    GpuInfo,
    check_foreign_processes,
    cuda_visible_devices_warnings,
    foreign_processes,
    list_gpus,
    probe_counter,
    visible_gpu_indices,
)
from bench_runner.devices.sampler import NvmlSamplingMeter
from schemas.results import component_energy_j
from tests.devices.conftest import FakeClock, FakeGpu, FakeNvml

UUIDS = [
    "GPU-aaaaaaaa-0000-1111-2222-333333333333",
    "GPU-bbbbbbbb-0000-1111-2222-333333333333",
    "GPU-bbbbcccc-0000-1111-2222-333333333333",
]


def energy_at(clock: FakeClock, power_w: float, base_mj: int = 5_000_000):
    """A counter that integrates a constant power on the fake clock (mJ)."""
    t0 = clock()
    return lambda: base_mj + round((clock() - t0) * power_w * 1000)


def three_gpus(fake: FakeNvml) -> None:
    for uuid in UUIDS:
        fake.add(FakeGpu(uuid=uuid))


# --- initialisation ----------------------------------------------------------------------------


def test_missing_library_is_nvml_unavailable_with_a_clear_message(no_real_nvml: FakeNvml):
    with pytest.raises(NvmlUnavailable) as info:
        list_gpus()
    message = str(info.value)
    assert message.startswith("NVML is not available: no NVIDIA driver found")
    assert "NVMLError_LibraryNotFound" in message
    assert isinstance(info.value.__cause__, pynvml.NVMLError_LibraryNotFound)


def test_driver_not_loaded_message(no_real_nvml: FakeNvml):
    no_real_nvml.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(NvmlUnavailable, match="driver is not loaded"):
        list_gpus()


def test_init_runs_once_and_not_at_import(fake_nvml: FakeNvml):
    assert fake_nvml.init_calls == 0
    fake_nvml.add(FakeGpu(uuid=UUIDS[0]))
    list_gpus()
    list_gpus()
    assert fake_nvml.init_calls == 1


def test_real_error_classes_are_kept():
    err = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert isinstance(err, pynvml.NVMLError_NotSupported)
    assert nvml.pynvml is pynvml
    assert nvml.NVMLError is pynvml.NVMLError


def test_moved_names_stay_reachable_from_nvml():
    assert nvml.NvmlCounterMeter is NvmlCounterMeter
    assert nvml.NvmlSamplingMeter is NvmlSamplingMeter
    assert nvml.make_gpu_meters is make_gpu_meters
    with pytest.raises(AttributeError):
        _ = nvml.NoSuchName  # type: ignore[attr-defined]


# --- inventory ---------------------------------------------------------------------------------


def test_list_gpus_reports_name_driver_limit_and_counter(fake_nvml: FakeNvml):
    fake_nvml.driver_version = b"535.104.05"  # older bindings return bytes
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], name=b"NVIDIA H100 80GB HBM3", power_limit_mw=700_000))
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], name="Tesla P100", energy_mj=None, power_limit_mw=None))
    gpus = list_gpus()
    assert gpus == [
        GpuInfo(0, UUIDS[0], "NVIDIA H100 80GB HBM3", "535.104.05", 700.0, True, 0),
        GpuInfo(1, UUIDS[1], "Tesla P100", "535.104.05", None, False, 1),
    ]


def test_cuda_visible_devices_by_index(fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch):
    three_gpus(fake_nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    gpus = list_gpus()
    assert [(g.index, g.cuda_index) for g in gpus] == [(2, 0), (0, 1)]
    assert [g.uuid for g in gpus] == [UUIDS[2], UUIDS[0]]


def test_cuda_visible_devices_by_uuid_and_prefix(fake_nvml: FakeNvml):
    three_gpus(fake_nvml)
    gpus = list_gpus({"CUDA_VISIBLE_DEVICES": f"{UUIDS[1]},GPU-aaaa"})
    assert [g.index for g in gpus] == [1, 0]


def test_cuda_visible_devices_empty_means_no_gpu(fake_nvml: FakeNvml):
    three_gpus(fake_nvml)
    assert list_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_cuda_visible_devices_unset_means_all(fake_nvml: FakeNvml):
    three_gpus(fake_nvml)
    assert [g.index for g in list_gpus({})] == [0, 1, 2]


@pytest.mark.parametrize(
    ("value", "indices", "problem"),
    [
        ("0,7,1", [0], "there is no GPU 7"),
        ("1,abc,0", [1], "neither a GPU index nor a GPU- UUID"),
        ("GPU-bbbb,0", [], "matches 2 GPUs"),
        ("GPU-ffff", [], "no GPU has this UUID"),
        ("0,0,1", [0], "listed twice"),
        ("-1,0", [], "neither a GPU index"),
    ],
)
def test_invalid_entries_hide_the_rest_like_cuda(value: str, indices: list[int], problem: str):
    chosen, problems = visible_gpu_indices(value, UUIDS)
    assert chosen == indices
    assert len(problems) == 1
    assert problem in problems[0]
    assert "CUDA ignores it" in problems[0]


def test_invalid_entry_is_logged_and_reported(
    fake_nvml: FakeNvml, caplog: pytest.LogCaptureFixture
):
    three_gpus(fake_nvml)
    env = {"CUDA_VISIBLE_DEVICES": "1,9,2"}
    with caplog.at_level("WARNING"):
        assert [g.index for g in list_gpus(env)] == [1]
    assert "'9' is invalid" in caplog.text
    assert "the entries after it (2)" in caplog.text
    assert any("'9' is invalid" in w for w in cuda_visible_devices_warnings(env))


def test_index_order_warning_on_mixed_gpu_models(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], name="NVIDIA A100-SXM4-40GB"))
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], name="NVIDIA T4"))
    warnings = cuda_visible_devices_warnings({"CUDA_VISIBLE_DEVICES": "1"})
    assert any("CUDA_DEVICE_ORDER" in w for w in warnings)
    ordered = {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert cuda_visible_devices_warnings(ordered) == []


# --- MIG ---------------------------------------------------------------------------------------


def test_mig_enabled_is_refused(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], mig_mode=pynvml.NVML_DEVICE_MIG_DISABLE))
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE))
    with pytest.raises(MigEnabled) as info:
        list_gpus()
    assert "GPU 1" in str(info.value)
    assert "MIG mode" in str(info.value)
    assert "cannot be attributed" in str(info.value)


def test_mig_not_supported_means_no_mig(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], mig_mode=None))
    assert len(list_gpus()) == 1


def test_mig_disabled_gpu_hidden_by_cuda_visible_devices_is_not_checked(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0]))
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE))
    assert [g.index for g in list_gpus({"CUDA_VISIBLE_DEVICES": "0"})] == [0]


def test_mig_instance_in_cuda_visible_devices_is_refused(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0]))
    with pytest.raises(MigEnabled, match="MIG instance"):
        list_gpus({"CUDA_VISIBLE_DEVICES": "MIG-0a1b2c3d-0000-1111-2222-333333333333"})


# --- foreign processes -------------------------------------------------------------------------


def test_foreign_processes_exclude_ourselves(fake_nvml: FakeNvml):
    me = os.getpid()
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], compute_pids=[me, 4242], graphics_pids=[4343, 4242]))
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], compute_pids=[me], graphics_pids=None))
    gpus = list_gpus()
    assert foreign_processes(gpus[0]) == [4242, 4343]
    assert foreign_processes(1) == []
    assert foreign_processes(gpus[0], exclude_pids=[4343]) == [4242]
    with pytest.raises(ForeignProcesses, match="GPU 0: PID 4242, 4343"):
        check_foreign_processes(gpus)
    check_foreign_processes(gpus[1:])


# --- counter meter -----------------------------------------------------------------------------


def test_counter_meter_energy_from_counter_deltas(
    fake_nvml: FakeNvml, clock: FakeClock, validate_component, closing
):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=energy_at(clock, 250.0), power_mw=250_000))
    meters = closing(make_gpu_meters(clock=clock, sleep=clock.sleep))
    assert len(meters) == 1
    meter = meters[0]
    assert isinstance(meter, NvmlCounterMeter)
    assert meter.fallback_reason is None
    assert (meter.component, meter.method, meter.device) == ("gpu", "nvml-energy-counter", UUIDS[0])

    meter.begin_window("trial-0")
    clock.advance(10.0)
    component = meter.end_window("trial-0")
    validate_component(component, "counter_reading")
    assert set(component) == {
        "name",
        "method",
        "device",
        "counter_start_j",
        "counter_end_j",
        "polls",
        "resets",
    }
    assert (component["polls"], component["resets"]) == (0, 0)
    assert component["counter_end_j"] - component["counter_start_j"] == pytest.approx(2500.0)
    assert component_energy_j(component, 0.0, 10.0) == pytest.approx(2500.0)
    assert meter.power_w() == pytest.approx(250.0)


def test_counter_meter_overlapping_windows(fake_nvml: FakeNvml, clock: FakeClock):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=energy_at(clock, 100.0)))
    meter = NvmlCounterMeter(list_gpus()[0], poll_interval_s=None)
    meter.begin_window("outer")
    clock.advance(1.0)
    meter.begin_window("inner")
    clock.advance(2.0)
    inner = meter.end_window("inner")
    clock.advance(3.0)
    outer = meter.end_window("outer")
    assert component_energy_j(inner, 0, 0) == pytest.approx(200.0)
    assert component_energy_j(outer, 0, 0) == pytest.approx(600.0)
    with pytest.raises(MeterError, match="never opened"):
        meter.end_window("outer")


def test_counter_going_backwards_between_edges_is_a_reset(fake_nvml: FakeNvml, clock: FakeClock):
    """No poll in between: the reset's interval gets the larger of the counter after it and
    the power reading times the window (see test_health for polled resets)."""
    gpu = fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=9_000, power_mw=100_000))
    meter = NvmlCounterMeter(list_gpus()[0], clock=clock, poll_interval_s=None)
    meter.begin_window("w")
    clock.advance(2.0)
    gpu.energy_mj = 1_000
    component = meter.end_window("w")
    assert (component["resets"], component["polls"]) == (1, 0)
    assert component["energy_j"] == pytest.approx(200.0)  # 100 W x 2 s > the counter's 1 J
    assert component_energy_j(component, 0, 2) == pytest.approx(200.0)
    assert meter.health_flags == ["counter-reset"]


# --- probe and fallback ------------------------------------------------------------------------


def test_sampling_fallback_when_counter_not_supported(
    fake_nvml: FakeNvml, clock: FakeClock, validate_component, closing
):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], name="Tesla P100", energy_mj=None, power_mw=150_000))
    gpus = list_gpus()
    assert gpus[0].energy_counter is False
    meters = closing(make_gpu_meters(gpus, clock=clock, sleep=clock.sleep, start_sampling=False))
    meter = meters[0]
    assert isinstance(meter, NvmlSamplingMeter)
    assert meter.method == "nvml-power-sampling"
    assert meter.fallback_reason == FALLBACK_COUNTER_NOT_SUPPORTED
    assert "no NVML energy counter" in (meter.fallback_detail or "")
    assert meter.interval_s == 0.1

    meter.begin_window("w")
    for _ in range(20):
        clock.advance(0.1)
        meter.sample()
    clock.advance(0.05)
    component = meter.end_window("w")
    validate_component(component, "sampled_power")
    assert component_energy_j(component, 0, 0) == pytest.approx(150.0 * 2.05)


def test_probe_falls_back_when_counter_does_not_advance(
    fake_nvml: FakeNvml, clock: FakeClock, closing, caplog: pytest.LogCaptureFixture
):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=123_456))  # frozen counter
    fake_nvml.add(FakeGpu(uuid=UUIDS[1], energy_mj=energy_at(clock, 60.0)))
    gpus = list_gpus()
    assert probe_counter(gpus[0], wait_s=0.5, sleep=clock.sleep) is False
    assert probe_counter(gpus[1], wait_s=0.5, sleep=clock.sleep) is True

    t_before = clock()
    with caplog.at_level("WARNING"):
        meters = closing(
            make_gpu_meters(gpus, clock=clock, sleep=clock.sleep, start_sampling=False)
        )
    assert clock() - t_before == pytest.approx(0.5)  # one shared probe wait for all GPUs
    frozen, working = meters
    assert isinstance(frozen, NvmlSamplingMeter)
    assert frozen.fallback_reason == FALLBACK_COUNTER_NOT_ADVANCING
    assert "did not advance" in (frozen.fallback_detail or "")
    assert "did not advance" in caplog.text
    assert isinstance(working, NvmlCounterMeter)


def test_probe_with_unsupported_counter_is_false(fake_nvml: FakeNvml, clock: FakeClock):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=None))
    assert probe_counter(list_gpus()[0], sleep=clock.sleep) is False


def test_gpu_with_neither_counter_nor_power_is_an_error(fake_nvml: FakeNvml, clock: FakeClock):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=None, power_mw=None))
    with pytest.raises(MeterError, match="neither by its energy counter"):
        make_gpu_meters(clock=clock, sleep=clock.sleep)


# --- sampling meter ----------------------------------------------------------------------------


def test_sampling_interval_is_validated(fake_nvml: FakeNvml):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0]))
    gpu = list_gpus()[0]
    with pytest.raises(ValueError, match=r"slower than 0\.1 s"):
        NvmlSamplingMeter(gpu, interval_s=0.5, start=False)
    with pytest.raises(ValueError, match="> 0"):
        NvmlSamplingMeter(gpu, interval_s=0, start=False)
    slow = NvmlSamplingMeter(gpu, interval_s=0.5, allow_slow_interval=True, start=False)
    assert slow.interval_s == 0.5


def test_sampling_thread_runs_on_the_injected_clock_and_sleep(
    fake_nvml: FakeNvml, clock: FakeClock
):
    """The thread samples every interval on the injected clock; the fake sleep stops it after
    20 waits, so the run is deterministic."""
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], power_mw=lambda: round(clock() * 1000)))
    gpu = list_gpus()[0]
    delays: list[float] = []
    meter: NvmlSamplingMeter | None = None
    ready = threading.Event()

    def fake_sleep(delay_s: float) -> None:
        ready.wait(5)
        delays.append(delay_s)
        clock.advance(delay_s)
        if len(delays) == 20:
            assert meter is not None
            meter.stop()

    t0 = clock()
    meter = NvmlSamplingMeter(gpu, interval_s=0.05, clock=clock, sleep=fake_sleep)
    ready.set()
    assert meter._thread is not None
    meter._thread.join(5)  # the fake sleep stops the meter after 20 waits
    assert not meter._thread.is_alive()
    meter.close()
    assert delays == pytest.approx([0.05] * 20)
    # 20 samples (one before each wait), but with no window open only the latest is kept
    assert meter.buffered_samples == 1
    assert meter.power_w() == pytest.approx(t0 + 0.95, abs=1e-3)


def test_sampling_thread_with_real_clock(fake_nvml: FakeNvml, closing):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], energy_mj=None, power_mw=80_000))
    meter = closing(NvmlSamplingMeter(list_gpus()[0], interval_s=0.01))
    meter.begin_window("w")
    time.sleep(0.2)
    component = meter.end_window("w")
    samples = component["samples"]
    assert len(samples) >= 5
    duration_s = samples[-1][0] - samples[0][0]
    assert component_energy_j(component, 0, 0) == pytest.approx(80.0 * duration_s)
    meter.close()
    assert meter._thread is not None
    assert not meter._thread.is_alive()


def test_sampling_memory_is_bounded_by_the_oldest_open_window(
    fake_nvml: FakeNvml, clock: FakeClock
):
    fake_nvml.add(FakeGpu(uuid=UUIDS[0], power_mw=50_000))
    meter = NvmlSamplingMeter(list_gpus()[0], clock=clock, start=False)
    for _ in range(100):  # no window open: nothing but the latest is kept
        meter.sample()
        clock.advance(0.1)
    assert meter.buffered_samples == 1
    meter.begin_window("a")
    for _ in range(10):
        clock.advance(0.1)
        meter.sample()
    meter.begin_window("b")
    for _ in range(10):
        clock.advance(0.1)
        meter.sample()
    # the edge sample taken at a's start replaces everything before it
    assert meter.buffered_samples == 1 + 10 + 1 + 10
    clock.advance(0.05)
    a = meter.end_window("a")
    assert len(a["samples"]) == 1 + 10 + 1 + 10 + 1
    # "b" is still open: what is older than its start goes, the sample at its start stays
    assert meter.buffered_samples == 1 + 10 + 1
    clock.advance(0.05)
    b = meter.end_window("b")
    assert b["samples"][0][0] == a["samples"][11][0]
    assert meter.buffered_samples == 1
    assert component_energy_j(a, 0, 0) == pytest.approx(50.0 * 2.05)
    assert component_energy_j(b, 0, 0) == pytest.approx(50.0 * 1.1)


def test_sampling_failure_surfaces_at_end_window(fake_nvml: FakeNvml):
    gpu = fake_nvml.add(FakeGpu(uuid=UUIDS[0], power_mw=100_000))
    meter = NvmlSamplingMeter(list_gpus()[0], interval_s=0.01)
    meter.begin_window("w")

    def lost() -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    gpu.power_mw = lost
    meter.close()
    with pytest.raises(MeterError, match="GPU is lost"):
        meter.end_window("w")
