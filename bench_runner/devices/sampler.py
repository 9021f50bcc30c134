"""GPU power sampled from NVML (``nvml-power-sampling``) where the energy counter cannot be used.

A daemon thread polls ``nvmlDeviceGetPowerUsage`` (mW), 10 Hz by default, and each window
returns its samples for trapezoid integration. NVML is reached through
:mod:`bench_runner.devices.nvml` only.

Health (``docs/meters.md``, thresholds in :mod:`bench_runner.devices.health`): each window
records its largest gap between samples and its skipped ticks; a gap over 5 intervals flags the
run ``sampler-gap`` and one over ``max(2 s, 20 intervals)`` fails the window. Transient NVML
errors are retried a bounded number of times (flag ``transient-errors``). A reading that stays
the same for more than 5 s while the GPU's utilisation says busy is frozen (flag
``frozen-reading``), and a window it overlaps fails: its samples cannot be trusted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from bench_runner.devices import health, nvml
from bench_runner.devices.base import Clock, Meter, MeterError, TraceComponent, clip_samples
from bench_runner.devices.nvml import MAX_SAMPLING_INTERVAL_S, GpuInfo, Sleep

logger = logging.getLogger(__name__)


class NvmlSamplingMeter(health.HealthFlags, Meter):
    """GPU power polled from NVML in a daemon thread; windows return their samples.

    ``interval_s`` defaults to 0.1 s (10 Hz); slower intervals need ``allow_slow_interval``.
    Timestamps come from ``clock`` (``time.monotonic``). A sample is also taken at every window
    edge, so a window always has readings at both ends. Samples older than the oldest open window
    are dropped (the one just before it is kept for interpolation), so memory stays bounded by
    the longest open window. ``start=False`` leaves the thread off: the caller drives
    :meth:`sample`. ``sleep`` replaces the thread's wait between samples (tests); by default the
    thread waits on its stop event so :meth:`close` returns at once. ``retry_sleep`` is the wait
    between retries of a transient NVML error.
    """

    component = "gpu"
    settle_s = health.NVML_SETTLE_S
    method = "nvml-power-sampling"

    def __init__(
        self,
        gpu: GpuInfo,
        *,
        interval_s: float = MAX_SAMPLING_INTERVAL_S,
        allow_slow_interval: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        retry_sleep: Sleep = time.sleep,
        start: bool = True,
        fallback_reason: str | None = None,
        fallback_detail: str | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s}")
        if interval_s > MAX_SAMPLING_INTERVAL_S and not allow_slow_interval:
            raise ValueError(
                f"interval_s={interval_s} is slower than {MAX_SAMPLING_INTERVAL_S} s (10 Hz); "
                "pass allow_slow_interval=True to accept the larger integration error"
            )
        nvml.ensure_init()
        self.gpu = gpu
        self.device = gpu.uuid
        self.interval_s = float(interval_s)
        self.fallback_reason = fallback_reason
        self.fallback_detail = fallback_detail
        self._handle = nvml.device_handle(gpu.index)
        self._clock = clock
        self._stop = threading.Event()
        self._sleep: Sleep = sleep if sleep is not None else self._wait
        self._lock = threading.Lock()
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._windows: dict[str, float] = {}
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._retrier = health.Retrier(
            nvml.is_transient, what=f"GPU {gpu.index} power", sleep=retry_sleep
        )
        self._frozen = health.FrozenWatch()
        self._utilisation_known = True
        self._flags: set[str] = set()
        if start:
            self.start()

    # sampling

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _prune_locked(self) -> None:
        cutoff = min(self._windows.values()) if self._windows else float("inf")
        while len(self._samples) >= 2 and self._samples[1][0] <= cutoff:
            self._samples.popleft()

    def _read_locked(self) -> tuple[float, float]:
        def timed() -> tuple[float, float]:
            t_s = self._clock()
            return t_s, nvml.read_power_w(self._handle)

        try:
            return self._retrier.call(timed)
        except nvml.NVMLError as err:
            raise nvml.nvml_failure(f"reading the power of GPU {self.gpu.index}", err) from err

    def _busy_locked(self) -> str | None:
        """Why the GPU counts as busy now (its utilisation), or None."""
        if not self._utilisation_known:
            return None
        try:
            pct = self._retrier.call(lambda: nvml.read_utilisation_pct(self._handle))
        except nvml.NVMLError as err:
            if not nvml.is_unsupported(err):
                raise nvml.nvml_failure(
                    f"reading the utilisation of GPU {self.gpu.index}", err
                ) from err
            self._utilisation_known = False
            logger.info(
                "GPU %s reports no utilisation (%s): frozen readings go undetected",
                self.gpu.index,
                err,
            )
            return None
        if pct >= health.BUSY_UTILISATION_PCT:
            return f"GPU {self.gpu.index} utilisation is {pct} %"
        return None

    def sample(self) -> tuple[float, float]:
        """Take one reading now and keep it; returns (t_s, power_w)."""
        with self._lock:
            t_s, power_w = self._read_locked()
            if self._samples and t_s < self._samples[-1][0]:
                raise MeterError("the clock went backwards between power samples")
            self._samples.append((t_s, power_w))
            self._prune_locked()
            if self._frozen.observe(t_s, power_w) and (why := self._busy_locked()):
                self._frozen.confirm(t_s, why)
                self._flags.add(health.FLAG_FROZEN_READING)
            return t_s, power_w

    def _run(self) -> None:
        next_s = self._clock()
        while not self._stop.is_set():
            try:
                self.sample()
            except MeterError as err:
                self._error = err
                logger.error("GPU %s power sampling stopped: %s", self.gpu.index, err)
                return
            next_s += self.interval_s
            delay_s = next_s - self._clock()
            if delay_s <= 0:  # fell behind: skip the missed ticks instead of bursting
                next_s = self._clock()
                continue
            self._sleep(delay_s)

    def start(self) -> None:
        """Start the sampling thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"nvml-power-sampler-{self.gpu.index}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the sampling thread to stop after its current sample (does not wait)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(1.0, 5 * self.interval_s))

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise MeterError(f"GPU power sampling failed: {self._error}") from self._error

    # windows

    def begin_window(self, key: str) -> None:
        self._raise_if_failed()
        t_s, _ = self.sample()
        with self._lock:
            if key in self._windows:
                raise MeterError(f"window {key!r} is already open")
            self._windows[key] = t_s

    def end_window(self, key: str) -> TraceComponent:
        self._raise_if_failed()
        t_end_s, _ = self.sample()
        with self._lock:
            if key not in self._windows:
                raise MeterError(f"window {key!r} was never opened")
            t_start_s = self._windows.pop(key)
            samples = list(self._samples)
            self._prune_locked()
            frozen = self._frozen.overlapping(t_start_s, t_end_s)
        times = [t for t, _ in samples if t_start_s <= t <= t_end_s]
        largest_gap_s, skipped_ticks = health.gap_stats(times, self.interval_s)
        self._check_window(key, largest_gap_s, frozen)
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "samples": clip_samples(samples, t_start_s, t_end_s),
            "largest_gap_s": largest_gap_s,
            "skipped_ticks": skipped_ticks,
        }

    def _check_window(
        self, key: str, largest_gap_s: float, frozen: health.FrozenSpan | None
    ) -> None:
        """Flag or refuse the window: frozen readings and gaps past the bound invalidate it."""
        where = f"GPU {self.gpu.index} power sampling, window {key!r}"
        if frozen is not None:
            raise MeterError(
                f"{where}: the power reading stayed at {frozen.power_w:g} W for "
                f"{frozen.t_end_s - frozen.t_start_s:.1f} s while {frozen.why} (frozen sensor "
                f"reading, over {health.FROZEN_AFTER_S:g} s): the window's samples cannot be "
                "trusted, so the run stops. Check the GPU and driver (nvidia-smi -q -d POWER), "
                "then measure again."
            )
        if largest_gap_s > health.gap_invalid_s(self.interval_s):
            raise MeterError(
                f"{where}: {largest_gap_s:.2f} s without a power sample (the limit is "
                f"{health.gap_invalid_s(self.interval_s):g} s at a {self.interval_s:g} s "
                "interval): the sampler stalled, so the window's energy would be interpolated "
                "across the gap; the run stops. Is the machine overloaded?"
            )
        if largest_gap_s > health.gap_flag_s(self.interval_s):
            with self._lock:
                self._flags.add(health.FLAG_SAMPLER_GAP)
            logger.warning(
                "%s: largest gap between samples %.2f s (over %g s): flagged %s",
                where,
                largest_gap_s,
                health.gap_flag_s(self.interval_s),
                health.FLAG_SAMPLER_GAP,
            )

    def power_w(self) -> float | None:
        with self._lock:
            return self._samples[-1][1] if self._samples else None

    @property
    def buffered_samples(self) -> int:
        """How many samples are held now (bounded by the oldest open window)."""
        with self._lock:
            return len(self._samples)
