"""What if (issue 13, item 5 in part): a label's measured energy under another zone or PUE,
computed server-side and marked as a projection, on the API and on the model page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas import grid
from tests.helpers import Publisher


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> None:
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text


def test_the_api_projects_by_hand(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="m", zone="FR", pue=1.2)
    submit(client, publisher, label)
    answer = client.get(
        f"/v1/labels/{label['label_id']}/projection", params={"zone": "PL", "pue": 1.1}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    pl = grid.table()["PL"]
    energy = label["results"]["energy_per_unit_wh"]["mean"]
    assert body["projection"] is True
    assert "not a label" in body["notice"]
    assert body["zone"] == "PL"
    assert body["intensity_g_per_kwh"] == pl.intensity_g_per_kwh
    assert body["co2e_per_unit_g"] == pytest.approx(energy / 1000 * 1.1 * pl.intensity_g_per_kwh)
    assert body["label"]["co2e_per_unit_g"] == label["carbon"]["co2e_per_unit_g"]["mean"]
    # without arguments: the label's own figure
    same = client.get(f"/v1/labels/{label['label_id']}/projection").json()
    assert same["co2e_per_unit_g"] == pytest.approx(label["carbon"]["co2e_per_unit_g"]["mean"])
    for params, pointer in (({"zone": "ZZ"}, "/query/zone"), ({"pue": 9}, "/query/pue")):
        bad = client.get(f"/v1/labels/{label['label_id']}/projection", params=params)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["errors"][0]["pointer"] == pointer
    # nothing was stored: the label is unchanged
    stored = client.get(f"/v1/labels/{label['label_id']}").json()
    assert stored["co2e_per_unit_g"] == label["carbon"]["co2e_per_unit_g"]["mean"]


def test_the_model_page_offers_a_what_if(client: TestClient, publisher: Publisher) -> None:
    submit(client, publisher, publisher.label(model="m", zone="FR", pue=1.2))
    page = client.get("/models/acme/m").text
    assert 'name="whatif_zone"' in page
    assert "whatif-result" not in page
    projected = client.get("/models/acme/m", params={"whatif_zone": "PL", "whatif_pue": "1.1"})
    assert projected.status_code == 200
    assert "Projection, not a label:" in projected.text
    assert "in PL at PUE 1.1" in projected.text
    bad = client.get("/models/acme/m", params={"whatif_pue": "nine"})
    assert bad.status_code == 200
    assert "the PUE must be a number between 1 and 5" in bad.text
    assert "whatif-result" not in bad.text


RANKING = "/v1/vendors"
GROUP = {"task": "text-classification", "phase": "inference"}


def test_the_ranking_projects_every_score_to_a_buyers_zone(
    client: TestClient, publisher: Publisher
) -> None:
    submit(client, publisher, publisher.label(model="m", zone="FR"))
    plain = client.get(RANKING, params=GROUP).json()
    assert "projection" not in plain
    assert "projected_co2e_g" not in plain["vendors"][0]
    body = client.get(RANKING, params={**GROUP, "project_zone": "PL", "project_pue": 1.2}).json()
    pl = grid.table()["PL"].intensity_g_per_kwh
    assert body["projection"]["zone"] == "PL"
    assert body["projection"]["intensity_g_per_kwh"] == pl
    assert "not a label" in body["projection"]["notice"]
    vendor = body["vendors"][0]
    assert vendor["score_wh"] == plain["vendors"][0]["score_wh"]  # the ranking is unchanged
    assert vendor["projected_co2e_g"] == pytest.approx(vendor["score_wh"] / 1000 * 1.2 * pl)
    csv_text = client.get(RANKING, params={**GROUP, "project_zone": "PL", "format": "csv"}).text
    header, first = csv_text.splitlines()[:2]
    assert header.endswith(",projected_co2e_g")
    assert float(first.rsplit(",", 1)[1]) == pytest.approx(vendor["score_wh"] / 1000 * pl)
    for params, pointer in (
        ({"project_zone": "ZZ"}, "/query/project_zone"),
        ({"project_pue": 1.2}, "/query/project_pue"),
        ({"project_zone": "PL", "project_pue": 7}, "/query/project_pue"),
    ):
        bad = client.get(RANKING, params={**GROUP, **params})
        assert bad.status_code == 422, params
        assert bad.json()["errors"][0]["pointer"] == pointer


def test_an_hour_profile_prices_the_hours_given(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(model="m", zone="FR", pue=1.2)
    submit(client, publisher, label)
    url = f"/v1/labels/{label['label_id']}/projection"
    body = client.get(url, params={"profile": "100,200,300", "pue": 1.0}).json()
    energy = label["results"]["energy_per_unit_wh"]["mean"]
    # the work spread evenly over three hours: their mean, 200 g/kWh
    assert body["intensity_g_per_kwh"] == pytest.approx(200.0)
    assert body["co2e_per_unit_g"] == pytest.approx(energy / 1000 * 1.0 * 200.0)
    assert "hour profile of 3 hours" in body["intensity_source"]
    for profile in ("", "1,,2", "1,x", ",".join(["1"] * 169), "9000"):
        bad = client.get(url, params={"profile": profile})
        assert bad.status_code == 422, profile
    page = client.get("/models/acme/m", params={"whatif_profile": "100,200,300"}).text
    assert "Projection, not a label:" in page
    assert "hour profile of 3 hours" in page
    wrong = client.get("/models/acme/m", params={"whatif_profile": "1,x"}).text
    assert "comma-separated numbers" in wrong
