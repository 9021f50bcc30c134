"""discover_meters: measured meters when there are any, a loud estimate only when there are none."""

from __future__ import annotations

from pathlib import Path

import pynvml
import pytest

from bench_runner.devices.base import ForeignProcesses, MeterError, MigEnabled
from bench_runner.devices.counter import NvmlCounterMeter
from bench_runner.devices.discover import discover_meters
from bench_runner.devices.estimate import EstimatedCpuMeter, EstimatedGpuMeter
from bench_runner.devices.rapl import RaplMeter
from bench_runner.devices.sampler import NvmlSamplingMeter
from tests.devices.conftest import FakeClock, FakeGpu, FakeNvml


def make_powercap(tmp_path: Path, *, dram: bool = True) -> Path:
    root = tmp_path / "powercap"
    package = root / "intel-rapl:0"
    zones = [(package, "package-0")]
    if dram:
        zones.append((package / "intel-rapl:0:1", "dram"))
    for zone, name in zones:
        zone.mkdir(parents=True)
        (zone / "name").write_text(name)
        (zone / "energy_uj").write_text("1000")
        (zone / "max_energy_range_uj").write_text("262143328850")
    return root


@pytest.fixture
def no_powercap(tmp_path: Path) -> Path:
    return tmp_path / "no-powercap"


def test_estimate_only_when_nothing_is_measurable(no_powercap: Path, clock: FakeClock):
    meters = discover_meters(powercap_root=no_powercap, gpu_tdp_w=[300.0, 300.0], clock=clock)
    assert meters.estimated is True
    assert meters.flags == ["estimated"]
    assert [type(m) for m in meters] == [EstimatedCpuMeter, EstimatedGpuMeter, EstimatedGpuMeter]
    assert all(m.method == "estimate" for m in meters)
    assert len(meters.reasons) == 2
    nvml_reason, rapl_reason = meters.reasons
    assert nvml_reason.startswith("GPU (NVML): NVML is not available: no NVIDIA driver found")
    assert rapl_reason.startswith("CPU/DRAM (RAPL): no RAPL domains")
    assert any("ESTIMATE, not a measurement" in n for n in meters.notes)


def test_estimate_without_gpu_tdp_covers_the_cpu_and_says_so(no_powercap: Path):
    meters = discover_meters(powercap_root=no_powercap, cpu_tdp_w=120.0)
    assert [m.component for m in meters] == ["cpu"]
    assert isinstance(meters.meters[0], EstimatedCpuMeter)
    assert meters.meters[0].tdp_w == 120.0
    assert any("no GPU estimate" in n for n in meters.notes)


def test_no_estimate_allowed_raises_with_the_reasons(no_powercap: Path):
    with pytest.raises(MeterError) as info:
        discover_meters(powercap_root=no_powercap, allow_estimate=False)
    assert "nothing can be measured" in str(info.value)
    assert "NVML is not available" in str(info.value)
    assert "no RAPL domains" in str(info.value)


def test_rapl_only_is_measured_and_says_why_there_is_no_gpu(tmp_path: Path, closing):
    meters = closing(
        discover_meters(powercap_root=make_powercap(tmp_path), rapl_poll_interval_s=None)
    )
    assert meters.estimated is False
    assert meters.flags == []
    assert [(m.component, m.method) for m in meters] == [("cpu", "rapl"), ("dram", "rapl")]
    assert all(isinstance(m, RaplMeter) for m in meters)
    assert len(meters.reasons) == 1
    assert "NVML is not available" in meters.reasons[0]


def test_rapl_permission_problem_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from bench_runner.devices import rapl

    def denied(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    monkeypatch.setattr(rapl, "_read_text", denied)
    meters = discover_meters(powercap_root=make_powercap(tmp_path))
    assert meters.estimated is True
    assert any("chmod a+r" in r for r in meters.reasons)


def test_gpus_and_rapl(fake_nvml: FakeNvml, tmp_path: Path, clock: FakeClock, closing):
    energy = {"mj": 0}

    def counter() -> int:
        energy["mj"] += 1000
        return energy["mj"]

    fake_nvml.add(FakeGpu(uuid="GPU-0000", energy_mj=counter))
    fake_nvml.add(FakeGpu(uuid="GPU-1111", energy_mj=42))  # counter does not advance
    meters = closing(
        discover_meters(
            powercap_root=make_powercap(tmp_path, dram=False),
            clock=clock,
            sleep=clock.sleep,
            probe_wait_s=0.2,
            rapl_poll_interval_s=None,
        )
    )
    assert meters.estimated is False
    assert meters.reasons == []
    assert [type(m) for m in meters] == [NvmlCounterMeter, NvmlSamplingMeter, RaplMeter]
    assert [g.uuid for g in meters.gpus] == ["GPU-0000", "GPU-1111"]
    assert meters.flags == ["counter-not-advancing"]
    assert any("did not advance" in n for n in meters.notes)
    assert any("no DRAM zone" in n for n in meters.notes)
    assert set(meters.by_component()) == {"gpu", "cpu"}


def test_nvml_with_no_visible_gpu_is_a_reason(
    fake_nvml: FakeNvml, no_powercap: Path, monkeypatch: pytest.MonkeyPatch
):
    fake_nvml.add(FakeGpu(uuid="GPU-0000"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    meters = discover_meters(powercap_root=no_powercap)
    assert meters.estimated is True
    assert "no GPU is visible" in meters.reasons[0]


def test_mig_is_not_turned_into_an_estimate(fake_nvml: FakeNvml, no_powercap: Path):
    fake_nvml.add(FakeGpu(uuid="GPU-0000", mig_mode=pynvml.NVML_DEVICE_MIG_ENABLE))
    with pytest.raises(MigEnabled):
        discover_meters(powercap_root=no_powercap)


def test_prefer_limits_the_sources(fake_nvml: FakeNvml, no_powercap: Path):
    fake_nvml.add(FakeGpu(uuid="GPU-0000"))
    meters = discover_meters(prefer=("rapl",), powercap_root=no_powercap)
    assert meters.estimated is True
    assert fake_nvml.init_calls == 0
    assert any("not tried" in r and "nvml" in r for r in meters.reasons)
    with pytest.raises(ValueError, match="unknown meter source"):
        discover_meters(prefer=("nvml", "ipmi"))


def test_nothing_requested_still_gives_a_reason(no_powercap: Path):
    meters = discover_meters(prefer=(), powercap_root=no_powercap)
    assert meters.estimated is True
    assert meters.reasons


# --- the CLI's knobs: force, gpu, allow_foreign_processes, accelerator -------------------------


def test_force_estimate_skips_measuring(fake_nvml: FakeNvml, tmp_path: Path):
    fake_nvml.add(FakeGpu(uuid="GPU-0000"))
    meters = discover_meters(force="estimate", powercap_root=make_powercap(tmp_path))
    assert meters.estimated is True
    assert all(m.method == "estimate" for m in meters)
    assert "forced" in meters.reasons[0]
    assert fake_nvml.init_calls == 0


def test_force_one_source_fails_loudly(tmp_path: Path, closing):
    powercap = make_powercap(tmp_path)
    with pytest.raises(MeterError, match="NVML is not available"):
        discover_meters(force="nvml", powercap_root=powercap)
    meters = closing(
        discover_meters(force="rapl", powercap_root=powercap, rapl_poll_interval_s=None)
    )
    assert {m.method for m in meters} == {"rapl"}
    with pytest.raises(ValueError, match="unknown meter"):
        discover_meters(force="ipmi")


def test_gpu_workload_without_gpu_measurement_is_refused(tmp_path: Path, no_powercap: Path):
    with pytest.raises(MeterError, match="runs on a GPU but GPU energy cannot be measured"):
        discover_meters(gpu=True, powercap_root=make_powercap(tmp_path), rapl_poll_interval_s=None)
    with pytest.raises(MeterError, match="without its TDP"):
        discover_meters(gpu=True, powercap_root=no_powercap)
    meters = discover_meters(gpu=True, powercap_root=no_powercap, gpu_tdp_w=250.0)
    assert meters.estimated is True
    assert {m.component for m in meters} == {"cpu", "gpu"}


def test_cpu_workload_does_not_measure_gpus(fake_nvml: FakeNvml, tmp_path: Path, closing):
    fake_nvml.add(FakeGpu(uuid="GPU-0000"))
    meters = closing(
        discover_meters(gpu=False, powercap_root=make_powercap(tmp_path), rapl_poll_interval_s=None)
    )
    assert {m.component for m in meters} == {"cpu", "dram"}
    assert fake_nvml.init_calls == 0
    assert any("does not use a GPU" in n for n in meters.notes)
    assert meters.accelerator.vendor == "none"
    assert meters.accelerator.count == 0


def test_foreign_processes_refused_or_flagged(
    fake_nvml: FakeNvml, no_powercap: Path, clock: FakeClock, closing
):
    fake_nvml.add(FakeGpu(uuid="GPU-0000", energy_mj=None, compute_pids=[4242]))
    with pytest.raises(ForeignProcesses, match="PID 4242"):
        discover_meters(powercap_root=no_powercap, clock=clock, sleep=clock.sleep)
    meters = closing(
        discover_meters(
            powercap_root=no_powercap,
            allow_foreign_processes=True,
            clock=clock,
            sleep=clock.sleep,
        )
    )
    assert meters.foreign_pids == {0: [4242]}
    assert meters.flags == ["foreign-processes"]


def test_accelerator_from_the_gpus(fake_nvml: FakeNvml, no_powercap: Path, clock, closing):
    for uuid in ("GPU-0000", "GPU-1111"):
        fake_nvml.add(
            FakeGpu(uuid=uuid, name="NVIDIA H100 80GB HBM3", energy_mj=None, power_limit_mw=700_000)
        )
    meters = closing(discover_meters(powercap_root=no_powercap, clock=clock, sleep=clock.sleep))
    acc = meters.accelerator
    assert (acc.vendor, acc.model_name, acc.count) == ("nvidia", "NVIDIA H100 80GB HBM3", 2)
    assert (acc.driver_version, acc.power_limit_w) == ("550.54.15", 700.0)
