"""The label kinds beyond benchmarks, and the figures that follow from their traces.

``benchmark`` (a label without ``kind``): the suite's protocol on a test bench, graded and ranked.
``training-run``: a whole training or fine-tuning run measured from start to end
(``carbonlabel.track``); each trial is a segment of the run and the totals are the sums over the
segments, not an extrapolation. ``operational``: one period of a deployed model (``carbonlabel
watch``); each trial is a window of the period with the requests and tokens the serving engine
counted in it, and the period's figures are ratios of its sums. Neither is graded or ranked.

Both sides use this module, like ``schemas.results``: the runner to write the figures, the
registry to recompute and check them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

BENCHMARK = "benchmark"
TRAINING_RUN = "training-run"
OPERATIONAL = "operational"
KINDS = (BENCHMARK, TRAINING_RUN, OPERATIONAL)

J_PER_WH = 3600.0


def kind_of(label: Mapping[str, Any]) -> str:
    """The label's kind (a label without one is a benchmark label)."""
    return str(label.get("kind", BENCHMARK))


@dataclass(frozen=True)
class Segment:
    """One trial's measured energy (J, all components) and working time (s)."""

    trial: Mapping[str, Any]
    gross_j: float
    window_s: float


def expected_figures(
    label: Mapping[str, Any], segments: Sequence[Segment], g_per_wh: float
) -> dict[str, Any]:
    """The kind's own figures, keyed by JSON pointer (nothing for a benchmark label)."""
    kind = kind_of(label)
    if kind == TRAINING_RUN:
        return _training_run(segments, g_per_wh)
    if kind == OPERATIONAL:
        return {"/results/operational": operational_figures(label, segments, g_per_wh)}
    return {}


def _training_run(segments: Sequence[Segment], g_per_wh: float) -> dict[str, Any]:
    total_wh = math.fsum(s.gross_j for s in segments) / J_PER_WH
    samples = sum(int(s.trial.get("samples", 0)) for s in segments)
    out: dict[str, Any] = {
        "/results/total_energy_wh": total_wh,
        "/results/steps_measured": sum(int(s.trial["units"]) for s in segments),
        "/results/samples_total": samples,
        "/carbon/co2e_per_run_g": total_wh * g_per_wh,
    }
    if samples > 0:
        out["/results/energy_per_sample_wh"] = total_wh / samples
    return out


def operational_figures(
    label: Mapping[str, Any], segments: Sequence[Segment], g_per_wh: float
) -> dict[str, Any]:
    """``results.operational``: the period's sums and their ratios."""
    trials = [s.trial for s in segments]
    period_s = math.fsum(s.window_s for s in segments)
    energy_j = math.fsum(s.gross_j for s in segments)
    requests = sum(int(t["units"]) for t in trials)
    out: dict[str, Any] = {
        "period_s": period_s,
        "energy_wh": energy_j / J_PER_WH,
        "requests": requests,
        "energy_per_1k_requests_wh": energy_j / J_PER_WH * 1000.0 / requests,
    }
    if all("output_tokens" in t for t in trials):
        out["output_tokens"] = tokens = sum(int(t["output_tokens"]) for t in trials)
        if tokens > 0:
            out["energy_per_output_token_j"] = energy_j / tokens
    if all("input_tokens" in t for t in trials):
        out["input_tokens"] = sum(int(t["input_tokens"]) for t in trials)
    if period_s > 0 and all("utilisation" in t for t in trials):
        weighted = math.fsum(float(s.trial["utilisation"]) * s.window_s for s in segments)
        out["utilisation"] = weighted / period_s
    if period_s > 0 and all("idle_s" in t for t in trials):
        idle_s = math.fsum(min(float(s.trial["idle_s"]), s.window_s) for s in segments)
        out["idle_share"] = idle_s / period_s
    hourly = label["carbon"].get("hourly")
    if hourly is not None:
        out["co2e_g"] = _hourly_co2e_g(label, segments, hourly)
    else:
        out["co2e_g"] = energy_j / J_PER_WH * g_per_wh
    return out


def _hourly_co2e_g(
    label: Mapping[str, Any], segments: Sequence[Segment], hourly: Mapping[str, Any]
) -> float:
    """The period's CO2e with each window's energy charged the intensity of the hour its middle
    falls in: on the wall clock, ``run.started_at`` is the first window's start. A window is at
    most a twelfth of its period by default, so one that straddles an hour is charged one hour's
    figure (docs/monitoring.md)."""
    by_hour = {
        datetime.fromisoformat(row["timestamp"]).replace(minute=0, second=0, microsecond=0): float(
            row["intensity_g_per_kwh"]
        )
        for row in hourly["intensities"]
    }
    started = datetime.fromisoformat(label["run"]["started_at"])
    t0 = float(segments[0].trial["t_start_s"])
    pue = float(label["carbon"]["pue"])
    total = 0.0
    for s in segments:
        middle_s = (float(s.trial["t_start_s"]) + float(s.trial["t_end_s"])) / 2.0 - t0
        hour = (started + timedelta(seconds=middle_s)).replace(minute=0, second=0, microsecond=0)
        if hour not in by_hour:
            raise ValueError(f"carbon.hourly has no intensity for the hour of {hour.isoformat()}")
        total += s.gross_j / J_PER_WH * pue * by_hour[hour] / 1000.0
    return total


def drift_tolerance_relative() -> float:
    """``methodology.json`` ``operational.drift_tolerance_relative``: a production period drifts
    when its energy per 1,000 requests exceeds the benchmark figure by more than this share."""
    from schemas.contract import load_methodology

    return float(load_methodology()["operational"]["drift_tolerance_relative"])


def headline_energy_wh(label: Mapping[str, Any]) -> float:
    """The label's energy per functional unit as shown and charted: for an operational period the
    period's ratio (its energy over its requests), else the mean over the trials."""
    operational = label["results"].get("operational")
    if kind_of(label) == OPERATIONAL and operational:
        return float(operational["energy_per_1k_requests_wh"])
    return float(label["results"]["energy_per_unit_wh"]["mean"])
