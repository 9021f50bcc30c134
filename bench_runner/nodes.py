"""The nodes of a distributed run: what each rank reports after the protocol, and the one run
global rank 0 builds from every report.

A report is plain JSON (it travels through the job's store): the rank's units and tokens per
window and, from a node's local rank 0 (its metering rank), the node's description, meters,
flags and trace components per window, or the error that stopped its meters. Windows are listed
idle first, then the trials.

Rank 0 keeps its own window edges, latencies and warm-up; every node's components go into every
window. Power samples of another node are on that node's monotonic clock: they are moved onto
rank 0's clock by the difference of the window's start edges (the edges are synchronised by a
barrier, so the shift is the clocks' offset; the integral is unchanged). Counter readings need no
shift. Units: a training step is one optimizer step of the whole job (every rank steps together,
so rank 0's count); inference units and tokens are summed over all ranks.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench_runner.devices.base import Meter, TraceComponent
from bench_runner.hardware import cpu_model_name, hardware_class, ram_bytes
from bench_runner.label import Accelerator
from bench_runner.measure import RunResult, Window
from schemas.results import fill_embodied

Report = dict[str, Any]


class MissingTraces(ValueError):
    """A node's traces are missing or incomplete; the message names the node."""


def node_name(node_rank: int) -> str:
    """A node's name in the label: its rank in the job (host names are not published)."""
    return f"node-{node_rank}"


def window_keys(trials: int) -> list[str]:
    return ["idle", *(f"trial-{i}" for i in range(trials))]


def _windows(result: RunResult) -> list[Window]:
    return [result.idle, *result.trials]


def accelerator_dict(acc: Accelerator, *, power_limit: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"vendor": acc.vendor, "model_name": acc.model_name, "count": acc.count}
    if acc.driver_version:
        out["driver_version"] = acc.driver_version
    if power_limit and acc.power_limit_w is not None:
        out["power_limit_w"] = acc.power_limit_w
    return out


def rank_report(
    *,
    rank: int,
    node_rank: int,
    local_rank: int,
    result: RunResult,
    meters: Sequence[Meter] = (),
    accelerator: Accelerator | None = None,
    flags: Sequence[str] = (),
    error: str | None = None,
) -> Report:
    """What one rank sends to rank 0. Only a metering rank (local rank 0) passes ``meters`` and
    ``accelerator``; its window components are kept (empty ones from a failed meter dropped)."""
    metering = local_rank == 0
    windows = []
    for window in _windows(result):
        entry: dict[str, Any] = {
            "t_start_s": window.t_start_s,
            "t_end_s": window.t_end_s,
            "units": window.units,
            "input_tokens": window.input_tokens,
            "output_tokens": window.output_tokens,
        }
        if metering:
            entry["components"] = [c for c in window.components if c]
        windows.append(entry)
    report: Report = {
        "settle_s": float(getattr(result, "settle_s", 0.0)),
        "rank": rank,
        "node_rank": node_rank,
        "local_rank": local_rank,
        "windows": windows,
    }
    if metering:
        acc = accelerator or Accelerator(vendor="none", model_name="none", count=0)
        report |= {
            "error": error,
            "accelerator": accelerator_dict(acc),
            "hardware_class": hardware_class(acc.model_name if acc.count else None),
            "cpu": {"model_name": cpu_model_name(), "cores": os.cpu_count() or 1},
            "ram_bytes": ram_bytes(),
            "flags": list(flags),
            "meters": [
                {
                    "component": m.component,
                    "method": m.method,
                    "device": m.device,
                    "interval_s": _interval(m),
                    "health_flags": list(getattr(m, "health_flags", [])),
                }
                for m in meters
            ],
        }
    return report


def _interval(meter: Meter) -> float | None:
    value = getattr(meter, "interval_s", None)
    return float(value) if isinstance(value, int | float) else None


class DescribedMeter(Meter):
    """A meter of some node, as its report describes it: what ``build_label`` reads (component,
    method, sampling interval). It measures nothing."""

    def __init__(
        self,
        component: str,
        method: str,
        device: str,
        interval_s: float | None,
        health_flags: list[str],
    ) -> None:
        self.component, self.method, self.device = component, method, device
        self.interval_s = interval_s
        self.flags = list(health_flags)

    @property
    def health_flags(self) -> list[str]:
        """The flags the node's meter raised while measuring."""
        return list(self.flags)

    def begin_window(self, key: str) -> None:
        raise RuntimeError("a described meter measures nothing")

    def end_window(self, key: str) -> TraceComponent:
        raise RuntimeError("a described meter measures nothing")


@dataclass
class JobRun:
    """The whole job's run, as rank 0 labels it."""

    result: RunResult
    #: every node's meters (one per component and method when there are several nodes)
    meters: list[Meter]
    #: all nodes' accelerators (count: the total)
    accelerator: Accelerator
    #: the union of every node's meter flags
    flags: list[str]
    #: the label's ``hardware.nodes`` (empty for a job on one node)
    nodes: list[dict[str, Any]]
    #: the nodes' shared hardware class, "other" when they differ
    hardware_class: str

    def annotate(self, label: dict[str, Any]) -> None:
        """Add the nodes to a label built from this run."""
        if not self.nodes:
            return
        hardware = label["hardware"]
        hardware["nodes"] = self.nodes
        hardware["hardware_class"] = self.hardware_class
        fill_embodied(label)  # every node's GPUs and CPUs, under the shared class


def merge_reports(
    own: RunResult,
    reports: Mapping[int, Report | None],
    topology: Mapping[int, tuple[int, int, str]],
    phase: str,
    *,
    waited_s: float | None = None,
) -> JobRun:
    """One run from every rank's report (``reports``: rank -> report, None when it sent
    nothing; ``topology``: rank -> (node rank, local rank, host)). Raises MissingTraces naming
    every node whose traces are missing or incomplete (``waited_s``: how long rank 0 waited
    for the reports, for the message)."""
    silent_for = f" within {waited_s:g} s (its rank failed or is gone)" if waited_s else ""
    keys = window_keys(len(own.trials))
    metering = {node: rank for rank, (node, local, _h) in topology.items() if local == 0}
    problems: list[str] = []
    for node, rank in sorted(metering.items()):
        where = f"{node_name(node)} (rank {rank}, host {topology[rank][2]})"
        report = reports.get(rank)
        if report is None:
            problems.append(f"{where} sent no traces{silent_for}")
        elif report.get("error"):
            problems.append(f"{where} has no traces: {report['error']}")
        elif len(report["windows"]) != len(keys):
            problems.append(f"{where} sent {len(report['windows'])} windows, expected {len(keys)}")
        else:
            empty = [k for k, w in zip(keys, report["windows"], strict=True) if not w["components"]]
            if empty:
                problems.append(f"{where} sent no traces for window(s) {', '.join(empty)}")
    silent = [r for r in sorted(topology) if topology[r][1] != 0 and reports.get(r) is None]
    for rank in silent:
        node, _local, host = topology[rank]
        problems.append(f"rank {rank} of {node_name(node)} (host {host}) sent no units{silent_for}")
    if problems:
        raise MissingTraces("missing traces: " + "; ".join(problems))
    sent = {rank: r for rank, r in reports.items() if r is not None}
    for rank, report in sent.items():
        if len(report["windows"]) != len(keys):
            raise MissingTraces(f"rank {rank} sent {len(report['windows'])} windows")

    multi = len(metering) > 1
    own_node = topology[0][0]
    windows: list[Window] = []
    for index, own_window in enumerate(_windows(own)):
        components: list[TraceComponent] = []
        for node, rank in sorted(metering.items()):
            theirs = sent[rank]["windows"][index]
            shift = 0.0 if node == own_node else own_window.t_start_s - theirs["t_start_s"]
            for component in theirs["components"]:
                components.append(_placed(component, shift, node_name(node) if multi else None))
        entries = [sent[rank]["windows"][index] for rank in sorted(sent)]
        units = own_window.units if phase == "training" else sum(w["units"] for w in entries)
        windows.append(
            Window(
                own_window.t_start_s,
                own_window.t_end_s,
                components,
                units,
                list(own_window.latencies_s),
                _sum_tokens(w["input_tokens"] for w in entries),
                _sum_tokens(w["output_tokens"] for w in entries),
            )
        )
    # the edges wait for every rank, so the settling delay is the largest of any rank's
    settle: dict[str, Any] = {"settle_s": max(float(r.get("settle_s", 0.0)) for r in sent.values())}
    known = {f.name for f in dataclasses.fields(RunResult)}
    extra = {k: v for k, v in settle.items() if k in known}
    result = dataclasses.replace(own, idle=windows[0], trials=windows[1:], **extra)
    node_reports = [sent[rank] for _node, rank in sorted(metering.items())]
    classes = {r["hardware_class"] for r in node_reports}
    return JobRun(
        result=result,
        meters=_described(node_reports, dedupe=multi),
        accelerator=_total_accelerator(node_reports),
        flags=list(dict.fromkeys(f for r in node_reports for f in r["flags"])),
        nodes=[_node_entry(r) for r in node_reports] if multi else [],
        hardware_class=classes.pop() if len(classes) == 1 else "other",
    )


def _placed(component: TraceComponent, shift: float, node: str | None) -> TraceComponent:
    out = copy.deepcopy(component)
    if shift and "samples" in out:
        out["samples"] = [[float(t) + shift, p] for t, p in out["samples"]]
    if node is not None:
        out["node"] = node
    return out


def _sum_tokens(values: Any) -> int | None:
    known = [int(v) for v in values if v is not None]
    return sum(known) if known else None


def _described(node_reports: list[Report], *, dedupe: bool) -> list[Meter]:
    meters: list[Meter] = []
    seen: dict[tuple[str, str], DescribedMeter] = {}
    for report in node_reports:
        for m in report["meters"]:
            key = (m["component"], m["method"])
            if dedupe and key in seen:
                kept = seen[key]
                intervals = [i for i in (kept.interval_s, m["interval_s"]) if i is not None]
                kept.interval_s = min(intervals) if intervals else None
                kept.flags += [f for f in m["health_flags"] if f not in kept.flags]
                continue
            described = DescribedMeter(
                m["component"], m["method"], m["device"], m["interval_s"], m["health_flags"]
            )
            seen[key] = described
            meters.append(described)
    return meters


def _total_accelerator(node_reports: list[Report]) -> Accelerator:
    accs = [r["accelerator"] for r in node_reports]
    present = [a for a in accs if a["count"]]
    if not present:
        return Accelerator(vendor="none", model_name="none", count=0)
    vendors = {a["vendor"] for a in present}
    names = sorted({a["model_name"] for a in present})
    drivers = {a.get("driver_version") for a in present}
    limits = {a.get("power_limit_w") for a in present}
    return Accelerator(
        vendor=vendors.pop() if len(vendors) == 1 else "none",
        model_name=", ".join(names)[:128],
        count=sum(int(a["count"]) for a in present),
        driver_version=drivers.pop() if len(drivers) == 1 else None,
        power_limit_w=limits.pop() if len(limits) == 1 else None,
    )


def _node_entry(report: Report) -> dict[str, Any]:
    return {
        "name": node_name(int(report["node_rank"])),
        "node_rank": int(report["node_rank"]),
        "accelerator": dict(report["accelerator"]),
        "cpu": dict(report["cpu"]),
        "ram_bytes": int(report["ram_bytes"]),
    }
