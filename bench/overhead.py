"""Overhead of measuring: the same reference workload bare, under carbonlabel's meters, and under
CodeCarbon's OfflineEmissionsTracker, interleaved in one run.

Usage: .venv/bin/python bench/overhead.py [--task text-classification] [--steps 60] [--rounds 7]
Needs PyTorch and CodeCarbon (`pip install codecarbon`; not a dependency of the project).
Each variant measures the same block of steps; meters and trackers are set up once, as in a real
run, and each block is one measurement window (carbonlabel: begin/end_window on every meter;
CodeCarbon: start_task/stop_task). Reports each variant's median and minimum wall time and its
overhead relative to the bare blocks. Run it on a quiet machine: the figures are small.
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


def make_runner_meters(
    gpu: bool,
) -> tuple[Callable[[Callable[[], None]], None], Callable[[], None]]:
    """carbonlabel's meters, discovered once (as a run does), one window per measured block."""
    meters = discover_meters(gpu=gpu)
    count = 0

    def around(body: Callable[[], None]) -> None:
        nonlocal count
        count += 1
        for m in meters:
            m.begin_window(f"w{count}")
        body()
        for m in meters:
            m.end_window(f"w{count}")

    return around, meters.close


def make_codecarbon() -> tuple[Callable[[Callable[[], None]], None], Callable[[], None]]:
    """CodeCarbon's tracker, started once, one task (start_task/stop_task) per measured block."""
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = OfflineEmissionsTracker(
        country_iso_code="FRA", save_to_file=False, log_level="error", measure_power_secs=1
    )
    tracker.start()
    count = 0

    def around(body: Callable[[], None]) -> None:
        nonlocal count
        count += 1
        tracker.start_task(f"block-{count}")
        body()
        tracker.stop_task()

    return around, tracker.stop


def bootstrap_median_ci(values: list[float], draws: int = 5000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median (fixed seed: the same data, the same CI)."""
    import random

    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="text-classification")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    workload = build_workload(task=args.task, phase="inference")
    gpu = workload.device.startswith("cuda")
    runner_around, runner_close = make_runner_meters(gpu)
    codecarbon_around, codecarbon_close = make_codecarbon()
    variants: dict[str, Callable[[Callable[[], None]], None]] = {
        "bare": bare,
        "carbonlabel meters": runner_around,
        "CodeCarbon OfflineEmissionsTracker": codecarbon_around,
    }
    for _ in range(10):  # warm-up
        workload.step()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no variant always first
        for name in order:
            times[name].append(timed(workload, args.steps, variants[name]))
    runner_close()
    codecarbon_close()
    # Paired by round: each round's variant against the same round's bare block, so slow drifts
    # of the machine cancel out.
    paired = {
        name: sorted(100 * (t - b) / b for t, b in zip(times[name], times["bare"], strict=True))
        for name in names
    }
    print(
        f"# Overhead: {args.task} inference, {args.steps} steps x {args.rounds} rounds, interleaved"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"device {workload.device}, torch threads {args.threads or 'default'}, "
        f"Python {platform.python_version()}"
    )
    print()
    print(
        "| variant | median s | min s | max s | overhead: median of paired rounds | IQR "
        "| 95% bootstrap CI of the median |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        t = times[name]
        p = paired[name]
        q1, q3 = statistics.quantiles(p, n=4)[0], statistics.quantiles(p, n=4)[2]
        lo, hi = bootstrap_median_ci(p)
        print(
            f"| {name} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} "
            f"| {statistics.median(p):+.2f}% | [{q1:+.2f}%, {q3:+.2f}%] "
            f"| [{lo:+.2f}%, {hi:+.2f}%] |"
        )


if __name__ == "__main__":
    main()
