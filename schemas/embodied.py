"""Embodied (manufacturing) emissions allocated to a label's work: the bundled, versioned factor
table (``schemas/embodied.json``, built by ``tools/make_embodied_table.py``) and the block
``carbon.embodied`` that a label carries and the registry recomputes.

For each component the work occupies, ``g per functional unit = kgCO2e x 1000 x count x (working
time per functional unit / service life)``:

- a GPU class: the ``accelerator`` (the card, ``accelerator_kg``) and its ``host`` share
  (``host_kg_per_accelerator``: the server less its GPUs, per GPU), each counted once per GPU the
  label lists (``hardware.accelerator.count``, or the sum over ``hardware.nodes``);
- a CPU class: the ``host`` (``host_kg_per_cpu``, per logical CPU), counted once per logical CPU
  the label lists (``hardware.cpu.cores``, or the sum over the nodes).

The working time per functional unit is the mean over the headline trials of the trial's working
time (its window less the settling tail) x units per functional unit / units: the time the
hardware is held for one functional unit. A class without factors (``other``, or a class a table
version does not cover) gets no figure: the block says ``status: "unknown-hardware"``, never 0.
docs/carbon.md has the sources and a worked example.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.factor_tables import FactorTable

S_PER_H = 3600.0
G_PER_KG = 1000.0


TABLE = FactorTable(Path(__file__).with_name("embodied.json"))


def _counts(label: Mapping[str, Any]) -> tuple[int, int]:
    """The label's accelerators and logical CPUs, summed over its nodes when it lists them."""
    hardware = label["hardware"]
    nodes = hardware.get("nodes")
    if nodes:
        return (
            sum(int(node["accelerator"]["count"]) for node in nodes),
            sum(int(node["cpu"]["cores"]) for node in nodes),
        )
    return int(hardware["accelerator"]["count"]), int(hardware["cpu"]["cores"])


def _components(
    factors: Mapping[str, Any], label: Mapping[str, Any]
) -> list[tuple[str, int, float]]:
    """(component, count, kgCO2e each) for the label's hardware under one class's factors."""
    accelerators, cpus = _counts(label)
    if "accelerator_kg" in factors:
        if accelerators < 1:
            return []
        return [
            ("accelerator", accelerators, float(factors["accelerator_kg"])),
            ("host", accelerators, float(factors["host_kg_per_accelerator"])),
        ]
    return [("host", cpus, float(factors["host_kg_per_cpu"]))] if cpus >= 1 else []


def block(label: Mapping[str, Any], version: str, time_per_unit_s: float) -> dict[str, Any]:
    """``carbon.embodied`` as the table's ``version`` makes it for ``label`` (``version`` must be
    known: ``TABLE.version``)."""
    table = TABLE.known(version)
    reference = {"name": TABLE.name(), "version": version}
    hardware_class = label["hardware"]["hardware_class"]
    factors = table["classes"].get(hardware_class)
    components = _components(factors, label) if factors is not None else []
    if not components:
        return {"table": reference, "status": "unknown-hardware"}
    life_h = float(table["life_h"])
    share = time_per_unit_s / (life_h * S_PER_H)
    grams = [kg * G_PER_KG * count * share for _, count, kg in components]
    shown = [
        {"name": name, "count": count, "kg_co2e_each": kg, "co2e_per_unit_g": g}
        for (name, count, kg), g in zip(components, grams, strict=True)
    ]
    return {
        "table": reference,
        "status": "estimated",
        "life_h": life_h,
        "time_per_unit_s": time_per_unit_s,
        "components": shown,
        "co2e_per_unit_g": math.fsum(grams),
    }


def expected_figures(label: Mapping[str, Any], time_per_unit_s: float) -> dict[str, Any] | None:
    """The figures of the label's ``carbon.embodied`` as recomputed, keyed by JSON pointer (None:
    the label carries no block, or names a table version this build does not know, which
    :func:`issues` reports)."""
    stated = label["carbon"].get("embodied")
    if not isinstance(stated, Mapping):
        return None
    version = str(stated.get("table", {}).get("version"))
    if TABLE.version(version) is None:
        return None
    expected = block(label, version, time_per_unit_s)
    if expected["status"] != "estimated" or stated.get("status") != "estimated":
        return {}  # no figures to compare (a wrong status is one of the issues)
    out: dict[str, Any] = {
        "/carbon/embodied/life_h": expected["life_h"],
        "/carbon/embodied/time_per_unit_s": expected["time_per_unit_s"],
        "/carbon/embodied/co2e_per_unit_g": expected["co2e_per_unit_g"],
    }
    for i, component in enumerate(expected["components"]):
        for key in ("count", "kg_co2e_each", "co2e_per_unit_g"):
            out[f"/carbon/embodied/components/{i}/{key}"] = component[key]
    return out


def issues(label: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """What the stated block gets wrong besides its figures: an unknown table, another status
    than the table gives (a figure withheld for hardware the table covers, or one given for
    hardware it does not), other components. (pointer, stated, expected) each."""
    stated = label["carbon"].get("embodied")
    if not isinstance(stated, Mapping):
        return []
    unknown = TABLE.reference_issues(stated.get("table"), "/carbon/embodied/table")
    if unknown:
        return unknown
    version = str(stated["table"]["version"])
    expected = block(label, version, 0.0)
    out: list[tuple[str, Any, Any]] = []
    if stated.get("status") != expected["status"]:
        out.append(("/carbon/embodied/status", stated.get("status"), expected["status"]))
    elif expected["status"] == "estimated":
        names = [c.get("name") for c in stated.get("components", [])]
        wanted = [c["name"] for c in expected["components"]]
        if names != wanted:
            out.append(("/carbon/embodied/components", names, wanted))
    return out
