"""Meter health: the thresholds and bookkeeping behind the integrity flags (``docs/meters.md``).

Pure logic, no NVML: sampler gaps and skipped ticks, bounded retries of transient errors, power
readings frozen under load, and counter resets apportioned across polls. The meters in
``sampler.py`` and ``counter.py`` use it; the flags end up in the label's ``measurement.flags``.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

logger = logging.getLogger(__name__)

#: label flags raised by the meters while they measure
FLAG_SAMPLER_GAP = "sampler-gap"
FLAG_FROZEN_READING = "frozen-reading"
FLAG_COUNTER_RESET = "counter-reset"
FLAG_TRANSIENT_ERRORS = "transient-errors"

#: a gap between two power samples longer than this many sampling intervals flags the run
#: ``sampler-gap`` (0.5 s at 10 Hz)
GAP_FLAG_INTERVALS = 5
#: a gap longer than this many intervals, and at least ``GAP_INVALID_MIN_S``, invalidates the
#: window: the run stops with an error (2 s at 10 Hz)
GAP_INVALID_INTERVALS = 20
GAP_INVALID_MIN_S = 2.0

#: retries of a transient NVML error, and the wait before each (70 ms in all, under one 10 Hz
#: tick); past them the error is raised as before
RETRY_BACKOFF_S: tuple[float, ...] = (0.01, 0.02, 0.04)

#: a power reading that has not changed for longer than this while the GPU is busy is frozen
#: (NVML's reading moves every 100 ms or so under load: the A100 capture's longest unchanged run
#: under load is 0.29 s)
FROZEN_AFTER_S = 5.0
#: while a reading stays unchanged past ``FROZEN_AFTER_S``, whether the GPU is busy is asked
#: again at most this often
FROZEN_RECHECK_S = 1.0
#: ``nvmlDeviceGetUtilizationRates().gpu`` at or above this percentage is busy
BUSY_UTILISATION_PCT = 10
#: counter meter: an unchanged reading that differs from the counter's own power (its increase
#: over the last poll interval) by more than this fraction is frozen too
COUNTER_MISMATCH_FRACTION = 0.10

#: NVML's settling delay (s): the protocol reads a trial's end edge this long after its last step,
#: so readings that lag the load (up to 1.1 s after a step on an RTX 3090; about 0.1 s on the
#: shared A100 capture) land inside the window (docs/meters.md, "Lag and settling")
NVML_SETTLE_S = 1.0

#: how often the counter meter's thread reads the counter (and the power) while windows are
#: open, so a reset is caught and apportioned
DEFAULT_COUNTER_POLL_S = 2.0

T = TypeVar("T")


def gap_invalid_s(interval_s: float) -> float:
    """The longest gap between samples a window may have at this sampling interval."""
    return max(GAP_INVALID_MIN_S, GAP_INVALID_INTERVALS * interval_s)


def gap_flag_s(interval_s: float) -> float:
    """Gaps longer than this flag the run ``sampler-gap``."""
    return GAP_FLAG_INTERVALS * interval_s


def gap_stats(times_s: Sequence[float], interval_s: float) -> tuple[float, int]:
    """The largest gap between consecutive sample times, and the ticks skipped.

    A gap of ``g`` seconds holds ``floor(g / interval_s + 0.5) - 1`` skipped ticks: ticks at the
    configured interval that gave no sample (a gap of 1.5 intervals or more misses one).
    """
    largest_s = 0.0
    skipped = 0
    for earlier, later in itertools.pairwise(times_s):
        gap_s = later - earlier
        largest_s = max(largest_s, gap_s)
        skipped += max(0, math.floor(gap_s / interval_s + 0.5 + 1e-9) - 1)
    return largest_s, skipped


class Retrier:
    """Calls a function, retrying errors that ``is_transient`` accepts, with a bounded backoff.

    Retries are counted (``retries``) so the run can be flagged ``transient-errors``; an error
    that is not transient, or one still there after the last retry, is raised.
    """

    def __init__(
        self,
        is_transient: Callable[[BaseException], bool],
        *,
        what: str,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: Sequence[float] = RETRY_BACKOFF_S,
    ) -> None:
        self._is_transient = is_transient
        self._what = what
        self._sleep = sleep
        self._backoff_s = tuple(backoff_s)
        self._lock = threading.Lock()
        self.retries = 0

    def call(self, fn: Callable[[], T]) -> T:
        for wait_s in (*self._backoff_s, None):
            try:
                return fn()
            except Exception as err:
                if wait_s is None or not self._is_transient(err):
                    raise
                with self._lock:
                    self.retries += 1
                logger.warning("%s: transient error, retrying in %g s: %s", self._what, wait_s, err)
                self._sleep(wait_s)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class FrozenSpan:
    """A power reading that stayed at ``power_w`` from ``t_start_s`` to ``t_end_s`` while busy."""

    t_start_s: float
    t_end_s: float
    power_w: float
    why: str


class FrozenWatch:
    """Watches one power reading for a value that stops changing.

    :meth:`observe` says when to ask whether the GPU is busy (the value unchanged for longer
    than ``after_s``, at most once per ``recheck_s``); :meth:`confirm` then records the run as
    frozen, and later readings of the same value extend it.
    """

    def __init__(self, after_s: float = FROZEN_AFTER_S, recheck_s: float = FROZEN_RECHECK_S):
        self.after_s = after_s
        self.recheck_s = recheck_s
        self.spans: list[FrozenSpan] = []
        self._value: float | None = None
        self._since_s = 0.0
        self._checked_s = -math.inf
        self._confirmed = False

    def observe(self, t_s: float, power_w: float) -> bool:
        """Record a reading; True when the caller should check whether the GPU is busy."""
        if power_w != self._value:
            self._value, self._since_s = power_w, t_s
            self._checked_s, self._confirmed = -math.inf, False
            return False
        if self._confirmed:
            self.spans[-1].t_end_s = t_s
            return False
        if t_s - self._since_s > self.after_s and t_s - self._checked_s >= self.recheck_s:
            self._checked_s = t_s
            return True
        return False

    @property
    def unchanged_s(self) -> tuple[float, float]:
        """(since when, at what power) the current value has been read."""
        return self._since_s, self._value if self._value is not None else math.nan

    def confirm(self, t_s: float, why: str) -> FrozenSpan:
        """The GPU is busy (``why``): the current run of one value is a frozen reading."""
        self._confirmed = True
        span = FrozenSpan(self._since_s, t_s, self._value or 0.0, why)
        self.spans.append(span)
        logger.warning(
            "power reading frozen at %.3f W for %.1f s while %s",
            span.power_w,
            t_s - span.t_start_s,
            why,
        )
        return span

    def overlapping(self, t_start_s: float, t_end_s: float) -> FrozenSpan | None:
        """The first frozen span that overlaps the window, if any."""
        for span in self.spans:
            if span.t_start_s < t_end_s and span.t_end_s > t_start_s:
                return span
        return None


@dataclass
class CounterTrack:
    """One open window of an energy counter read at its edges and polled in between.

    ``observe`` adds each increase; a decrease is a reset (the counter restarted from 0: driver
    reloaded, GPU reset): the energy between the last reading before it and the first after is
    apportioned as the larger of the counter's value after the reset (what it counted since
    restarting) and the power before the reset times the gap.
    """

    start_mj: int
    last_mj: int
    last_t_s: float
    energy_mj: float = 0.0
    polls: int = 0
    resets: int = 0
    #: the counter's power over the last interval between readings (W), for apportioning
    rate_w: float | None = None
    reset_notes: list[str] = field(default_factory=list)

    def observe(self, t_s: float, value_mj: int, *, poll: bool, power_w: float | None) -> None:
        dt_s = t_s - self.last_t_s
        if value_mj >= self.last_mj:
            delta_mj = float(value_mj - self.last_mj)
            if dt_s > 1e-3:
                self.rate_w = delta_mj / 1000.0 / dt_s
        else:
            self.resets += 1
            before_w = self.rate_w if self.rate_w is not None else (power_w or 0.0)
            delta_mj = max(float(value_mj), before_w * max(dt_s, 0.0) * 1000.0)
            self.reset_notes.append(
                f"counter went from {self.last_mj} mJ to {value_mj} mJ over {dt_s:.3f} s; "
                f"{delta_mj / 1000.0:.3f} J apportioned to that interval"
            )
        self.energy_mj += delta_mj
        self.last_mj, self.last_t_s = value_mj, t_s
        if poll:
            self.polls += 1


class HealthFlags:
    """What an NVML meter reports of its own health (``health_flags``, ``transient_retries``):
    the flags it raised under ``_lock`` and whether its ``Retrier`` had to retry."""

    _lock: threading.Lock
    _flags: set[str]
    _retrier: Retrier

    @property
    def health_flags(self) -> list[str]:
        with self._lock:
            flags = set(self._flags)
        if self._retrier.retries:
            flags.add(FLAG_TRANSIENT_ERRORS)
        return sorted(flags)

    @property
    def transient_retries(self) -> int:
        """Transient NVML errors retried so far."""
        return self._retrier.retries
