"""The carbon side of ``carbonlabel bench``: the options checked before measuring (zone and
intensity, PUE, hourly intensities, WUE), and what the run adds to the label after it (the
hourly-matched CO2e)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_runner import carbon as carbon_data
from bench_runner.cli import CliError
from bench_runner.label import trial_intervals_wh
from schemas.suites import units_per_functional_unit_for


@dataclass(frozen=True)
class CarbonInputs:
    grid: carbon_data.GridIntensity
    pue: float
    hourly: list[tuple[datetime, float]] | None
    wue_l_per_kwh: float | None


def carbon_inputs(
    *,
    zone: str,
    intensity: float | None,
    intensity_source: str,
    pue: float | None,
    hourly: Path | None,
    wue: float | None,
) -> CarbonInputs:
    """The carbon options, checked (ValueError names the option and the problem)."""
    grid = (
        carbon_data.override(zone, intensity, source=intensity_source)
        if intensity is not None
        else carbon_data.lookup(zone)
    )
    pue_value = carbon_data.validate_pue(pue if pue is not None else carbon_data.DEFAULT_PUE)
    hourly_rows = carbon_data.load_hourly_csv(hourly) if hourly else None
    if wue is not None and not 0 <= wue <= 20:
        raise ValueError(f"--wue must be between 0 and 20 L/kWh, got {wue:g}")
    return CarbonInputs(grid, pue_value, hourly_rows, wue)


def add_hourly(
    label: dict[str, Any], inputs: CarbonInputs, run_wall: datetime, run_mono: float
) -> None:
    """``carbon.hourly``: each trial's energy on the wall clock, charged its hours' intensities,
    per functional unit (the mean over trials, as the headline energy)."""
    if not inputs.hourly:
        return
    intervals = trial_intervals_wh(label, run_wall, run_mono)
    per_fu = units_per_functional_unit_for(label)
    trial_traces = label["traces"]["trials"]
    try:
        per_trial_g = [
            carbon_data.hourly_matched_co2e_g([interval], inputs.hourly, inputs.pue)
            / trial["units"]
            * per_fu
            for interval, trial in zip(intervals, trial_traces, strict=True)
        ]
    except ValueError as exc:
        raise CliError(f"hourly intensities: {exc}") from None
    label["carbon"]["hourly"] = {
        "intensities": carbon_data.hourly_for_label(
            inputs.hourly, intervals[0][0], intervals[-1][1]
        ),
        "co2e_per_unit_g": sum(per_trial_g) / len(per_trial_g),
    }
