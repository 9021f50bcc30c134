"""Label kinds (issue 14): ``training-run`` and ``operational`` labels validate, their figures are
recomputed from their traces, and the registry stores and logs them without grading, ranking or
making them current (only benchmark labels are)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas import validate_label
from schemas.results import check_results
from schemas.synthetic import make_label, make_operational_label, make_training_run_label
from tests.helpers import AUDIENCE, Publisher

PERIOD_END = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def operational(vendor: str = "acme", **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "vendor": vendor,
        "model": "chat-7b",
        "registry": AUDIENCE,
        "period_end": PERIOD_END,
    }
    return make_operational_label(**(kwargs | overrides))


def training_run(vendor: str = "acme", **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"vendor": vendor, "model": "chat-7b", "registry": AUDIENCE}
    return make_training_run_label(**(kwargs | overrides))


def pointers(label: dict[str, Any]) -> list[str]:
    return [issue.pointer for issue in validate_label(label)]


def test_both_kinds_validate_and_their_figures_follow_from_their_traces() -> None:
    for label in (operational(), training_run()):
        assert validate_label(label) == []
        assert check_results(label) == []


def test_operational_figures_are_ratios_of_the_period_sums() -> None:
    label = operational()
    trials = label["traces"]["trials"]
    energy_j = sum(
        c["counter_end_j"] - c["counter_start_j"] for t in trials for c in t["components"]
    )
    requests = sum(t["units"] for t in trials)
    tokens = sum(t["output_tokens"] for t in trials)
    figures = label["results"]["operational"]
    assert figures["requests"] == requests
    assert figures["energy_wh"] == pytest.approx(energy_j / 3600)
    assert figures["energy_per_1k_requests_wh"] == pytest.approx(energy_j / 3600 / requests * 1000)
    assert figures["energy_per_output_token_j"] == pytest.approx(energy_j / tokens)
    assert figures["period_s"] == pytest.approx(3600.0)
    # 12 windows of 300 s each: the time-weighted means are plain means
    assert figures["utilisation"] == pytest.approx(sum(t["utilisation"] for t in trials) / 12)
    assert figures["idle_share"] == pytest.approx(sum(t["idle_s"] for t in trials) / 3600)
    carbon = label["carbon"]
    g_per_wh = carbon["intensity_g_per_kwh"] * carbon["pue"] / 1000
    assert figures["co2e_g"] == pytest.approx(energy_j / 3600 * g_per_wh)


def test_a_training_run_states_its_measured_total_not_an_extrapolation() -> None:
    label = training_run(segments=4, steps_per_segment=25, batch_size=8)
    trials = label["traces"]["trials"]
    energy_j = sum(
        c["counter_end_j"] - c["counter_start_j"] for t in trials for c in t["components"]
    )
    results = label["results"]
    assert results["total_energy_wh"] == pytest.approx(energy_j / 3600)
    assert results["steps_measured"] == 100
    assert results["samples_total"] == 800
    assert results["energy_per_sample_wh"] == pytest.approx(energy_j / 3600 / 800)
    assert "extrapolated_total_kwh" not in results
    carbon = label["carbon"]
    g_per_wh = carbon["intensity_g_per_kwh"] * carbon["pue"] / 1000
    assert carbon["co2e_per_run_g"] == pytest.approx(energy_j / 3600 * g_per_wh)


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/results/operational/energy_wh", 0.5),
        ("/results/operational/requests", 2.0),
        ("/results/operational/idle_share", 0.0),
        ("/results/operational/co2e_g", 0.5),
    ],
)
def test_a_changed_operational_figure_is_a_mismatch(pointer: str, value: float) -> None:
    label = operational()
    *path, name = pointer.strip("/").split("/")
    node = label
    for part in path:
        node = node[part]
    node[name] = node[name] * value if name != "idle_share" else 0.9
    assert pointer in [m.pointer for m in check_results(label)]


def test_a_changed_training_total_is_a_mismatch() -> None:
    label = training_run()
    label["results"]["total_energy_wh"] *= 0.5
    assert "/results/total_energy_wh" in [m.pointer for m in check_results(label)]
    label = training_run()
    label["results"]["samples_total"] += 1
    assert "/results/samples_total" in [m.pointer for m in check_results(label)]


def test_the_schema_keeps_the_kinds_apart() -> None:
    benchmark = make_label(vendor="acme", model="m", registry=AUDIENCE)
    with_run = copy.deepcopy(benchmark)
    with_run["run"] = operational()["run"]
    assert "/run" in pointers(with_run)
    # a benchmark label still needs its idle baseline and its dataset digest
    no_idle = copy.deepcopy(benchmark)
    del no_idle["traces"]["idle"]
    assert any(p.startswith("/traces") for p in pointers(no_idle))
    no_digest = copy.deepcopy(benchmark)
    del no_digest["benchmark"]["workload"]["dataset_sha256"]
    assert any(p.startswith("/benchmark/workload") for p in pointers(no_digest))
    # each kind needs its run, and its own figures
    no_run = operational()
    del no_run["run"]
    assert pointers(no_run)
    no_figures = operational()
    del no_figures["results"]["operational"]
    assert pointers(no_figures)
    extrapolated = training_run()
    extrapolated["results"]["declared_total_steps"] = 10_000
    assert pointers(extrapolated)
    inference_run = training_run()
    inference_run["benchmark"]["phase"] = "inference"
    assert pointers(inference_run)


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_registry_stores_and_logs_the_kinds_but_never_grades_or_ranks_them(
    client: TestClient, publisher: Publisher
) -> None:
    bench = publisher.label(model="chat-7b", suite="2", task="chat-serving")
    submit(client, publisher, bench)
    grade_before = client.get(f"/v1/labels/{bench['label_id']}").json()["grade"]
    ranking_before = client.get("/v1/vendors", params={"task": "chat-serving"}).json()
    board_before = client.get("/", params={"task": "chat-serving"}).text.count("chat-7b")

    # an operational label of the same model, task and hardware class, newer than the benchmark
    live = operational(vendor=publisher.slug, energy_per_request_j=5.0)
    run = training_run(vendor=publisher.slug)
    for label in (live, run):
        stored = submit(client, publisher, label)
        assert stored["grade"]["grade"] is None
        assert stored["grade"]["reason"] == "not-a-benchmark"
        assert stored["receipt"]["log_index"] >= 0
        got = client.get(f"/v1/labels/{label['label_id']}").json()
        assert got["kind"] == label["kind"]
        assert got["grade"]["grade"] is None
        assert got["current"] is False

    # the benchmark label is still the model's current one, with its grade; ranking unchanged
    got = client.get(f"/v1/labels/{bench['label_id']}").json()
    assert got["current"] is True
    assert got["grade"] == grade_before
    assert client.get("/v1/vendors", params={"task": "chat-serving"}).json() == ranking_before
    assert client.get("/", params={"task": "chat-serving"}).text.count("chat-7b") == board_before
    badge = client.get(f"/badge/{publisher.slug}/chat-7b.json", params={"task": "chat-serving"})
    assert badge.status_code == 200
    # the model's badge still shows the benchmark label's grade and figure
    assert badge.json()["message"].startswith(f"{grade_before['grade']} · ")
    # the log holds all three
    for label in (bench, live, run):
        index = client.get(f"/v1/labels/{label['label_id']}").json()["log_index"]
        entry = client.get(f"/v1/log/entries/{index}").json()
        assert entry["entry"]["label_id"] == label["label_id"]


def test_the_kinds_pages_and_badges_render(client: TestClient, publisher: Publisher) -> None:
    for label in (operational(vendor=publisher.slug), training_run(vendor=publisher.slug)):
        submit(client, publisher, label)
        assert client.get(f"/badge/label/{label['label_id']}.svg").status_code == 200
        assert client.get(f"/v1/labels/{label['label_id']}").status_code == 200
    page = client.get(f"/models/{publisher.slug}/chat-7b")
    assert page.status_code == 200, page.text
