"""``carbonlabel watch``: operational labels of a deployed model, period after period.

Beside a serving engine (vLLM, TGI, any engine with Prometheus counters), the watcher meters the
GPUs it runs on with the bench's meters and reads the engine's own request and token counters
(``bench_runner.tracking.engine_metrics``) every ``scrape_s``. Every ``window_s`` it closes a
window (a segment of every meter, with the requests and tokens the engine counted in it, the GPUs'
mean utilisation and the time no request was running); every ``every_s`` it signs the period's
windows as one ``operational`` label, and submits it when asked. Periods follow each other with
no gap: the meters' windows are contiguous (``bench_runner.tracking.segments``).

A window in which the engine completed no request is folded into its neighbour (its energy stays
in the period); a period with fewer than two windows that served requests makes no label (it is
said on stderr and counted in ``carbonlabel_watch_labels_total{outcome="skipped"}``), since a
figure per request needs requests.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_runner.bench_carbon import CarbonInputs, add_hourly
from bench_runner.devices.base import Meter
from bench_runner.label import Accelerator, meter_components, sampling_interval_s
from bench_runner.tracking.engine_metrics import (
    COUNTERS,
    EngineMetricsError,
    EngineScraper,
    Reading,
    absent_requests_note,
    increase,
)
from bench_runner.tracking.exporter import RunMetrics
from bench_runner.tracking.run_label import (
    RunContext,
    build_run_label,
    fold_empty,
    iso,
)
from bench_runner.tracking.segments import Segment, Segmenter
from bench_runner.tracking.track import submit_envelope, write_signed
from schemas import kinds
from schemas.results import fill_results

logger = logging.getLogger(__name__)


@dataclass
class WatchOptions:
    model: str
    registry: str
    engine: str
    metric_names: dict[str, str]
    carbon: CarbonInputs
    every_s: float = 3600.0
    window_s: float = 300.0
    scrape_s: float = 5.0
    task: str = "chat-serving"
    revision: str = "main"
    engine_version: str | None = None
    precision: str | None = None
    out_dir: Path = Path(".")
    submit: bool = False
    token: str | None = None
    mlflow: bool = False
    mlflow_experiment: str | None = None

    def check(self) -> None:
        if not 0 < self.scrape_s <= self.window_s <= self.every_s:
            raise ValueError(
                "the scrape interval, the window and the period must be > 0 and in that order "
                f"(got {self.scrape_s:g} s <= {self.window_s:g} s <= {self.every_s:g} s)"
            )
        if self.every_s / self.window_s > 1000:
            raise ValueError("at most 1,000 windows per period: lengthen the window")
        vendor, _, name = self.model.partition("/")
        if not vendor or not name:
            raise ValueError(f"--model {self.model!r} must be 'vendor/name'")


@dataclass
class PeriodOutcome:
    started_at: str
    ended_at: str
    label: dict[str, Any] | None
    envelope_path: Path | None = None
    skipped_because: str | None = None


@dataclass
class _Window:
    start_s: float
    first: Reading
    idle_s: float = 0.0
    utilisation: list[float] = field(default_factory=list)


class Watcher:
    """Runs the periods; ``utilisation`` reads the metered GPUs' mean utilisation (0..1), or
    None where it is unknown."""

    def __init__(
        self,
        options: WatchOptions,
        meters: Sequence[Meter],
        scraper: EngineScraper,
        *,
        private_key: Any,
        accelerator: Accelerator,
        flags: Sequence[str] = (),
        utilisation: Callable[[], float | None] = lambda: None,
        metrics: RunMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        options.check()
        self.options = options
        self.meters = list(meters)
        self.scraper = scraper
        self.private_key = private_key
        self.accelerator = accelerator
        self.flags = list(flags)
        self.utilisation = utilisation
        self.metrics = metrics
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self._last: Reading | None = None

    def run(self, periods: int | None = None) -> Iterator[PeriodOutcome]:
        """Watch for ``periods`` periods (None: until interrupted), yielding each one's outcome
        as it ends."""
        done = 0
        segmenter = Segmenter(self.meters, self.clock)
        anchor_mono, anchor_wall = segmenter.t_start_s, self.wall()
        reading = self.scraper.read()
        window = _Window(segmenter.t_start_s, reading)
        period_start = segmenter.t_start_s
        segments: list[Segment] = []
        last_tick = segmenter.t_start_s
        while periods is None or done < periods:
            self.sleep(self.options.scrape_s)
            now = self.clock()
            try:
                reading = self.scraper.read()
            except EngineMetricsError as exc:
                logger.warning("%s (this tick is skipped)", exc)
                continue
            self._last = reading
            running = reading.values.get("running")
            if running is not None and running <= 0:
                window.idle_s += now - last_tick
            last_tick = now
            busy = self.utilisation()
            if busy is not None:
                window.utilisation.append(busy)
            if now - window.start_s < self.options.window_s:
                continue
            period_over = now - period_start >= self.options.every_s
            segments.append(self._close(segmenter, window, reading))
            window = _Window(segments[-1].t_end_s, reading)
            if period_over:
                yield self._period(segments, anchor_mono, anchor_wall)
                done += 1
                segments = []
                period_start = window.start_s

    def _close(self, segmenter: Segmenter, window: _Window, reading: Reading) -> Segment:
        t_start, t_end, components = segmenter.cut()
        gained = {
            name: increase(window.first.values.get(name), reading.values.get(name))
            for name in COUNTERS
        }
        extra: dict[str, Any] = {}
        for name in ("output_tokens", "input_tokens"):
            if gained[name] is not None:
                extra[name] = max(0, round(gained[name] or 0.0))
        if window.utilisation:
            extra["utilisation"] = min(
                1.0, max(0.0, math.fsum(window.utilisation) / len(window.utilisation))
            )
        if self.options.metric_names.get("running"):
            extra["idle_s"] = min(window.idle_s, t_end - t_start)
        requests = max(0, round(gained["requests"] or 0.0))
        if self.metrics is not None:
            self.metrics.observe(t_start, t_end, components, requests)
        return Segment(t_start, t_end, components, requests, None, extra)

    def _period(
        self, segments: list[Segment], anchor_mono: float, anchor_wall: datetime
    ) -> PeriodOutcome:
        def wall_at(t_s: float) -> datetime:
            return anchor_wall + timedelta(seconds=t_s - anchor_mono)

        started, ended = wall_at(segments[0].t_start_s), wall_at(segments[-1].t_end_s)
        served = fold_empty(segments)
        if len(served) < 2:
            reason = (
                f"{sum(s.units for s in segments)} request(s) in {len(segments)} window(s): an "
                "operational label needs requests in at least 2 windows"
            )
            if self._last is not None and self._last.values.get("requests") is None:
                reason += f"; {absent_requests_note(self.options.metric_names)}"
            logger.warning("period %s to %s: no label: %s", iso(started), iso(ended), reason)
            if self.metrics is not None:
                self.metrics.labels.labels("skipped").inc()
            return PeriodOutcome(iso(started), iso(ended), None, skipped_because=reason)
        label = self.label(served, started, ended, anchor_mono, anchor_wall)
        _, envelope_path = write_signed(label, self.private_key, self.options.out_dir)
        if self.metrics is not None:
            self.metrics.labels.labels("signed").inc()
        base = None
        if self.options.submit:
            base = submit_envelope(self.options.registry, self.options.token, envelope_path)
            if self.metrics is not None:
                self.metrics.labels.labels("submitted").inc()
        if self.options.mlflow:
            from bench_runner.tracking import mlflow_log

            mlflow_log.log_label(
                label,
                envelope_path.read_bytes(),
                experiment=self.options.mlflow_experiment,
                registry_url=base or self.options.registry,
            )
        return PeriodOutcome(iso(started), iso(ended), label, envelope_path)

    def label(
        self,
        segments: list[Segment],
        started: datetime,
        ended: datetime,
        anchor_mono: float,
        anchor_wall: datetime,
    ) -> dict[str, Any]:
        o = self.options
        vendor, _, name = o.model.partition("/")
        engine: dict[str, Any] = {"name": o.engine, "metrics": dict(o.metric_names)}
        if o.engine_version:
            engine["version"] = o.engine_version
        ctx = RunContext(
            kind=kinds.OPERATIONAL,
            vendor=vendor,
            model_name=name,
            revision=o.revision,
            registry=o.registry,
            task=o.task,
            phase="inference",
            carbon=o.carbon,
            accelerator=self.accelerator,
            components=meter_components(self.meters),
            workload={"precision": o.precision} if o.precision else {},
            run={
                "status": "complete",
                "started_at": iso(started),
                "ended_at": iso(ended),
                "engine": engine,
            },
            flags=self.flags + [f for m in self.meters for f in m.health_flags],
            sampling_interval_s=sampling_interval_s(self.meters),
            source="carbonlabel-watch",
        )
        label = build_run_label(
            ctx, segments, idle=None, segment_s=o.window_s, label_id=str(uuid.uuid4())
        )
        if o.carbon.hourly:
            add_hourly(label, o.carbon, anchor_wall, anchor_mono)
            fill_results(label)
        return label
