"""Where and when the same work would emit least: a label's measured energy and speed, an amount of
work, and hourly carbon intensities (forecasts or histories) for candidate zones; the start hour
and zone with the lowest operational CO2e over the work's duration, against running now and here.

The work's facility energy is ``energy per functional unit x functional units x PUE`` (the
label's figures and PUE) and its duration ``units / throughput`` (the label's measured
throughput); it is spread evenly over the duration, and each hour it overlaps is charged that
hour's intensity. Every assumption is listed with the answer (:func:`advise`'s ``assumptions``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.suites import units_per_functional_unit_for

_HOUR = timedelta(hours=1)


class AdviseError(ValueError):
    """Inputs that cannot be advised on (the message says which and why)."""


@dataclass(frozen=True)
class Work:
    units: float
    energy_kwh: float
    duration_s: float
    unit_name: str


@dataclass(frozen=True)
class Option:
    zone: str
    start: datetime
    co2e_g: float
    estimated_hours: int = 0


@dataclass
class Advice:
    work: Work
    baseline: Option
    best: Option
    per_zone: list[Option]
    assumptions: list[str] = field(default_factory=list)

    @property
    def saving_g(self) -> float:
        return self.baseline.co2e_g - self.best.co2e_g

    def to_json(self) -> dict[str, Any]:
        def option(o: Option) -> dict[str, Any]:
            return {
                "zone": o.zone,
                "start": o.start.isoformat().replace("+00:00", "Z"),
                "co2e_g": o.co2e_g,
                "estimated_hours": o.estimated_hours,
            }

        return {
            "work": {
                "units": self.work.units,
                "unit": self.work.unit_name,
                "energy_kwh": self.work.energy_kwh,
                "duration_s": self.work.duration_s,
            },
            "best": option(self.best),
            "baseline": option(self.baseline),
            "saving_g": self.saving_g,
            "saving_share": self.saving_g / self.baseline.co2e_g if self.baseline.co2e_g else 0.0,
            "per_zone": [option(o) for o in self.per_zone],
            "assumptions": self.assumptions,
        }


def work_of(label: Mapping[str, Any], units: float | None) -> Work:
    """The facility energy and duration of ``units`` inferences (or steps, or requests) of the
    label's workload; a training label with ``declared_total_steps`` defaults to those."""
    results, phase = label["results"], label["benchmark"]["phase"]
    if units is None and phase == "training":
        units = results.get("declared_total_steps")
    if units is None:
        raise AdviseError("say how much work: --units N (inferences, requests or training steps)")
    if not math.isfinite(units) or units <= 0:
        raise AdviseError(f"--units must be a positive number, got {units:g}")
    throughput = float(results["throughput_units_per_s"])
    if throughput <= 0:
        raise AdviseError("the label's throughput is 0: its duration cannot be projected")
    per_fu = units_per_functional_unit_for(label)
    energy_wh = float(results["energy_per_unit_wh"]["mean"]) * units / per_fu
    name = "training steps" if phase == "training" else "units"
    return Work(units, energy_wh / 1000.0 * float(label["carbon"]["pue"]), units / throughput, name)


def _co2e(
    series: Mapping[datetime, tuple[float, bool]], start: datetime, work: Work
) -> tuple[float, int] | None:
    """Grams over [start, start + duration) with the energy spread evenly, and the number of
    estimated hours it used; None when an hour it needs is missing."""
    end = start + timedelta(seconds=work.duration_s)
    rate_kwh_per_s = work.energy_kwh / work.duration_s
    grams, estimated, hour = 0.0, 0, start
    while hour < end:
        found = series.get(hour)
        if found is None:
            return None
        intensity, was_estimated = found
        overlap_s = (min(hour + _HOUR, end) - hour).total_seconds()
        grams += rate_kwh_per_s * overlap_s * intensity
        estimated += was_estimated
        hour += _HOUR
    return grams, estimated


def advise(
    label: Mapping[str, Any],
    zones: Mapping[str, Sequence[tuple[datetime, float, bool]]],
    *,
    units: float | None,
    now: datetime | None = None,
    within_h: int = 24,
) -> Advice:
    """The best (zone, start hour) among ``zones`` (zone -> [(hour start UTC, g/kWh, estimated)])
    for starts from ``now`` (floored to the hour; default: the label's zone's first hour, or the
    first zone's) to ``now + within_h`` hours, and the baseline: now, in the label's zone (or the
    first zone given when the label's has no series)."""
    if not zones:
        raise AdviseError("give hourly intensities for at least one zone")
    work = work_of(label, units)
    tables = {
        zone: {hour.astimezone(UTC): (value, est) for hour, value, est in rows}
        for zone, rows in zones.items()
    }
    here = label["carbon"]["zone"] if label["carbon"]["zone"] in tables else next(iter(tables))
    if now is None:
        now = min(tables[here])
    now = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    baseline_found = _co2e(tables[here], now, work)
    if baseline_found is None:
        raise AdviseError(
            f"the hourly data of {here} does not cover the work's {work.duration_s / 3600:.3g} h "
            f"from {now.isoformat()}"
        )
    baseline = Option(here, now, *baseline_found)
    per_zone: list[Option] = []
    for zone, table in tables.items():
        options = [
            Option(zone, start, *found)
            for step in range(within_h + 1)
            if (found := _co2e(table, start := now + step * _HOUR, work)) is not None
        ]
        if options:
            per_zone.append(min(options, key=lambda o: (o.co2e_g, o.start)))
    best = min(per_zone, key=lambda o: (o.co2e_g, o.start, o.zone))
    return Advice(work, baseline, best, per_zone, _assumptions(label, work, here, within_h))


def _assumptions(label: Mapping[str, Any], work: Work, here: str, within_h: int) -> list[str]:
    carbon = label["carbon"]
    return [
        f"energy per functional unit and throughput as measured for this label "
        f"({label['hardware']['hardware_class']}, zone {carbon['zone']}): the same hardware "
        "and software elsewhere do the same work with the same energy",
        f"PUE {carbon['pue']} (the label's) in every zone",
        f"the work ({work.units:g} {work.unit_name}, {work.duration_s / 3600:.3g} h) runs "
        "without a break at the label's throughput, its energy spread evenly over that time",
        "each hour is charged the intensity given for it (forecasts are only as good as their "
        "source; an estimated hour in a history is counted and reported)",
        f"starts considered: every whole hour from now to {within_h} h later; 'now and here' is "
        f"the first of them in {here}",
        "operational CO2e only: the embodied share depends on the time the hardware is held, "
        "not on where or when",
    ]
