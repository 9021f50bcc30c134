"""Assemble a carbon label from a protocol run; results come from ``schemas.results``."""

from __future__ import annotations

import platform
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_runner.devices.base import Meter
from bench_runner.hardware import cpu_model_name, hardware_class, ram_bytes
from bench_runner.measure import METHODOLOGY_VERSION, RunResult
from bench_runner.workloads.base import Workload
from schemas import suites
from schemas.contract import load_methodology
from schemas.results import fill_results


@dataclass(frozen=True)
class Accelerator:
    vendor: str  # "nvidia" or "none"
    model_name: str
    count: int
    driver_version: str | None = None
    power_limit_w: float | None = None


@dataclass
class LabelInputs:
    vendor: str
    model_name: str
    revision: str
    registry: str
    carbon: dict[str, Any]
    """zone, intensity_g_per_kwh and dataset, as ``GridIntensity.to_label()`` gives them."""
    pue: float
    accelerator: Accelerator
    flags: list[str] = field(default_factory=list)
    declared_total_steps: int | None = None
    runner_version: str = "0.1.0"
    #: quality figures declared from other tools (lm-evaluation-harness), suite 2
    declared_quality: list[dict[str, Any]] = field(default_factory=list)
    #: the site's water usage effectiveness (L per kWh of IT energy); None: the table's default
    wue_l_per_kwh: float | None = None


def build_label(
    inputs: LabelInputs,
    workload: Workload,
    meters: list[Meter],
    run: RunResult,
    *,
    label_id: str | None = None,
    created_at: datetime | None = None,
    quality: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The label of a run. Suite 2 workloads also need ``quality`` (``workload.quality()``)."""
    created = (created_at or datetime.now(UTC)).astimezone(UTC)
    p = run.protocol
    hardware = hardware_block(inputs.accelerator)
    klass = hardware["hardware_class"]
    bias = suites.meter_bias(klass)
    flags = label_flags(inputs.flags, meters, bias)
    p50_s, p95_s = run.latency_percentiles_s()
    label: dict[str, Any] = {
        "label_id": label_id or str(uuid.uuid4()),
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "registry": inputs.registry.rstrip("/"),
        "vendor": inputs.vendor,
        "model": {"id": f"{inputs.vendor}/{inputs.model_name}", "revision": inputs.revision},
        "benchmark": {
            "suite": dict(load_methodology()["suite"]),
            "task": workload.task,
            "phase": workload.phase,
            "workload": dict(workload.description),
        },
        "hardware": hardware,
        "measurement": {
            "methodology_version": METHODOLOGY_VERSION,
            "components": meter_components(meters),
            "warmup": {"iterations": run.warmup_iterations, "min_duration_s": p.warmup_min_s},
            "trials": p.trials,
            "min_window_s": p.min_window_s,
            "cooldown_s": p.cooldown_s,
            "idle_baseline_s": p.idle_baseline_s,
            "duration_s": run.duration_s,
            "cv_threshold": p.cv_threshold,
            "settle_s": run.settle_s,
            "bias": bias,
            "flags": flags,
        },
        "results": {
            "functional_unit": load_methodology()["functional_units"][workload.phase]["name"],
            "energy_per_unit_wh": {},
            "components": [],
            "idle_power_w": 0.0,
            "dynamic_energy_per_unit_wh": 0.0,
            "throughput_units_per_s": 0.0,
            "latency_p50_s": p50_s,
            "latency_p95_s": p95_s,
        },
        "traces": run.traces(),
        "carbon": {**inputs.carbon, "pue": inputs.pue, "basis": "location", "co2e_per_unit_g": {}},
        "provenance": {
            "runner": {"name": "carbonlabel", "version": inputs.runner_version},
            "environment": {
                "python": platform.python_version(),
                "frameworks": {k: v for k, v in workload.frameworks.items() if k != "python"},
                "os": f"{platform.system()} {platform.release()}"[:128],
            },
            "model_artifact_sha256": workload.artifact_sha256,
            "source": "carbonlabel-bench",
        },
    }
    if (interval_s := sampling_interval_s(meters)) is not None:
        label["measurement"]["sampling_interval_s"] = interval_s
    if workload.phase == "training":
        label["benchmark"]["workload"]["training_steps"] = sum(w.units for w in run.trials)
        label["results"]["steps_measured"] = sum(w.units for w in run.trials)
        if inputs.declared_total_steps:
            label["results"]["declared_total_steps"] = inputs.declared_total_steps
    if workload.suite != suites.SUITE_1:
        _suite_fields(label, workload, quality, inputs.declared_quality)
    if inputs.wue_l_per_kwh is not None:
        declared = {"wue_l_per_kwh": inputs.wue_l_per_kwh, "source": "declared"}
        label["carbon"]["water"] = {"onsite": declared}
    fill_results(label)
    if label["results"]["energy_per_unit_wh"]["cv"] > p.cv_threshold and "high-cv" not in flags:
        flags.append("high-cv")
    return label


def hardware_block(acc: Accelerator) -> dict[str, Any]:
    """The label's ``hardware``: the accelerator, its class, the host's CPU and memory."""
    accelerator: dict[str, Any] = {
        "vendor": acc.vendor,
        "model_name": acc.model_name,
        "count": acc.count,
    }
    if acc.driver_version:
        accelerator["driver_version"] = acc.driver_version
    if acc.power_limit_w is not None:
        accelerator["power_limit_w"] = acc.power_limit_w
    return {
        "accelerator": accelerator,
        "hardware_class": hardware_class(acc.model_name if acc.count else None),
        "cpu": {"model_name": cpu_model_name(), "cores": _cores()},
        "ram_bytes": ram_bytes(),
    }


def meter_components(meters: list[Meter]) -> list[dict[str, str]]:
    """``measurement.components``: each meter's component and method."""
    return [{"name": m.component, "method": m.method} for m in meters]


def sampling_interval_s(meters: list[Meter]) -> float | None:
    """``measurement.sampling_interval_s``: the shortest interval of the meters that sample
    (None when none does)."""
    intervals = [getattr(m, "interval_s", None) for m in meters]
    sampled = [float(i) for i in intervals if isinstance(i, int | float)]
    return min(sampled) if sampled else None


def label_flags(given: list[str], meters: list[Meter], bias: dict[str, Any]) -> list[str]:
    """``measurement.flags``: those given, ``estimated`` when a meter estimates, the meters'
    health flags, ``unvalidated-bias`` when the class's bias bound is not validated."""
    flags = list(dict.fromkeys(given))
    if any(m.method == "estimate" for m in meters) and "estimated" not in flags:
        flags.append("estimated")
    for flag in (f for m in meters for f in m.health_flags):  # sampler gaps, resets, ...
        if flag not in flags:
            flags.append(flag)
    if not bias["validated"] and "unvalidated-bias" not in flags:
        flags.append("unvalidated-bias")
    return flags


def _suite_fields(
    label: dict[str, Any],
    workload: Workload,
    quality: dict[str, Any] | None,
    declared: list[dict[str, Any]],
) -> None:
    """Suite 2 and later: the suite's version and functional unit, the model's facts (parameters,
    dtype, Hub id and commit, files) and the quality block."""
    version = workload.suite
    benchmark = label["benchmark"]
    benchmark["suite"] = {"name": str(suites.suite_spec(version)["name"]), "version": version}
    label["results"]["functional_unit"] = suites.functional_unit_name(
        version, workload.task, workload.phase
    )
    label["model"].update(workload.model_facts or {})
    if quality is None:
        raise ValueError(f"a suite {version} label needs a quality block")
    block = dict(quality)
    if declared:
        block["declared"] = list(declared)
    label["quality"] = block


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def trial_intervals_wh(
    label: dict[str, Any], run_started_wall: datetime, run_started_mono_s: float
) -> list[tuple[datetime, datetime, float]]:
    """Each trial's (start, end, gross Wh) on the wall clock, for hourly-matched carbon."""
    from schemas.results import component_energy_j

    out = []
    for trial in label["traces"]["trials"]:
        t0, t1 = float(trial["t_start_s"]), float(trial["t_end_s"])
        energy_j = sum(component_energy_j(c, t0, t1) for c in trial["components"])
        start = run_started_wall + timedelta(seconds=t0 - run_started_mono_s)
        end = run_started_wall + timedelta(seconds=t1 - run_started_mono_s)
        out.append((start, end, energy_j / 3600.0))
    return out
