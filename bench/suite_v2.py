"""The runner's own overhead on suite 2: what it spends outside the measured model calls.

Usage: .venv/bin/python bench/suite_v2.py [--tasks text-generation,...] [--trials 5]
       [--min-window-s 10] [--samples N] [--max-new-tokens N]

Each suite-2 inference task runs on a tiny model built from a config (as the tests build them:
tests/hf_models.py, a BPE tokenizer trained on the shipped text; nothing is downloaded) through the
real runner: ``HfWorkload`` (tokenisation, batches, generation, token counts, kept outputs), the
protocol (``ProtocolRunner``, with this machine's meters) and quality scoring. A probe meter reads
the workload's ``model_call_s`` (seconds inside ``generate()`` / the forward pass, to the device's
end) at every window's edges, so for each trial window:

    bookkeeping = window length - model calls in the window

(batch selection, output-token counting, keeping first outputs, the protocol loop, progress and
the meters' own reads). Outside the windows the runner also spends:

    tokenise = tokenising the sample and building its batches (timed by redoing it once)
    scoring  = quality() less the model calls it makes for items the trials never reached

and the reported overhead share is ``(bookkeeping + tokenise + scoring) / sum of windows`` (the
issue's target: < 1 %), beside the in-window share alone (what could bias an energy figure).

Tiny models are the hardest case for this ratio: their model calls are milliseconds, so fixed
per-step costs weigh far more than they would with a real model on a GPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_runner.devices.base import Meter, TraceComponent  # noqa: E402
from bench_runner.devices.discover import discover_meters  # noqa: E402
from bench_runner.measure import Protocol, ProtocolRunner  # noqa: E402
from bench_runner.workloads.hf import HfWorkload  # noqa: E402
from bench_runner.workloads.hfsource import resolve_model  # noqa: E402

TASKS = ("text-generation", "text-classification", "image-classification")


class ModelCallProbe(Meter):
    """Not a meter of energy: notes the workload's model-call seconds at each window's edges."""

    component, method, device = "cpu", "estimate", "probe"

    def __init__(self, workload: HfWorkload) -> None:
        self.workload = workload
        self.opened: dict[str, tuple[float, float]] = {}
        self.windows: dict[str, tuple[float, float]] = {}  # key -> (window s, model calls s)

    def begin_window(self, key: str) -> None:
        self.opened[key] = (time.perf_counter(), self.workload.model_call_s)

    def end_window(self, key: str) -> TraceComponent:
        t0, calls0 = self.opened.pop(key)
        self.windows[key] = (time.perf_counter() - t0, self.workload.model_call_s - calls0)
        return {"name": "cpu", "method": "estimate", "samples": [[0.0, 0.0], [1.0, 0.0]]}


@dataclass
class TaskReport:
    task: str
    model: str
    steps_per_trial: float
    window_s: float
    model_calls_s: float
    tokenise_s: float
    scoring_s: float
    quality: str

    @property
    def bookkeeping_s(self) -> float:
        return self.window_s - self.model_calls_s

    @property
    def in_window_share(self) -> float:
        return self.bookkeeping_s / self.window_s

    @property
    def overhead_share(self) -> float:
        return (self.bookkeeping_s + self.tokenise_s + self.scoring_s) / self.window_s


def run_task(task: str, model_dir: Path, args: argparse.Namespace) -> TaskReport:
    source = resolve_model(str(model_dir), None)
    generating = task == "text-generation"
    workload = HfWorkload(
        task=task,
        phase="inference",
        source=source,
        samples=args.samples,
        max_new_tokens=args.max_new_tokens if generating else None,
    )
    started = time.perf_counter()
    workload._prepare(args.samples)  # the same tokenising and batching, timed on its own
    tokenise_s = time.perf_counter() - started

    found = discover_meters(force=None, gpu=False, allow_foreign_processes=False)
    probe = ModelCallProbe(workload)
    protocol = Protocol(
        idle_baseline_s=args.idle_s,
        warmup_iterations=3,
        warmup_min_s=args.warmup_s,
        trials=args.trials,
        min_window_s=args.min_window_s,
        cooldown_s=args.cooldown_s,
    )
    try:
        result = ProtocolRunner([*found.meters, probe], protocol).run(workload)
    finally:
        found.close()
    trial_keys = [f"trial-{i}" for i in range(args.trials)]
    window_s = sum(probe.windows[k][0] for k in trial_keys)
    calls_s = sum(probe.windows[k][1] for k in trial_keys)
    steps = sum(w.units for w in result.trials) / workload.units_per_step / args.trials

    calls_before = workload.model_call_s
    started = time.perf_counter()
    quality = workload.quality()
    scoring_s = (time.perf_counter() - started) - (workload.model_call_s - calls_before)
    measured = (quality or {}).get("measured")
    if measured:
        figure = f"{measured['metric']} {measured['value']:.3f} on {measured['items']} items"
        if workload.post_protocol_batches:
            figure += f" ({workload.post_protocol_batches} batches after the trials)"
    else:
        figure = "none: " + str((quality or {}).get("unavailable_reason", "not reported"))[:60]
    return TaskReport(task, model_dir.name, steps, window_s, calls_s, tokenise_s, scoring_s, figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--min-window-s", type=float, default=10.0)
    parser.add_argument("--idle-s", type=float, default=2.0)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--cooldown-s", type=float, default=0.0)
    parser.add_argument("--samples", type=int, default=None, help="default: the suite's")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the suite's")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.hf_models import build_tiny_models

    with tempfile.TemporaryDirectory() as tmp:
        models = build_tiny_models(Path(tmp))
        dirs: dict[str, Any] = {
            "text-generation": models.gen,
            "text-classification": models.cls77,
            "image-classification": models.vit,
        }
        reports = [run_task(t, dirs[t], args) for t in args.tasks.split(",")]

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(
        f"protocol: {args.trials} trials x >= {args.min_window_s} s; samples "
        f"{args.samples or 'the suite'}; cap {args.max_new_tokens or 'the suite'}"
    )
    header = (
        f"{'task':<22}{'steps/trial':>12}{'windows s':>11}{'model s':>10}{'bookkeep s':>12}"
        f"{'tokenise s':>12}{'scoring s':>11}{'in-window':>11}{'overhead':>10}"
    )
    print(header)
    for r in reports:
        print(
            f"{r.task:<22}{r.steps_per_trial:>12.1f}{r.window_s:>11.2f}{r.model_calls_s:>10.2f}"
            f"{r.bookkeeping_s:>12.4f}{r.tokenise_s:>12.4f}{r.scoring_s:>11.4f}"
            f"{r.in_window_share:>10.2%}{r.overhead_share:>10.2%}"
        )
    for r in reports:
        print(f"quality, {r.task}: {r.quality}")
    worst = max(r.overhead_share for r in reports)
    verdict = "met" if worst < 0.01 else "NOT met"
    print(f"largest overhead share: {worst:.2%} (target < 1 %): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
