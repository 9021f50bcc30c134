"""Hostile or broken input gets a typed 4xx problem, never a 500, and changes nothing stored."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from schemas.dsse import build_statement, sign_envelope, sign_statement
from tests.helpers import ADMIN_TOKEN, Publisher, add_key, envelope_bytes, refill
from tests.test_ingest_status import problem_kind, stored_count


def post(client: TestClient, publisher: Publisher, body: bytes):  # type: ignore[no-untyped-def]
    return client.post("/v1/labels", content=body, headers=publisher.headers)


def test_untraceable_trace_is_422_not_500(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    component = label["traces"]["trials"][0]["components"][0]
    component["counter_end_j"] = component["counter_start_j"] - 10.0  # backwards, no range
    response = post(client, publisher, envelope_bytes(label, publisher.key))
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"
    assert response.json()["errors"][0]["recomputed"] is None


def test_overflowing_counters_are_422_not_500(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    for trial in label["traces"]["trials"]:
        trial["components"][0]["counter_end_j"] = 1e307 * (trial["index"] + 1)
    response = post(client, publisher, envelope_bytes(label, publisher.key))
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"


def test_missing_high_cv_flag_is_inconsistent(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    label["measurement"]["cv_threshold"] = 0.0001  # the synthetic trials vary by about 2 %
    response = post(client, publisher, envelope_bytes(label, publisher.key))
    assert problem_kind(response) == "inconsistent-results"
    assert response.json()["errors"][0]["pointer"] == "/measurement/flags"
    label["measurement"]["flags"] = ["high-cv"]
    assert post(client, publisher, envelope_bytes(label, publisher.key)).status_code == 201


def test_impossible_date_is_a_schema_violation(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    label["created_at"] = "2026-13-45T00:00:00Z"
    response = post(client, publisher, envelope_bytes(label, publisher.key))
    assert response.status_code == 422
    assert problem_kind(response) == "schema-violation"
    assert response.json()["errors"][0]["pointer"] == "/predicate/created_at"


@pytest.mark.parametrize("text", ['"\\ud800"', '"GPU\\u0000"'], ids=["lone-surrogate", "nul"])
def test_bad_strings_in_the_payload_are_malformed(
    client: TestClient, publisher: Publisher, db: Engine, text: str
) -> None:
    label = publisher.label()
    payload = json.dumps(build_statement(label)).replace(
        json.dumps(label["hardware"]["cpu"]["model_name"]), text
    )
    response = post(
        client, publisher, json.dumps(sign_envelope(payload.encode(), publisher.key)).encode()
    )
    assert response.status_code == 400
    assert problem_kind(response) == "malformed-envelope"
    assert stored_count(db) == 0


def test_nul_in_label_id_is_malformed(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    payload = json.dumps(build_statement(label)).replace(
        label["label_id"], label["label_id"][:-1] + "\\u0000"
    )
    response = post(
        client, publisher, json.dumps(sign_envelope(payload.encode(), publisher.key)).encode()
    )
    assert problem_kind(response) == "malformed-envelope"


def test_duplicate_keys_are_malformed(client: TestClient, publisher: Publisher) -> None:
    good = json.loads(publisher.envelope())
    other = json.loads(publisher.envelope())
    signatures = json.dumps(good["signatures"] + other["signatures"])
    body = (
        '{"payloadType": "application/vnd.in-toto+json", '
        f'"payload": "{good["payload"]}", "payload": "{other["payload"]}", "signatures": {signatures}}}'
    )
    response = post(client, publisher, body.encode())
    assert problem_kind(response) == "malformed-envelope"
    assert "duplicate" in response.json()["detail"]


def test_unknown_envelope_members_are_malformed(client: TestClient, publisher: Publisher) -> None:
    envelope = json.loads(publisher.envelope())
    envelope["note"] = "x" * 1000
    response = post(client, publisher, json.dumps(envelope).encode())
    assert problem_kind(response) == "malformed-envelope"


def test_keyless_signature_by_a_retired_key_is_revoked_key(
    client: TestClient, publisher: Publisher
) -> None:
    client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    envelope = json.loads(publisher.envelope())
    envelope["signatures"][0]["keyid"] = ""
    response = post(client, publisher, json.dumps(envelope).encode())
    assert response.status_code == 403
    assert problem_kind(response) == "revoked-key"


def test_foreign_keyid_format_still_verifies_against_registered_keys(
    client: TestClient, publisher: Publisher
) -> None:
    envelope = json.loads(publisher.envelope())
    envelope["signatures"][0]["keyid"] = "SHA256:some-other-format"
    assert post(client, publisher, json.dumps(envelope).encode()).status_code == 201


def test_forged_replay_is_not_accepted(client: TestClient, publisher: Publisher) -> None:
    envelope = json.loads(publisher.envelope())
    assert post(client, publisher, json.dumps(envelope).encode()).status_code == 201
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    response = post(client, publisher, json.dumps(envelope).encode())
    assert response.status_code == 422
    assert problem_kind(response) == "bad-signature"


def test_replay_after_retirement_is_still_the_same_envelope(
    client: TestClient, publisher: Publisher
) -> None:
    body = publisher.envelope()
    assert post(client, publisher, body).status_code == 201
    new_key = Ed25519PrivateKey.generate()
    add_key(client, publisher.slug, publisher.token, new_key)
    client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    assert post(client, publisher, body).status_code == 200


@pytest.mark.parametrize("value", [10**310, True, "2026-01-01T00:00:00", None, [1], 1e308 * 10])
def test_crafted_cursors_are_400(client: TestClient, value: object) -> None:
    for sort in ("energy", "-received_at"):
        raw = json.dumps([value, "x"]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        response = client.get("/v1/labels", params={"sort": sort, "cursor": cursor})
        assert response.status_code == 400, (sort, value, response.text)
        assert problem_kind(response) == "invalid-cursor"


@pytest.mark.parametrize(
    "path", ["/v1/labels/abc%00", "/v1/vendors/a%00b", "/v1/labels?zone=F%00R"]
)
def test_nul_in_urls_is_400(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert problem_kind(response) == "bad-request"


def test_compromised_since_only_moves_earlier_and_never_into_the_future(
    client: TestClient, publisher: Publisher
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    path = f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke"
    early = "2025-01-01T00:00:00Z"
    assert (
        client.post(
            path, json={"reason": "compromised", "compromised_since": early}, headers=admin
        ).status_code
        == 200
    )
    later = client.post(
        path,
        json={"reason": "compromised", "compromised_since": "2026-01-01T00:00:00Z"},
        headers=admin,
    )
    assert later.json()["compromised_since"].startswith("2025-01-01")
    again = client.post(path, json={"reason": "compromised"}, headers=admin)
    assert again.json()["compromised_since"].startswith("2025-01-01")
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    response = client.post(
        path, json={"reason": "compromised", "compromised_since": future}, headers=admin
    )
    assert response.status_code == 422


def test_signed_statement_unaffected_by_refill(client: TestClient, publisher: Publisher) -> None:
    """A label whose traces changed is accepted once its results are recomputed (sanity)."""
    label = publisher.label()
    label["traces"]["trials"][0]["components"][0]["counter_end_j"] += 10
    body = json.dumps(sign_statement(build_statement(refill(label)), publisher.key)).encode()
    assert post(client, publisher, body).status_code == 201


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_json_that_is_not_plain_utf8_is_malformed(
    client: TestClient, publisher: Publisher, encoding: str
) -> None:
    """RFC 8259: JSON between systems is UTF-8 without a BOM; other verifiers refuse the rest."""
    envelope = publisher.envelope().decode()
    response = client.post(
        "/v1/labels", content=envelope.encode(encoding), headers=publisher.headers
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("malformed-envelope")
