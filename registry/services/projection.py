"""What if: a stored label's measured energy under another zone, PUE or hour profile, computed by
the registry.
A projection is never a label: it is not signed, stored, graded or ranked, and every answer says
so. The zone's intensity is the yearly country average of the bundled table (``schemas.grid``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry.errors import ProblemError
from schemas import grid

MIN_PUE, MAX_PUE = 1.0, 5.0
NOTICE = (
    "a projection, not a label: the measured energy under another zone, PUE or hour profile, "
    "not signed"
)


def _invalid(parameter: str, message: str) -> ProblemError:
    return ProblemError(
        "validation-error",
        "the request does not match the API's schema",
        errors=[{"pointer": f"/query/{parameter}", "message": message}],
    )


MAX_PROFILE_HOURS = 168


def checked_pue(pue: float, parameter: str) -> float:
    if not MIN_PUE <= pue <= MAX_PUE:
        raise _invalid(parameter, f"{parameter} must be between {MIN_PUE:g} and {MAX_PUE:g}")
    return pue


def zone_intensity(zone: str, parameter: str) -> tuple[str, float, str]:
    """A zone's yearly intensity from the bundled table, with where it comes from (a region
    takes its country's): (zone, g CO2e/kWh, source). An unknown zone is a 422 naming
    ``parameter``."""
    row = grid.country_row(zone) if len(zone) >= 2 and zone[:2].isalpha() else None
    if row is None:
        raise _invalid(parameter, f"no yearly intensity for zone {zone[:64]!r} in the table")
    info = grid.dataset_info()
    source = f"{info.name} ({info.version}), yearly average {row.year}"
    return zone[:2].upper() + zone[2:], row.intensity_g_per_kwh, source


def parse_profile(text: str | None) -> list[float] | None:
    """An hour profile: comma-separated g CO2e/kWh, one per hour the work runs (1 to 168)."""
    if text is None or not text.strip():
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise _invalid("profile", "an hour profile is comma-separated numbers (g/kWh)") from None
    if not 1 <= len(values) <= MAX_PROFILE_HOURS:
        raise _invalid("profile", f"an hour profile has 1 to {MAX_PROFILE_HOURS} hours")
    if not all(0 <= v <= 5000 for v in values):  # also refuses nan and inf
        raise _invalid("profile", "every hour's intensity is between 0 and 5000 g/kWh")
    return values


def project(
    doc: Mapping[str, Any],
    zone: str | None,
    pue: float | None,
    profile: list[float] | None = None,
) -> dict[str, Any]:
    """The label's energy per functional unit x PUE x an intensity, beside the label's own
    figure: the hour profile's mean when one is given (the work spread evenly over those hours),
    else the zone's yearly intensity (``zone`` / ``pue`` None: the label's)."""
    carbon = doc["carbon"]
    used_pue = float(carbon["pue"]) if pue is None else checked_pue(pue, "pue")
    if profile is not None:
        used_zone, intensity = zone or str(carbon["zone"]), math.fsum(profile) / len(profile)
        source = f"the mean of an hour profile of {len(profile)} hours, given with the request"
    elif zone is None:
        used_zone, intensity = str(carbon["zone"]), float(carbon["intensity_g_per_kwh"])
        source = "the label's own intensity"
    else:
        used_zone, intensity, source = zone_intensity(zone, "zone")
    energy_wh = float(doc["results"]["energy_per_unit_wh"]["mean"])
    return {
        "projection": True,
        "notice": NOTICE,
        "zone": used_zone,
        "intensity_g_per_kwh": intensity,
        "intensity_source": source,
        "pue": used_pue,
        "energy_per_unit_wh": energy_wh,
        "co2e_per_unit_g": energy_wh / 1000.0 * used_pue * intensity,
        "label": {
            "zone": carbon["zone"],
            "pue": carbon["pue"],
            "co2e_per_unit_g": carbon["co2e_per_unit_g"]["mean"],
        },
    }
