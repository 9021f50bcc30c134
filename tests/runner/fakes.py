"""Fakes for protocol tests: a clock that only moves when told, meters with known power."""

from __future__ import annotations

from typing import Any

from bench_runner.devices.base import Meter
from bench_runner.workloads.base import Workload


class FakeClock:
    def __init__(self, start_s: float = 100.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds


class ConstantPowerCounter(Meter):
    """A counter meter on a fake clock: idle_w when the workload is idle, busy_w while busy."""

    component = "gpu"
    method = "nvml-energy-counter"
    device = "GPU-fake"

    def __init__(self, clock: FakeClock, idle_w: float, busy_w: float) -> None:
        self.clock, self.idle_w, self.busy_w = clock, idle_w, busy_w
        self.energy_j = 1000.0
        self.last_s = clock()
        self.busy = False
        self.starts: dict[str, float] = {}

    def advance(self) -> None:
        now = self.clock()
        self.energy_j += (self.busy_w if self.busy else self.idle_w) * (now - self.last_s)
        self.last_s = now

    def begin_window(self, key: str) -> None:
        self.advance()
        self.starts[key] = self.energy_j

    def end_window(self, key: str) -> dict[str, Any]:
        self.advance()
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": self.starts.pop(key),
            "counter_end_j": self.energy_j,
        }

    def power_w(self) -> float:
        return self.busy_w if self.busy else self.idle_w


class FakeWorkload(Workload):
    """Each step takes step_s on the fake clock at the meter's busy power."""

    task = "text-classification"
    phase = "inference"
    units_per_step = 8
    artifact_sha256 = "ab" * 32
    frameworks = {"fake": "1"}  # noqa: RUF012
    description = {  # noqa: RUF012
        "dataset_id": "fake",
        "dataset_sha256": "cd" * 32,
        "samples": 64,
        "batch_size": 8,
        "precision": "fp32",
    }

    def __init__(self, clock: FakeClock, meter: ConstantPowerCounter, step_s: float) -> None:
        self.clock, self.meter, self.step_s = clock, meter, step_s
        self.steps = 0
        self.syncs = 0

    def step(self) -> None:
        self.meter.advance()
        self.meter.busy = True
        self.clock.sleep(self.step_s)
        self.meter.advance()
        self.meter.busy = False
        self.steps += 1

    def synchronize(self) -> None:
        self.syncs += 1
