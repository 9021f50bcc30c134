"""A meter whose energy follows the clock (a constant power), for tracking tests, and the script
a killed-run test runs in a subprocess."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench_runner.devices.base import Meter


class ClockCounter(Meter):
    """An energy counter at ``power_w`` on ``clock``: its energy is known at every instant."""

    component = "gpu"
    method = "nvml-energy-counter"

    def __init__(
        self,
        power_w: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        device: str = "GPU-clock",
    ) -> None:
        self.power_w_value, self.clock, self.device = power_w, clock, device
        self.t0_s = clock()
        self.starts: dict[str, float] = {}

    def energy_j(self) -> float:
        return 1_000.0 + self.power_w_value * (self.clock() - self.t0_s)

    def begin_window(self, key: str) -> None:
        self.starts[key] = self.energy_j()

    def end_window(self, key: str) -> dict[str, Any]:
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": self.starts.pop(key),
            "counter_end_j": self.energy_j(),
        }

    def power_w(self) -> float:
        return self.power_w_value


def run_forever(journal: str, key: str, out_dir: str) -> None:
    """A training loop that never ends (the test kills it)."""
    import carbonlabel

    with carbonlabel.track(
        task="text-classification",
        model="acme/killed",
        key=key,
        registry="http://testserver",
        batch_size=4,
        journal=journal,
        out_dir=out_dir,
        segment_s=0.02,
        idle_s=0.05,
        meters=[ClockCounter()],
    ) as run:
        while True:
            time.sleep(0.002)
            run.step()


if __name__ == "__main__":
    import sys

    run_forever(*sys.argv[1:4])
