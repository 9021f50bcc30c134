"""The label of a whole training run or of a production period, from its segments.

The label's traces are the segments as the meters gave them (``schemas.kinds`` says what each
kind's figures are); its figures are computed by ``schemas.results.fill_results``, the code the
registry checks them with.
"""

from __future__ import annotations

import hashlib
import platform
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench_runner.bench_carbon import CarbonInputs
from bench_runner.label import Accelerator, hardware_block, label_flags
from bench_runner.measure import METHODOLOGY_VERSION
from bench_runner.tracking.segments import Segment, fit_to_budget
from schemas import kinds, suites
from schemas.results import fill_results

SUITE = "2"


class RunLabelError(ValueError):
    """The segments cannot make a label (too few, no work in them); the message says why."""


@dataclass
class RunContext:
    """Everything a label of a run says besides its traces."""

    kind: str
    vendor: str
    model_name: str
    revision: str
    registry: str
    task: str
    phase: str
    carbon: CarbonInputs
    accelerator: Accelerator
    #: ``measurement.components``: one ``{"name", "method"}`` per metered component
    components: list[dict[str, str]]
    workload: dict[str, Any]
    run: dict[str, Any]
    frameworks: dict[str, str] = field(default_factory=dict)
    artifact_sha256: str | None = None
    #: the meters' flags (health, estimate, foreign processes); the bias flag is added here
    flags: list[str] = field(default_factory=list)
    sampling_interval_s: float | None = None
    runner_version: str = "0.1.0"
    source: str = "carbonlabel-track"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_run_label(
    ctx: RunContext,
    segments: list[Segment],
    *,
    idle: dict[str, Any] | None,
    segment_s: float,
    label_id: str | None = None,
) -> dict[str, Any]:
    """A signed-ready label of kind ``ctx.kind`` whose trials are ``segments``."""
    if len(segments) < 2:
        raise RunLabelError(
            f"{len(segments)} segment(s) with work in them: a label needs at least 2 (run "
            "longer, or lower the segment length)"
        )
    segments = fit_to_budget(fold_empty(segments))
    hardware = hardware_block(ctx.accelerator)
    bias = suites.meter_bias(hardware["hardware_class"])
    t_first, t_last = segments[0].t_start_s, segments[-1].t_end_s
    measurement: dict[str, Any] = {
        "methodology_version": METHODOLOGY_VERSION,
        "components": list({(c["name"], c["method"]): c for c in ctx.components}.values()),
        "warmup": {"iterations": 0, "min_duration_s": 0.0},
        "trials": len(segments),
        "min_window_s": segment_s,
        "idle_baseline_s": (float(idle["t_end_s"]) - float(idle["t_start_s"])) if idle else 0.0,
        "duration_s": t_last - t_first,
        "settle_s": 0.0,
        "bias": bias,
        "flags": label_flags(ctx.flags, [], bias),
    }
    if ctx.sampling_interval_s is not None:
        measurement["sampling_interval_s"] = ctx.sampling_interval_s
    traces: dict[str, Any] = {"trials": [s.trace(i) for i, s in enumerate(segments)]}
    if idle is not None:
        traces["idle"] = idle
    unit = suites.functional_unit_name(SUITE, ctx.task, ctx.phase)
    run = dict(ctx.run)
    if any("samples" in c for s in segments for c in s.components):
        run["downsampling"] = {"rule": "bucket-mean", "max_samples_per_trace": _largest(segments)}
    model_ref = f"{ctx.vendor}/{ctx.model_name}@{ctx.revision}"
    label: dict[str, Any] = {
        "label_id": label_id or str(uuid.uuid4()),
        "kind": ctx.kind,
        "created_at": run["ended_at"],
        "registry": ctx.registry.rstrip("/"),
        "vendor": ctx.vendor,
        "model": {"id": f"{ctx.vendor}/{ctx.model_name}", "revision": ctx.revision},
        "run": run,
        "benchmark": {
            "suite": {"name": str(suites.suite_spec(SUITE)["name"]), "version": SUITE},
            "task": ctx.task,
            "phase": ctx.phase,
            "workload": dict(ctx.workload),
        },
        "hardware": hardware,
        "measurement": measurement,
        "results": {
            "functional_unit": unit,
            "energy_per_unit_wh": {},
            "components": [],
            "throughput_units_per_s": 0.0,
        },
        "traces": traces,
        "carbon": {
            **ctx.carbon.grid.to_label(),
            "pue": ctx.carbon.pue,
            "basis": "location",
            "co2e_per_unit_g": {},
        },
        "provenance": {
            "runner": {"name": "carbonlabel", "version": ctx.runner_version},
            "environment": {
                "python": platform.python_version(),
                "frameworks": dict(ctx.frameworks),
                "os": f"{platform.system()} {platform.release()}"[:128],
            },
            "model_artifact_sha256": ctx.artifact_sha256 or _name_digest(model_ref),
            "source": ctx.source,
        },
    }
    if ctx.carbon.wue_l_per_kwh is not None:
        declared = {"wue_l_per_kwh": ctx.carbon.wue_l_per_kwh, "source": "declared"}
        label["carbon"]["water"] = {"onsite": declared}
    if ctx.kind == kinds.TRAINING_RUN:
        label["results"]["steps_measured"] = sum(s.units for s in segments)
    return fill_results(label)


def fold_empty(segments: list[Segment]) -> list[Segment]:
    """Segments with no work in them (the tail after a run's last step, a quiet window of a
    deployment) folded into the one before, so every trial has units; leading ones into the
    next. The energy stays in the label."""
    out: list[Segment] = []
    pending: Segment | None = None
    for segment in segments:
        if pending is not None:
            segment = pending.merged_with(segment)
            pending = None
        if segment.units > 0:
            out.append(segment)
        elif out:
            out[-1] = out[-1].merged_with(segment)
        else:
            pending = segment
    return out


def _largest(segments: list[Segment]) -> int:
    largest = max(
        (len(c["samples"]) for s in segments for c in s.components if "samples" in c), default=4
    )
    return max(4, largest)


def _name_digest(text: str) -> str:
    """Without a file to hash, the digest of the model's name and revision (docs/monitoring.md:
    pass ``artifact_sha256`` to name the weights)."""
    return hashlib.sha256(text.encode()).hexdigest()
