"""The registry accepts labels of suite 1 and suite 2 (issue 9): suite-2 labels are stored with
their suite, size class, measured quality and energy per output token; graded under their suite's
bands within their size class; compared only with peers of their suite and size class; current
per model, suite, task, phase and hardware class; listed and ranked with the suite, quality and
size-class filters. A suite-2 run with a shrunk workload is stored but not graded."""

from __future__ import annotations

import copy
import csv
import io
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from schemas.dsse import keyid_for
from schemas.results import fill_results
from schemas.suites import meter_bias, task_spec
from tests.helpers import ADMIN_TOKEN, Publisher, add_key, envelope_bytes
from tests.test_ingest_status import problem_kind

GEN = "text-generation"
CLS = "text-classification"
H100 = "nvidia-h100-sxm-80gb"
SMALL = 7_000_000_000  # <= 20B
MEDIUM = 30_000_000_000  # 20-66B
SHA = "ab" * 32


def suite2(publisher: Publisher, **overrides: Any) -> dict[str, Any]:
    """A suite-2 text-generation label of about 98 Wh per 1,000 requests (9 requests a trial;
    graded on about 112 once widened by the H100 class's 15 % meter bias bound)."""
    kwargs: dict[str, Any] = {
        "suite": "2",
        "task": GEN,
        "parameter_count": SMALL,
        "units_per_trial": 9,
    }
    kwargs.update(overrides)
    return publisher.label(**kwargs)


def post(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> Any:
    return client.post("/v1/labels", content=publisher.envelope(label), headers=publisher.headers)


def submit(client: TestClient, publisher: Publisher, label: dict[str, Any]) -> dict[str, Any]:
    response = post(client, publisher, label)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def detail(client: TestClient, label_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/labels/{label_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored(db: Engine, label_id: str) -> Any:
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT suite, size_class, quality, quality_metric, energy_per_output_token_j,"
                " grade, graded_under, current FROM labels WHERE id = :id"
            ),
            {"id": label_id},
        ).one()


def with_figures_of(label: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """``label`` with the traces (hence the exact energy figures) of ``template``."""
    label["traces"] = copy.deepcopy(template["traces"])
    label["measurement"]["duration_s"] = template["measurement"]["duration_s"]
    return fill_results(label)


def listing(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/labels", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ranking(client: TestClient, task: str = GEN, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/vendors", params={"task": task, "phase": "inference", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_suite_2_label_is_stored_with_its_columns_and_graded_under_2(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    label = suite2(publisher, quality=0.6)
    response = post(client, publisher, label)
    assert response.status_code == 201, response.text
    view = response.json()
    measured = label["quality"]["measured"]
    per_token = label["results"]["energy_per_output_token_j"]["mean"]
    assert (view["suite"], view["size_class"]) == ("2", "up-to-20b")
    assert view["functional_unit"] == "1k-requests"
    assert view["energy_per_output_token_j"] == pytest.approx(per_token, rel=1e-12)
    assert view["quality"] == {
        "status": "measured",
        "metric": "gsm8k-exact-match",
        "value": measured["value"],
        "items": task_spec("2", GEN)["sample_size"],
        "unavailable_reason": None,
        "declared": [],
    }
    # ~98 Wh per 1,000 requests, graded on ~112 (x 1.15, the H100 class's meter bias bound): C in
    # the <= 20B bands of suite 2 (63.3-126.7)
    assert 63.344982 <= view["grade"]["graded_value_wh"] < 126.689965
    assert view["grade"]["graded_value_wh"] == pytest.approx(view["energy_ci95_high_wh"] * 1.15)
    assert view["grade"]["grade"] == "C"
    assert view["grade"]["status"] == "graded"
    assert view["grade"]["graded_under"] == "2"
    assert view["grade"]["peer_group"] == {
        "suite": "2",
        "task": GEN,
        "phase": "inference",
        "hardware_class": H100,
        "size_class": "up-to-20b",
    }
    row = stored(db, view["label_id"])
    assert (row.suite, row.size_class, row.quality_metric) == (
        "2",
        "up-to-20b",
        "gsm8k-exact-match",
    )
    assert row.quality == measured["value"]
    assert row.energy_per_output_token_j == pytest.approx(per_token, rel=1e-12)
    assert (row.grade, row.graded_under, bool(row.current)) == ("C", "2", True)
    # the full view and the listing say the same
    full = detail(client, view["label_id"])
    assert full["grade"] == view["grade"] | {"percentile": None}
    assert full["quality"] == view["quality"]
    assert listing(client, suite="2")[0]["quality"] == view["quality"]


def test_size_class_decides_the_grade(client: TestClient, publisher: Publisher) -> None:
    small = suite2(publisher, model="small", parameter_count=SMALL)
    medium = with_figures_of(suite2(publisher, model="medium", parameter_count=MEDIUM), small)
    small_view, medium_view = submit(client, publisher, small), submit(client, publisher, medium)
    assert small_view["energy_ci95_high_wh"] == medium_view["energy_ci95_high_wh"]
    assert (small_view["size_class"], medium_view["size_class"]) == ("up-to-20b", "up-to-66b")
    # the same energy (graded on ~112): C among <= 20B models (63.3-126.7), B among 20-66B ones
    # (106.7-213.4)
    assert small_view["grade"]["grade"] == "C"
    assert medium_view["grade"]["grade"] == "B"
    assert medium_view["grade"]["peer_group"]["size_class"] == "up-to-66b"


def test_suite_1_labels_are_still_graded_under_suite_1(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    view = submit(client, publisher, publisher.label())
    assert (view["suite"], view["size_class"]) == ("1", "")
    assert view["energy_per_output_token_j"] is None
    assert view["quality"] == {
        "status": "not-reported",
        "metric": None,
        "value": None,
        "items": None,
        "unavailable_reason": None,
        "declared": [],
    }
    # suite 1's bands; since grading 1.1 the basis is widened by the meter bias bound
    assert view["grade"]["graded_under"] == "1.1"
    assert view["grade"]["peer_group"]["suite"] == "1"
    row = stored(db, view["label_id"])
    assert (row.suite, row.size_class, row.quality, row.graded_under) == ("1", "", None, "1.1")


def test_suite_2_quality_unavailable_and_declared(client: TestClient, publisher: Publisher) -> None:
    image = submit(
        client, publisher, publisher.label(suite="2", task="image-classification", model="vit")
    )
    assert image["quality"]["status"] == "unavailable"
    assert image["quality"]["value"] is None
    assert image["quality"]["unavailable_reason"].startswith("generated images")
    assert image["grade"]["graded_under"] == "2"
    assert image["size_class"] == ""

    label = suite2(publisher, model="declares")
    declared = {
        "metric": "exact_match",
        "value": 0.91,
        "source": "lm-evaluation-harness",
        "task": "gsm8k",
        "filter": "strict-match",
        "file_sha256": SHA,
    }
    label["quality"]["declared"] = [declared]
    view = submit(client, publisher, label)
    # the declared figure is shown, marked, and never taken for the measured one
    assert view["quality"]["status"] == "measured"
    assert view["quality"]["value"] == label["quality"]["measured"]["value"] != 0.91
    assert view["quality"]["declared"] == [declared | {"declared": True}]
    assert listing(client, min_quality=0.9) == []


def test_changed_output_token_count_is_inconsistent(
    client: TestClient, publisher: Publisher
) -> None:
    label = suite2(publisher)
    label["traces"]["trials"][2]["output_tokens"] += 100  # results not recomputed
    response = post(client, publisher, label)
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"
    pointers = [e["pointer"] for e in response.json()["errors"]]
    assert any(p.startswith("/results/energy_per_output_token_j/") for p in pointers), pointers


def test_changed_quality_outcome_is_inconsistent(client: TestClient, publisher: Publisher) -> None:
    label = suite2(publisher)
    outcomes = label["quality"]["measured"]["outcomes"]
    outcomes[0] = 1 - outcomes[0]  # the stated value no longer follows
    response = post(client, publisher, label)
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"
    assert "/quality/measured/value" in [e["pointer"] for e in response.json()["errors"]]


def test_model_with_a_suite_1_and_a_suite_2_label_has_both_current(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    first = submit(client, publisher, publisher.label(task=GEN, model="m", created_at=at))
    second = submit(client, publisher, suite2(publisher, model="m", created_at=at))
    assert first["current"] is True
    assert second["current"] is True
    assert bool(stored(db, first["label_id"]).current)
    current = {i["label_id"] for i in listing(client, model="acme/m", current="true")}
    assert current == {first["label_id"], second["label_id"]}
    # a newer suite-2 label replaces the older suite-2 label only
    later = datetime(2026, 4, 1, tzinfo=UTC)
    third = submit(client, publisher, suite2(publisher, model="m", created_at=later))
    current = {i["label_id"] for i in listing(client, model="acme/m", current="true")}
    assert current == {first["label_id"], third["label_id"]}
    # the model view's latest: one per suite, task and phase
    model = client.get("/v1/models/acme/m").json()
    assert {(v["suite"], v["label_id"]) for v in model["latest"]} == {
        ("1", first["label_id"]),
        ("2", third["label_id"]),
    }


def test_compromised_suite_2_label_gives_back_current_within_its_suite(
    client: TestClient, publisher: Publisher
) -> None:
    old = submit(
        client, publisher, suite2(publisher, model="m", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    )
    suite_1 = submit(client, publisher, publisher.label(task=GEN, model="m"))
    time.sleep(0.01)
    since = datetime.now(UTC)
    key = Ed25519PrivateKey.generate()
    add_key(client, "acme", publisher.token, key)
    new_label = suite2(publisher, model="m", created_at=datetime(2026, 2, 1, tzinfo=UTC))
    response = client.post(
        "/v1/labels", content=envelope_bytes(new_label, key), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    assert detail(client, old["label_id"])["current"] is False

    revoked = client.post(
        f"/v1/vendors/acme/keys/{keyid_for(key.public_key())}/revoke",
        json={"reason": "compromised", "compromised_since": since.isoformat()},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert revoked.status_code == 200, revoked.text
    assert detail(client, new_label["label_id"])["current"] is False
    assert detail(client, old["label_id"])["current"] is True
    assert detail(client, suite_1["label_id"])["current"] is True


def test_percentile_peers_only_within_suite_and_size_class(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    own = submit(client, publisher, suite2(publisher, model="own", power_w=300))
    # the one peer: same suite and size class, worse
    worse = submit(client, other_publisher, suite2(other_publisher, model="peer", power_w=600))
    # better, but not peers: another size class, another suite
    medium = submit(
        client, other_publisher, suite2(other_publisher, model="big", parameter_count=MEDIUM)
    )
    medium_better = suite2(other_publisher, model="big2", parameter_count=MEDIUM, power_w=100)
    submit(client, other_publisher, medium_better)
    suite_1 = submit(
        client,
        other_publisher,
        other_publisher.label(task=GEN, model="old", units_per_trial=8, power_w=100),
    )
    assert suite_1["energy_ci95_high_wh"] < own["energy_ci95_high_wh"]
    assert medium_better["results"]["energy_per_unit_wh"]["ci95_high"] < own["energy_ci95_high_wh"]

    def place(label: dict[str, Any]) -> tuple[Any, Any]:
        grade = detail(client, label["label_id"])["grade"]
        return grade["percentile"], grade["peers"]

    # one peer each (the better labels of another size class or suite are none): too few for a
    # percentile, and the number says who counts
    assert place(own) == (None, 1)
    assert place(worse) == (None, 1)
    assert place(medium) == (None, 1)
    assert place(suite_1) == (None, 0)  # alone in suite 1


def shrunk(publisher: Publisher, **changes: int) -> dict[str, Any]:
    """A suite-2 label of a run shrunk for a quick check (results and quality recomputed)."""
    label = suite2(publisher, model="quick")
    workload = label["benchmark"]["workload"]
    workload.update(changes)
    measured = label["quality"]["measured"]
    measured["outcomes"] = measured["outcomes"][: workload["samples"]]
    return fill_results(label)


@pytest.mark.parametrize(
    "changes", [{"samples": 20}, {"max_new_tokens": 64}, {"batch_size": 1}], ids=str
)
def test_non_standard_workload_is_stored_but_ungraded(
    client: TestClient, publisher: Publisher, db: Engine, changes: dict[str, int]
) -> None:
    submit(client, publisher, suite2(publisher, model="full", power_w=900))  # a would-be peer
    response = post(client, publisher, shrunk(publisher, **changes))
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["grade"] == {
        "status": "ungraded",
        "grade": None,
        "graded_under": None,
        "basis": "energy_per_unit_wh.ci95_high x (1 + meter_bias.relative)",
        "basis_value_wh": view["energy_ci95_high_wh"],
        "graded_value_wh": pytest.approx(view["energy_ci95_high_wh"] * 1.15),
        "meter_bias": meter_bias(H100),
        "percentile": None,
        "peers": None,
        "peer_group": {
            "suite": "2",
            "task": GEN,
            "phase": "inference",
            "hardware_class": H100,
            "size_class": "up-to-20b",
        },
        "reason": "non-standard-workload",
    }
    assert detail(client, view["label_id"])["grade"] == view["grade"]
    row = stored(db, view["label_id"])
    assert (row.grade, row.graded_under, row.suite) == (None, None, "2")
    assert view["label_id"] in {i["label_id"] for i in listing(client, suite="2")}
    assert view["quality"]["items"] == (changes.get("samples") or 200)


def test_list_filters_suite_min_quality_and_size_class(
    client: TestClient, publisher: Publisher
) -> None:
    one = submit(client, publisher, publisher.label(task=GEN, model="one"))
    low = submit(client, publisher, suite2(publisher, model="low", quality=0.2))
    high = submit(
        client, publisher, suite2(publisher, model="high", quality=0.8, parameter_count=MEDIUM)
    )
    image = submit(client, publisher, publisher.label(suite="2", task="image-classification"))
    low_q, high_q = low["quality"]["value"], high["quality"]["value"]
    assert low_q < high_q

    def ids(**params: Any) -> set[str]:
        return {i["label_id"] for i in listing(client, **params)}

    assert ids(suite="1") == {one["label_id"]}
    assert ids(suite="2") == {low["label_id"], high["label_id"], image["label_id"]}
    assert ids(min_quality=0) == {low["label_id"], high["label_id"]}  # measured figures only
    assert ids(min_quality=(low_q + high_q) / 2) == {high["label_id"]}
    assert ids(min_quality=high_q) == {high["label_id"]}  # at least
    assert ids(min_quality=1) == set()
    assert ids(size_class="up-to-66b") == {high["label_id"]}
    assert ids(size_class="up-to-20b", suite="2", task=GEN) == {low["label_id"]}
    assert ids(size_class="over-66b") == set()


@pytest.mark.parametrize(
    ("path", "params", "pointer"),
    [
        ("/v1/labels", {"suite": "3"}, "/query/suite"),
        ("/v1/labels", {"suite": ""}, "/query/suite"),
        ("/v1/labels", {"min_quality": "1.5"}, "/query/min_quality"),
        ("/v1/labels", {"min_quality": "-0.1"}, "/query/min_quality"),
        ("/v1/labels", {"min_quality": "nan"}, "/query/min_quality"),
        ("/v1/labels", {"size_class": "tiny"}, "/query/size_class"),
        ("/v1/vendors", {"suite": "9"}, "/query/suite"),
        ("/v1/vendors", {"min_quality": "2"}, "/query/min_quality"),
        ("/v1/vendors", {"size_class": "huge"}, "/query/size_class"),
    ],
)
def test_bad_suite_filters_are_422_problems(
    client: TestClient, path: str, params: dict[str, str], pointer: str
) -> None:
    if path == "/v1/vendors":
        params = {"task": GEN, "phase": "inference", **params}
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert problem_kind(response) == "validation-error"
    assert pointer in [e["pointer"] for e in response.json()["errors"]]


def test_ranking_defaults_to_the_newest_suite_with_measured_labels(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    assert ranking(client)["suite"] == "2"  # nothing yet: the newest suite
    old = submit(client, publisher, publisher.label(task=GEN, model="old"))
    assert ranking(client)["suite"] == "1"
    # an estimated suite-2 label does not move the default
    estimate = suite2(other_publisher, model="guess")
    estimate["measurement"]["components"] = [{"name": "gpu", "method": "estimate"}]
    submit(client, other_publisher, fill_results(estimate))
    body = ranking(client)
    assert body["suite"] == "1"
    assert [(v["vendor"], v["score_wh"]) for v in body["vendors"]] == [
        ("acme", old["energy_ci95_high_wh"])
    ]
    # a measured one does; suite 1 stays available by name
    new = submit(client, publisher, suite2(publisher, model="new"))
    body = ranking(client)
    assert body["suite"] == "2"
    assert [(v["vendor"], v["score_wh"]) for v in body["vendors"]] == [
        ("acme", new["energy_ci95_high_wh"]),
        ("globex", None),
    ]
    assert ranking(client, suite="1")["vendors"][0]["score_wh"] == old["energy_ci95_high_wh"]
    assert ranking(client, suite="1")["suite"] == "1"
    # other tasks keep their own default
    assert ranking(client, task=CLS)["suite"] == "2"


def test_ranking_filters_and_median_quality(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    acme = [
        submit(client, publisher, suite2(publisher, model=f"a{i}", quality=q))
        for i, q in enumerate((0.2, 0.3, 0.4))
    ]
    globex = submit(
        client,
        other_publisher,
        suite2(other_publisher, model="g", quality=0.8, parameter_count=MEDIUM),
    )
    submit(client, publisher, publisher.label(task=GEN, model="v1-only"))  # suite 1: not here
    acme_q = sorted(v["quality"]["value"] for v in acme)
    body = ranking(client, suite="2")
    assert (body["suite"], body["size_class"], body["min_quality"]) == ("2", None, None)
    by_vendor = {v["vendor"]: v for v in body["vendors"]}
    assert by_vendor["acme"]["median_quality"] == acme_q[1]
    assert by_vendor["acme"]["models"] == 3
    assert by_vendor["globex"]["median_quality"] == globex["quality"]["value"]

    threshold = (acme_q[1] + acme_q[2]) / 2
    body = ranking(client, min_quality=threshold)
    assert body["min_quality"] == threshold
    by_vendor = {v["vendor"]: v for v in body["vendors"]}
    assert by_vendor["acme"]["models"] == 1  # only its best model reaches it
    assert by_vendor["acme"]["median_quality"] == acme_q[2]
    assert set(by_vendor) == {"acme", "globex"}

    medium = ranking(client, size_class="up-to-66b")
    assert medium["size_class"] == "up-to-66b"
    assert [v["vendor"] for v in medium["vendors"]] == ["globex"]
    assert [v["vendor"] for v in ranking(client, size_class="up-to-20b")["vendors"]] == ["acme"]

    # CSV: the same rows, median quality included
    response = client.get(
        "/v1/vendors", params={"task": GEN, "phase": "inference", "suite": "2", "format": "csv"}
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert rows[0].keys() >= {"median_quality", "score_wh"}
    csv_quality = {row["vendor"]: float(row["median_quality"]) for row in rows}
    assert csv_quality == {"acme": acme_q[1], "globex": globex["quality"]["value"]}


def test_non_standard_workload_is_never_a_peer_nor_ranked(
    client: TestClient, publisher: Publisher, other_publisher: Publisher, db: Engine
) -> None:
    full = submit(client, publisher, suite2(publisher, model="full", power_w=900))
    quick = shrunk(other_publisher, samples=20, max_new_tokens=16)
    quick_view = submit(client, other_publisher, quick)
    assert quick_view["energy_ci95_high_wh"] < full["energy_ci95_high_wh"]
    assert quick_view["current"] is True  # still the model's label to show
    with db.connect() as conn:
        flags = dict(conn.execute(text("SELECT id, standard_workload FROM labels")).all())
    assert flags == {full["label_id"]: True, quick_view["label_id"]: False}
    # the cheaper quick run is nobody's peer: the full run stays alone in its group
    assert detail(client, full["label_id"])["grade"]["percentile"] is None
    body = ranking(client, suite="2")
    assert [(v["vendor"], v["score_wh"]) for v in body["vendors"]] == [
        ("acme", full["energy_ci95_high_wh"])
    ]


def test_chat_serving_is_ranked_without_naming_its_suite(
    client: TestClient, publisher: Publisher
) -> None:
    label = publisher.label(
        suite="2", task="chat-serving", model="served", units_per_trial=30, trials=4
    )
    view = submit(client, publisher, label)
    assert view["functional_unit"] == "1k-requests"
    body = ranking(client, task="chat-serving")  # suite 1 has no chat-serving: suite 2 it is
    assert body["suite"] == "2"
    assert [(v["vendor"], v["score_wh"]) for v in body["vendors"]] == [
        ("acme", view["energy_ci95_high_wh"])
    ]
    response = client.get(
        "/v1/vendors", params={"task": "chat-serving", "phase": "training"}
    )  # no suite has it
    assert response.status_code == 422
    response = client.get(
        "/v1/vendors", params={"task": "chat-serving", "phase": "inference", "suite": "1"}
    )
    assert response.status_code == 422
    assert "suite 1 has no task" in response.json()["errors"][0]["message"]
