"""GPU smoke test: reference inference and training workloads with the NVML energy counter and
the power sampler side by side, on the same windows.

Usage (on a machine with an NVIDIA GPU and PyTorch with CUDA):
    python bench/gpu_smoke.py [--trials 5] [--min-window-s 10] [--tasks text-classification ...]
Prints, per workload and trial, the counter's and the sampler's energy, their agreement, and the
trials' coefficient of variation for each; exits 1 when no GPU or NVML is available.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench_runner.devices import nvml
from bench_runner.devices.base import MeterError
from bench_runner.measure import Protocol, ProtocolRunner
from bench_runner.workloads.plugin import build_workload
from schemas.results import component_energy_j

WORKLOADS = [
    ("text-classification", "inference"),
    ("image-classification", "inference"),
    ("text-generation", "inference"),
    ("image-classification", "training"),
    ("text-classification", "training"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--min-window-s", type=float, default=10.0)
    parser.add_argument("--idle-s", type=float, default=5.0)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--tasks", nargs="*", default=None, help="task:phase pairs")
    args = parser.parse_args()
    try:
        gpus = nvml.list_gpus()
    except MeterError as exc:
        print(f"no GPU to test: {exc}", file=sys.stderr)
        return 1
    if not gpus:
        print("no GPU visible (CUDA_VISIBLE_DEVICES?)", file=sys.stderr)
        return 1
    gpu = gpus[0]
    print(
        f"GPU: {gpu.name} ({gpu.uuid}), driver {gpu.driver_version}, "
        f"power limit {gpu.power_limit_w} W, energy counter: {gpu.energy_counter}"
    )
    print(f"counter advances: {nvml.probe_counter(gpu)}")
    protocol = Protocol(
        idle_baseline_s=args.idle_s,
        trials=args.trials,
        min_window_s=args.min_window_s,
        warmup_iterations=20,
        warmup_min_s=3.0,
        cooldown_s=2.0,
    )
    selected = [tuple(t.split(":")) for t in args.tasks] if args.tasks else WORKLOADS
    print()
    print("| workload | trial | units | window s | counter J | sampler J | sampler/counter |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for task, phase in selected:
        workload = build_workload(task=task, phase=phase, device="cuda:0", precision=args.precision)
        counter = nvml.NvmlCounterMeter(gpu)
        sampler = nvml.NvmlSamplingMeter(gpu, interval_s=0.1)
        try:
            result = ProtocolRunner([counter, sampler], protocol).run(workload)
        finally:
            sampler.close()
        per_unit = {"counter": [], "sampler": []}
        for i, trial in enumerate(result.trials):
            c_j = component_energy_j(trial.components[0], trial.t_start_s, trial.t_end_s)
            s_j = component_energy_j(trial.components[1], trial.t_start_s, trial.t_end_s)
            per_unit["counter"].append(c_j / trial.units)
            per_unit["sampler"].append(s_j / trial.units)
            print(
                f"| {task} {phase} | {i} | {trial.units} | {trial.t_end_s - trial.t_start_s:.2f} "
                f"| {c_j:.1f} | {s_j:.1f} | {s_j / c_j:.4f} |"
            )
        idle = result.idle
        idle_w = component_energy_j(idle.components[0], idle.t_start_s, idle.t_end_s) / (
            idle.t_end_s - idle.t_start_s
        )
        cv = {k: statistics.stdev(v) / statistics.mean(v) for k, v in per_unit.items()}
        agreement = statistics.mean(per_unit["sampler"]) / statistics.mean(per_unit["counter"])
        summary.append((task, phase, idle_w, agreement, cv["counter"], cv["sampler"]))
    print()
    print("| workload | idle W (counter) | sampler/counter (mean) | CV counter | CV sampler |")
    print("|---|---|---|---|---|")
    for task, phase, idle_w, agreement, cv_c, cv_s in summary:
        print(f"| {task} {phase} | {idle_w:.1f} | {agreement:.4f} | {cv_c:.2%} | {cv_s:.2%} |")
    nvml.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
