"""Meters of one node in a distributed run: a guard that records a meter's failure instead of
raising it, and the test-only fake meter.

Test only: ``CARBONLABEL_TEST_FAKE_POWER_W`` replaces a node's meters by one constant-power meter
(method ``estimate``, so a label built from it is flagged estimated and never graded);
``CARBONLABEL_TEST_FAKE_METER_FAIL`` makes it fail at a window (its key, e.g. ``trial-1``) or, with
``exit``, makes its rank die before it sends its traces. Production runs never set them.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from bench_runner.devices.base import Clock, Meter, MeterError, TraceComponent

if TYPE_CHECKING:
    from bench_runner.devices.discover import MeterSet

TEST_POWER_ENV = "CARBONLABEL_TEST_FAKE_POWER_W"
TEST_FAIL_ENV = "CARBONLABEL_TEST_FAKE_METER_FAIL"


class GuardedMeter(Meter):
    """A node's meter in a distributed run: a failure is recorded, not raised, so the rank stays
    in step with the others and rank 0 can name the node whose traces are missing."""

    def __init__(self, inner: Meter, errors: list[str]) -> None:
        self.inner = inner
        self.component, self.method, self.device = inner.component, inner.method, inner.device
        self.settle_s = float(getattr(inner, "settle_s", 0.0))
        self.failed = False
        self._errors = errors

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def health_flags(self) -> list[str]:
        return list(getattr(self.inner, "health_flags", []))

    def _fail(self, key: str, exc: Exception) -> None:
        if not self.failed:
            self.failed = True
            self._errors.append(
                f"its {self.component} meter ({self.device}) failed at {key}: {exc}"
            )

    def begin_window(self, key: str) -> None:
        if self.failed:
            return
        try:
            self.inner.begin_window(key)
        except Exception as exc:  # any failure means this node's traces are missing
            self._fail(key, exc)

    def end_window(self, key: str) -> TraceComponent:
        if self.failed:
            return {}
        try:
            return self.inner.end_window(key)
        except Exception as exc:
            self._fail(key, exc)
            return {}

    def power_w(self) -> float | None:
        if self.failed:
            return None
        try:
            return self.inner.power_w()
        except Exception:
            return None

    def close(self) -> None:
        self.inner.close()


class _TestFakeMeter(Meter):
    """TEST ONLY (``CARBONLABEL_TEST_FAKE_POWER_W``): a constant power, reported as an estimate
    so a label built from it is flagged estimated and never graded."""

    component = "cpu"
    method = "estimate"
    device = "test-fake-meter"

    def __init__(self, power_w: float, fail_at: str | None, clock: Clock = time.monotonic) -> None:
        self.power, self.fail_at, self.clock = power_w, fail_at, clock
        self.starts: dict[str, float] = {}

    def begin_window(self, key: str) -> None:
        if key == self.fail_at:
            raise MeterError(f"the test fake meter fails at {key} ({TEST_FAIL_ENV})")
        self.starts[key] = self.clock()

    def end_window(self, key: str) -> TraceComponent:
        t0, t1 = self.starts.pop(key), self.clock()
        samples = [[t0, self.power], [t1, self.power]]
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "samples": samples,
        }

    def power_w(self) -> float | None:
        return self.power

    def close(self) -> None:
        if self.fail_at == "exit":  # a metering rank that dies before sending its traces
            os._exit(3)


def test_meter_set() -> MeterSet | None:
    raw = os.environ.get(TEST_POWER_ENV)
    if not raw:
        return None
    from bench_runner.devices.discover import MeterSet

    try:
        power = float(raw)
    except ValueError:
        raise MeterError(f"{TEST_POWER_ENV}={raw!r} is not a power in W") from None
    meter = _TestFakeMeter(power, os.environ.get(TEST_FAIL_ENV))
    why = f"TEST ONLY: {TEST_POWER_ENV} replaces this node's meters by a constant {power:g} W"
    return MeterSet(meters=[meter], estimated=True, reasons=[why])
