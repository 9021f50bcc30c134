"""Overhead of measuring: the same reference workload bare, under carbonlabel's meters, and under
CodeCarbon's OfflineEmissionsTracker, interleaved in one run.

Usage: .venv/bin/python bench/overhead.py [--task text-classification] [--steps 60] [--rounds 7]
Needs PyTorch and CodeCarbon (`pip install codecarbon`; not a dependency of the project).
Reports each variant's median wall time and its overhead relative to the bare runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable

from bench_runner.devices.discover import discover_meters
from bench_runner.workloads.plugin import build_workload


def timed(workload, steps: int, around: Callable[[Callable[[], None]], None]) -> float:  # type: ignore[no-untyped-def]
    def body() -> None:
        for _ in range(steps):
            workload.step()
        workload.synchronize()

    start = time.perf_counter()
    around(body)
    return time.perf_counter() - start


def bare(body: Callable[[], None]) -> None:
    body()


def make_runner_meters(gpu: bool) -> Callable[[Callable[[], None]], None]:
    def around(body: Callable[[], None]) -> None:
        meters = discover_meters(gpu=gpu)
        try:
            for m in meters:
                m.begin_window("w")
            body()
            for m in meters:
                m.end_window("w")
        finally:
            meters.close()

    return around


def make_codecarbon() -> Callable[[Callable[[], None]], None]:
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    def around(body: Callable[[], None]) -> None:
        tracker = OfflineEmissionsTracker(
            country_iso_code="FRA", save_to_file=False, log_level="error", measure_power_secs=1
        )
        tracker.start()
        try:
            body()
        finally:
            tracker.stop()

    return around


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="text-classification")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    workload = build_workload(task=args.task, phase="inference")
    gpu = workload.device.startswith("cuda")
    variants: dict[str, Callable[[Callable[[], None]], None]] = {
        "bare": bare,
        "carbonlabel meters": make_runner_meters(gpu),
        "CodeCarbon OfflineEmissionsTracker": make_codecarbon(),
    }
    for _ in range(10):  # warm-up
        workload.step()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no variant always first
        for name in order:
            times[name].append(timed(workload, args.steps, variants[name]))
    base = statistics.median(times["bare"])
    print(f"# Overhead: {args.task} inference, {args.steps} steps x {args.rounds} rounds, interleaved")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"device {workload.device}, Python {platform.python_version()}")
    print()
    print("| variant | median s | min s | max s | overhead vs bare |")
    print("|---|---|---|---|---|")
    for name in names:
        t = times[name]
        med = statistics.median(t)
        print(f"| {name} | {med:.3f} | {min(t):.3f} | {max(t):.3f} | {100 * (med - base) / base:+.2f}% |")


if __name__ == "__main__":
    main()
