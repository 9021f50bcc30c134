"""Market-based CO2e and the hourly carbon-free energy score (issue 13, item 3): declared hourly
supply, the run's hourly consumption, the score and the figure against a hand computation, the
verifier's checks (consumption against the traces, score, figure, whole hours), the bench options
and what the registry shows."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench_runner.bench_carbon import hourly_consumption_kwh, load_supply_csv
from schemas import check_results, market, validate_label
from schemas.results import component_energy_j
from schemas.synthetic import make_label
from tests.helpers import Publisher
from tests.runner.test_bench_e2e import QUICK, REFERENCE_BENCH, carbonlabel

T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)


def with_market(doc: dict[str, Any], supply: list[float]) -> dict[str, Any]:
    """The label with a market block: its trials on the wall clock so that the run straddles T0
    (two hours), and ``supply`` kWh declared for each hour the run touched."""
    t0 = doc["traces"]["trials"][0]["t_start_s"]
    span_s = doc["traces"]["trials"][-1]["t_end_s"] - t0
    start = T0 - timedelta(seconds=span_s / 2)
    intervals = [
        (
            start + timedelta(seconds=t["t_start_s"] - t0),
            start + timedelta(seconds=t["t_end_s"] - t0),
            sum(component_energy_j(c, t["t_start_s"], t["t_end_s"]) for c in t["components"])
            / 3600,
        )
        for t in doc["traces"]["trials"]
    ]
    consumption = hourly_consumption_kwh(intervals, float(doc["carbon"]["pue"]))
    assert len(consumption) <= len(supply)
    rows = [(hour, kwh, s) for (hour, kwh), s in zip(consumption.items(), supply, strict=False)]
    doc["carbon"]["market"] = market.block(
        doc, rows, residual_intensity_g_per_kwh=None, source="PPA with a wind farm"
    )
    return doc


def label(**kwargs: Any) -> dict[str, Any]:
    return make_label(vendor="acme", model="m", registry="https://r.example", **kwargs)


def test_hourly_consumption_spreads_each_interval_by_hand() -> None:
    # 3 Wh over 10:30-12:00: 1 Wh in the half hour of 10:00, 2 Wh in 11:00; PUE 1.5
    got = hourly_consumption_kwh([(T0 + timedelta(minutes=30), T0 + timedelta(hours=2), 3.0)], 1.5)
    assert got == {
        T0: pytest.approx(0.001 * 1.5),
        T0 + timedelta(hours=1): pytest.approx(0.002 * 1.5),
    }


def test_score_and_market_figure_by_hand() -> None:
    hours = [
        {"hour": "2026-06-01T10:00:00Z", "consumption_kwh": 2.0, "cfe_kwh": 1.0},
        {"hour": "2026-06-01T11:00:00Z", "consumption_kwh": 2.0, "cfe_kwh": 5.0},  # surplus
    ]
    # matched: 1 + 2 of 4 kWh; the surplus of hour 11 covers nothing at hour 10
    assert market.cfe_score(hours) == pytest.approx(0.75)
    doc = label(pue=1.2, intensity_g_per_kwh=400.0)
    energy_kwh = doc["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert market.market_co2e_per_unit_g(doc, 0.75, 400.0) == pytest.approx(
        energy_kwh * 1.2 * 0.25 * 400.0
    )


def test_a_declared_block_verifies_and_changes_are_caught() -> None:
    doc = with_market(label(pue=1.2, intensity_g_per_kwh=400.0), [0.0, 0.0, 0.0, 0.0])
    block = doc["carbon"]["market"]
    assert block["cfe_score"] == 0.0
    assert block["co2e_per_unit_g"] == pytest.approx(doc["carbon"]["co2e_per_unit_g"]["mean"])
    assert validate_label(doc) == []
    assert check_results(doc) == []
    full = with_market(label(pue=1.2), [1e9] * 4)  # every hour fully covered
    assert full["carbon"]["market"]["cfe_score"] == pytest.approx(1.0)
    assert full["carbon"]["market"]["co2e_per_unit_g"] == pytest.approx(0.0, abs=1e-12)
    for pointer, change in [
        ("/carbon/market/cfe_score", lambda b: b.update(cfe_score=0.5)),
        ("/carbon/market/co2e_per_unit_g", lambda b: b.update(co2e_per_unit_g=0.0)),
        ("/carbon/market/consumption_kwh", lambda b: b.update(consumption_kwh=1.0)),
        ("/carbon/market/hours/1/hour", lambda b: b["hours"][1].update(hour=b["hours"][0]["hour"])),
    ]:
        bad = copy.deepcopy(doc)
        change(bad["carbon"]["market"])
        assert pointer in [m.pointer for m in check_results(bad)], pointer


def test_the_supply_csv(tmp_path: Path) -> None:
    path = tmp_path / "supply.csv"
    path.write_text("hour,cfe_share\n2026-06-01T10:00:00+02:00,0.5\n", encoding="utf-8")
    assert load_supply_csv(path) == ("share", {datetime(2026, 6, 1, 8, tzinfo=UTC): 0.5})
    for text, message in [
        ("hour,kwh\n", "first line"),
        ("hour,cfe_share\n2026-06-01T10:00:00Z,1.5\n", "out of range"),
        ("hour,cfe_kwh\n2026-06-01T10:30:00Z,1\n", "not a whole hour"),
        ("hour,cfe_kwh\n2026-06-01T10:00:00,1\n", "needs an offset"),
        ("hour,cfe_kwh\n2026-06-01T10:00:00Z,1\n2026-06-01T10:00:00Z,2\n", "appears twice"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_supply_csv(path)


def test_bench_declares_it_and_the_registry_shows_it(
    tmp_path: Path, client: TestClient, publisher: Publisher
) -> None:
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [f"{(hour + timedelta(hours=h)).isoformat()},0.6" for h in range(-1, 3)]
    (tmp_path / "supply.csv").write_text("hour,cfe_share\n" + "\n".join(rows) + "\n")
    args = [*REFERENCE_BENCH, "--registry", "http://127.0.0.1:9", *QUICK]
    done = carbonlabel(*args, "--cfe-supply", "supply.csv", "--cfe-source", "PPA", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(next(tmp_path.glob("*.label.json")).read_text())
    block = doc["carbon"]["market"]
    assert block["cfe_score"] == pytest.approx(0.6)
    assert block["source"] == "PPA"
    assert block["residual_basis"] == "location"
    assert check_results(doc) == []
    # the registry accepts it and shows it beside the location-based figure
    ours = with_market(publisher.label(model="market"), [1e-6] * 4)
    response = client.post(
        "/v1/labels", content=publisher.envelope(ours), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    shown = client.get(f"/v1/labels/{ours['label_id']}").json()["footprint"]["operational_co2e"]
    assert shown["market_status"] == "declared"
    assert shown["cfe_score"] == ours["carbon"]["market"]["cfe_score"]
    assert "hourly carbon-free score" in client.get("/models/acme/market").text
    assert "market-based (declared)" in client.get("/label/acme/market.svg").text
    # a missing hour of supply is one clear error before signing anything
    (tmp_path / "short.csv").write_text("hour,cfe_share\n2000-01-01T00:00:00Z,0.5\n")
    out = tmp_path / "short"
    bad = carbonlabel(*args, "--cfe-supply", "short.csv", "--out", str(out), cwd=tmp_path)
    assert bad.returncode == 1
    assert "--cfe-supply has no row for" in bad.stderr
    assert not out.exists() or not list(out.glob("*.dsse.json"))


def test_the_registry_rejects_a_market_figure_that_does_not_follow(
    client: TestClient, publisher: Publisher
) -> None:
    bad = with_market(publisher.label(model="m"), [1e-6] * 4)
    bad["carbon"]["market"]["cfe_score"] = 0.9
    response = client.post("/v1/labels", content=publisher.envelope(bad), headers=publisher.headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:carbonlabel:problem:inconsistent-results"
    assert "/carbon/market/cfe_score" in response.text


def test_an_auditor_can_check_the_declared_supply(client: TestClient, publisher: Publisher) -> None:
    from tests.test_audit import (
        attestation_bytes,
        post_attestation,
        predicate_for,
        register_auditor,
    )

    declared = with_market(publisher.label(model="m"), [1e-6] * 4)
    response = client.post(
        "/v1/labels", content=publisher.envelope(declared), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    view = client.get(f"/v1/labels/{declared['label_id']}").json()
    assert view["footprint"]["operational_co2e"]["market_checked_by"] == []
    auditor = register_auditor(client)
    check = {"market": {"agrees": True, "evidence": "PPA contract and hourly GC statements"}}
    body = attestation_bytes(
        view, auditor, predicate=predicate_for(view, auditor.slug, declarations=check)
    )
    stored = post_attestation(client, declared["label_id"], body, auditor)
    assert stored.status_code == 201, stored.text
    view = client.get(f"/v1/labels/{declared['label_id']}").json()
    assert view["footprint"]["operational_co2e"]["market_checked_by"] == [
        {"auditor": auditor.slug, "agrees": True, "evidence": check["market"]["evidence"]}
    ]
    assert f"confirmed by auditor {auditor.slug}" in client.get("/models/acme/m").text
    # a check of a supply the label does not declare is refused
    plain = client.post(
        "/v1/labels", content=publisher.envelope(model="plain"), headers=publisher.headers
    )
    plain_view = client.get(f"/v1/labels/{plain.json()['label_id']}").json()
    body = attestation_bytes(
        plain_view, auditor, predicate=predicate_for(plain_view, auditor.slug, declarations=check)
    )
    refused = post_attestation(client, plain_view["label_id"], body, auditor)
    assert refused.status_code in (400, 409, 422), refused.text
    assert "/predicate/declarations/market" in refused.text


def test_attest_needs_evidence_for_a_market_check(tmp_path: Path) -> None:
    from bench_runner.attest_cli import run_attest
    from bench_runner.cli import CliError

    with pytest.raises(CliError, match="--market-evidence"):
        run_attest(
            key=tmp_path / "key.pem",
            label_id="0b7f6f8e-6c1f-4a57-9a43-3f1d2b8f6a10",
            figures=tmp_path / "mine.json",
            registry="http://127.0.0.1:9",
            token=None,
            out_path=None,
            submit=False,
            auditor=None,
            label_sha256=None,
            notes=None,
            market=(True, " "),
        )
