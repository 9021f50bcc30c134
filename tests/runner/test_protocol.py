"""The protocol against a fake clock and meters with known power: every figure by hand."""

from __future__ import annotations

import itertools

import pytest

from bench_runner.label import Accelerator, LabelInputs, build_label
from bench_runner.measure import Progress, Protocol, ProtocolRunner
from schemas import check_results, validate_label
from tests.runner.fakes import ConstantPowerCounter, FakeClock, FakeWorkload


def run(protocol: Protocol, step_s: float = 0.5, idle_w: float = 50.0, busy_w: float = 250.0):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    meter = ConstantPowerCounter(clock, idle_w=idle_w, busy_w=busy_w)
    workload = FakeWorkload(clock, meter, step_s)
    seen: list[Progress] = []
    runner = ProtocolRunner(
        [meter], protocol, clock=clock, sleep=clock.sleep, on_progress=seen.append
    )
    return runner.run(workload), workload, meter, seen


def test_windows_warmup_and_trials() -> None:
    protocol = Protocol(
        idle_baseline_s=4,
        warmup_iterations=3,
        warmup_min_s=2,
        trials=3,
        min_window_s=2,
        cooldown_s=1,
    )
    result, workload, _meter, seen = run(protocol)
    idle = result.idle
    assert idle.t_end_s - idle.t_start_s == pytest.approx(4.0)
    c = idle.components[0]
    assert c["counter_end_j"] - c["counter_start_j"] == pytest.approx(4.0 * 50.0)
    # warm-up: at least 3 iterations and at least 2 s: 0.5 s steps -> 4 iterations
    assert result.warmup_iterations == 4
    assert len(result.trials) == 3
    for trial in result.trials:
        assert trial.t_end_s - trial.t_start_s == pytest.approx(2.0)  # 4 steps of 0.5 s
        assert trial.units == 4 * 8
        energy = trial.components[0]["counter_end_j"] - trial.components[0]["counter_start_j"]
        assert energy == pytest.approx(2.0 * 250.0)
        assert trial.latencies_s == pytest.approx([0.5] * 4)
    assert workload.steps == 4 + 3 * 4
    assert {p.phase for p in seen} >= {"idle", "warmup", "cooldown", "trial", "done"}
    assert max(p.trial for p in seen if p.phase == "trial") == 3


def test_label_from_run_validates_and_figures_by_hand() -> None:
    protocol = Protocol(
        idle_baseline_s=4,
        warmup_iterations=1,
        warmup_min_s=0,
        trials=2,
        min_window_s=2,
        cooldown_s=0,
    )
    result, workload, meter, _ = run(protocol)
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
        accelerator=Accelerator("nvidia", "NVIDIA H100 80GB HBM3", 1, "570.1", 700.0),
    )
    label = build_label(inputs, workload, [meter], result)
    assert validate_label(label) == []
    assert check_results(label) == []
    results = label["results"]
    # 500 J for 32 inferences -> per 1,000 inferences: 500/32*1000/3600 Wh
    per_1k_wh = 500.0 / 32 * 1000 / 3600
    assert results["energy_per_unit_wh"]["mean"] == pytest.approx(per_1k_wh)
    assert results["energy_per_unit_wh"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert results["idle_power_w"] == pytest.approx(50.0)
    # dynamic: (500 - 50 W * 2 s) J per 32 inferences
    assert results["dynamic_energy_per_unit_wh"] == pytest.approx(400.0 / 32 * 1000 / 3600)
    assert results["throughput_units_per_s"] == pytest.approx(16.0)
    assert results["latency_p50_s"] == pytest.approx(0.5)
    assert label["carbon"]["co2e_per_unit_g"]["mean"] == pytest.approx(per_1k_wh / 1000 * 1.5 * 50)
    assert label["hardware"]["hardware_class"] == "nvidia-h100-sxm-80gb"
    assert label["measurement"]["trials"] == 2
    assert label["measurement"]["idle_baseline_s"] == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trials": 1},
        {"idle_baseline_s": 0},
        {"min_window_s": 0},
        {"cooldown_s": -1},
        {"warmup_iterations": -1},
    ],
)
def test_protocol_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Protocol(**kwargs)  # type: ignore[arg-type]


def test_progress_is_reported_at_most_every_quarter_second() -> None:
    # 0.01 s steps: 200 steps per 2 s window, but about 8 reports (each reads every meter's power)
    protocol = Protocol(
        idle_baseline_s=1, warmup_iterations=1, warmup_min_s=1, trials=2, min_window_s=2
    )
    result, _workload, _meter, seen = run(protocol, step_s=0.01)
    assert all(trial.units >= 200 for trial in result.trials)
    for trial in (1, 2):
        times = [p.elapsed_s for p in seen if p.phase == "trial" and p.trial == trial]
        assert times[0] == pytest.approx(0.01)  # the first step of a window is reported
        assert 7 <= len(times) <= 9
        assert all(b - a >= 0.25 - 1e-9 for a, b in itertools.pairwise(times))
    warmup = [p for p in seen if p.phase == "warmup"]
    assert 4 <= len(warmup) <= 5
