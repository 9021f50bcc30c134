"""The carbon side of ``carbonlabel bench``: the options checked before measuring (zone and
intensity, PUE, hourly intensities, WUE, declared carbon-free supply), and what the run adds to
the label after it (the hourly-matched CO2e, the market-based CO2e and CFE score)."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_runner import carbon as carbon_data
from bench_runner.cli import CliError
from bench_runner.label import trial_intervals_wh
from schemas import market
from schemas.suites import units_per_functional_unit_for

_HOUR = timedelta(hours=1)
SUPPLY_HEADERS = (("hour", "cfe_kwh"), ("hour", "cfe_share"))


@dataclass(frozen=True)
class Supply:
    """Declared hourly carbon-free supply: ``kind`` ``kwh`` (kWh in the hour) or ``share`` (of
    the hour's consumption), by hour start (UTC)."""

    kind: str
    by_hour: dict[datetime, float]
    source: str
    residual_intensity_g_per_kwh: float | None


@dataclass(frozen=True)
class CarbonInputs:
    grid: carbon_data.GridIntensity
    pue: float
    hourly: list[tuple[datetime, float]] | None
    wue_l_per_kwh: float | None
    supply: Supply | None = None


def carbon_inputs(
    *,
    zone: str,
    intensity: float | None,
    intensity_source: str,
    pue: float | None,
    hourly: Path | None,
    wue: float | None,
    cfe_supply: Path | None = None,
    cfe_source: str = "declared hourly carbon-free supply",
    residual_intensity: float | None = None,
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
    supply = None
    if cfe_supply is not None:
        if not cfe_source.strip() or len(cfe_source) > 256:
            raise ValueError("--cfe-source must be 1 to 256 characters")
        if residual_intensity is not None and not 0 <= residual_intensity <= 5000:
            raise ValueError(
                f"--residual-intensity must be between 0 and 5000 g CO2e/kWh, got "
                f"{residual_intensity:g}"
            )
        kind, by_hour = load_supply_csv(cfe_supply)
        supply = Supply(kind, by_hour, cfe_source.strip(), residual_intensity)
    elif residual_intensity is not None:
        raise ValueError("--residual-intensity applies with --cfe-supply only")
    return CarbonInputs(grid, pue_value, hourly_rows, wue, supply)


def load_supply_csv(path: Path) -> tuple[str, dict[datetime, float]]:
    """``hour,cfe_kwh`` or ``hour,cfe_share``: one row per whole hour (ISO 8601 with an offset)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = [r for r in csv.reader(handle) if any(c.strip() for c in r)]
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    header = tuple(c.strip() for c in records[0]) if records else ()
    if header not in SUPPLY_HEADERS:
        raise ValueError(f"{path}: the first line must be 'hour,cfe_kwh' or 'hour,cfe_share'")
    kind = "kwh" if header[1] == "cfe_kwh" else "share"
    by_hour: dict[datetime, float] = {}
    for number, record in enumerate(records[1:], start=2):
        where = f"{path} line {number}"
        try:
            moment = datetime.fromisoformat(record[0].strip().replace("Z", "+00:00"))
            value = float(record[1])
        except (ValueError, IndexError):
            raise ValueError(f"{where}: expected an ISO 8601 hour and a number") from None
        if moment.tzinfo is None:
            raise ValueError(f"{where}: {record[0]!r} needs an offset (Z or +hh:mm)")
        moment = moment.astimezone(UTC)
        if moment.minute or moment.second or moment.microsecond:
            raise ValueError(f"{where}: {record[0]!r} is not a whole hour")
        if not (0 <= value <= 1 if kind == "share" else 0 <= value < float("inf")):
            raise ValueError(f"{where}: {value:g} is out of range for cfe_{kind}")
        if moment in by_hour:
            raise ValueError(f"{where}: hour {moment.isoformat()} appears twice")
        by_hour[moment] = value
    if not by_hour:
        raise ValueError(f"{path}: no rows after the header")
    return kind, by_hour


def hourly_consumption_kwh(
    intervals: list[tuple[datetime, datetime, float]], pue: float
) -> dict[datetime, float]:
    """Facility kWh per wall-clock hour: each interval's Wh spread evenly over it, x PUE."""
    out: dict[datetime, float] = defaultdict(float)
    for start, end, energy_wh in intervals:
        length_s = (end - start).total_seconds()
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if length_s <= 0:
            out[hour] += energy_wh / 1000.0 * pue
            continue
        while hour < end:
            overlap_s = (min(hour + _HOUR, end) - max(hour, start)).total_seconds()
            out[hour] += energy_wh * overlap_s / length_s / 1000.0 * pue
            hour += _HOUR
    return dict(sorted(out.items()))


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


def add_market(
    label: dict[str, Any], inputs: CarbonInputs, run_wall: datetime, run_mono: float
) -> None:
    """``carbon.market`` from the declared supply and the run's hourly consumption."""
    supply = inputs.supply
    if supply is None:
        return
    consumption = hourly_consumption_kwh(trial_intervals_wh(label, run_wall, run_mono), inputs.pue)
    missing = [hour for hour in consumption if hour not in supply.by_hour]
    if missing:
        raise CliError(
            f"--cfe-supply has no row for {missing[0].isoformat().replace('+00:00', 'Z')}, an "
            "hour the run used: give every hour of the run (0 where there was no supply)"
        )
    rows = [
        (hour, kwh, supply.by_hour[hour] * (kwh if supply.kind == "share" else 1.0))
        for hour, kwh in consumption.items()
    ]
    label["carbon"]["market"] = market.block(
        label,
        rows,
        residual_intensity_g_per_kwh=supply.residual_intensity_g_per_kwh,
        source=supply.source,
    )
