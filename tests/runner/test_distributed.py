"""Distributed runs: torchrun with two local "nodes" (gloo, test-only fake meters of 100 W and
300 W) writes one label that sums both; a node whose traces are missing fails every rank within
a bounded time. Plus the lockstep, the environment and the merge of reports without processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench_runner.devices.base import MeterError
from bench_runner.distributed import DistributedError, rank_from_env, timeout_from_env
from bench_runner.measure import Lockstep, Protocol, ProtocolRunner, RunResult, Window
from bench_runner.node_meters import GuardedMeter
from bench_runner.nodes import DescribedMeter, MissingTraces, merge_reports, rank_report
from schemas.results import compute_results
from tests.runner.fakes import ConstantPowerCounter, FakeClock, FakeWorkload
from tests.server import free_port

QUICK = [
    "--trials",
    "2",
    "--min-window-s",
    "0.3",
    "--idle-s",
    "0.2",
    "--warmup-iterations",
    "1",
    "--warmup-min-s",
    "0",
    "--cooldown-s",
    "0",
    "--quiet",
]


# --- without processes -------------------------------------------------------------------------


class CountingLockstep(Lockstep):
    def __init__(self) -> None:
        self.edges = 0
        self.votes: list[bool] = []

    def edge(self) -> None:
        self.edges += 1

    def agree(self, done: bool) -> bool:
        self.votes.append(done)
        return done


def test_protocol_waits_for_every_rank_at_each_edge() -> None:
    clock = FakeClock()
    meter = ConstantPowerCounter(clock, idle_w=50.0, busy_w=250.0)
    workload = FakeWorkload(clock, meter, step_s=0.5)
    lockstep = CountingLockstep()
    protocol = Protocol(
        idle_baseline_s=1,
        warmup_iterations=2,
        warmup_min_s=0,
        trials=3,
        min_window_s=1,
        cooldown_s=0,
    )
    result = ProtocolRunner(
        [meter], protocol, clock=clock, sleep=clock.sleep, lockstep=lockstep
    ).run(workload)
    # begin and end of idle and of every trial, and the end of the warm-up
    assert lockstep.edges == 2 * (1 + 3) + 1
    # warm-up: a vote before each step and one that ends it; each trial: one vote per step
    assert lockstep.votes.count(True) == 1 + 3
    assert [t.units for t in result.trials] == [16, 16, 16]


def test_a_rank_without_meters_runs_only_in_a_job() -> None:
    clock = FakeClock()
    protocol = Protocol(
        idle_baseline_s=1,
        warmup_iterations=0,
        warmup_min_s=0,
        trials=2,
        min_window_s=1,
        cooldown_s=0,
    )
    with pytest.raises(ValueError, match="no meters"):
        ProtocolRunner([], protocol, clock=clock, sleep=clock.sleep)
    meter = ConstantPowerCounter(clock, 1.0, 1.0)
    result = ProtocolRunner([], protocol, clock=clock, sleep=clock.sleep, lockstep=Lockstep()).run(
        FakeWorkload(clock, meter, 0.5)
    )
    assert all(t.components == [] for t in result.trials)


def test_environment() -> None:
    assert rank_from_env({}) is None
    assert rank_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    info = rank_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "GROUP_RANK": "1"})
    assert info is not None
    assert (info.rank, info.node_rank, info.metering) == (3, 1, False)
    derived = rank_from_env(
        {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}
    )
    assert derived is not None
    assert (derived.node_rank, derived.metering) == (1, True)
    with pytest.raises(DistributedError, match="launch with torchrun"):
        rank_from_env({"WORLD_SIZE": "2"})
    with pytest.raises(DistributedError, match="GROUP_RANK"):
        rank_from_env({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"})
    with pytest.raises(DistributedError, match="not an integer"):
        rank_from_env({"WORLD_SIZE": "two"})
    assert timeout_from_env({}) == 1800.0
    assert timeout_from_env({"CARBONLABEL_DIST_TIMEOUT_S": "5"}) == 5.0
    with pytest.raises(DistributedError, match="> 0"):
        timeout_from_env({"CARBONLABEL_DIST_TIMEOUT_S": "0"})


def _window(t0: float, t1: float, units: int, components: list[dict[str, Any]]) -> Window:
    return Window(t0, t1, components, units, [0.1] * max(units, 1), None, None)


def _sampled(t0: float, t1: float, power_w: float) -> dict[str, Any]:
    return {
        "name": "gpu",
        "method": "estimate",
        "device": "g",
        "samples": [[t0, power_w], [t1, power_w]],
    }


def _run(offset: float, power_w: float, units: int) -> RunResult:
    """A run on a node whose clock reads ``offset`` more than rank 0's."""
    protocol = Protocol(idle_baseline_s=1, trials=2, min_window_s=1)
    idle = _window(offset, offset + 1, 0, [_sampled(offset, offset + 1, power_w / 2)])
    trials = [
        _window(offset + s, offset + s + 1, units, [_sampled(offset + s, offset + s + 1, power_w)])
        for s in (2.0, 4.0)
    ]
    return RunResult(protocol, idle, trials, 3, 1.0, 6.0)


TOPOLOGY = {0: (0, 0, "a"), 1: (0, 1, "a"), 2: (1, 0, "b"), 3: (1, 1, "b")}


def _reports(phase_units: tuple[int, int, int, int]) -> tuple[RunResult, dict[int, Any]]:
    own = _run(0.0, 100.0, phase_units[0])
    reports: dict[int, Any] = {}
    for rank, (node, local, _host) in TOPOLOGY.items():
        offset = 1000.0 * node
        run = own if rank == 0 else _run(offset, 100.0 + 200.0 * node, phase_units[rank])
        meters = [ConstantPowerCounter(FakeClock(), 1, 1)] if local == 0 else []
        reports[rank] = json.loads(
            json.dumps(
                rank_report(rank=rank, node_rank=node, local_rank=local, result=run, meters=meters)
            )
        )
    return own, reports


def test_merge_sums_nodes_and_units() -> None:
    own, reports = _reports((8, 8, 8, 8))
    job = merge_reports(own, reports, TOPOLOGY, "inference")
    assert [n["name"] for n in job.nodes] == ["node-0", "node-1"]
    for window in [job.result.idle, *job.result.trials]:
        assert [c["node"] for c in window.components] == ["node-0", "node-1"]
        # node-1's samples moved onto rank 0's clock: they start at the window's start edge
        assert all(c["samples"][0][0] == window.t_start_s for c in window.components)
    assert [t.units for t in job.result.trials] == [32, 32]  # inferences of all four ranks
    results = compute_results(
        {
            "benchmark": {"phase": "inference", "workload": {}, "suite": {"version": "1"}},
            "results": {},
            "carbon": {"intensity_g_per_kwh": 1, "pue": 1},
            "traces": job.result.traces(),
        }
    )
    assert results["/results/idle_power_w"] == pytest.approx(50.0 + 150.0)
    assert results["/results/energy_per_unit_wh"]["mean"] == pytest.approx(
        (100.0 + 300.0) / 32 * 1000 / 3600
    )
    reports[2]["meters"][0]["health_flags"] = ["sampler-gap"]  # raised by node-1's meter
    training = merge_reports(own, reports, TOPOLOGY, "training")
    assert [t.units for t in training.result.trials] == [8, 8]  # one optimizer step of the job
    assert len(training.meters) == 1  # one per component and method across nodes
    described = training.meters[0]
    assert isinstance(described, DescribedMeter)
    assert described.health_flags == ["sampler-gap"]


def test_merge_names_the_node_whose_traces_are_missing() -> None:
    own, reports = _reports((8, 8, 8, 8))
    with pytest.raises(MissingTraces, match=r"node-1 \(rank 2, host b\) sent no traces within 5 s"):
        merge_reports(own, reports | {2: None}, TOPOLOGY, "inference", waited_s=5)
    failed = reports | {2: reports[2] | {"error": "its gpu meter failed at trial-1: boom"}}
    with pytest.raises(MissingTraces, match=r"node-1 .* has no traces: its gpu meter failed"):
        merge_reports(own, failed, TOPOLOGY, "inference")
    empty = json.loads(json.dumps(reports[2]))
    empty["windows"][2]["components"] = []
    with pytest.raises(MissingTraces, match=r"node-1 .* no traces for window"):
        merge_reports(own, reports | {2: empty}, TOPOLOGY, "inference")
    with pytest.raises(MissingTraces, match="rank 3 of node-1"):
        merge_reports(own, reports | {3: None}, TOPOLOGY, "inference")


def test_a_failing_meter_is_recorded_not_raised() -> None:
    class Broken(ConstantPowerCounter):
        def end_window(self, key: str) -> dict[str, Any]:
            raise MeterError("gone")

    errors: list[str] = []
    guarded = GuardedMeter(Broken(FakeClock(), 1, 1), errors)
    guarded.begin_window("idle")
    assert guarded.end_window("idle") == {}
    guarded.begin_window("trial-0")
    assert guarded.end_window("trial-0") == {}
    assert errors == ["its gpu meter (GPU-fake) failed at idle: gone"]
    assert guarded.method == "nvml-energy-counter"
    assert guarded.health_flags == []
    assert guarded.settle_s == 0.0


# --- two torchrun "nodes" on this machine -------------------------------------------------------


def _torchrun_nodes(
    tmp_path: Path,
    powers: tuple[float, float],
    *,
    phase: str = "training",
    fail: tuple[str | None, str | None] = (None, None),
    timeout_s: float = 30.0,
) -> list[subprocess.CompletedProcess[str]]:
    """Two torchrun launchers, one per node rank, with the same rendezvous on 127.0.0.1."""
    port = str(free_port())
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    base |= {
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "CARBONLABEL_DIST_TIMEOUT_S": str(timeout_s),
    }
    launchers = []
    for node in (0, 1):
        env = base | {"CARBONLABEL_TEST_FAKE_POWER_W": str(powers[node])}
        if fail[node]:
            env["CARBONLABEL_TEST_FAKE_METER_FAIL"] = str(fail[node])
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--nproc-per-node",
            "1",
            "--node-rank",
            str(node),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            port,
            "-m",
            "carbonlabel",
            "bench",
            "--task",
            "text-classification",
            "--phase",
            phase,
            "--model-id",
            "acme/reference",
            "--key",
            "key.pem",
            "--registry",
            "http://127.0.0.1:9",
            "--out",
            "out",
            *QUICK,
        ]
        launchers.append(
            subprocess.Popen(
                command,
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    done = []
    try:
        for launcher in launchers:
            stdout, stderr = launcher.communicate(timeout=120)
            done.append(
                subprocess.CompletedProcess(launcher.args, launcher.returncode, stdout, stderr)
            )
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()
    return done


def _keygen(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "carbonlabel", "keygen", "--out", "key.pem"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )


def _error_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("error:"))


def test_two_nodes_one_label_that_sums_both(tmp_path: Path) -> None:
    from schemas import check_results, validate_statement
    from schemas.dsse import decode_statement, parse_envelope
    from schemas.results import component_energy_j

    _keygen(tmp_path)
    node0, node1 = _torchrun_nodes(tmp_path, (100.0, 300.0))
    assert node0.returncode == 0, node0.stderr
    assert node1.returncode == 0, node1.stderr
    assert node1.stdout == ""  # only rank 0 writes: one label, one envelope
    assert len(list((tmp_path / "out").glob("*.label.json"))) == 1
    envelope = tmp_path / node0.stdout.strip().splitlines()[-1]
    statement = decode_statement(parse_envelope(envelope.read_bytes()))
    label = statement["predicate"]
    hardware = label["hardware"]
    assert [(n["name"], n["node_rank"]) for n in hardware["nodes"]] == [
        ("node-0", 0),
        ("node-1", 1),
    ]
    assert hardware["accelerator"]["count"] == 0
    traces = label["traces"]
    for window in [traces["idle"], *traces["trials"]]:
        by_node: dict[str, float] = {}
        for component in window["components"]:
            by_node[component["node"]] = by_node.get(component["node"], 0.0) + (
                component_energy_j(component, window["t_start_s"], window["t_end_s"])
            )
        spans = {c["node"]: c["samples"][-1][0] - c["samples"][0][0] for c in window["components"]}
        # each node's power over its own window, which is rank 0's up to the barrier's skew
        assert by_node["node-0"] == pytest.approx(100.0 * spans["node-0"])
        assert by_node["node-1"] == pytest.approx(300.0 * spans["node-1"])
        seconds = window["t_end_s"] - window["t_start_s"]
        assert spans["node-1"] == pytest.approx(seconds, abs=0.1)
    results = compute_results(label)
    assert results["/results/idle_power_w"] == pytest.approx(400.0, rel=0.25)
    per_step = [
        sum(component_energy_j(c, t["t_start_s"], t["t_end_s"]) for c in t["components"])
        / t["units"]
        / 3600
        for t in traces["trials"]
    ]
    assert results["/results/energy_per_unit_wh"]["mean"] == pytest.approx(sum(per_step) / 2)
    assert label["results"]["energy_per_unit_wh"]["mean"] == pytest.approx(sum(per_step) / 2)
    assert "estimated" in label["measurement"]["flags"]  # the test meter never passes as measured
    assert validate_statement(statement) == []
    assert check_results(label) == []
    # the registry's check: a window without one node's traces is inconsistent
    traces["trials"][1]["components"] = [
        c for c in traces["trials"][1]["components"] if c["node"] != "node-1"
    ]
    pointers = [m.pointer for m in check_results(label)]
    assert "/traces/trials/1/components: no trace of node 'node-1'" in pointers


def test_a_node_whose_meter_fails_fails_every_rank(tmp_path: Path) -> None:
    _keygen(tmp_path)
    started = time.monotonic()
    node0, node1 = _torchrun_nodes(
        tmp_path, (100.0, 300.0), phase="inference", fail=(None, "trial-1")
    )
    assert time.monotonic() - started < 90
    assert node0.returncode != 0
    assert node1.returncode != 0
    error = _error_line(node0.stderr)
    assert "missing traces: node-1 (rank 1" in error
    assert "failed at trial-1" in error
    assert "the run failed on rank 0: missing traces: node-1" in _error_line(node1.stderr)
    assert not list(tmp_path.glob("out/*.json"))


def test_a_node_that_sends_nothing_fails_the_run_in_bounded_time(tmp_path: Path) -> None:
    _keygen(tmp_path)
    started = time.monotonic()
    node0, node1 = _torchrun_nodes(tmp_path, (100.0, 300.0), fail=(None, "exit"), timeout_s=10)
    assert time.monotonic() - started < 90
    assert node0.returncode != 0
    assert node1.returncode != 0  # its worker died (exit code 3)
    assert "node-1 (rank 1, host" in _error_line(node0.stderr)
    assert "sent no traces within 10 s" in _error_line(node0.stderr)
    assert not list(tmp_path.glob("out/*.json"))


def test_chat_serving_is_refused_under_torchrun(tmp_path: Path) -> None:
    _keygen(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    env |= {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", "bench", "--task", "chat-serving",
         "--model-id", "acme/m", "--key", "key.pem", "--registry", "http://127.0.0.1:9"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert _error_line(result.stderr).startswith("error: chat-serving measures a server from one")
