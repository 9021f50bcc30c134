"""Estimated power (method ``estimate``), used only when nothing can be measured.

An estimate is a documented model, not a measurement: labels built from it carry the
``estimated`` flag and get no grade. Both models give one power per window (constant over the
window), so the trace is two samples, ``[[t_start_s, P], [t_end_s, P]]``, whose trapezoid is
exactly ``P * (t_end_s - t_start_s)``, the model's prediction.

GPU (per GPU)::

    power_w = idle_w + (tdp_w - idle_w) * utilisation

``tdp_w`` must be given (NVML is not there to tell it). ``utilisation`` is a callable returning
the mean utilisation in [0, 1] over ``(t_start_s, t_end_s)``; the default is 1.0 during every
window, i.e. the GPU at its TDP, which errs high. ``idle_w`` defaults to
``DEFAULT_GPU_IDLE_FRACTION * tdp_w``.

CPU (the whole machine)::

    power_w = cpu_tdp_w * utilisation

``utilisation`` is the busy share of all CPU time over the window, from ``/proc/stat`` deltas
(busy = user + nice + system + irq + softirq + steal; total adds idle + iowait). When the TDP is
unknown, ``cpu_tdp_w = DEFAULT_CPU_W_PER_CORE * physical cores``. The model ignores the CPU's
idle power and all DRAM power; ``/proc/stat`` is machine-wide (other processes count too).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_runner.devices.base import Clock, Meter, MeterError, TraceComponent

#: W per physical core when the CPU's TDP is unknown: the "Any" CPU of the Green Algorithms
#: calculator (Lannelongue, Grealey & Inouye, "Green Algorithms: Quantifying the Carbon Footprint
#: of Computation", Adv. Sci. 2021; data/v3.0/TDP_cpu.csv), at the high end of its server CPUs
#: (Xeon and EPYC list 4-15 W per core, i.e. TDP / cores), so the estimate errs high.
DEFAULT_CPU_W_PER_CORE = 12.0
#: idle power of a GPU as a share of its TDP when not given. The A100 of the replay trace in
#: tests/data (Yang, Adámek & Armour, SC'24) idles at 56 W, 14-22 % of the 250-400 W TDPs of the
#: A100 variants; 0.2 is in that range. It only matters when ``utilisation`` is below 1.
DEFAULT_GPU_IDLE_FRACTION = 0.2

#: (t_start_s, t_end_s) -> mean utilisation in [0, 1]
Utilisation = Callable[[float, float], float]


def full_utilisation(_t_start_s: float, _t_end_s: float) -> float:
    """The default GPU utilisation: 1.0 during every window (conservative)."""
    return 1.0


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU time from the ``cpu`` line of /proc/stat, in clock ticks."""

    busy: int
    total: int


def read_proc_stat(path: Path | str = "/proc/stat") -> CpuTimes:
    """Machine-wide busy and total CPU ticks. ``guest`` time is already inside ``user``."""
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]] + [0] * (8 - len(fields[1:9]))
            user, nice, system, idle, iowait, irq, softirq, steal = values
            busy = user + nice + system + irq + softirq + steal
            return CpuTimes(busy=busy, total=busy + idle + iowait)
    raise MeterError(f"no 'cpu' line in {path}")


def physical_core_count(path: Path | str = "/proc/cpuinfo") -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo, or None if it does not say."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def _constant_samples(t_start_s: float, t_end_s: float, power_w: float) -> list[list[float]]:
    return [[t_start_s, power_w], [t_end_s, power_w]]


class _WindowedEstimate(Meter):
    method = "estimate"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._starts_s: dict[str, float] = {}

    def _open(self, key: str) -> float:
        t_s = self._clock()
        with self._lock:
            if key in self._starts_s:
                raise MeterError(f"window {key!r} is already open")
            self._starts_s[key] = t_s
        return t_s

    def _close(self, key: str) -> tuple[float, float]:
        t_end_s = self._clock()
        with self._lock:
            if key not in self._starts_s:
                raise MeterError(f"window {key!r} was never opened")
            return self._starts_s.pop(key), t_end_s

    def _component(self, t_start_s: float, t_end_s: float, power_w: float) -> TraceComponent:
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "samples": _constant_samples(t_start_s, t_end_s, power_w),
        }


class EstimatedGpuMeter(_WindowedEstimate):
    """One GPU, estimated as ``idle_w + (tdp_w - idle_w) * utilisation``."""

    component = "gpu"

    def __init__(
        self,
        *,
        tdp_w: float,
        idle_w: float | None = None,
        utilisation: Utilisation = full_utilisation,
        device: str = "gpu-estimate",
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(clock)
        if not tdp_w > 0:
            raise ValueError("tdp_w must be > 0")
        idle = DEFAULT_GPU_IDLE_FRACTION * tdp_w if idle_w is None else float(idle_w)
        if not 0 <= idle <= tdp_w:
            raise ValueError("idle_w must be between 0 and tdp_w")
        self.tdp_w = float(tdp_w)
        self.idle_w = idle
        self.utilisation = utilisation
        self.device = device
        self.model = (
            f"gpu power_w = {self.idle_w:g} W idle + ({self.tdp_w:g} W TDP - {self.idle_w:g} W)"
            " x utilisation"
            + (
                " (utilisation 1.0: conservative default)"
                if utilisation is full_utilisation
                else ""
            )
        )

    def predicted_power_w(self, utilisation: float) -> float:
        u = min(max(float(utilisation), 0.0), 1.0)
        return self.idle_w + (self.tdp_w - self.idle_w) * u

    def begin_window(self, key: str) -> None:
        self._open(key)

    def end_window(self, key: str) -> TraceComponent:
        t_start_s, t_end_s = self._close(key)
        power_w = self.predicted_power_w(self.utilisation(t_start_s, t_end_s))
        return self._component(t_start_s, t_end_s, power_w)

    def power_w(self) -> float | None:
        now_s = self._clock()
        return self.predicted_power_w(self.utilisation(now_s, now_s))


class EstimatedCpuMeter(_WindowedEstimate):
    """The machine's CPUs, estimated as ``tdp_w * utilisation`` (utilisation from /proc/stat)."""

    component = "cpu"

    def __init__(
        self,
        *,
        tdp_w: float | None = None,
        w_per_core: float = DEFAULT_CPU_W_PER_CORE,
        cores: int | None = None,
        stat_reader: Callable[[], CpuTimes] = read_proc_stat,
        device: str = "cpu-estimate",
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(clock)
        if tdp_w is None:
            counted = cores if cores is not None else physical_core_count()
            source = "physical cores" if counted is not None else "logical CPUs (os.cpu_count)"
            n = counted if counted is not None else (os.cpu_count() or 1)
            if n <= 0 or not w_per_core > 0:
                raise ValueError("cores and w_per_core must be > 0")
            self.tdp_w = w_per_core * n
            self.tdp_source = (
                f"unknown TDP: {w_per_core:g} W per core x {n} {source} (Green Algorithms default)"
            )
        else:
            if not tdp_w > 0:
                raise ValueError("tdp_w must be > 0")
            self.tdp_w = float(tdp_w)
            self.tdp_source = "declared"
        self.device = device
        self._stat_reader = stat_reader
        self._stat_starts: dict[str, CpuTimes] = {}
        self._last_stat = stat_reader()
        self.model = f"cpu power_w = {self.tdp_w:g} W ({self.tdp_source}) x utilisation"

    @staticmethod
    def utilisation_between(start: CpuTimes, end: CpuTimes) -> float:
        """Busy share of CPU time between two readings; 1.0 when no tick elapsed."""
        total = end.total - start.total
        if total <= 0:
            return 1.0
        return min(max((end.busy - start.busy) / total, 0.0), 1.0)

    def begin_window(self, key: str) -> None:
        stat = self._stat_reader()
        self._open(key)
        with self._lock:
            self._stat_starts[key] = stat

    def end_window(self, key: str) -> TraceComponent:
        stat = self._stat_reader()
        t_start_s, t_end_s = self._close(key)
        with self._lock:
            start = self._stat_starts.pop(key)
        power_w = self.tdp_w * self.utilisation_between(start, stat)
        return self._component(t_start_s, t_end_s, power_w)

    def power_w(self) -> float | None:
        stat = self._stat_reader()
        with self._lock:
            previous, self._last_stat = self._last_stat, stat
        return self.tdp_w * self.utilisation_between(previous, stat)
