"""Every row of the contract's POST /v1/labels status table, through HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from registry.config import Settings
from registry.main import create_app
from registry.models import Label
from tests.helpers import (
    ADMIN_TOKEN,
    Publisher,
    add_key,
    envelope_bytes,
    refill,
    sign_raw_payload,
    spy_compare_digest,
    urlsafe,
)


def problem_kind(response) -> str:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    return body["type"].rsplit(":", 1)[-1]


def stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Label)).scalar_one()


def test_accepted_201_with_location(client: TestClient, publisher: Publisher, db: Engine) -> None:
    label = publisher.label()
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["label_id"] == label["label_id"]
    assert response.headers["location"].endswith(f"/v1/labels/{label['label_id']}")
    assert body["energy_per_unit_wh"] == label["results"]["energy_per_unit_wh"]["mean"]
    assert stored_count(db) == 1


def test_envelope_bytes_stored_verbatim(client: TestClient, publisher: Publisher) -> None:
    body = b"  " + urlsafe(publisher.envelope()) + b"\n"  # odd spacing and URL-safe base64
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 201, response.text
    stored = client.get(response.json()["links"]["envelope"].replace("http://testserver", ""))
    assert stored.content == body


def test_same_envelope_again_200(client: TestClient, publisher: Publisher, db: Engine) -> None:
    envelope = publisher.envelope()
    first = client.post("/v1/labels", content=envelope, headers=publisher.headers)
    again = client.post("/v1/labels", content=envelope, headers=publisher.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["label_id"] == first.json()["label_id"]
    assert stored_count(db) == 1


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer clt_not-a-real-token"])
def test_no_or_bad_token_401(client: TestClient, publisher: Publisher, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/labels", content=publisher.envelope(), headers=headers)
    assert response.status_code == 401
    assert problem_kind(response) == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def _malformed_bodies(publisher: Publisher) -> dict[str, bytes]:
    good = json.loads(publisher.envelope())
    wrong_type = dict(good, payloadType="application/json")
    bad_b64 = dict(good, payload="***not base64***")
    return {
        "not json": b"{not json",
        "json array": b"[1, 2]",
        "no signatures": json.dumps({k: v for k, v in good.items() if k != "signatures"}).encode(),
        "bad base64": json.dumps(bad_b64).encode(),
        "wrong payloadType": json.dumps(wrong_type).encode(),
        "payload not json": sign_raw_payload(b"\x00not json at all", publisher.key),
        "payload json but not object": sign_raw_payload(b"[1,2,3]", publisher.key),
        "empty body": b"",
    }


@pytest.mark.parametrize(
    "case",
    [
        "not json",
        "json array",
        "no signatures",
        "bad base64",
        "wrong payloadType",
        "payload not json",
        "payload json but not object",
        "empty body",
    ],
)
def test_malformed_envelope_400(client: TestClient, publisher: Publisher, case: str) -> None:
    body = _malformed_bodies(publisher)[case]
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 400, response.text
    assert problem_kind(response) == "malformed-envelope"


def test_unknown_key_403(client: TestClient, publisher: Publisher) -> None:
    stranger = Ed25519PrivateKey.generate()
    response = client.post(
        "/v1/labels", content=envelope_bytes(publisher.label(), stranger), headers=publisher.headers
    )
    assert response.status_code == 403
    assert problem_kind(response) == "unknown-key"


def test_key_of_another_vendor_is_unknown_403(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    envelope = envelope_bytes(publisher.label(), other_publisher.key)
    response = client.post("/v1/labels", content=envelope, headers=publisher.headers)
    assert response.status_code == 403
    assert problem_kind(response) == "unknown-key"


@pytest.mark.parametrize("reason", ["retired", "compromised"])
def test_revoked_key_403(client: TestClient, publisher: Publisher, reason: str) -> None:
    revoke = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": reason},
        headers=publisher.headers,
    )
    assert revoke.status_code == 200, revoke.text
    response = client.post("/v1/labels", content=publisher.envelope(), headers=publisher.headers)
    assert response.status_code == 403
    assert problem_kind(response) == "revoked-key"


def test_vendor_mismatch_403(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    # globex signs (with its own registered key) a label that claims to be acme's
    label = publisher.label()
    envelope = envelope_bytes(label, other_publisher.key)
    response = client.post("/v1/labels", content=envelope, headers=other_publisher.headers)
    assert response.status_code == 403
    assert problem_kind(response) == "vendor-mismatch"


@pytest.mark.parametrize("part", ["payload", "sig"])
def test_bad_signature_422(client: TestClient, publisher: Publisher, part: str) -> None:
    envelope = json.loads(publisher.envelope())
    if part == "payload":
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["model"]["revision"] = "v999"
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    else:
        sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
        sig[0] ^= 1
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    response = client.post("/v1/labels", content=json.dumps(envelope), headers=publisher.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "bad-signature"


def test_schema_violation_422_lists_pointers(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    label["benchmark"]["task"] = "crystal-ball-gazing"
    del label["carbon"]["pue"]
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 422
    assert problem_kind(response) == "schema-violation"
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert "/predicate/benchmark/task" in pointers
    assert "/predicate/carbon" in pointers


def test_subject_must_name_the_model_422(client: TestClient, publisher: Publisher) -> None:
    from schemas.dsse import build_statement, sign_statement

    statement = build_statement(publisher.label())
    statement["subject"][0]["name"] = "acme/some-other-model@v1"
    body = json.dumps(sign_statement(statement, publisher.key))
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "schema-violation"
    assert response.json()["errors"][0]["pointer"] == "/subject/0/name"


def test_inconsistent_results_altered_result_422(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    label["results"]["energy_per_unit_wh"]["mean"] *= 0.5  # claims half the measured energy
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"
    assert response.json()["errors"][0]["pointer"] == "/results/energy_per_unit_wh/mean"


def test_inconsistent_results_altered_trace_422(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    label["traces"]["trials"][2]["components"][0]["counter_end_j"] += 500.0
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 422
    assert problem_kind(response) == "inconsistent-results"
    # once the results are recomputed from the altered trace, the label is accepted
    ok = client.post(
        "/v1/labels",
        content=envelope_bytes(refill(label), publisher.key),
        headers=publisher.headers,
    )
    assert ok.status_code == 201, ok.text


def test_wrong_audience_422(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label(registry="https://another-registry.example")
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 422
    assert problem_kind(response) == "wrong-audience"


def test_label_id_conflict_409(client: TestClient, publisher: Publisher, db: Engine) -> None:
    label = publisher.label()
    assert (
        client.post(
            "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
        ).status_code
        == 201
    )
    label["model"]["revision"] = "v2"
    label["provenance"]["model_artifact_sha256"] = "0" * 64
    response = client.post(
        "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
    )
    assert response.status_code == 409
    assert problem_kind(response) == "label-conflict"
    assert stored_count(db) == 1
    stored = client.get(f"/v1/labels/{label['label_id']}").json()
    assert stored["revision"] == "v1"  # the first label is intact


def test_label_id_of_another_vendor_conflicts_409(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    label = publisher.label()
    assert (
        client.post(
            "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
        ).status_code
        == 201
    )
    theirs = other_publisher.label()
    theirs["label_id"] = label["label_id"]
    response = client.post(
        "/v1/labels",
        content=envelope_bytes(theirs, other_publisher.key),
        headers=other_publisher.headers,
    )
    assert response.status_code == 409
    assert problem_kind(response) == "label-conflict"


def test_payload_too_large_413(
    client: TestClient, publisher: Publisher, settings: Settings
) -> None:
    body = b'{"payload": "' + b"A" * settings.max_body_bytes + b'"}'
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 413
    assert problem_kind(response) == "payload-too-large"


def test_payload_too_large_chunked_413(
    client: TestClient, publisher: Publisher, settings: Settings
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"A" * 65536

    response = client.post("/v1/labels", content=chunks(), headers=publisher.headers)
    assert response.status_code == 413
    assert problem_kind(response) == "payload-too-large"


def test_rate_limited_429(db: Engine, settings: Settings) -> None:
    # burst 3: the key registration is a write with the vendor's token too
    limited = settings.model_copy(update={"rate_limit_per_minute": 2, "rate_limit_burst": 3})
    from tests.helpers import register_publisher

    with TestClient(create_app(limited, engine=db)) as client:
        publisher = register_publisher(client, "acme")
        codes = [
            client.post("/v1/labels", content=publisher.envelope(), headers=publisher.headers)
            for _ in range(3)
        ]
    assert [r.status_code for r in codes] == [201, 201, 429]
    assert problem_kind(codes[2]) == "rate-limited"
    assert int(codes[2].headers["retry-after"]) >= 1


def test_compromised_key_with_past_instant_is_stored(
    client: TestClient, publisher: Publisher
) -> None:
    since = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    response = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": since},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    key = response.json()
    assert key["status"] == "compromised"
    assert key["compromised_since"].startswith(since[:19])
    assert key["revoked_at"] is not None


def test_second_key_signs_after_first_retired(client: TestClient, publisher: Publisher) -> None:
    new_key = Ed25519PrivateKey.generate()
    add_key(client, publisher.slug, publisher.token, new_key)
    client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    response = client.post(
        "/v1/labels", content=envelope_bytes(publisher.label(), new_key), headers=publisher.headers
    )
    assert response.status_code == 201, response.text


def test_nan_in_payload_is_malformed_400(client: TestClient, publisher: Publisher) -> None:
    label = publisher.label()
    payload = json.dumps(build_statement_for(label)).replace(
        '"latency_p50_s": 0.004', '"latency_p50_s": NaN'
    )
    assert "NaN" in payload
    body = sign_raw_payload(payload.encode(), publisher.key)
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 400
    assert problem_kind(response) == "malformed-envelope"
    assert "NaN" in response.json()["detail"]


def build_statement_for(label: dict) -> dict:  # type: ignore[type-arg]
    from schemas.dsse import build_statement

    return build_statement(label)


# -- the token is checked in the statement that reads the keys ------------------------------------


def test_a_bad_or_revoked_token_is_401_before_any_other_refusal(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    from sqlmodel import Session

    from registry.services import vendors as vendor_service

    good = envelope_bytes(publisher.label(), publisher.key)
    unknown = {"Authorization": "Bearer clt_not-a-token"}
    for body in (good, b"{not json", envelope_bytes(publisher.label(), publisher.key)[:-9]):
        response = client.post("/v1/labels", content=body, headers=unknown)
        assert response.status_code == 401, response.text
        assert problem_kind(response) == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    with Session(db) as session:
        vendor = vendor_service.get_vendor(session, publisher.slug)
        assert vendor_service.revoke_tokens(session, vendor=vendor) == 1
        session.commit()
    response = client.post("/v1/labels", content=good, headers=publisher.headers)
    assert response.status_code == 401
    assert problem_kind(response) == "unauthorized"
    assert stored_count(db) == 0


def test_a_vendor_without_keys_gets_unknown_key_not_401(client: TestClient, db: Engine) -> None:
    created = client.post(
        "/v1/vendors", json={"slug": "keyless"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    token = created.json()["token"]
    keyless = Publisher("keyless", token, Ed25519PrivateKey.generate())
    response = client.post(
        "/v1/labels",
        content=envelope_bytes(keyless.label(), keyless.key),
        headers=keyless.headers,
    )
    assert response.status_code == 403, response.text
    assert problem_kind(response) == "unknown-key"


def test_a_submission_confirms_the_token_in_constant_time(
    client: TestClient, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    calls = spy_compare_digest(monkeypatch, lambda a, b: b)
    response = client.post(
        "/v1/labels",
        content=envelope_bytes(publisher.label(), publisher.key),
        headers=publisher.headers,
    )
    assert response.status_code == 201, response.text
    assert calls == [hashlib.sha256(publisher.token.encode()).hexdigest()]
