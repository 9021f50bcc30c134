"""Recompute a label's results from its raw traces, and compare them with what it states.

Both sides use this module: the runner to write results, the registry to check them on ingest.
The stated figures must equal the recomputed ones within the methodology's tolerance.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from schemas import embodied, kinds, market, water
from schemas.contract import load_methodology
from schemas.stats import summarize
from schemas.suites import units_per_functional_unit_for
from schemas.window_energy import (
    Settling,
    component_energy_j,
    settling_of,
    trial_energy,
    window_energy_by_component,
    working_s,
)

J_PER_WH = 3600.0


@dataclass(frozen=True)
class ResultMismatch:
    """A stated figure that does not follow from the traces."""

    pointer: str
    stated: Any
    recomputed: Any


def units_per_functional_unit(phase: str) -> float:
    """Suite 1: inferences (inference: 1,000) or steps (training: 1) in one functional unit.
    For any suite, ``schemas.suites.units_per_functional_unit_for(label)``."""
    unit = load_methodology()["functional_units"][phase]
    return float(unit.get("inferences", unit.get("steps", 1)))


def per_trial_component_wh(label: Mapping[str, Any]) -> dict[str, list[float]]:
    """Each component's energy per functional unit (Wh), one value per trial."""
    units_per_fu = units_per_functional_unit_for(label)
    out: dict[str, list[float]] = {}
    settling = settling_of(label)
    for trial in headline_trials(label):
        scale = units_per_fu / float(trial["units"]) / J_PER_WH
        for name, energy_j in trial_energy(trial, settling)[0].items():
            out.setdefault(name, []).append(energy_j * scale)
    return out


def compute_results(label: Mapping[str, Any]) -> dict[str, Any]:
    """Every figure the methodology derives from the traces, keyed by JSON pointer.

    chat-serving: the top-level figures are those of the headline concurrency's trials; every
    level's figures are under ``/results/serving``."""
    serving = label["benchmark"]["workload"].get("serving")
    if not serving:
        return _compute(label, label["traces"]["trials"])
    out = _compute(label, headline_trials(label))
    out.update(_flatten("/results/serving", serving_results(label)))
    return out


def headline_trials(label: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The trials the label's headline figures come from (chat-serving: the headline level)."""
    trials = label["traces"]["trials"]
    serving = label["benchmark"]["workload"].get("serving")
    if not serving:
        return list(trials)
    headline = serving["headline_concurrency"]
    chosen = [t for t in trials if t.get("concurrency") == headline]
    if not chosen:
        raise ValueError(f"no trial at the headline concurrency {headline}")
    return chosen


def _percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90 and p99 (``statistics.quantiles``, inclusive; one value: itself; none: 0)."""
    if len(values) < 2:
        only = values[0] if values else 0.0
        return {"p50": only, "p90": only, "p99": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def serving_results(label: Mapping[str, Any]) -> dict[str, Any]:
    """``results.serving`` of a chat-serving label: per concurrency level, in the declared order,
    energy per 1,000 requests and per output token, throughput, TTFT and ITL percentiles, errors."""
    serving = label["benchmark"]["workload"]["serving"]
    trials = label["traces"]["trials"]
    levels = list(serving["concurrency_levels"])
    stray = {t.get("concurrency") for t in trials} - set(levels)
    if stray:
        raise ValueError(f"trials at concurrency {sorted(map(str, stray))} not declared")
    units_per_fu = units_per_functional_unit_for(label)
    settling = settling_of(label)
    out = []
    for level in levels:
        chosen = [t for t in trials if t.get("concurrency") == level]
        if len(chosen) < 2:
            raise ValueError(f"concurrency {level} has {len(chosen)} trials; at least 2 are needed")
        per_unit_wh, per_token_j, tokens_per_s, requests_per_s = [], [], [], []
        ttft: list[float] = []
        itl: list[float] = []
        for trial in chosen:
            by_component, window_s = trial_energy(trial, settling)
            gross_j = math.fsum(by_component.values())
            units, tokens = int(trial["units"]), int(trial["output_tokens"])
            if window_s <= 0 or units <= 0 or tokens <= 0:
                raise ValueError(f"trial {trial['index']} completed no request or no token")
            per_unit_wh.append(gross_j * units_per_fu / units / J_PER_WH)
            per_token_j.append(gross_j / tokens)
            tokens_per_s.append(tokens / window_s)
            requests_per_s.append(units / window_s)
            for first_s, e2e_s, n_tokens in trial["requests"]:
                ttft.append(float(first_s))
                if int(n_tokens) > 1:
                    itl.append((float(e2e_s) - float(first_s)) / (int(n_tokens) - 1))
        out.append(
            {
                "concurrency": level,
                "requests": sum(int(t["units"]) for t in chosen),
                "errors": sum(int(t["errors"]) for t in chosen),
                "energy_per_unit_wh": summarize(per_unit_wh).as_dict(),
                "energy_per_output_token_j": summarize(per_token_j).as_dict(),
                "output_tokens_per_s": math.fsum(tokens_per_s) / len(tokens_per_s),
                "requests_per_s": math.fsum(requests_per_s) / len(requests_per_s),
                "ttft_s": _percentiles(ttft),
                "itl_s": _percentiles(itl),
            }
        )
    return {"headline_concurrency": serving["headline_concurrency"], "levels": out}


def _flatten(pointer: str, value: Any) -> dict[str, Any]:
    """Nested results as JSON pointer -> number (lists by index)."""
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {pointer: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flatten(f"{pointer}/{key}", item))
    return out


def _compute(label: Mapping[str, Any], trials: list[Mapping[str, Any]]) -> dict[str, Any]:
    phase = label["benchmark"]["phase"]
    units_per_fu = units_per_functional_unit_for(label)
    idle = label["traces"].get("idle")  # none in operational labels
    idle_power_w = None
    if idle is not None:
        idle_duration_s = float(idle["t_end_s"]) - float(idle["t_start_s"])
        idle_energy_j = sum(window_energy_by_component(idle).values())
        idle_power_w = idle_energy_j / idle_duration_s if idle_duration_s > 0 else 0.0

    per_trial_wh: list[float] = []
    dynamic_wh: list[float] = []
    throughput: list[float] = []
    work_s: list[float] = []  # working time per functional unit, per trial
    segments: list[kinds.Segment] = []
    component_totals: dict[str, list[float]] = {}
    settling = settling_of(label)
    for trial in trials:
        by_component, window_s = trial_energy(trial, settling)
        units = float(trial["units"])
        gross_j = math.fsum(by_component.values())
        segments.append(kinds.Segment(trial, gross_j, window_s))
        scale = units_per_fu / units / J_PER_WH
        per_trial_wh.append(gross_j * scale)
        dynamic_wh.append((gross_j - (idle_power_w or 0.0) * window_s) * scale)
        throughput.append(units / window_s)
        work_s.append(window_s * units_per_fu / units)
        for name, energy_j in by_component.items():
            component_totals.setdefault(name, []).append(energy_j * scale)

    energy = summarize(per_trial_wh)
    carbon = label["carbon"]
    g_per_wh = float(carbon["intensity_g_per_kwh"]) * float(carbon["pue"]) / 1000.0
    out: dict[str, Any] = {
        "/results/energy_per_unit_wh": energy.as_dict(),
        "/results/throughput_units_per_s": math.fsum(throughput) / len(throughput),
        "/results/components": {
            name: math.fsum(values) / len(values) for name, values in component_totals.items()
        },
        "/carbon/co2e_per_unit_g": {
            "mean": energy.mean * g_per_wh,
            "ci95_low": energy.ci95_low * g_per_wh,
            "ci95_high": energy.ci95_high * g_per_wh,
        },
    }
    if idle_power_w is not None:
        out["/results/idle_power_w"] = idle_power_w
        out["/results/dynamic_energy_per_unit_wh"] = math.fsum(dynamic_wh) / len(dynamic_wh)
    out.update(kinds.expected_figures(label, segments, g_per_wh))
    declared = label["results"].get("declared_total_steps")
    if phase == "training" and declared:
        total_wh = energy.mean * float(declared)
        out["/results/extrapolated_total_kwh"] = total_wh / 1000.0
        out["/carbon/co2e_per_run_g"] = total_wh * g_per_wh
    out.update(_token_figures(trials, settling))
    out.update(_quality_figures(label))
    out.update(embodied.expected_figures(label, math.fsum(work_s) / len(work_s)) or {})
    out.update(water.expected_figures(label))
    if "market" in label["carbon"]:
        gross_j = math.fsum(
            component_energy_j(c, float(t["t_start_s"]), float(t["t_end_s"]))
            for t in label["traces"]["trials"]
            for c in t["components"]
        )
        out.update(market.expected_figures(label, gross_j))
    return out


def work_time_per_unit_s(label: Mapping[str, Any]) -> float:
    """The mean working time per functional unit over the headline trials (their windows less
    the settling tail): how long the hardware is held for one functional unit."""
    units_per_fu = units_per_functional_unit_for(label)
    settling = settling_of(label)
    times = [
        working_s(trial, settling) * units_per_fu / float(trial["units"])
        for trial in headline_trials(label)
    ]
    return math.fsum(times) / len(times)


def _token_figures(trials: list[Mapping[str, Any]], settling: Settling) -> dict[str, Any]:
    """Token totals, and per output token energy and throughput when the traces count them."""
    out: dict[str, Any] = {}
    if all("input_tokens" in t for t in trials):
        out["/results/input_tokens_total"] = sum(int(t["input_tokens"]) for t in trials)
    if not all("output_tokens" in t for t in trials):
        return out
    per_token_j: list[float] = []
    tokens_per_s: list[float] = []
    for trial in trials:
        tokens = int(trial["output_tokens"])
        if tokens <= 0:
            raise ValueError(f"trial {trial['index']} generated no output tokens")
        by_component, window_s = trial_energy(trial, settling)
        per_token_j.append(math.fsum(by_component.values()) / tokens)
        tokens_per_s.append(tokens / window_s)
    out["/results/output_tokens_total"] = sum(int(t["output_tokens"]) for t in trials)
    out["/results/energy_per_output_token_j"] = summarize(per_token_j).as_dict()
    out["/results/output_tokens_per_s"] = math.fsum(tokens_per_s) / len(tokens_per_s)
    return out


def _quality_figures(label: Mapping[str, Any]) -> dict[str, Any]:
    """The measured quality figure as it follows from the per-item outcomes."""
    measured = label.get("quality", {}).get("measured")
    if not measured:
        return {}
    outcomes = measured["outcomes"]
    if not outcomes or any(o not in (0, 1) or isinstance(o, bool) for o in outcomes):
        raise ValueError("quality outcomes must be 0 or 1 per item")
    return {
        "/quality/measured/value": sum(outcomes) / len(outcomes),
        "/quality/measured/items": len(outcomes),
    }


def _close(stated: Any, recomputed: float, tol: Mapping[str, float]) -> bool:
    if not isinstance(stated, int | float) or isinstance(stated, bool):
        return False
    return abs(float(stated) - recomputed) <= tol["absolute"] + tol["relative"] * abs(recomputed)


def _get(doc: Mapping[str, Any], pointer: str) -> Any:
    node: Any = doc
    for part in pointer.strip("/").split("/"):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    return node


def _compare(
    label: Mapping[str, Any], expected: Mapping[str, Any], tol: Mapping[str, float]
) -> Iterator[ResultMismatch]:
    for pointer, value in expected.items():
        if pointer == "/results/components":
            stated = {c["name"]: c for c in label["results"]["components"]}
            for name, recomputed in value.items():
                got = stated.get(name, {}).get("energy_per_unit_wh")
                if not _close(got, recomputed, tol):
                    yield ResultMismatch(f"{pointer}/{name}", got, recomputed)
            for name in sorted(stated.keys() - value.keys()):
                yield ResultMismatch(f"{pointer}/{name}", stated[name]["energy_per_unit_wh"], 0.0)
        elif isinstance(value, Mapping):
            for key, recomputed in value.items():
                got = _get(label, f"{pointer}/{key}")
                if not _close(got, float(recomputed), tol):
                    yield ResultMismatch(f"{pointer}/{key}", got, float(recomputed))
        else:
            got = _get(label, pointer)
            if not _close(got, float(value), tol):
                yield ResultMismatch(pointer, got, float(value))


def check_results(label: Mapping[str, Any]) -> list[ResultMismatch]:
    """Mismatches between stated results and those recomputed from the traces (empty: agree).

    Traces that cannot be integrated at all (a counter running backwards with no range, samples
    out of order, an empty window) are reported as a mismatch at ``/traces``.
    """
    tol = load_methodology()["results_tolerance"]
    try:
        expected = compute_results(label)
    except (ValueError, ArithmeticError, KeyError, TypeError) as exc:
        return [ResultMismatch(f"/traces: {exc}", None, None)]
    mismatches = list(_compare(label, expected, tol))
    energy = expected["/results/energy_per_unit_wh"]
    if not all(math.isfinite(v) for v in energy.values()):
        return [ResultMismatch("/traces: the figures overflow", None, None)]
    measurement = label["measurement"]
    threshold = measurement.get("cv_threshold")
    flagged = "high-cv" in measurement.get("flags", [])
    if threshold is not None and energy["cv"] > float(threshold) and not flagged:
        mismatches.append(ResultMismatch("/measurement/flags", "no high-cv flag", energy["cv"]))
    # a stated figure whose basis is missing from the traces follows from nothing
    for pointer in _OPTIONAL_RESULTS:
        name = pointer.rsplit("/", 1)[1]
        if pointer not in expected and name in label["results"]:
            mismatches.append(ResultMismatch(pointer, label["results"][name], None))
    measured = label.get("quality", {}).get("measured")
    samples = label["benchmark"]["workload"].get("samples")
    if measured and len(measured["outcomes"]) != samples:
        mismatches.append(
            ResultMismatch("/quality/measured/outcomes", len(measured["outcomes"]), samples)
        )
    mismatches.extend(_serving_issues(label))
    mismatches.extend(_node_issues(label))
    mismatches.extend(ResultMismatch(*issue) for issue in embodied.issues(label))
    mismatches.extend(ResultMismatch(*issue) for issue in water.issues(label))
    mismatches.extend(ResultMismatch(*issue) for issue in market.issues(label))
    return mismatches


def _serving_issues(label: Mapping[str, Any]) -> Iterator[ResultMismatch]:
    """chat-serving: the stated levels are the recomputed ones, and no trial's error rate is over
    the stated maximum (a run past it is invalid, not a label)."""
    serving = label["benchmark"]["workload"].get("serving")
    if not serving:
        return
    stated = label["results"].get("serving", {}).get("levels", [])
    if len(stated) != len(serving["concurrency_levels"]):
        yield ResultMismatch("/results/serving/levels", len(stated), None)
    limit = float(serving["max_error_rate"])
    for i, trial in enumerate(label["traces"]["trials"]):
        errors, units = int(trial.get("errors", 0)), int(trial["units"])
        if errors > limit * (units + errors):
            yield ResultMismatch(f"/traces/trials/{i}/errors", errors, limit * (units + errors))


def _node_issues(label: Mapping[str, Any]) -> Iterator[ResultMismatch]:
    """Multi-node runs: every window has a trace of every node the hardware lists."""
    nodes = label["hardware"].get("nodes")
    if not nodes:
        return
    names = {str(n["name"]) for n in nodes}
    windows = [(f"/traces/trials/{i}", t) for i, t in enumerate(label["traces"]["trials"])]
    if "idle" in label["traces"]:
        windows.insert(0, ("/traces/idle", label["traces"]["idle"]))
    for pointer, window in windows:
        present = {str(c.get("node")) for c in window["components"]}
        for name in sorted(names - present):
            yield ResultMismatch(f"{pointer}/components: no trace of node {name!r}", None, None)
        for name in sorted(present - names):
            yield ResultMismatch(f"{pointer}/components: node {name!r} is not listed", None, None)


def fill_results(label: dict[str, Any]) -> dict[str, Any]:
    """Write the recomputed figures into ``label`` (used by producers of labels)."""
    expected = compute_results(label)
    results, carbon = label["results"], label["carbon"]
    results["energy_per_unit_wh"] = expected["/results/energy_per_unit_wh"]
    for pointer in _KIND_RESULTS:
        if pointer in expected:
            results[pointer.rsplit("/", 1)[1]] = expected[pointer]
    results["throughput_units_per_s"] = expected["/results/throughput_units_per_s"]
    methods = {c["name"]: c["method"] for c in label["measurement"]["components"]}
    results["components"] = [
        {"name": name, "method": methods.get(name, "estimate"), "energy_per_unit_wh": wh}
        for name, wh in sorted(expected["/results/components"].items())
    ]
    carbon["co2e_per_unit_g"] = expected["/carbon/co2e_per_unit_g"]
    if "/results/extrapolated_total_kwh" in expected:
        results["extrapolated_total_kwh"] = expected["/results/extrapolated_total_kwh"]
    if "/carbon/co2e_per_run_g" in expected:
        carbon["co2e_per_run_g"] = expected["/carbon/co2e_per_run_g"]
    for pointer in _OPTIONAL_RESULTS:
        if pointer in expected:
            results[pointer.rsplit("/", 1)[1]] = expected[pointer]
    if label["benchmark"]["workload"].get("serving"):
        results["serving"] = serving_results(label)
    fill_embodied(label)
    water.fill(label)
    if "/quality/measured/value" in expected:
        measured = label["quality"]["measured"]
        measured["value"] = expected["/quality/measured/value"]
        measured["items"] = expected["/quality/measured/items"]
    return label


def fill_embodied(label: dict[str, Any]) -> dict[str, Any]:
    """Write ``carbon.embodied`` for the label's hardware as it stands (the table version it
    names, else the current one): producers call it again after changing the hardware."""
    stated = label["carbon"].get("embodied")
    version = stated["table"]["version"] if stated else embodied.TABLE.current_version()
    label["carbon"]["embodied"] = embodied.block(label, version, work_time_per_unit_s(label))
    return label


# figures that some kinds have and others not (schemas.kinds)
_KIND_RESULTS = (
    "/results/idle_power_w",
    "/results/dynamic_energy_per_unit_wh",
    "/results/total_energy_wh",
    "/results/steps_measured",
    "/results/samples_total",
    "/results/energy_per_sample_wh",
    "/results/operational",
)

_OPTIONAL_RESULTS = (
    "/results/input_tokens_total",
    "/results/output_tokens_total",
    "/results/energy_per_output_token_j",
    "/results/output_tokens_per_s",
)
