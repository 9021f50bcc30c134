"""Water on the label (issue 13, item 2): on-site from a declared or default WUE, off-site from the
zone's factor, checked against a hand computation; recomputed by the verifier and the registry;
unknown zones (a status, never 0); CodeCarbon's water columns carried over on import; old labels
without the block."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench_runner.codecarbon_csv import parse_codecarbon_csv
from schemas import check_results, validate_label
from schemas import water as wat
from schemas.synthetic import make_label
from tests.helpers import Publisher
from tests.test_interop import draft

REGISTRY = "https://registry.example"
CODECARBON_V3 = Path(__file__).parent / "data" / "codecarbon" / "emissions-v3.3.2.csv"


def label(**kwargs: Any) -> dict[str, Any]:
    return make_label(vendor="acme", model="m", registry=REGISTRY, **kwargs)


def test_table_has_the_documented_default_and_zones() -> None:
    table = wat.TABLE.version(wat.TABLE.current_version())
    assert table is not None
    assert table["onsite_default"]["wue_l_per_kwh"] == 0.375
    zones = table["zones"]
    # WRI 2020 appendix 2 via EcoLogits 0.9.1 (L/kWh)
    assert zones["FR"] == 3.6737
    assert zones["DE"] == 1.947
    assert zones["US"] == 3.1321
    assert zones["SE"] == 6.0315
    assert "WOR" not in zones
    assert len(zones) == 49
    assert all(len(code) == 2 for code in zones)


def test_default_wue_matches_a_hand_computation() -> None:
    doc = label(zone="FR", pue=1.2)
    block = doc["carbon"]["water"]
    e_kwh = doc["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert block["table"] == {"name": "carbonlabel water factors", "version": "1"}
    assert block["onsite"] == {
        "wue_l_per_kwh": 0.375,
        "source": "default",
        "per_unit_l": pytest.approx(e_kwh * 0.375, rel=1e-12),
    }
    assert block["offsite"] == {
        "status": "estimated",
        "zone": "FR",
        "ewif_l_per_kwh": 3.6737,
        "per_unit_l": pytest.approx(e_kwh * 1.2 * 3.6737, rel=1e-12),
    }
    assert block["per_unit_l"] == pytest.approx(e_kwh * (0.375 + 1.2 * 3.6737), rel=1e-12)
    assert validate_label(doc) == []
    assert check_results(doc) == []


def test_a_region_takes_its_countrys_factor() -> None:
    doc = label(zone="US-CA")
    assert doc["carbon"]["water"]["offsite"]["ewif_l_per_kwh"] == 3.1321
    assert check_results(doc) == []


def test_a_declared_wue_is_used_and_kept() -> None:
    doc = label()
    doc["carbon"]["water"] = {"onsite": {"wue_l_per_kwh": 1.1, "source": "declared"}}
    wat.fill(doc)
    e_kwh = doc["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert doc["carbon"]["water"]["onsite"]["per_unit_l"] == pytest.approx(e_kwh * 1.1)
    assert check_results(doc) == []
    # a "default" that is not the table's default is a mismatch
    doc["carbon"]["water"]["onsite"]["source"] = "default"
    assert "/carbon/water/onsite/wue_l_per_kwh" in [m.pointer for m in check_results(doc)]


def test_an_unknown_zone_has_no_offsite_figure_and_no_total() -> None:
    doc = label(zone="XK", intensity_g_per_kwh=500.0)  # not in the water table
    block = doc["carbon"]["water"]
    assert block["offsite"] == {"status": "unknown-zone", "zone": "XK"}
    assert "per_unit_l" not in block
    assert block["onsite"]["per_unit_l"] > 0
    assert validate_label(doc) == []
    assert check_results(doc) == []
    zero = copy.deepcopy(doc)
    zero["carbon"]["water"]["offsite"]["per_unit_l"] = 0.0  # never a silent zero
    assert validate_label(zero) != []
    total = copy.deepcopy(doc)
    total["carbon"]["water"]["per_unit_l"] = block["onsite"]["per_unit_l"]
    assert [m.pointer for m in check_results(total)] == ["/carbon/water/per_unit_l"]


@pytest.mark.parametrize(
    ("pointer", "change"),
    [
        ("/carbon/water/onsite/per_unit_l", lambda w: w["onsite"].update(per_unit_l=0.0)),
        ("/carbon/water/offsite/ewif_l_per_kwh", lambda w: w["offsite"].update(ewif_l_per_kwh=1.0)),
        ("/carbon/water/offsite/per_unit_l", lambda w: w["offsite"].update(per_unit_l=1e-9)),
        ("/carbon/water/per_unit_l", lambda w: w.update(per_unit_l=w["per_unit_l"] * 3)),
        ("/carbon/water/offsite/zone", lambda w: w["offsite"].update(zone="SE")),
        (
            "/carbon/water/offsite/status",
            lambda w: w.update(offsite={"status": "unknown-zone", "zone": "FR"}),
        ),
        ("/carbon/water/table", lambda w: w["table"].update(version="9")),
    ],
)
def test_a_changed_figure_is_a_mismatch(pointer: str, change: Any) -> None:
    doc = label(zone="FR")
    change(doc["carbon"]["water"])
    assert pointer in [m.pointer for m in check_results(doc)]


def test_labels_without_the_block_stay_valid() -> None:
    doc = label()
    del doc["carbon"]["water"]
    assert validate_label(doc) == []
    assert check_results(doc) == []


def test_codecarbon_water_columns_carry_over() -> None:
    text = CODECARBON_V3.read_text()
    header, *rows = text.splitlines()
    columns = header.split(",")
    wue_at = columns.index("wue")
    with_wue = [header]
    for row in rows:
        cells = row.split(",")
        cells[wue_at] = "1.1"
        with_wue.append(",".join(cells))
    parsed = parse_codecarbon_csv("\n".join(with_wue) + "\n")
    assert {row.wue_l_per_kwh for row in parsed} == {1.1}
    imported = draft(parsed)
    onsite = imported["carbon"]["water"]["onsite"]
    pue = imported["carbon"]["pue"]
    assert onsite["source"] == "declared"
    assert onsite["wue_l_per_kwh"] == pytest.approx(1.1 * pue)
    # the same litres as CodeCarbon's: its wue times its PUE-scaled energy
    e_it_kwh = imported["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert onsite["per_unit_l"] == pytest.approx(1.1 * e_it_kwh * pue)
    assert check_results(imported) == []
    # without a wue (0 in the file): the default
    plain = draft(parse_codecarbon_csv(text))
    assert plain["carbon"]["water"]["onsite"]["source"] == "default"


def test_the_registry_recomputes_it(client: TestClient, publisher: Publisher) -> None:
    good = publisher.label(model="m")
    bad = copy.deepcopy(good)
    bad["carbon"]["water"]["offsite"]["per_unit_l"] /= 10
    response = client.post("/v1/labels", content=publisher.envelope(bad), headers=publisher.headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:carbonlabel:problem:inconsistent-results"
    assert "/carbon/water/offsite/per_unit_l" in response.text
    stored = client.post("/v1/labels", content=publisher.envelope(good), headers=publisher.headers)
    assert stored.status_code == 201, stored.text
