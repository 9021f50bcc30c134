"""Market-based CO2e and the hourly carbon-free energy (CFE) score of a label whose publisher
declared hourly carbon-free supply for the run's site: the block ``carbon.market``, beside the
location-based figure, marked ``declared``.

- ``hours``: each wall-clock hour the run's trials touched, with the site's facility consumption
  in it (``consumption_kwh``: the trials' gross energy x PUE, each trial's energy spread evenly
  over its window) and the carbon-free supply declared for it (``cfe_kwh``).
- ``cfe_score`` = sum over hours of min(consumption, supply) / sum of consumption: the share of
  consumption met by carbon-free supply in the same hour (surplus in one hour covers nothing in
  another).
- ``co2e_per_unit_g`` = mean energy per functional unit (kWh) x PUE x (1 - cfe_score) x
  ``residual_intensity_g_per_kwh`` (the intensity of the unmatched consumption: the supplier's
  residual mix when declared, else the location-based intensity).

The registry checks what the traces can check: the hours' consumption adds up to the trials'
gross energy x PUE, the score and the market-based figure follow from the hours. The hourly split
and the supply are the publisher's statement (the traces carry no wall clock), open to an
auditor. docs/carbon.md has a worked example.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

J_PER_KWH = 3.6e6


def cfe_score(hours: Sequence[Mapping[str, Any]]) -> float:
    consumption = math.fsum(float(h["consumption_kwh"]) for h in hours)
    matched = math.fsum(min(float(h["consumption_kwh"]), float(h["cfe_kwh"])) for h in hours)
    return matched / consumption if consumption > 0 else 0.0


def market_co2e_per_unit_g(label: Mapping[str, Any], score: float, residual: float) -> float:
    energy_kwh = float(label["results"]["energy_per_unit_wh"]["mean"]) / 1000.0
    return energy_kwh * float(label["carbon"]["pue"]) * (1.0 - score) * residual


def expected_figures(label: Mapping[str, Any], trials_gross_j: float) -> dict[str, Any]:
    """The block's figures as recomputed, keyed by JSON pointer (``trials_gross_j``: every trial's
    gross energy from the traces, summed)."""
    block = label["carbon"].get("market")
    if not isinstance(block, Mapping) or issues(label):
        return {}
    hours = list(block["hours"])
    score = cfe_score(hours)
    residual = float(block["residual_intensity_g_per_kwh"])
    return {
        "/carbon/market/consumption_kwh": trials_gross_j
        / J_PER_KWH
        * float(label["carbon"]["pue"]),
        "/carbon/market/cfe_score": score,
        "/carbon/market/co2e_per_unit_g": market_co2e_per_unit_g(label, score, residual),
    }


def issues(label: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Hours that are not whole UTC hours, out of order or repeated."""
    block = label["carbon"].get("market")
    if not isinstance(block, Mapping):
        return []
    seen: list[datetime] = []
    for i, hour in enumerate(block.get("hours", [])):
        moment = datetime.fromisoformat(str(hour["hour"]).replace("Z", "+00:00"))
        if moment.minute or moment.second or moment.microsecond:
            return [(f"/carbon/market/hours/{i}/hour", hour["hour"], "a whole hour")]
        if seen and moment <= seen[-1]:
            return [(f"/carbon/market/hours/{i}/hour", hour["hour"], "after the hour before")]
        seen.append(moment)
    return []


def block(
    label: Mapping[str, Any],
    hours: list[tuple[datetime, float, float]],
    *,
    residual_intensity_g_per_kwh: float | None,
    source: str,
) -> dict[str, Any]:
    """``carbon.market`` from (hour, consumption kWh, supply kWh) rows."""
    rows = [
        {
            "hour": hour.strftime("%Y-%m-%dT%H:00:00Z"),
            "consumption_kwh": consumption,
            "cfe_kwh": supply,
        }
        for hour, consumption, supply in hours
    ]
    residual = (
        float(label["carbon"]["intensity_g_per_kwh"])
        if residual_intensity_g_per_kwh is None
        else residual_intensity_g_per_kwh
    )
    score = cfe_score(rows)
    return {
        "basis": "market",
        "status": "declared",
        "source": source,
        "hours": rows,
        "consumption_kwh": math.fsum(consumption for _, consumption, _ in hours),
        "cfe_score": score,
        "residual_intensity_g_per_kwh": residual,
        "residual_basis": "location" if residual_intensity_g_per_kwh is None else "declared",
        "co2e_per_unit_g": market_co2e_per_unit_g(label, score, residual),
    }
