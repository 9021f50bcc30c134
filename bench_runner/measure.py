"""The measurement protocol of methodology v1: preflight, idle baseline, warm-up, trials.

Every meter measures every window; the protocol only decides when windows open and close, and
synchronises the device at their edges so the energy of queued work lands in the right window.
Results are not computed here: ``schemas.results`` derives them from the traces, the same code
the registry uses to check them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench_runner.devices.base import Clock, Meter, TraceComponent
from bench_runner.workloads.base import Workload

METHODOLOGY_VERSION = "1"


@dataclass(frozen=True)
class Protocol:
    """Protocol parameters. Defaults are methodology v1's; tests and quick runs lower them, and
    the label records the values used."""

    idle_baseline_s: float = 10.0
    warmup_iterations: int = 10
    warmup_min_s: float = 5.0
    trials: int = 5
    min_window_s: float = 10.0
    cooldown_s: float = 2.0
    cv_threshold: float = 0.10
    #: wait this long after a trial's last step before reading its end edge, so the meters'
    #: lag is inside the window; None: the largest ``settle_s`` of the meters (NVML 1 s, RAPL
    #: and estimates 0; docs/meters.md)
    settle_s: float | None = None

    def __post_init__(self) -> None:
        if self.trials < 2:
            raise ValueError("at least 2 trials are needed for a confidence interval")
        for name in ("idle_baseline_s", "warmup_min_s", "min_window_s", "cooldown_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.idle_baseline_s <= 0:
            raise ValueError("idle_baseline_s must be > 0: idle power is always measured")
        if self.min_window_s <= 0:
            raise ValueError("min_window_s must be > 0")
        if self.warmup_iterations < 0:
            raise ValueError("warmup_iterations must be >= 0")
        if self.settle_s is not None and not self.settle_s >= 0:
            raise ValueError("settle_s must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    """What the protocol is doing, for a live display."""

    phase: str  # "idle", "warmup", "trial", "cooldown", "done"
    trial: int = 0
    trials: int = 0
    elapsed_s: float = 0.0
    units: int = 0
    power_w: float | None = None


@dataclass
class Window:
    t_start_s: float
    t_end_s: float
    components: list[TraceComponent]
    units: int = 0
    latencies_s: list[float] = field(default_factory=list)
    #: tokens of the requests completed in the window, when the workload counts them
    input_tokens: int | None = None
    output_tokens: int | None = None

    def trace(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": index,
            "units": self.units,
            "t_start_s": self.t_start_s,
            "t_end_s": self.t_end_s,
            "components": self.components,
        }
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            out["output_tokens"] = self.output_tokens
        return out


@dataclass
class RunResult:
    protocol: Protocol
    idle: Window
    trials: list[Window]
    warmup_iterations: int
    warmup_s: float
    duration_s: float
    #: the settling delay applied before each trial's end edge (s)
    settle_s: float = 0.0

    def traces(self) -> dict[str, Any]:
        return {
            "idle": {
                "t_start_s": self.idle.t_start_s,
                "t_end_s": self.idle.t_end_s,
                "components": self.idle.components,
            },
            "trials": [w.trace(i) for i, w in enumerate(self.trials)],
        }

    def latency_percentiles_s(self) -> tuple[float, float]:
        """p50 and p95 of per-step latency over all trials (a step is one batch or one
        optimizer step)."""
        values = sorted(v for w in self.trials for v in w.latencies_s)
        if len(values) < 2:
            only = values[0] if values else 0.0
            return only, only
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return cuts[49], cuts[94]


class Lockstep:
    """How the ranks of a distributed job keep in step (``bench_runner.distributed``). One
    process alone has nobody to wait for: this default waits for nothing."""

    def edge(self) -> None:
        """Return once every rank has reached this window edge."""

    def agree(self, done: bool) -> bool:
        """Whether every rank is done (a loop ends on all ranks at the same step)."""
        return done


class ProtocolRunner:
    def __init__(
        self,
        meters: Sequence[Meter],
        protocol: Protocol,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval_s: float = 0.25,
        lockstep: Lockstep | None = None,
    ) -> None:
        """``on_progress`` hears at most one report per ``progress_interval_s`` while work runs
        (each report reads every meter's power: per step, that would weigh on short steps).
        ``lockstep``: in a distributed job, window edges wait for every rank and loops end on
        every rank together; a rank that meters nothing (not its node's local rank 0) then
        runs with no meters."""
        if not meters and lockstep is None:
            raise ValueError("no meters: nothing would be measured")
        self.lockstep = lockstep or Lockstep()
        self.meters = list(meters)
        self.protocol = protocol
        self.clock = clock
        self.sleep = sleep
        self.on_progress = on_progress or (lambda _p: None)
        self.progress_interval_s = progress_interval_s
        self.settle_s = (
            protocol.settle_s
            if protocol.settle_s is not None
            else max((float(m.settle_s) for m in self.meters), default=0.0)
        )
        self._reported_s = -math.inf

    def _due(self, now: float) -> bool:
        """Whether a progress report is due (the first of a phase always is)."""
        if now - self._reported_s < self.progress_interval_s:
            return False
        self._reported_s = now
        return True

    def _power_w(self) -> float | None:
        readings = [m.power_w() for m in self.meters]
        known = [r for r in readings if r is not None]
        return sum(known) if known else None

    def _begin(self, key: str) -> float:
        self.lockstep.edge()
        t = self.clock()
        for meter in self.meters:
            meter.begin_window(key)
        return t

    def _end(self, key: str) -> tuple[float, list[TraceComponent]]:
        self.lockstep.edge()
        components = [meter.end_window(key) for meter in self.meters]
        return self.clock(), components

    def _wait(self, phase: str, seconds: float, trial: int = 0) -> None:
        deadline = self.clock() + seconds
        start = self.clock()
        while (remaining := deadline - self.clock()) > 0:
            self.sleep(min(0.25, remaining))
            self.on_progress(
                Progress(
                    phase, trial, self.protocol.trials, self.clock() - start, 0, self._power_w()
                )
            )

    def run(self, workload: Workload) -> RunResult:
        p = self.protocol
        started = self.clock()
        workload.synchronize()
        t0 = self._begin("idle")
        self._wait("idle", p.idle_baseline_s)
        t1, idle_components = self._end("idle")
        idle = Window(t0, t1, idle_components)

        warm_start = self.clock()
        iterations = 0
        self._reported_s = -math.inf
        while not self.lockstep.agree(
            iterations >= p.warmup_iterations and self.clock() - warm_start >= p.warmup_min_s
        ):
            workload.step()
            iterations += 1
            if iterations % 5 == 0:
                workload.synchronize()
            if self._due(now := self.clock()):
                self.on_progress(
                    Progress("warmup", 0, p.trials, now - warm_start, iterations, self._power_w())
                )
        workload.synchronize()
        self.lockstep.edge()
        warmup_s = self.clock() - warm_start

        trials: list[Window] = []
        for index in range(p.trials):
            if (cooldown_s := max(p.cooldown_s, self.settle_s)) > 0:
                self._wait("cooldown", cooldown_s, index + 1)
            workload.synchronize()
            key = f"trial-{index}"
            t_start = self._begin(key)
            units = 0
            latencies: list[float] = []
            tokens_in: int | None = None
            tokens_out: int | None = None
            last = t_start
            self._reported_s = -math.inf
            while True:
                workload.step()
                workload.synchronize()
                now = self.clock()
                latencies.append(now - last)
                last = now
                units += workload.units_per_step
                counted = workload.step_tokens()
                if counted is not None:
                    tokens_in = (tokens_in or 0) + counted.input_tokens
                    if counted.output_tokens is not None:
                        tokens_out = (tokens_out or 0) + counted.output_tokens
                if self._due(now):
                    self.on_progress(
                        Progress(
                            "trial", index + 1, p.trials, now - t_start, units, self._power_w()
                        )
                    )
                if self.lockstep.agree(now - t_start >= p.min_window_s):
                    break
            if self.settle_s > 0:  # the meters catch up with the window's last step
                self.sleep(self.settle_s)
            t_end, components = self._end(key)
            trials.append(
                Window(t_start, t_end, components, units, latencies, tokens_in, tokens_out)
            )
        self.on_progress(Progress("done", p.trials, p.trials, self.clock() - started))
        duration_s = self.clock() - started
        return RunResult(p, idle, trials, iterations, warmup_s, duration_s, self.settle_s)
