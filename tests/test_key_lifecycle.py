"""Key lifecycle: several active keys, rotation, retirement (labels keep their standing) and
compromise (labels logged after ``compromised_since`` lose it: no grade, out of the rankings and
percentiles, flagged), every event in the transparency log."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from schemas.dsse import keyid_for
from tests.helpers import ADMIN_TOKEN, Publisher, add_key, envelope_bytes

RANKING = "/v1/vendors?task=text-classification&phase=inference"


def submit(client: TestClient, publisher: Publisher, body: bytes) -> dict[str, Any]:
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def revoke(client: TestClient, publisher: Publisher, keyid: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{keyid}/revoke", json=body, headers=publisher.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_several_active_keys_and_rotation(client: TestClient, publisher: Publisher) -> None:
    second = Ed25519PrivateKey.generate()
    add_key(client, publisher.slug, publisher.token, second)
    # both keys sign accepted labels
    first_label = submit(client, publisher, publisher.envelope())
    second_label = submit(client, publisher, envelope_bytes(publisher.label(), second))
    keys = {k["keyid"]: k["status"] for k in client.get("/v1/vendors/acme").json()["keys"]}
    assert keys == {publisher.keyid: "active", keyid_for(second.public_key()): "active"}
    # rotation: retire the first key; it can no longer sign, its labels keep their standing
    revoke(client, publisher, publisher.keyid, reason="retired")
    refused = client.post("/v1/labels", content=publisher.envelope(), headers=publisher.headers)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("revoked-key")
    kept = client.get(f"/v1/labels/{first_label['label_id']}").json()
    assert kept["standing"] == "ok"
    assert kept["grade"]["status"] == "graded"
    assert kept["verification"]["key_status"] == "retired"
    submit(client, publisher, envelope_bytes(publisher.label(), second))
    assert client.get(f"/v1/labels/{second_label['label_id']}").json()["standing"] == "ok"


def test_compromise_withdraws_the_standing_of_later_labels(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    # acme: an old good label, then (after the compromise instant) a newer, worse one
    old = publisher.label(revision="v1", power_w=100)
    old["created_at"] = "2026-01-01T00:00:00Z"
    old_view = submit(client, publisher, envelope_bytes(old, publisher.key))
    time.sleep(0.01)
    since = datetime.now(UTC)
    time.sleep(0.01)
    new = publisher.label(revision="v2", power_w=1200)
    new["created_at"] = "2026-06-01T00:00:00Z"
    new_view = submit(client, publisher, envelope_bytes(new, publisher.key))
    submit(client, other_publisher, other_publisher.envelope(power_w=400))
    before = {v["vendor"]: v for v in client.get(RANKING).json()["vendors"]}
    assert before["acme"]["score_wh"] == new_view["energy_ci95_high_wh"]

    result = client.post(
        f"/v1/vendors/acme/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": since.isoformat()},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert result.status_code == 200, result.text

    lost = client.get(f"/v1/labels/{new_view['label_id']}").json()
    assert lost["standing"] == "key-compromised"
    assert lost["grade"]["status"] == "withheld"
    assert lost["grade"]["grade"] is None
    assert lost["grade"]["percentile"] is None
    assert lost["current"] is False
    kept = client.get(f"/v1/labels/{old_view['label_id']}").json()
    assert kept["standing"] == "ok"
    assert kept["current"] is True
    assert kept["grade"]["grade"] is not None
    # the ranking falls back to the label that kept its standing
    after = {v["vendor"]: v for v in client.get(RANKING).json()["vendors"]}
    assert after["acme"]["score_wh"] == old_view["energy_ci95_high_wh"]
    # the withdrawn label is no one's peer any more
    rival = client.get("/v1/labels?vendor=globex").json()["items"][0]
    rival_grade = client.get(f"/v1/labels/{rival['label_id']}").json()["grade"]
    # its only current peer is acme's old label (one: too few for a percentile)
    assert (rival_grade["percentile"], rival_grade["peers"]) == (None, 1)
    # listings flag it (the badge: tests/test_badges.py::test_compromised_key_flags_the_badge)
    items = {i["label_id"]: i for i in client.get("/v1/labels?vendor=acme").json()["items"]}
    assert items[new_view["label_id"]]["standing"] == "key-compromised"
    assert items[new_view["label_id"]]["grade"] is None
    # the model and vendor pages flag it, the model page marks the one label that lost standing
    model_page = client.get("/models/acme/model-a").text
    assert "Key compromised:</strong> 1 label of this model was signed" in model_page
    assert model_page.count(">key compromised</span>") == 1
    assert (
        "Key compromised:</strong> 1 label of this vendor was" in client.get("/vendors/acme").text
    )
    # an earlier compromise instant withdraws more; a later one changes nothing
    earlier = since - timedelta(days=3650)
    revoke(
        client,
        publisher,
        publisher.keyid,
        reason="compromised",
        compromised_since=earlier.isoformat(),
    )
    assert client.get(f"/v1/labels/{old_view['label_id']}").json()["standing"] == "key-compromised"
    size = client.get("/v1/log").json()["tree_size"]
    revoke(
        client,
        publisher,
        publisher.keyid,
        reason="compromised",
        compromised_since=since.isoformat(),
    )
    assert client.get("/v1/log").json()["tree_size"] == size
    after = {v["vendor"]: v for v in client.get(RANKING).json()["vendors"]}
    assert "acme" not in after


def test_compromise_events_are_logged_with_the_instant(
    client: TestClient, publisher: Publisher
) -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    revoke(
        client,
        publisher,
        publisher.keyid,
        reason="compromised",
        compromised_since=since.isoformat(),
    )
    size = client.get("/v1/log").json()["tree_size"]
    entry = client.get(f"/v1/log/entries/{size - 1}").json()["entry"]
    assert entry["kind"] == "key-revoke"
    assert entry["compromised_since"] == "2026-03-01T00:00:00.000000Z"
    assert entry["keyid"] == publisher.keyid
    assert entry["vendor"] == "acme"
