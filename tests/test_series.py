"""A model's figures across revisions and time, production drift and a vendor's trend (issue 14,
items 2 and 3): ``GET /v1/models/{vendor}/{model}/series``, ``GET /v1/vendors/{vendor}/series``,
the model page's chart and drift text, the vendor page's trend line and charts; operational
labels never in grades, rankings or a model's latest labels. Runs on SQLite, and on PostgreSQL
with CARBONLABEL_TEST_DATABASE_URL set."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api.series import ModelSeriesOut, VendorSeriesOut
from registry.pages import vendor_chart
from registry.pages.common import format_number
from registry.services import series
from registry.services.series import drift_tolerance
from registry.services.trends import NO_TREND, Trend, trend_sentence
from schemas.synthetic import make_operational_label, make_training_run_label
from tests.helpers import ADMIN_TOKEN, AUDIENCE, Publisher

H100 = "nvidia-h100-sxm-80gb"
A100 = "nvidia-a100-sxm-80gb"
DAY = datetime(2026, 3, 1, tzinfo=UTC)
J_PER_WH_PER_1K = 3.6
"""1 Wh per 1,000 requests is 3.6 J per request."""


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def bench(
    client: TestClient,
    publisher: Publisher,
    revision: str,
    day: int,
    *,
    power_w: float = 300.0,
    hardware_class: str = H100,
    model: str = "chat",
    task: str = "chat-serving",
) -> dict[str, Any]:
    """A benchmark label (suite 2, chat-serving by default) of ``revision``, ``day`` days after
    DAY; the stored view."""
    label = publisher.label(
        model=model,
        suite="2",
        task=task,
        revision=revision,
        units_per_trial=20,
        power_w=power_w,
        hardware_class=hardware_class,
        created_at=DAY + timedelta(days=day),
    )
    return submit(client, publisher, label)


def production(
    client: TestClient,
    publisher: Publisher,
    hour: int,
    energy_per_request_j: float,
    *,
    hardware_class: str = H100,
    model: str = "chat",
) -> dict[str, Any]:
    """An operational label: the hour ending ``hour`` hours after 60 days after DAY."""
    label = make_operational_label(
        vendor=publisher.slug,
        model=model,
        registry=AUDIENCE,
        period_end=DAY + timedelta(days=60, hours=hour),
        energy_per_request_j=energy_per_request_j,
        hardware_class=hardware_class,
        seed=hour,
    )
    return submit(client, publisher, label)


def model_series(client: TestClient, path: str = "/v1/models/acme/chat/series", **params: Any):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    ModelSeriesOut.model_validate(body)  # the answer is what the OpenAPI document says
    return body


def group_of(body: dict[str, Any], task: str = "chat-serving") -> dict[str, Any]:
    return next(g for g in body["groups"] if g["task"] == task)


def test_the_series_holds_each_label_and_the_change_per_hardware_class(
    client: TestClient, publisher: Publisher
) -> None:
    v1 = bench(client, publisher, "v1", 0, power_w=400.0)
    v2 = bench(client, publisher, "v2", 10, power_w=350.0)
    v2_again = bench(client, publisher, "v2", 12, power_w=330.0)  # v2 measured again
    v3 = bench(client, publisher, "v3", 20, power_w=300.0)
    other_v1 = bench(client, publisher, "v1", 1, power_w=500.0, hardware_class=A100)
    other_v3 = bench(client, publisher, "v3", 21, power_w=450.0, hardware_class=A100)

    group = group_of(model_series(client))
    assert (group["suite"], group["phase"], group["functional_unit"]) == (
        "2",
        "inference",
        "1k-requests",
    )
    # every benchmark label, oldest first, with its own figures
    stored = [v1, other_v1, v2, v2_again, v3, other_v3]
    assert [p["label_id"] for p in group["benchmark"]] == [s["label_id"] for s in stored]
    for point, label in zip(group["benchmark"], stored, strict=True):
        assert point["revision"] == label["revision"]
        assert point["hardware_class"] == label["hardware_class"]
        assert point["energy_per_unit_wh"] == pytest.approx(label["energy_per_unit_wh"])
        assert point["energy_ci95_high_wh"] == pytest.approx(label["energy_ci95_high_wh"])
        assert point["grade"] == label["grade"]["grade"]
        assert point["created_at"] == label["created_at"]
        assert point["current"] == (label["label_id"] in {v3["label_id"], other_v3["label_id"]})

    changes = {c["hardware_class"]: c for c in group["changes"]}
    assert set(changes) == {H100, A100}
    h100 = changes[H100]
    # a revision's figure is its newest label: v2's second measurement
    assert [r["label_id"] for r in h100["revisions"]] == [
        v1["label_id"],
        v2_again["label_id"],
        v3["label_id"],
    ]
    e1, e2, e3 = (x["energy_per_unit_wh"] for x in (v1, v2_again, v3))
    assert h100["first"]["revision"] == "v1"
    assert h100["previous"]["label_id"] == v2_again["label_id"]
    assert h100["latest"]["label_id"] == v3["label_id"]
    assert h100["since_previous"]["absolute_wh"] == pytest.approx(e3 - e2)
    assert h100["since_previous"]["relative"] == pytest.approx(e3 / e2 - 1)
    assert h100["since_first"]["absolute_wh"] == pytest.approx(e3 - e1)
    assert h100["since_first"]["relative"] == pytest.approx(e3 / e1 - 1)
    assert h100["since_first"]["relative"] < h100["since_previous"]["relative"] < 0
    # the A100's labels are compared with each other only
    a100 = changes[A100]
    assert [r["revision"] for r in a100["revisions"]] == ["v1", "v3"]
    assert a100["previous"]["label_id"] == other_v1["label_id"]
    ratio = other_v3["energy_per_unit_wh"] / other_v1["energy_per_unit_wh"]
    assert a100["since_first"]["relative"] == pytest.approx(ratio - 1)
    assert a100["since_previous"] == a100["since_first"]

    # one revision: no change to state
    bench(client, publisher, "v1", 0, model="solo")
    solo = group_of(model_series(client, "/v1/models/acme/solo/series"))
    (only,) = solo["changes"]
    assert (only["previous"], only["since_previous"], only["since_first"]) == (None, None, None)


def test_drift_is_flagged_exactly_above_the_tolerance(
    client: TestClient, publisher: Publisher
) -> None:
    reference = bench(client, publisher, "v1", 0)
    bench_j = reference["energy_per_unit_wh"] * J_PER_WH_PER_1K  # J per request
    factors = [2.0, 0.8, 1.1, 1.6, 0.5]  # each window varies by about 5%
    periods = [production(client, publisher, hour, bench_j * f) for hour, f in enumerate(factors)]
    elsewhere = production(client, publisher, 9, bench_j * 3.0, hardware_class=A100)

    body = model_series(client)
    assert body["drift_tolerance"] == drift_tolerance() == 0.25
    group = group_of(body)
    (ref,) = group["drift_references"]
    assert (ref["label_id"], ref["hardware_class"]) == (reference["label_id"], H100)
    assert ref["energy_per_unit_wh"] == pytest.approx(reference["energy_per_unit_wh"])
    assert ref["limit_wh"] == pytest.approx(reference["energy_per_unit_wh"] * 1.25)
    points = {p["label_id"]: p for p in group["operational"]}
    assert list(points) == [p["label_id"] for p in (*periods, elsewhere)]  # oldest first
    flagged = []
    for period in periods:
        point = points[period["label_id"]]
        figure = period["energy_per_unit_wh"]  # the period's energy per 1,000 requests
        assert point["energy_per_1k_requests_wh"] == pytest.approx(figure)
        assert point["drift"] == pytest.approx(figure / reference["energy_per_unit_wh"] - 1)
        over = figure > reference["energy_per_unit_wh"] * 1.25
        assert point["drift_flagged"] is over
        flagged.append(over)
    assert flagged == [True, False, False, True, False]
    assert group["drifted_periods"] == 2
    # no current benchmark label on that hardware class: no drift figure
    assert points[elsewhere["label_id"]]["drift"] is None
    assert points[elsewhere["label_id"]]["drift_flagged"] is False

    # the period's own figures, as the label states them
    label = client.get(f"/v1/labels/{periods[0]['label_id']}").json()["label"]
    figures = label["results"]["operational"]
    point = points[periods[0]["label_id"]]
    for name in ("period_s", "requests", "energy_wh", "energy_per_output_token_j"):
        assert point[name] == pytest.approx(figures[name])
    for name in ("utilisation", "idle_share", "co2e_g"):
        assert point[name] == pytest.approx(figures[name])
    assert (point["period_start"], point["period_end"]) == (
        label["run"]["started_at"],
        label["run"]["ended_at"],
    )

    # the model page: the chart, the production line, the drift in words beside the figure
    page = client.get("/models/acme/chat").text
    assert '<svg class="chart series"' in page
    assert 'class="production-line"' in page
    assert page.count('class="point-drift"') == 2  # triangles, not colour alone
    assert "Across revisions and in production" in page
    assert "In production" in page
    assert "2 of 5 periods drifted" in page
    assert ">drift limit</text>" in page
    assert ">drift</strong>" in page
    # the latest period (factor 0.5) did not drift; one that does shows the drift text
    production(client, publisher, 10, bench_j * 2.0)
    page = client.get("/models/acme/chat").text
    assert "production is more than 25% worse than the benchmark figure" in page
    assert "3 of 6 periods drifted" in page


def test_operational_labels_stay_out_of_grades_rankings_and_latest_labels(
    client: TestClient, publisher: Publisher
) -> None:
    reference = bench(client, publisher, "v1", 0)
    bench_j = reference["energy_per_unit_wh"] * J_PER_WH_PER_1K
    # production far below the benchmark: it would lead any ranking it entered
    periods = [production(client, publisher, hour, bench_j * 0.1) for hour in range(3)]
    run = submit(
        client,
        publisher,
        make_training_run_label(vendor=publisher.slug, model="chat", registry=AUDIENCE),
    )
    ids = {p["label_id"] for p in periods} | {run["label_id"]}

    ranking = client.get("/v1/vendors", params={"task": "chat-serving", "phase": "inference"})
    (row,) = ranking.json()["vendors"]
    assert row["score_wh"] == pytest.approx(reference["energy_ci95_high_wh"])
    assert row["labels"] == 1
    current = client.get("/v1/labels", params={"current": "true"}).json()["items"]
    assert [i["label_id"] for i in current] == [reference["label_id"]]
    for label_id in ids:
        got = client.get(f"/v1/labels/{label_id}").json()
        assert (got["grade"]["grade"], got["grade"]["percentile"], got["current"]) == (
            None,
            None,
            False,
        )

    model = client.get("/v1/models/acme/chat").json()
    assert [x["label_id"] for x in model["latest"]] == [reference["label_id"]]
    assert [x["label_id"] for x in model["history"]] == [reference["label_id"]]
    assert [x["label_id"] for x in model["training_runs"]] == [run["label_id"]]
    assert model["training_runs"][0]["kind"] == "training-run"
    assert model["operational"]["periods"] == 3
    assert model["operational"]["latest"]["label_id"] == periods[-1]["label_id"]
    assert model["operational"]["latest"]["kind"] == "operational"
    assert model["series"].endswith("/v1/models/acme/chat/series")

    vendor = client.get("/v1/vendors/acme").json()
    assert [x["label_id"] for x in vendor["labels"]] == [reference["label_id"]]
    assert vendor["links"]["operational"].endswith("/v1/labels?vendor=acme&kind=operational")

    listed = client.get("/v1/labels", params={"kind": "operational"}).json()["items"]
    assert {i["label_id"] for i in listed} == {p["label_id"] for p in periods}
    assert {i["kind"] for i in listed} == {"operational"}
    listed = client.get("/v1/labels", params={"kind": "benchmark"}).json()["items"]
    assert [i["label_id"] for i in listed] == [reference["label_id"]]
    everything = client.get("/v1/labels").json()["items"]
    assert {i["kind"] for i in everything} == {"benchmark", "operational", "training-run"}
    refused = client.get("/v1/labels", params={"kind": "other"})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")

    # the model page's history and the vendor page list the benchmark label only
    page = client.get("/models/acme/chat").text
    for label_id in ids:  # the history table's links
        assert f'<a href="/v1/labels/{label_id}">JSON</a> · <a href="/v1/labels/' not in page
    assert "Training runs" in page
    vendor_page = client.get("/vendors/acme").text
    assert periods[0]["label_id"] not in vendor_page


def test_training_runs_in_the_series(client: TestClient, publisher: Publisher) -> None:
    label = make_training_run_label(
        vendor=publisher.slug,
        model="chat",
        registry=AUDIENCE,
        segments=4,
        steps_per_segment=25,
        batch_size=8,
        status="incomplete",
    )
    submit(client, publisher, label)
    group = group_of(model_series(client), task=label["benchmark"]["task"])
    assert group["phase"] == "training"
    (run,) = group["training_runs"]
    assert run["label_id"] == label["label_id"]
    assert run["status"] == "incomplete"
    assert run["total_energy_wh"] == pytest.approx(label["results"]["total_energy_wh"])
    assert (run["steps"], run["samples"]) == (100, 800)
    assert run["co2e_g"] == pytest.approx(label["carbon"]["co2e_per_run_g"])
    assert (run["started_at"], run["ended_at"]) == (
        label["run"]["started_at"],
        label["run"]["ended_at"],
    )
    assert group["benchmark"] == group["changes"] == group["operational"] == []


def test_filters_bounds_and_not_found(
    client: TestClient, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench(client, publisher, "v1", 0)
    bench(client, publisher, "v1", 0, task="text-classification")
    reference_j = 1.0
    periods = [production(client, publisher, hour, reference_j) for hour in range(4)]

    assert {g["task"] for g in model_series(client)["groups"]} == {
        "chat-serving",
        "text-classification",
    }
    only = model_series(client, task="text-classification")["groups"]
    assert [g["task"] for g in only] == ["text-classification"]
    assert model_series(client, phase="training")["groups"] == []
    assert model_series(client, suite="1")["groups"] == []
    for params in ({"task": "no-such-task"}, {"phase": "both"}, {"suite": "9"}):
        refused = client.get("/v1/models/acme/chat/series", params=params)
        assert refused.status_code == 422, params
    for path in ("/v1/models/acme/nothing/series", "/v1/models/nobody/chat/series"):
        missing = client.get(path)
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("not-found")
    assert client.get("/v1/vendors/nobody/series").status_code == 404

    # the newest periods are kept, and the answer says older ones were left out
    monkeypatch.setattr(series, "MAX_OPERATIONAL_POINTS", 3)
    body = model_series(client, phase="inference")  # a URL not asked for (and stored) before
    kept = [p["label_id"] for p in group_of(body)["operational"]]
    assert kept == [p["label_id"] for p in periods[1:]]
    assert body["truncated"] == {"benchmark": False, "operational": True, "training_runs": False}


def test_the_series_are_cached_until_the_next_logged_change(
    client: TestClient, publisher: Publisher
) -> None:
    bench(client, publisher, "v1", 0)
    for path in ("/v1/models/acme/chat/series", "/v1/vendors/acme/series"):
        first = client.get(path)
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    before = client.get("/v1/models/acme/chat/series").headers["etag"]
    production(client, publisher, 0, 1.0)  # a production period is logged: a new version
    after = client.get("/v1/models/acme/chat/series")
    assert after.headers["etag"] != before
    assert len(group_of(after.json())["operational"]) == 1


def test_the_vendor_trend(client: TestClient, publisher: Publisher) -> None:
    bench(client, publisher, "v1", 0, model="alpha")
    body = client.get("/v1/vendors/acme/series").json()
    VendorSeriesOut.model_validate(body)
    assert (body["trend"], body["trends"]) == (NO_TREND, [])
    assert NO_TREND in client.get("/vendors/acme").text

    alpha = [bench(client, publisher, "v2", 40, model="alpha", power_w=240.0)]
    alpha.insert(0, client.get("/v1/models/acme/alpha").json()["history"][-1])
    beta = beta_labels = [
        bench(client, publisher, "v1", 35, model="beta", power_w=300.0),
        bench(client, publisher, "v2", 70, model="beta", power_w=330.0),
        bench(client, publisher, "v3", 250, model="beta", power_w=180.0),
    ]
    # gamma: two revisions, but on different hardware classes: not comparable, not counted
    bench(client, publisher, "v1", 5, model="gamma")
    bench(client, publisher, "v2", 6, model="gamma", hardware_class=A100)

    body = client.get("/v1/vendors/acme/series").json()
    VendorSeriesOut.model_validate(body)
    (trend,) = body["trends"]
    changes = [
        alpha[1]["energy_per_unit_wh"] / alpha[0]["energy_per_unit_wh"] - 1,
        beta[2]["energy_per_unit_wh"] / beta[0]["energy_per_unit_wh"] - 1,
    ]
    assert trend["models"] == 2
    assert trend["median_relative_change"] == pytest.approx(statistics.median(changes))
    assert (trend["from_month"], trend["to_month"]) == ("2026-03", "2026-11")
    percent = round(abs(statistics.median(changes)) * 100)
    assert percent > 0
    expected = (
        f"Across 2 models with more than one revision, energy per functional unit fell by a "
        f"median of {percent}% from first to latest revision (chat-serving inference, suite 2, "
        "same hardware class, 2026-03 to 2026-11)."
    )
    assert body["trend"] == trend["sentence"] == expected
    by_model = {(m["model"], m["hardware_class"]): m for m in body["models"]}
    beta = by_model[("acme/beta", H100)]
    assert beta["revisions"] == 3
    assert [p["revision"] for p in beta["series"]] == ["v1", "v2", "v3"]
    assert [p["energy_per_unit_wh"] for p in beta["series"]] == [
        b["energy_per_unit_wh"] for b in beta_labels
    ]
    assert beta["previous"]["revision"] == "v2"
    assert beta["since_first"]["relative"] == pytest.approx(changes[1])
    assert beta["since_previous"]["relative"] == pytest.approx(
        beta["series"][2]["energy_per_unit_wh"] / beta["series"][1]["energy_per_unit_wh"] - 1
    )
    assert by_model[("acme/gamma", H100)]["since_first"] is None
    assert by_model[("acme/gamma", A100)]["revisions"] == 1
    assert expected in client.get("/vendors/acme").text


def vendor_charts(page: str) -> list[tuple[str, str]]:
    """Each chart of the vendor page (its SVG) with the table under it."""
    return re.findall(
        r'(<svg class="chart vendor-series".*?</svg>).*?'
        r'(<table class="stack vendor-changes">.*?</table>)',
        page,
        re.S,
    )


def change_text(earlier: dict[str, Any], latest: dict[str, Any]) -> str:
    """The change as the table states it, computed here from the two labels' figures."""
    e0, e1 = earlier["energy_per_unit_wh"], latest["energy_per_unit_wh"]
    sign = "+" if e1 > e0 else "-"
    return f"{(e1 / e0 - 1) * 100:+.1f}% ({sign}{format_number(abs(e1 - e0))})"


def test_the_vendor_page_charts_each_task_across_revisions(
    client: TestClient, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = [
        bench(client, publisher, "v1", 0, model="alpha", power_w=400.0),
        bench(client, publisher, "v2", 40, model="alpha", power_w=240.0),
    ]
    beta = [
        bench(client, publisher, "v1", 35, model="beta", power_w=300.0),
        bench(client, publisher, "v2", 70, model="beta", power_w=330.0),
        bench(client, publisher, "v2", 80, model="beta", power_w=320.0),  # v2 measured again
        bench(client, publisher, "v3", 250, model="beta", power_w=180.0),
    ]
    beta_a100 = bench(client, publisher, "v1", 36, model="beta", hardware_class=A100)
    task = "text-classification"
    classify = [
        bench(client, publisher, "v1", 3, model="alpha", task=task, power_w=300.0),
        bench(client, publisher, "v2", 20, model="alpha", task=task, power_w=360.0),
    ]

    page = client.get("/vendors/acme").text
    assert "Across revisions and time" in page
    assert "production periods are charted on each model's page" in page
    (serving_svg, serving_table), (classify_svg, classify_table) = vendor_charts(page)

    # chat-serving: three lines (most revisions first), one marker per revision's figure
    assert (
        '<title id="vendor-series-1-title">Energy per functional unit of each model across '
        "revisions and time: chat-serving inference, suite 2</title>"
    ) in serving_svg
    assert 'aria-labelledby="vendor-series-1-title vendor-series-1-desc"' in serving_svg
    assert serving_svg.count('class="point track-point') == 3 + 2 + 1
    assert serving_svg.count('class="history-line') == 2  # one revision: a marker, no line
    for label in (*alpha, beta[0], beta[2], beta[3], beta_a100):
        assert f"{label['revision']} ({label['created_at'][:10]})" in serving_svg
    assert f"v2 ({beta[1]['created_at'][:10]})" not in serving_svg  # v2's older measurement
    rows = re.findall(r'<tr><th scope="row">.*?</tr>', serving_table, re.S)
    assert len(rows) == 3
    first, latest = beta[0], beta[3]
    expected = [
        (
            "acme/beta",
            H100,
            "3",
            f"v1 ({first['created_at'][:10]}) {format_number(first['energy_per_unit_wh'])} → "
            f"v3 ({latest['created_at'][:10]}) {format_number(latest['energy_per_unit_wh'])}",
            change_text(beta[2], beta[3]),
            change_text(beta[0], beta[3]),
        ),
        (
            "acme/alpha",
            H100,
            "2",
            f"v1 ({alpha[0]['created_at'][:10]}) {format_number(alpha[0]['energy_per_unit_wh'])}"
            f" → v2 ({alpha[1]['created_at'][:10]}) "
            f"{format_number(alpha[1]['energy_per_unit_wh'])}",
            change_text(alpha[0], alpha[1]),
            change_text(alpha[0], alpha[1]),
        ),
        ("acme/beta", A100, "1", None, "—", "—"),
    ]
    for row, (model, hardware, revisions, first_latest, previous, since_first) in zip(
        rows, expected, strict=True
    ):
        assert f'<a href="/models/{model}"><bdi>{model}</bdi></a>' in row
        assert f'data-title="Hardware class">{hardware}</td>' in row
        assert f'data-title="Revisions">{revisions}</td>' in row
        if first_latest is not None:
            assert f'data-title="First → latest">{first_latest}</td>' in row
        assert f'data-title="Since previous">{previous}</td>' in row
        assert f'data-title="Since first">{since_first}</td>' in row
    assert change_text(beta[2], beta[3]).startswith("-")  # v3 used less than v2
    assert change_text(alpha[0], alpha[1]).startswith("-")

    # text-classification: its own chart, its own unit
    assert "text-classification inference, suite 2</title>" in classify_svg
    assert classify_svg.count('class="point track-point') == 2
    (row,) = re.findall(r'<tr><th scope="row">.*?</tr>', classify_table, re.S)
    assert f'data-title="Since first">{change_text(*classify)}</td>' in row
    assert change_text(*classify).startswith("+")  # v2 used more energy

    # at most MAX_CHARTED_TRACKS lines: the others are counted, not drawn
    monkeypatch.setattr(vendor_chart, "MAX_CHARTED_TRACKS", 2)
    production(client, publisher, 0, 1.0, model="beta")  # a new logged version of the page
    page = client.get("/vendors/acme").text
    (serving_svg, serving_table), _ = vendor_charts(page)
    assert serving_svg.count('class="point track-point') == 3 + 2
    assert A100 not in serving_table
    assert "And 1 more (model and hardware class) with fewer revisions, not charted" in page


@pytest.mark.parametrize(
    ("models", "change", "words"),
    [
        (
            1,
            -0.183,
            "For 1 model with more than one revision, energy per functional unit fell by 18%",
        ),
        (
            3,
            0.126,
            "Across 3 models with more than one revision, energy per functional unit rose by "
            "a median of 13%",
        ),
        (
            2,
            0.004,
            "Across 2 models with more than one revision, energy per functional unit did "
            "not change (to the nearest percent)",
        ),
    ],
)
def test_the_trend_wording(models: int, change: float, words: str) -> None:
    trend = Trend(
        suite="2",
        task="text-generation",
        phase="inference",
        models=models,
        median_relative_change=change,
        start=datetime(2025, 3, 9, tzinfo=UTC),
        end=datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert trend_sentence(trend) == (
        f"{words} from first to latest revision (text-generation inference, suite 2, same "
        "hardware class, 2025-03 to 2026-11)."
    )


def test_benchmark_point_of_a_row_holds_every_field() -> None:
    """``BenchmarkPoint.of`` skips the frozen dataclass's ``__init__``: every field is set, with
    the types ``__init__`` would be given, and the point equals the one it makes."""
    import dataclasses
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from registry.services.series import BenchmarkPoint

    row = SimpleNamespace(
        id="l-1",
        revision="v2",
        hardware_class="nvidia-a100-80gb",
        functional_unit="1k-inferences",
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        energy_per_unit_wh=3,
        energy_ci95_high_wh="3.5",
        grade="B",
        current=1,
    )
    point = BenchmarkPoint.of(row, measured=True, standard_workload=False)
    assert set(vars(point)) == {f.name for f in dataclasses.fields(BenchmarkPoint)}
    assert point == BenchmarkPoint(**vars(point))
    assert point.energy_per_unit_wh == 3.0
    assert type(point.energy_ci95_high_wh) is float
    assert point.current is True
    assert not point.comparable
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.grade = "A"  # type: ignore[misc]


def _corners(path: str) -> list[tuple[float, float]]:
    """The corners of a marker path made of ``M`` and relative ``l`` steps."""
    start, *steps = re.findall(r"[Ml](-?[\d.]+),(-?[\d.]+)", path)
    x, y = float(start[0]), float(start[1])
    found = [(x, y)]
    for dx, dy in steps:
        x, y = x + float(dx), y + float(dy)
        found.append((x, y))
    return found


@pytest.mark.parametrize("shape", range(1, len(vendor_chart.SHAPES)))
def test_a_marker_path_puts_each_corner_where_absolute_coordinates_would(shape: int) -> None:
    """The relative steps of a marker (rounded once, not at each step) leave every corner
    within 0.1 px of the shape's own corner, at any centre."""
    name, offsets = vendor_chart.SHAPES[shape]
    r = vendor_chart.MARKER_RADIUS * vendor_chart.SIZES.get(name, 1.25)
    for cx, cy in [(0.0, 0.0), (100.04, 50.0), (613.37, 212.96)]:
        path = vendor_chart.marker_path(shape, cx, cy)
        assert path.endswith("Z")
        corners = _corners(path)
        assert len(corners) == len(offsets)
        for (x, y), (dx, dy) in zip(corners, offsets, strict=True):
            assert abs(x - (cx + dx * r)) <= 0.1 + 1e-9
            assert abs(y - (cy + dy * r)) <= 0.1 + 1e-9


def test_a_circle_marker_is_two_arcs_around_its_centre() -> None:
    assert vendor_chart.marker_path(0, 100.0, 50.0) == (
        "M95.0,50.0a5.0,5.0 0 1,0 10.0,0a5.0,5.0 0 1,0 -10.0,0Z"
    )


def test_the_vendor_summary_names_its_models_in_order_and_counts_benchmark_labels(
    client: TestClient, publisher: Publisher
) -> None:
    """``profiles.vendor_summary``: one read of the vendor, its model names (in name order,
    whatever the aggregate's order) and its benchmark labels only; a vendor without models has
    none; an unknown one is a not-found problem."""
    from sqlmodel import Session

    from registry.errors import ProblemError
    from registry.services import profiles

    for model in ("zeta", "alpha", "mid"):
        submit(client, publisher, publisher.label(model=model))
    submit(client, publisher, publisher.label(model="alpha"))  # a second benchmark label
    production(client, publisher, 1, 50.0, model="served")  # a production period: not counted
    created = client.post(
        "/v1/vendors", json={"slug": "newcomer"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert created.status_code == 201, created.text
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        found = profiles.vendor_summary(session, publisher.slug)
        assert found.vendor.slug == publisher.slug
        assert found.model_names == ["alpha", "mid", "served", "zeta"]
        assert found.benchmark_labels == 4
        empty = profiles.vendor_summary(session, "newcomer")
        assert (empty.vendor.slug, empty.model_names, empty.benchmark_labels) == ("newcomer", [], 0)
        with pytest.raises(ProblemError) as missing:
            profiles.vendor_summary(session, "nobody")
        assert missing.value.kind == "not-found"
