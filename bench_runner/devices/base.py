"""The meter interface every device adapter implements, and the errors they raise.

A meter measures one component (``gpu``, ``cpu`` or ``dram``) of one device over windows. Windows
are opened with ``begin_window(key)`` and closed with ``end_window(key)``, which returns the
window's trace component exactly as the label schema defines it:

- a counter reading: ``{"name", "method", "device", "counter_start_j", "counter_end_j"}`` plus
  ``"counter_range_j"`` where the counter wraps (RAPL);
- power samples: ``{"name", "method", "device", "samples": [[t_s, power_w], ...]}`` with ``t_s``
  on the meter's monotonic clock, clipped to the window, with interpolated samples at its edges.

Units: joules (J), watts (W), seconds (s) on ``time.monotonic`` unless a clock is injected.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]
TraceComponent = dict[str, Any]


class MeterError(RuntimeError):
    """A meter cannot measure; the message says why and what to do."""


class NvmlUnavailable(MeterError):
    """NVML (the NVIDIA driver's management library) cannot be loaded or initialised."""


class MigEnabled(MeterError):
    """The GPU is in MIG mode: NVML reports energy for the whole GPU, not for an instance."""


class ForeignProcesses(MeterError):
    """Other processes use the GPU; their energy would be counted as ours."""


class RaplUnavailable(MeterError):
    """No RAPL domains under /sys/class/powercap, or they cannot be read."""


class RaplPermissionError(RaplUnavailable):
    """RAPL energy files exist but are readable by root only."""


class Meter(abc.ABC):
    """One component of one device, measured over windows."""

    #: "gpu", "cpu" or "dram"
    component: str
    #: "nvml-energy-counter", "nvml-power-sampling", "rapl" or "estimate"
    method: str
    #: a stable device identifier (GPU UUID, RAPL domain name, ...)
    device: str
    #: how long after a load change the meter's reading has caught up (s): the protocol waits
    #: this long before reading a trial's end edge (``Protocol.settle_s``). 0: no lag to speak of
    settle_s: float = 0.0

    @abc.abstractmethod
    def begin_window(self, key: str) -> None:
        """Start a measurement window called ``key``."""

    @abc.abstractmethod
    def end_window(self, key: str) -> TraceComponent:
        """End window ``key`` and return its trace component (see the module docstring)."""

    def power_w(self) -> float | None:
        """The latest power reading (W) for live display, or None if unknown."""
        return None

    @property
    def health_flags(self) -> list[str]:
        """Label flags this meter raised while measuring (``sampler-gap``, ``frozen-reading``,
        ``counter-reset``, ``transient-errors``; see ``health.py``), in a stable order."""
        return []

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release threads and handles."""

    @property
    def measured(self) -> bool:
        return self.method != "estimate"


def clip_samples(
    samples: list[tuple[float, float]], t_start_s: float, t_end_s: float
) -> list[list[float]]:
    """Samples inside [t_start_s, t_end_s], with linearly interpolated samples at both edges.

    ``samples`` are (t_s, power_w) in time order. Before the first sample or after the last, the
    nearest sample's power is held. Returns at least the two edge samples.
    """
    if not samples:
        raise MeterError("no power samples were taken in the window")
    if t_end_s < t_start_s:
        raise ValueError("window ends before it starts")

    def power_at(t: float) -> float:
        if t <= samples[0][0]:
            return samples[0][1]
        if t >= samples[-1][0]:
            return samples[-1][1]
        lo, hi = 0, len(samples) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if samples[mid][0] <= t:
                lo = mid
            else:
                hi = mid
        (t0, p0), (t1, p1) = samples[lo], samples[hi]
        return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    inner = [[t, p] for t, p in samples if t_start_s < t < t_end_s]
    return [[t_start_s, power_at(t_start_s)], *inner, [t_end_s, power_at(t_end_s)]]
