"""A label's whole footprint in sections, as a food label lists its contents: energy, operational
CO2e, embodied CO2e, their total, water and quality, each with its unit, its basis and the
methodology section that defines it. The API (``GET /v1/labels/{id}``: ``footprint``), the model
page and the label card show these sections.

A figure the label does not carry is ``null`` with a ``status`` saying why ("not-reported": the
label predates the block; "unknown-hardware" / "unknown-zone": the factor tables have no figure
for it; "not-declared": the publisher declared nothing), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METHOD = {
    "energy": "/methodology#protocol",
    "operational_co2e": "/methodology#carbon",
    "embodied_co2e": "/methodology#embodied",
    "total_co2e": "/methodology#total",
    "water": "/methodology#water",
    "quality": "/methodology#quality",
}


PER = {
    "1k-inferences": "1,000 inferences",
    "1k-requests": "1,000 requests",
    "step": "training step",
}
"""What one functional unit is, in the words of the pages' units (``pages.common``)."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def energy_section(doc: Mapping[str, Any], per: str, measured: bool) -> dict[str, Any]:
    results = doc.get("results", {})
    energy = results.get("energy_per_unit_wh", {})
    return {
        "unit": f"Wh per {per}",
        "gross": _number(energy.get("mean")),
        "ci95_low": _number(energy.get("ci95_low")),
        "ci95_high": _number(energy.get("ci95_high")),
        "dynamic": _number(results.get("dynamic_energy_per_unit_wh")),
        "idle_power_w": _number(results.get("idle_power_w")),
        "basis": "measured" if measured else "estimated power",
        "method": METHOD["energy"],
    }


def operational_section(carbon: Mapping[str, Any], per: str) -> dict[str, Any]:
    co2e = carbon.get("co2e_per_unit_g", {})
    found = carbon.get("market")
    declared = isinstance(found, Mapping)
    market: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "unit": f"g CO2e per {per}",
        "location_based": _number(co2e.get("mean")),
        "basis": "location",
        "zone": carbon.get("zone"),
        "intensity_g_per_kwh": _number(carbon.get("intensity_g_per_kwh")),
        "pue": _number(carbon.get("pue")),
        "market_based": _number(market.get("co2e_per_unit_g")) if declared else None,
        "cfe_score": _number(market.get("cfe_score")) if declared else None,
        "market_status": "declared" if declared else "not-declared",
        "market_source": market.get("source") if declared else None,
        "residual_basis": market.get("residual_basis") if declared else None,
        "method": METHOD["operational_co2e"],
    }


def embodied_section(carbon: Mapping[str, Any], per: str) -> dict[str, Any]:
    block = carbon.get("embodied")
    section: dict[str, Any] = {"unit": f"g CO2e per {per}", "method": METHOD["embodied_co2e"]}
    if not isinstance(block, Mapping):
        return section | {"status": "not-reported", "value": None}
    section |= {"status": block.get("status"), "table": block.get("table")}
    if block.get("status") != "estimated":
        return section | {"value": None}
    return section | {
        "value": _number(block.get("co2e_per_unit_g")),
        "basis": "manufacturing share by time used",
        "life_h": _number(block.get("life_h")),
        "time_per_unit_s": _number(block.get("time_per_unit_s")),
        "components": {
            str(c.get("name")): _number(c.get("co2e_per_unit_g"))
            for c in block.get("components", [])
        },
    }


def total_section(
    operational: Mapping[str, Any], embodied: Mapping[str, Any], per: str
) -> dict[str, Any]:
    """Operational (location-based) plus embodied; null when the embodied figure is unknown
    (a total without it would read as complete)."""
    location = operational["location_based"]
    known = embodied.get("value")
    return {
        "unit": f"g CO2e per {per}",
        "value": location + known if location is not None and known is not None else None,
        "status": "complete" if known is not None else f"embodied {embodied['status']}",
        "basis": "operational (location-based) + embodied",
        "method": METHOD["total_co2e"],
    }


def water_section(carbon: Mapping[str, Any], per: str) -> dict[str, Any]:
    block = carbon.get("water")
    section: dict[str, Any] = {"unit": f"L per {per}", "method": METHOD["water"]}
    if not isinstance(block, Mapping):
        return section | {"status": "not-reported", "value": None}
    onsite = block.get("onsite", {})
    offsite = block.get("offsite", {})
    return section | {
        "status": "estimated" if "per_unit_l" in block else f"off-site {offsite.get('status')}",
        "value": _number(block.get("per_unit_l")),
        "onsite": _number(onsite.get("per_unit_l")),
        "offsite": _number(offsite.get("per_unit_l")),
        "wue_l_per_kwh": _number(onsite.get("wue_l_per_kwh")),
        "wue_source": onsite.get("source"),
        "ewif_l_per_kwh": _number(offsite.get("ewif_l_per_kwh")),
        "table": block.get("table"),
    }


def footprint(
    doc: Mapping[str, Any], functional_unit: str, measured: bool, quality: Mapping[str, Any]
) -> dict[str, Any]:
    """Every section of a stored label's document (``quality``: ``queries.quality_view``'s)."""
    per = PER.get(functional_unit, functional_unit)
    carbon = doc.get("carbon", {})
    operational = operational_section(carbon, per)
    embodied = embodied_section(carbon, per)
    return {
        "per": per,
        "energy": energy_section(doc, per, measured),
        "operational_co2e": operational,
        "embodied_co2e": embodied,
        "total_co2e": total_section(operational, embodied, per),
        "water": water_section(carbon, per),
        "quality": {**quality, "method": METHOD["quality"]},
    }


def market_checks(attestations: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What auditors said of a label's declared carbon-free supply (their attestations'
    ``declarations.market``): auditor, agrees, evidence, oldest first."""
    found = []
    for attestation in attestations:
        check = (attestation.get("figures", {}).get("declarations") or {}).get("market")
        if isinstance(check, Mapping):
            found.append(
                {
                    "auditor": attestation.get("auditor"),
                    "agrees": bool(check.get("agrees")),
                    "evidence": check.get("evidence"),
                }
            )
    return found
