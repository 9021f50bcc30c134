"""The protocol's settling delay against a meter that lags the load, and the meters' health
flags in the label (fake clock; the A100 replay of the same is in test_replay_a100.py)."""

from __future__ import annotations

import bisect
from typing import Any

import pytest

from bench_runner.devices.base import Meter
from bench_runner.label import Accelerator, LabelInputs, build_label
from bench_runner.measure import Protocol, ProtocolRunner
from schemas import check_results, validate_label
from schemas.results import component_energy_j
from tests.runner.fakes import FakeClock, FakeWorkload

IDLE_W, BUSY_W, LAG_S = 50.0, 250.0, 0.5


class LaggingCounter(Meter):
    """An energy counter that integrates the true power ``LAG_S`` late (a sensor that trails the
    load), on a fake clock; ``busy`` is switched by the workload."""

    component = "gpu"
    method = "nvml-energy-counter"
    device = "GPU-lagging"
    settle_s = 1.0

    def __init__(self, clock: FakeClock, flags: list[str] | None = None) -> None:
        self.clock = clock
        #: (time, power from then on) of the true power
        self.changes: list[tuple[float, float]] = [(clock() - 100.0, IDLE_W)]
        self.starts: dict[str, float] = {}
        self._flags = flags or []

    @property
    def busy(self) -> bool:
        return self.changes[-1][1] == BUSY_W

    @busy.setter
    def busy(self, value: bool) -> None:
        self.changes.append((self.clock(), BUSY_W if value else IDLE_W))

    def advance(self) -> None:
        """The workload's hook (FakeWorkload calls it around each step)."""

    def true_energy_j(self, t_s: float) -> float:
        energy = 0.0
        for (t0, p), (t1, _p) in zip(self.changes, [*self.changes[1:], (t_s, 0.0)], strict=True):
            energy += p * max(0.0, min(t1, t_s) - t0)
        return energy

    def counter_j(self) -> float:
        return self.true_energy_j(self.clock() - LAG_S)

    def begin_window(self, key: str) -> None:
        self.starts[key] = self.counter_j()

    def end_window(self, key: str) -> dict[str, Any]:
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": self.starts.pop(key),
            "counter_end_j": self.counter_j(),
        }

    @property
    def health_flags(self) -> list[str]:
        return list(self._flags)


def run(
    settle_s: float | None, flags: list[str] | None = None, cooldown_s: float = 0.0
) -> tuple[Any, Any, Any]:
    clock = FakeClock()
    meter = LaggingCounter(clock, flags)
    workload = FakeWorkload(clock, meter, step_s=0.5)  # type: ignore[arg-type]
    protocol = Protocol(
        idle_baseline_s=2,
        warmup_iterations=1,
        warmup_min_s=0,
        trials=2,
        min_window_s=2,
        cooldown_s=cooldown_s,
        settle_s=settle_s,
    )
    runner = ProtocolRunner([meter], protocol, clock=clock, sleep=clock.sleep)
    return runner.run(workload), workload, meter


def test_settling_puts_the_lagging_energy_in_the_window():
    """Trials after an idle cooldown: without settling, each misses (250 - 50) W x 0.5 s = 100 J
    (its start is read before the lag shows the load, its end before the lag shows it gone);
    with the meter's 1 s the counter delta equals the true energy over the window."""
    result, _workload, meter = run(settle_s=None, cooldown_s=2.0)  # the meter's settle_s: 1 s
    assert result.settle_s == 1.0
    for trial in result.trials:
        measured_j = component_energy_j(trial.components[0], trial.t_start_s, trial.t_end_s)
        true_j = meter.true_energy_j(trial.t_end_s) - meter.true_energy_j(trial.t_start_s)
        assert measured_j == pytest.approx(true_j)
        # 2 s of work and 1 s of settling at idle, read after it
        assert trial.t_end_s - trial.t_start_s == pytest.approx(3.0)
        assert true_j == pytest.approx(2.0 * BUSY_W + 1.0 * IDLE_W)

    result, _workload, meter = run(settle_s=0.0, cooldown_s=2.0)
    assert result.settle_s == 0.0
    for trial in result.trials:
        measured_j = component_energy_j(trial.components[0], trial.t_start_s, trial.t_end_s)
        true_j = meter.true_energy_j(trial.t_end_s) - meter.true_energy_j(trial.t_start_s)
        assert measured_j == pytest.approx(true_j - (BUSY_W - IDLE_W) * LAG_S)


def test_begin_edges_are_settled_too():
    """With cooldown_s = 0 the protocol still waits settle_s before a trial's begin edge, so the
    warm-up's lagging energy does not land in the first trial."""
    result, _workload, meter = run(settle_s=None)
    first = result.trials[0]
    measured_j = component_energy_j(first.components[0], first.t_start_s, first.t_end_s)
    true_j = meter.true_energy_j(first.t_end_s) - meter.true_energy_j(first.t_start_s)
    assert measured_j == pytest.approx(true_j)
    changes = [t for t, _p in meter.changes]
    last_warmup_end = changes[bisect.bisect_left(changes, first.t_start_s) - 1]
    assert first.t_start_s - last_warmup_end >= 1.0


def test_protocol_rejects_a_negative_settle():
    with pytest.raises(ValueError, match="settle_s"):
        Protocol(settle_s=-0.1)


def test_label_records_settle_s_and_the_meters_health_flags():
    result, workload, meter = run(settle_s=None, flags=["sampler-gap", "transient-errors"])
    inputs = LabelInputs(
        vendor="acme",
        model_name="fake",
        revision="v1",
        registry="http://registry.test",
        carbon={
            "zone": "FR",
            "intensity_g_per_kwh": 50.0,
            "dataset": {"name": "t", "version": "1", "year": 2024},
        },
        pue=1.5,
        accelerator=Accelerator("nvidia", "NVIDIA A100-SXM4-80GB", 1, "570.1", 400.0),
        flags=["counter-not-advancing"],
    )
    label = build_label(inputs, workload, [meter], result)
    assert validate_label(label) == []
    assert check_results(label) == []
    measurement = label["measurement"]
    assert measurement["settle_s"] == 1.0
    assert measurement["flags"][:3] == ["counter-not-advancing", "sampler-gap", "transient-errors"]
