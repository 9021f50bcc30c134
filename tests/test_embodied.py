"""Embodied emissions on the label (issue 13, item 1): the bundled factor table, the block
``carbon.embodied`` checked against a hand computation, its recomputation by the verifier and the
registry (a changed figure is inconsistent-results), unknown hardware (a status, never 0), old
labels without the block, and SCI's M from it."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench_runner.exports import export_sci
from schemas import check_results, validate_label
from schemas import embodied as emb
from schemas.contract import load_methodology
from schemas.results import component_energy_j, fill_results
from schemas.synthetic import make_label
from tests.helpers import Publisher

REGISTRY = "https://registry.example"


def label(**kwargs: Any) -> dict[str, Any]:
    return make_label(vendor="acme", model="m", registry=REGISTRY, **kwargs)


def by_hand_work_s(doc: dict[str, Any]) -> float:
    """Working time per functional unit from the traces, written out: each trial's window less
    the settling tail, times the units per functional unit over the trial's units."""
    settle_s = float(doc["measurement"].get("settle_s") or 0.0)
    per_fu = 1000.0 if doc["benchmark"]["phase"] == "inference" else 1.0
    times = [
        (t["t_end_s"] - t["t_start_s"] - settle_s) * per_fu / t["units"]
        for t in doc["traces"]["trials"]
    ]
    return sum(times) / len(times)


def test_every_reference_class_but_other_has_factors() -> None:
    table = emb.TABLE.version(emb.TABLE.current_version())
    assert table is not None
    assert table["life_h"] == 52_560  # six years
    classes = set(load_methodology()["hardware_classes"])
    assert set(table["classes"]) == classes - {"other"}
    for name, factors in table["classes"].items():
        values = [v for k, v in factors.items() if k.endswith("_kg") or "_kg_" in k]
        assert values, name
        assert all(v > 0 for v in values), name
        assert factors["basis"], name


def test_gpu_label_matches_a_hand_computation() -> None:
    doc = label(hardware_class="nvidia-h100-sxm-80gb")
    block = doc["carbon"]["embodied"]
    assert block["status"] == "estimated"
    assert block["table"] == {"name": "carbonlabel embodied factors", "version": "1"}
    gpus = doc["hardware"]["accelerator"]["count"]
    work_s = by_hand_work_s(doc)
    assert block["time_per_unit_s"] == pytest.approx(work_s, rel=1e-12)
    # 575.1 kg (card) and 712.38 kg (host share) per GPU over six years of 3600 s hours
    card_g = 575.1 * 1000 * gpus * work_s / (52_560 * 3600)
    host_g = 712.38 * 1000 * gpus * work_s / (52_560 * 3600)
    assert [c["name"] for c in block["components"]] == ["accelerator", "host"]
    assert block["components"][0]["co2e_per_unit_g"] == pytest.approx(card_g, rel=1e-12)
    assert block["components"][1]["co2e_per_unit_g"] == pytest.approx(host_g, rel=1e-12)
    assert block["co2e_per_unit_g"] == pytest.approx(card_g + host_g, rel=1e-12)
    # the embodied figure stays apart from the operational one
    energy_wh = doc["results"]["energy_per_unit_wh"]["mean"]
    assert doc["carbon"]["co2e_per_unit_g"]["mean"] == pytest.approx(energy_wh / 1000 * 1.2 * 56.0)
    assert validate_label(doc) == []
    assert check_results(doc) == []


def test_training_label_is_per_step() -> None:
    doc = label(phase="training", units_per_trial=20)
    block = doc["carbon"]["embodied"]
    assert block["time_per_unit_s"] == pytest.approx(by_hand_work_s(doc), rel=1e-12)
    assert check_results(doc) == []


def test_cpu_label_counts_logical_cpus() -> None:
    doc = label(hardware_class="cpu-x86-64")
    block = doc["carbon"]["embodied"]
    cores = doc["hardware"]["cpu"]["cores"]
    work_s = by_hand_work_s(doc)
    assert block["components"] == [
        {
            "name": "host",
            "count": cores,
            "kg_co2e_each": 10.94,
            "co2e_per_unit_g": pytest.approx(10.94 * 1000 * cores * work_s / (52_560 * 3600)),
        }
    ]
    assert check_results(doc) == []


def test_nodes_count_every_gpu() -> None:
    doc = label()
    one = copy.deepcopy(doc["hardware"]["accelerator"])
    doc["hardware"]["accelerator"]["count"] = 99  # the nodes' sum wins
    cpu = doc["hardware"]["cpu"]
    nodes = [
        {"name": f"n{i}", "node_rank": i, "accelerator": {**one, "count": 4}, "cpu": cpu}
        for i in range(2)
    ]
    block = emb.block({**doc, "hardware": {**doc["hardware"], "nodes": nodes}}, "1", 10.0)
    assert [c["count"] for c in block["components"]] == [8, 8]


def test_unknown_hardware_has_no_figure_and_never_zero() -> None:
    doc = label(hardware_class="other")
    block = doc["carbon"]["embodied"]
    assert block == {
        "table": {"name": emb.TABLE.name(), "version": "1"},
        "status": "unknown-hardware",
    }
    assert validate_label(doc) == []
    assert check_results(doc) == []
    # a zero (or any figure) for hardware the table does not cover is refused by the schema ...
    zero = copy.deepcopy(doc)
    zero["carbon"]["embodied"]["co2e_per_unit_g"] = 0.0
    assert [issue.pointer for issue in validate_label(zero)] == ["/carbon/embodied/co2e_per_unit_g"]
    # ... and claiming a figure for it is a mismatch
    claimed = copy.deepcopy(doc)
    claimed["carbon"]["embodied"] = emb.block(label(), "1", 1.0)
    assert [m.pointer for m in check_results(claimed)] == ["/carbon/embodied/status"]


def test_a_withheld_figure_for_known_hardware_is_a_mismatch() -> None:
    doc = label()
    doc["carbon"]["embodied"] = {
        "table": {"name": emb.TABLE.name(), "version": "1"},
        "status": "unknown-hardware",
    }
    assert validate_label(doc) == []
    assert [m.pointer for m in check_results(doc)] == ["/carbon/embodied/status"]


@pytest.mark.parametrize(
    ("pointer", "change"),
    [
        (
            "/carbon/embodied/co2e_per_unit_g",
            lambda b: b.update(co2e_per_unit_g=b["co2e_per_unit_g"] / 2),
        ),
        ("/carbon/embodied/life_h", lambda b: b.update(life_h=26_280.0)),
        (
            "/carbon/embodied/time_per_unit_s",
            lambda b: b.update(time_per_unit_s=b["time_per_unit_s"] * 2),
        ),
        (
            "/carbon/embodied/components/0/kg_co2e_each",
            lambda b: b["components"][0].update(kg_co2e_each=164.0),
        ),
        ("/carbon/embodied/components/1/count", lambda b: b["components"][1].update(count=8)),
    ],
)
def test_a_changed_figure_is_a_mismatch(pointer: str, change: Any) -> None:
    doc = label()
    change(doc["carbon"]["embodied"])
    assert validate_label(doc) == []
    assert pointer in [m.pointer for m in check_results(doc)]


def test_an_unknown_table_version_is_a_mismatch() -> None:
    doc = label()
    doc["carbon"]["embodied"]["table"]["version"] = "999"
    assert [m.pointer for m in check_results(doc)] == ["/carbon/embodied/table"]
    with pytest.raises(ValueError, match="not known"):
        emb.block(doc, "999", 1.0)


def test_labels_without_the_block_stay_valid() -> None:
    doc = label()
    del doc["carbon"]["embodied"]
    assert validate_label(doc) == []
    assert check_results(doc) == []
    # a producer filling an old draft gets the current table
    assert (
        fill_results(doc)["carbon"]["embodied"]["table"]["version"] == emb.TABLE.current_version()
    )


def test_the_work_time_follows_the_traces() -> None:
    """Slower trials (the same energy over twice the time) hold the hardware twice as long."""
    doc = label()
    slow = copy.deepcopy(doc)
    for trial in slow["traces"]["trials"]:
        trial["t_end_s"] = trial["t_start_s"] + 2 * (trial["t_end_s"] - trial["t_start_s"])
    # the energy in the windows is read from the traces, which stop where they stopped
    energy = [
        sum(component_energy_j(c, t["t_start_s"], t["t_end_s"]) for c in t["components"])
        for t in doc["traces"]["trials"]
    ]
    assert all(math.isfinite(e) for e in energy)
    assert emb.block(slow, "1", by_hand_work_s(slow))["co2e_per_unit_g"] == pytest.approx(
        2 * doc["carbon"]["embodied"]["co2e_per_unit_g"]
    )


def test_sci_takes_m_from_the_label() -> None:
    doc = label()
    m = doc["carbon"]["embodied"]["co2e_per_unit_g"]
    sci = export_sci(doc)
    assert sci["terms"]["M_g"] == m
    assert sci["sci_g_per_unit"] == pytest.approx(doc["carbon"]["co2e_per_unit_g"]["mean"] + m)
    assert any("carbon.embodied" in note for note in sci["notes"])
    assert export_sci(doc, embodied_g=1.0)["terms"]["M_g"] == 1.0
    other = label(hardware_class="other")
    unknown = export_sci(other)
    assert unknown["terms"]["M_g"] == 0.0
    assert any("no figures for this hardware class" in note for note in unknown["notes"])


def test_the_registry_recomputes_it(client: TestClient, publisher: Publisher) -> None:
    good = publisher.label(model="m")
    assert good["carbon"]["embodied"]["status"] == "estimated"
    bad = copy.deepcopy(good)
    bad["carbon"]["embodied"]["co2e_per_unit_g"] *= 0.5
    response = client.post("/v1/labels", content=publisher.envelope(bad), headers=publisher.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:carbonlabel:problem:inconsistent-results"
    assert "/carbon/embodied/co2e_per_unit_g" in response.text
    stored = client.post("/v1/labels", content=publisher.envelope(good), headers=publisher.headers)
    assert stored.status_code == 201, stored.text
    shown = client.get(f"/v1/labels/{good['label_id']}").json()["label"]["carbon"]["embodied"]
    assert shown == good["carbon"]["embodied"]
