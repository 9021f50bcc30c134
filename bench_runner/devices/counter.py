"""GPU energy from NVML's energy counter (``nvml-energy-counter``), read at window edges.

``nvmlDeviceGetTotalEnergyConsumption`` counts mJ since the driver was loaded (Volta and newer).
NVML is reached through :mod:`bench_runner.devices.nvml` only.

Health (``docs/meters.md``, thresholds in :mod:`bench_runner.devices.health`): a daemon thread
polls the counter every ``poll_interval_s`` (2 s by default) so a reset inside a window (the
counter going down: driver reloaded, GPU reset) is caught; the window's energy is then summed
over the polls, the reset's interval apportioned, and the run flagged ``counter-reset``. Each
poll also reads the power: a reading unchanged for more than 5 s while the GPU is busy (its
utilisation, or a counter that advances at another rate) flags ``frozen-reading`` (the energy
comes from the counter, so the window stands). Transient NVML errors are retried a bounded number
of times (flag ``transient-errors``).
"""

from __future__ import annotations

import logging
import threading
import time

from bench_runner.devices import health, nvml
from bench_runner.devices.base import Clock, Meter, MeterError, TraceComponent
from bench_runner.devices.nvml import GpuInfo, Sleep

logger = logging.getLogger(__name__)


class NvmlCounterMeter(health.HealthFlags, Meter):
    """GPU energy from NVML's energy counter, read at window edges and polled in between.

    ``poll_interval_s`` (None: no thread; the caller may call :meth:`poll`), ``clock`` (the
    polls' timestamps) and ``retry_sleep`` (the wait between retries of a transient error) are
    injectable for tests.
    """

    component = "gpu"
    settle_s = health.NVML_SETTLE_S
    method = "nvml-energy-counter"
    fallback_reason: str | None = None
    fallback_detail: str | None = None

    def __init__(
        self,
        gpu: GpuInfo,
        *,
        clock: Clock = time.monotonic,
        poll_interval_s: float | None = health.DEFAULT_COUNTER_POLL_S,
        retry_sleep: Sleep = time.sleep,
    ) -> None:
        if poll_interval_s is not None and not poll_interval_s > 0:
            raise ValueError("poll_interval_s must be > 0 or None")
        nvml.ensure_init()
        self.gpu = gpu
        self.device = gpu.uuid
        self.poll_interval_s = poll_interval_s
        self._handle = nvml.device_handle(gpu.index)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, health.CounterTrack] = {}
        self._retrier = health.Retrier(
            nvml.is_transient, what=f"GPU {gpu.index} energy counter", sleep=retry_sleep
        )
        self._frozen = health.FrozenWatch()
        self._previous_poll: tuple[float, int] | None = None
        self._utilisation_known = True
        self._flags: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_interval_s is not None:
            self._thread = threading.Thread(
                target=self._poll_loop,
                args=(poll_interval_s,),
                name=f"nvml-counter-poll-{gpu.index}",
                daemon=True,
            )
            self._thread.start()

    # reading

    def _read_mj(self) -> int:
        try:
            return self._retrier.call(lambda: nvml.read_counter_mj(self._handle))
        except nvml.NVMLError as err:
            raise nvml.nvml_failure(
                f"reading the energy counter of GPU {self.gpu.index}", err
            ) from err

    def read_energy_j(self) -> float:
        """The counter now, in J (NVML counts mJ since the driver was loaded)."""
        return self._read_mj() / 1000.0

    def _observe_locked(self, t_s: float, value_mj: int, *, poll: bool) -> None:
        power_w = None
        for track in self._windows.values():
            if value_mj < track.last_mj and power_w is None:
                power_w = self.power_w()
            track.observe(t_s, value_mj, poll=poll, power_w=power_w)

    def poll(self) -> int:
        """Read the counter (and the power) now: resets are counted for every open window,
        frozen power readings looked for. Returns the counter in mJ."""
        with self._lock:
            t_s = self._clock()
            value_mj = self._read_mj()
            self._observe_locked(t_s, value_mj, poll=True)
            previous, self._previous_poll = self._previous_poll, (t_s, value_mj)
            self._watch_power_locked(t_s, value_mj, previous)
            return value_mj

    def _poll_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll()
            except MeterError as err:
                logger.warning("GPU %s counter poll failed: %s", self.gpu.index, err)

    # frozen power readings

    def _watch_power_locked(
        self, t_s: float, value_mj: int, previous: tuple[float, int] | None
    ) -> None:
        try:
            power_w = self._retrier.call(lambda: nvml.read_power_w(self._handle))
        except nvml.NVMLError:
            return  # the power reading is for display and this check only
        if not self._frozen.observe(t_s, power_w):
            return
        why = self._busy_locked()
        if why is None and previous is not None and value_mj >= previous[1]:
            dt_s = t_s - previous[0]
            rate_w = (value_mj - previous[1]) / 1000.0 / dt_s if dt_s > 0 else power_w
            if abs(rate_w - power_w) > health.COUNTER_MISMATCH_FRACTION * max(power_w, 1.0):
                why = f"the energy counter advanced at {rate_w:.1f} W"
        if why is not None:
            self._frozen.confirm(t_s, why)
            self._flags.add(health.FLAG_FROZEN_READING)

    def _busy_locked(self) -> str | None:
        if not self._utilisation_known:
            return None
        try:
            pct = self._retrier.call(lambda: nvml.read_utilisation_pct(self._handle))
        except nvml.NVMLError as err:
            self._utilisation_known = not nvml.is_unsupported(err)
            return None
        if pct >= health.BUSY_UTILISATION_PCT:
            return f"GPU {self.gpu.index} utilisation is {pct} %"
        return None

    # windows

    def begin_window(self, key: str) -> None:
        with self._lock:
            if key in self._windows:
                raise MeterError(f"window {key!r} is already open")
            t_s = self._clock()
            value_mj = self._read_mj()
            self._observe_locked(t_s, value_mj, poll=False)
            self._windows[key] = health.CounterTrack(
                start_mj=value_mj, last_mj=value_mj, last_t_s=t_s
            )

    def end_window(self, key: str) -> TraceComponent:
        with self._lock:
            if key not in self._windows:
                raise MeterError(f"window {key!r} was never opened")
            t_s = self._clock()
            value_mj = self._read_mj()
            self._observe_locked(t_s, value_mj, poll=False)
            track = self._windows.pop(key)
            if track.resets:
                self._flags.add(health.FLAG_COUNTER_RESET)
        component: TraceComponent = {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": track.start_mj / 1000.0,
            "counter_end_j": value_mj / 1000.0,
            "polls": track.polls,
            "resets": track.resets,
        }
        if track.resets:
            component["energy_j"] = track.energy_mj / 1000.0
            logger.warning(
                "the energy counter of GPU %s was reset %d time(s) in window %r (%s); its "
                "energy, %.3f J, is summed over %d polls: flagged %s",
                self.gpu.index,
                track.resets,
                key,
                "; ".join(track.reset_notes),
                track.energy_mj / 1000.0,
                track.polls,
                health.FLAG_COUNTER_RESET,
            )
        return component

    def power_w(self) -> float | None:
        try:
            return nvml.read_power_w(self._handle)
        except nvml.NVMLError:
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
