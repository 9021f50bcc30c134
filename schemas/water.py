"""Water on the label: the bundled, versioned factor table (``schemas/water.json``, built by
``tools/make_water_table.py``) and the block ``carbon.water`` that a label carries and the
registry recomputes.

Per functional unit, with ``E`` the mean gross (IT) energy per functional unit in kWh:

- **on-site** (the data centre's cooling): ``E x WUE``. WUE (water usage effectiveness, The Green
  Grid) is litres of site water per kWh of IT energy: declared by the publisher
  (``source: "declared"``), or the table's documented default (``source: "default"``);
- **off-site** (generating the electricity): ``E x PUE x EWIF``, with the zone's energy-water
  intensity factor (litres consumed per kWh generated) from the table; a zone the table does not
  cover gets ``status: "unknown-zone"`` and no figure, never 0;
- **total**: their sum, when both are known.

docs/carbon.md has the sources and a worked example.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.factor_tables import FactorTable

WH_PER_KWH = 1000.0
TABLE = FactorTable(Path(__file__).with_name("water.json"))


def default_wue_l_per_kwh(version: str) -> float:
    table = TABLE.known(version)
    return float(table["onsite_default"]["wue_l_per_kwh"])


def zone_factor(version: str, zone: str) -> float | None:
    """The zone's off-site factor (L/kWh): a region (``US-CA``) takes its country's."""
    table = TABLE.known(version)
    value = table["zones"].get(zone.split("-", 1)[0])
    return None if value is None else float(value)


def block(
    label: Mapping[str, Any], version: str, wue_l_per_kwh: float, wue_source: str
) -> dict[str, Any]:
    """``carbon.water`` as the table's ``version`` makes it for ``label``, with the on-site WUE
    given (``wue_source``: ``declared`` or ``default``)."""
    carbon = label["carbon"]
    energy_kwh = float(label["results"]["energy_per_unit_wh"]["mean"]) / WH_PER_KWH
    onsite_l = energy_kwh * wue_l_per_kwh
    zone = str(carbon["zone"])
    factor = zone_factor(version, zone)
    out: dict[str, Any] = {
        "table": {"name": TABLE.name(), "version": version},
        "onsite": {
            "wue_l_per_kwh": wue_l_per_kwh,
            "source": wue_source,
            "per_unit_l": onsite_l,
        },
    }
    if factor is None:
        out["offsite"] = {"status": "unknown-zone", "zone": zone}
        return out
    offsite_l = energy_kwh * float(carbon["pue"]) * factor
    out["offsite"] = {
        "status": "estimated",
        "zone": zone,
        "ewif_l_per_kwh": factor,
        "per_unit_l": offsite_l,
    }
    out["per_unit_l"] = onsite_l + offsite_l
    return out


def stated_wue(label: Mapping[str, Any], version: str) -> tuple[float, str]:
    """The on-site WUE the label states, with its source; the table's default when it states
    none (a producer's draft)."""
    onsite = (label["carbon"].get("water") or {}).get("onsite") or {}
    if onsite.get("source") == "declared" and "wue_l_per_kwh" in onsite:
        return float(onsite["wue_l_per_kwh"]), "declared"
    return default_wue_l_per_kwh(version), "default"


def fill(label: dict[str, Any]) -> dict[str, Any]:
    """Write ``carbon.water`` (the version and declared WUE it names, else the current table and
    its default)."""
    stated = label["carbon"].get("water") or {}
    version = str(stated.get("table", {}).get("version") or TABLE.current_version())
    if TABLE.version(version) is None:
        version = TABLE.current_version()
    wue, source = stated_wue(label, version)
    label["carbon"]["water"] = block(label, version, wue, source)
    return label


def expected_figures(label: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of the label's ``carbon.water`` as recomputed, keyed by JSON pointer (empty:
    no block, an unknown table, or a structure :func:`issues` reports)."""
    stated = label["carbon"].get("water")
    if not isinstance(stated, Mapping) or issues(label):
        return {}
    version = str(stated["table"]["version"])
    wue, source = stated_wue(label, version)
    expected = block(label, version, wue, source)
    out: dict[str, Any] = {"/carbon/water/onsite/per_unit_l": expected["onsite"]["per_unit_l"]}
    if source == "default":
        out["/carbon/water/onsite/wue_l_per_kwh"] = expected["onsite"]["wue_l_per_kwh"]
    if expected["offsite"]["status"] == "estimated":
        out["/carbon/water/offsite/ewif_l_per_kwh"] = expected["offsite"]["ewif_l_per_kwh"]
        out["/carbon/water/offsite/per_unit_l"] = expected["offsite"]["per_unit_l"]
        out["/carbon/water/per_unit_l"] = expected["per_unit_l"]
    return out


def issues(label: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """What the stated block gets wrong besides its figures: an unknown table, an off-site zone
    other than the label's, a status other than the table gives for the zone."""
    stated = label["carbon"].get("water")
    if not isinstance(stated, Mapping):
        return []
    unknown = TABLE.reference_issues(stated.get("table"), "/carbon/water/table")
    if unknown:
        return unknown
    version = str(stated["table"]["version"])
    offsite = stated.get("offsite", {})
    zone = str(label["carbon"]["zone"])
    if offsite.get("zone") != zone:
        return [("/carbon/water/offsite/zone", offsite.get("zone"), zone)]
    status = "unknown-zone" if zone_factor(version, zone) is None else "estimated"
    if offsite.get("status") != status:
        return [("/carbon/water/offsite/status", offsite.get("status"), status)]
    if status == "unknown-zone" and "per_unit_l" in stated:
        return [("/carbon/water/per_unit_l", stated["per_unit_l"], None)]  # a total of what?
    return []
