"""The whole footprint in sections (issue 13, item 4): the API's ``footprint``, the model page's
rows, the label card's rows and the methodology sections they link to; figures a label does not
carry are "not reported" (or say which table lacks them), never 0."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import AUDIENCE, Publisher


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def footprint(client: TestClient, label_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/labels/{label_id}").json()["footprint"])


def test_the_api_lists_every_section_with_unit_basis_and_method(
    client: TestClient, publisher: Publisher
) -> None:
    label = publisher.label(model="m")
    submit(client, publisher, label)
    fp = footprint(client, label["label_id"])
    carbon, results = label["carbon"], label["results"]
    assert fp["per"] == "1,000 inferences"
    assert fp["energy"]["gross"] == results["energy_per_unit_wh"]["mean"]
    assert fp["energy"]["dynamic"] == results["dynamic_energy_per_unit_wh"]
    assert fp["energy"]["idle_power_w"] == results["idle_power_w"]
    assert fp["energy"]["unit"] == "Wh per 1,000 inferences"
    assert fp["operational_co2e"]["location_based"] == carbon["co2e_per_unit_g"]["mean"]
    assert fp["operational_co2e"]["market_status"] == "not-declared"
    embodied = carbon["embodied"]["co2e_per_unit_g"]
    assert fp["embodied_co2e"]["value"] == embodied
    assert fp["embodied_co2e"]["status"] == "estimated"
    assert fp["total_co2e"]["value"] == pytest.approx(carbon["co2e_per_unit_g"]["mean"] + embodied)
    assert fp["total_co2e"]["status"] == "complete"
    assert fp["water"]["value"] == carbon["water"]["per_unit_l"]
    assert fp["water"]["unit"] == "L per 1,000 inferences"
    for name in ("energy", "operational_co2e", "embodied_co2e", "total_co2e", "water", "quality"):
        assert fp[name]["method"].startswith("/methodology#"), name
    methodology = client.get("/methodology").text
    for name in ("energy", "operational_co2e", "embodied_co2e", "total_co2e", "water", "quality"):
        anchor = fp[name]["method"].split("#")[1]
        assert f'id="{anchor}"' in methodology, anchor


def test_an_old_label_says_not_reported_never_zero(
    client: TestClient, publisher: Publisher
) -> None:
    label = publisher.label(model="old")
    del label["carbon"]["embodied"], label["carbon"]["water"]  # a label from before the blocks
    submit(client, publisher, label)
    fp = footprint(client, label["label_id"])
    assert fp["embodied_co2e"] == {
        "unit": "g CO2e per 1,000 inferences",
        "method": "/methodology#embodied",
        "status": "not-reported",
        "value": None,
    }
    assert fp["total_co2e"]["value"] is None
    assert fp["total_co2e"]["status"] == "embodied not-reported"
    assert fp["water"]["status"] == "not-reported"
    assert fp["water"]["value"] is None
    page = client.get("/models/acme/old").text
    embodied_cell = re.search(r'class="footprint-embodied">(.*?)</dd>', page, re.S)
    assert embodied_cell is not None
    assert "not reported" in embodied_cell.group(1)
    assert "no total" in page
    card = client.get("/label/acme/old.svg").text
    assert re.search(r"embodied CO₂e \(estimate\)</text>.*?not reported</text>", card, re.S)
    assert re.search(r"Water per 1k inferences</text>.*?not reported</text>", card, re.S)
    assert "Total CO₂e" not in card


def test_unknown_hardware_says_so(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="odd", hardware_class="other")
    submit(client, publisher, label)
    fp = footprint(client, label["label_id"])
    assert fp["embodied_co2e"]["status"] == "unknown-hardware"
    assert fp["embodied_co2e"]["value"] is None
    assert "not known for this hardware class" in client.get("/models/acme/odd").text
    card = client.get("/label/acme/odd.svg").text
    assert re.search(r"embodied CO₂e \(estimate\)</text>.*?unknown hardware</text>", card, re.S)


def test_the_model_page_and_card_show_the_figures(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="m")
    submit(client, publisher, label)
    page = client.get("/models/acme/m").text
    embodied = label["carbon"]["embodied"]["co2e_per_unit_g"]
    cell = re.search(r'class="footprint-embodied">(.*?)</dd>', page, re.S)
    assert cell is not None
    assert "g per 1,000 inferences" in cell.group(1)
    assert "6-year life" in cell.group(1)
    assert 'class="footprint-total"' in page
    assert "mL per 1,000 inferences" in page
    assert 'class="muted footprint-energy">gross; dynamic' in page
    card = client.get("/label/acme/m.svg").text
    assert "dynamic (above idle)" in card
    # each section's title links to its method when the card is opened on its own
    for section in ("protocol", "carbon", "embodied", "total", "water", "quality"):
        assert f'<a href="{AUDIENCE}/methodology#{section}">' in card, section
    assert "Total CO₂e per 1k inferences" in card
    assert " mL</text>" in card
    assert embodied > 0


def test_a_training_label_is_per_step(client: TestClient, publisher: Publisher) -> None:
    label = copy.deepcopy(publisher.label(model="t", phase="training", units_per_trial=20))
    submit(client, publisher, label)
    fp = footprint(client, label["label_id"])
    assert fp["per"] == "training step"
    assert fp["embodied_co2e"]["unit"] == "g CO2e per training step"


def test_a_badge_may_show_the_total_co2e(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="m")
    submit(client, publisher, label)
    old = publisher.label(model="old")
    del old["carbon"]["embodied"]
    submit(client, publisher, old)
    carbon = label["carbon"]
    total = carbon["co2e_per_unit_g"]["mean"] + carbon["embodied"]["co2e_per_unit_g"]
    for url in ("/badge/acme/m.json", f"/badge/label/{label['label_id']}.svg"):
        answer = client.get(url, params={"metric": "co2e-total"})
        assert answer.status_code == 200, answer.text
        assert "g CO₂e/1k total" in answer.text
    message = client.get("/badge/acme/m.json", params={"metric": "co2e-total"}).json()["message"]
    shown = float(message.split(" ")[0])
    assert shown == pytest.approx(total, rel=0.01)  # three significant digits
    operational = client.get("/badge/acme/old.json", params={"metric": "co2e-total"}).json()
    assert operational["message"].endswith("g CO₂e/1k operational only")
    # the plain badge is unchanged
    assert "Wh/1k" in client.get("/badge/acme/m.json").json()["message"]
