"""The serving protocol: one idle baseline, then per concurrency level in the declared order a
warm-up and ``trials`` windows under closed-loop load.

- Idle: ``idle_baseline_s`` with no load, before every level.
- Per level: the load starts at that concurrency and runs, without pause, until the level's last
  window closes. Warm-up: at least ``warmup_min_s`` and at least ``concurrency`` requests ended.
  Before each window, ``cooldown_s`` passes under load, counted in no window. A window lasts at
  least ``min_window_s`` and until at least ``concurrency`` requests ended in it; it counts the
  requests that ended inside it (started before it or not: the service is in steady state, and
  the energy is the window's). Then the load stops and the requests in flight end (drain)
  before the next level.
- A trial whose error rate, ``errors / (completed + errors)``, is over ``max_error_rate`` ends
  the run with :class:`ServingRunError` (no label); lower error counts are recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench_runner.devices.base import Clock, Meter, TraceComponent
from bench_runner.measure import Protocol, RunResult, Window
from bench_runner.serving.client import RequestResult
from bench_runner.serving.load import LoadGenerator

POLL_S = 0.05
#: a failed run waits at most this long for the requests in flight before cancelling them
ABORT_DRAIN_S = 2.0


class ServingRunError(RuntimeError):
    """The run cannot make a label (error rate over the limit, the server down): one line."""


@dataclass
class ServingWindow(Window):
    """A trial window of one concurrency level, with its requests."""

    concurrency: int = 1
    errors: int = 0
    #: [ttft_s, e2e_s, output_tokens] of each request completed in the window
    requests: list[list[float | int]] = field(default_factory=list)
    #: CPU seconds of this process (load generator, meters, protocol) during the window
    client_cpu_s: float = 0.0

    def trace(self, index: int) -> dict[str, Any]:
        out = super().trace(index)
        out.update(concurrency=self.concurrency, errors=self.errors, requests=self.requests)
        return out


@dataclass
class LevelRun:
    concurrency: int
    trials: list[ServingWindow]
    warmup_requests: int
    warmup_errors: int
    warmup_s: float


@dataclass
class ServingRun:
    """What the protocol measured: the idle window and every level's windows."""

    protocol: Protocol
    idle: Window
    levels: list[LevelRun]
    duration_s: float

    @property
    def trials(self) -> list[ServingWindow]:
        """Every trial window, level after level (the label's ``traces.trials`` order)."""
        return [w for level in self.levels for w in level.trials]

    def as_run_result(self) -> RunResult:
        """The run as ``bench_runner.label.build_label`` takes it: every level's trials in
        order, the warm-up requests of all levels."""
        return RunResult(
            protocol=self.protocol,
            idle=self.idle,
            trials=list(self.trials),
            warmup_iterations=sum(level.warmup_requests for level in self.levels),
            warmup_s=sum(level.warmup_s for level in self.levels),
            duration_s=self.duration_s,
            # no settling delay: under continuous load a meter's lag moves as much of the work
            # out of a window at its start as into it at its end
            settle_s=0.0,
        )


@dataclass
class ServingProgress:
    """What the serving protocol is doing, for a live display."""

    #: "idle", "warmup", "cooldown", "trial", "trial-done" (the window closed), "drain", "done"
    phase: str
    concurrency: int = 0
    level: int = 0
    levels: int = 0
    trial: int = 0
    trials: int = 0
    elapsed_s: float = 0.0
    requests: int = 0
    errors: int = 0
    power_w: float | None = None
    #: trial-done: the share of one core this process used during the window
    client_core_share: float | None = None


def error_rate(completed: int, errors: int) -> float:
    """``errors / (completed + errors)``; 0 when nothing ended."""
    ended = completed + errors
    return errors / ended if ended else 0.0


class ServingRunner:
    """Runs the serving protocol with a set of meters and a load generator."""

    def __init__(
        self,
        meters: Sequence[Meter],
        protocol: Protocol,
        load: LoadGenerator,
        levels: Sequence[int],
        max_error_rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[ServingProgress], None] | None = None,
        progress_interval_s: float = 0.25,
    ) -> None:
        if not meters:
            raise ValueError("no meters: nothing would be measured")
        if not levels or any(c < 1 for c in levels) or len(set(levels)) != len(levels):
            raise ValueError("concurrency levels must be distinct integers >= 1")
        self.meters = list(meters)
        self.protocol = protocol
        self.load = load
        self.levels = list(levels)
        self.max_error_rate = max_error_rate
        self.clock = clock
        self.sleep = sleep
        self.on_progress = on_progress or (lambda _p: None)
        self.progress_interval_s = progress_interval_s
        self._reported_s = -math.inf
        self._where = ServingProgress("idle", levels=len(self.levels), trials=protocol.trials)

    # -- helpers ---------------------------------------------------------------------------------

    def _power_w(self) -> float | None:
        readings = [m.power_w() for m in self.meters]
        known = [r for r in readings if r is not None]
        return sum(known) if known else None

    def _report(self, phase: str, started_s: float, since: int, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._reported_s < self.progress_interval_s:
            return
        self._reported_s = now
        ended = self.load.results[since:]
        errors = sum(1 for r in ended if not r.ok)
        where = self._where
        self.on_progress(
            ServingProgress(
                phase,
                where.concurrency,
                where.level,
                where.levels,
                where.trial,
                where.trials,
                now - started_s,
                len(ended) - errors,
                errors,
                self._power_w(),
            )
        )

    def _wait(self, phase: str, seconds: float) -> None:
        start = self.clock()
        since = len(self.load.results)
        self._reported_s = -math.inf
        while (remaining := start + seconds - self.clock()) > 0:
            self.load.check()
            self.sleep(min(POLL_S, remaining))
            self._report(phase, start, since)

    def _begin(self, key: str) -> float:
        t = self.clock()
        for meter in self.meters:
            meter.begin_window(key)
        return t

    def _end(self, key: str) -> tuple[float, list[TraceComponent]]:
        components = [meter.end_window(key) for meter in self.meters]
        return self.clock(), components

    # -- the protocol ----------------------------------------------------------------------------

    def run(self) -> ServingRun:
        p = self.protocol
        started = self.clock()
        t0 = self._begin("idle")
        self._wait("idle", p.idle_baseline_s)
        t1, idle_components = self._end("idle")
        idle = Window(t0, t1, idle_components)
        levels = []
        for number, concurrency in enumerate(self.levels, start=1):
            self._where.concurrency, self._where.level, self._where.trial = concurrency, number, 0
            levels.append(self._level(concurrency))
        self._report("done", started, len(self.load.results), force=True)
        return ServingRun(p, idle, levels, self.clock() - started)

    def _level(self, concurrency: int) -> LevelRun:
        p = self.protocol
        self.load.start(concurrency)
        try:
            warm_from = len(self.load.results)
            warm_start = self.clock()
            self._reported_s = -math.inf
            while (
                self.clock() - warm_start < p.warmup_min_s
                or len(self.load.results) - warm_from < concurrency
            ):
                self.load.check()
                self.sleep(POLL_S)
                self._report("warmup", warm_start, warm_from)
            warm = self.load.results[warm_from:]
            warm_errors = [r for r in warm if not r.ok]
            if len(warm_errors) == len(warm):
                raise ServingRunError(
                    f"every warm-up request at concurrency {concurrency} failed "
                    f"({len(warm)}; the first: {warm_errors[0].describe()})"
                )
            warmup = (len(warm) - len(warm_errors), len(warm_errors), self.clock() - warm_start)
            trials = []
            for index in range(p.trials):
                self._where.trial = index + 1
                if p.cooldown_s > 0:
                    self._wait("cooldown", p.cooldown_s)
                trials.append(self._trial(concurrency, index))
        except BaseException:
            self.load.stop(drain_timeout_s=ABORT_DRAIN_S)  # failing: cancel what is in flight
            raise
        self._report("drain", self.clock(), len(self.load.results), force=True)
        self.load.stop()
        return LevelRun(concurrency, trials, *warmup)

    def _trial(self, concurrency: int, index: int) -> ServingWindow:
        p = self.protocol
        key = f"c{concurrency}-trial-{index}"
        since = len(self.load.results)
        cpu_start_s = time.process_time()
        t_start = self._begin(key)
        self._reported_s = -math.inf
        while (
            self.clock() - t_start < p.min_window_s or len(self.load.results) - since < concurrency
        ):
            self.load.check()
            self.sleep(POLL_S)
            self._report("trial", t_start, since)
        t_end, components = self._end(key)
        cpu_s = time.process_time() - cpu_start_s
        # requests that ended in [t_start, t_end): the list is in end order, so a request
        # appended after the window closed has end_s >= t_end
        ended = [r for r in self.load.results[since:] if t_start <= r.end_s < t_end]
        window = window_of(ended, t_start, t_end, components, concurrency)
        window.client_cpu_s = cpu_s
        self.on_progress(
            ServingProgress(
                "trial-done",
                concurrency,
                self._where.level,
                self._where.levels,
                index + 1,
                p.trials,
                t_end - t_start,
                window.units,
                window.errors,
                client_core_share=cpu_s / (t_end - t_start),
            )
        )
        rate = error_rate(window.units, window.errors)
        if rate > self.max_error_rate or window.units == 0:
            first = next((r for r in ended if not r.ok), None)
            cause = f"; the first: {first.describe()}" if first else ""
            raise ServingRunError(
                f"trial {index + 1} at concurrency {concurrency}: {window.errors} of "
                f"{window.units + window.errors} requests failed ({rate:.1%}, over the maximum "
                f"error rate of {self.max_error_rate:.0%}){cause}; no label was written"
            )
        return window


def window_of(
    ended: Sequence[RequestResult],
    t_start_s: float,
    t_end_s: float,
    components: list[TraceComponent],
    concurrency: int,
) -> ServingWindow:
    """A trial window from the requests that ended in it."""
    done = [r for r in ended if r.ok]
    return ServingWindow(
        t_start_s,
        t_end_s,
        components,
        units=len(done),
        latencies_s=[r.e2e_s for r in done],
        input_tokens=sum(r.input_tokens for r in done),
        output_tokens=sum(r.output_tokens for r in done),
        concurrency=concurrency,
        errors=len(ended) - len(done),
        # microseconds are plenty, and keep a label of thousands of requests small
        requests=[[round(r.ttft_s, 6), round(r.e2e_s, 6), r.output_tokens] for r in done],
    )
