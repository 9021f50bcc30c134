"""Vendors, keys, reads, listings with filters/sort/cursors, and problem JSON everywhere."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from schemas.dsse import b64encode, key_proof_message, keyid_for, raw_public_key
from tests.helpers import ADMIN_TOKEN, Publisher, envelope_bytes
from tests.test_ingest_status import problem_kind

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_create_vendor_needs_admin_token(client: TestClient) -> None:
    assert problem_kind(client.post("/v1/vendors", json={"slug": "x"})) == "unauthorized"
    wrong = client.post("/v1/vendors", json={"slug": "x"}, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    ok = client.post("/v1/vendors", json={"slug": "x", "display_name": "X Corp"}, headers=ADMIN)
    assert ok.status_code == 201
    assert ok.json()["token"].startswith("clt_")
    assert ok.headers["location"].endswith("/v1/vendors/x")
    again = client.post("/v1/vendors", json={"slug": "x"}, headers=ADMIN)
    assert again.status_code == 409
    assert problem_kind(again) == "vendor-exists"


@pytest.mark.parametrize("slug", ["Upper", "-lead", "trail-", "a" * 65, "sp ace", "<b>"])
def test_bad_vendor_slug_422(client: TestClient, slug: str) -> None:
    response = client.post("/v1/vendors", json={"slug": slug}, headers=ADMIN)
    assert response.status_code == 422
    assert problem_kind(response) == "validation-error"


def test_token_is_stored_hashed(client: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    token = client.post("/v1/vendors", json={"slug": "x"}, headers=ADMIN).json()["token"]
    with db.connect() as conn:
        stored = conn.execute(text("SELECT token_sha256 FROM api_tokens")).scalars().all()
    assert token not in stored
    import hashlib

    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_key_registration_needs_proof_of_possession(
    client: TestClient, publisher: Publisher
) -> None:
    key = Ed25519PrivateKey.generate()
    raw = raw_public_key(key.public_key())
    other = Ed25519PrivateKey.generate()
    forged = other.sign(key_proof_message("http://testserver", "acme", keyid_for(raw)))
    response = client.post(
        "/v1/vendors/acme/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(forged)},
        headers=publisher.headers,
    )
    assert response.status_code == 422
    assert problem_kind(response) == "bad-proof"
    # a proof made for another registry does not count either
    elsewhere = key.sign(key_proof_message("https://elsewhere.example", "acme", keyid_for(raw)))
    response = client.post(
        "/v1/vendors/acme/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(elsewhere)},
        headers=publisher.headers,
    )
    assert problem_kind(response) == "bad-proof"


def test_key_registration_errors(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    short = client.post(
        "/v1/vendors/acme/keys",
        json={"public_key": base64.b64encode(b"short").decode(), "proof": "AA=="},
        headers=publisher.headers,
    )
    assert short.status_code == 422
    assert problem_kind(short) == "invalid-key"
    foreign = client.post(
        "/v1/vendors/acme/keys",
        json={"public_key": "AA", "proof": "AA"},
        headers=other_publisher.headers,
    )
    assert foreign.status_code == 403
    assert problem_kind(foreign) == "forbidden"
    raw = raw_public_key(publisher.key.public_key())
    proof = publisher.key.sign(key_proof_message("http://testserver", "acme", publisher.keyid))
    dup = client.post(
        "/v1/vendors/acme/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(proof)},
        headers=publisher.headers,
    )
    assert dup.status_code == 409
    assert problem_kind(dup) == "key-exists"


def test_revocation_rules(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    path = f"/v1/vendors/acme/keys/{publisher.keyid}/revoke"
    foreign = client.post(path, json={"reason": "retired"}, headers=other_publisher.headers)
    assert foreign.status_code == 403
    bad = client.post(path, json={"reason": "lost"}, headers=publisher.headers)
    assert bad.status_code == 422
    missing = client.post(
        "/v1/vendors/acme/keys/" + "0" * 64 + "/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    assert missing.status_code == 404
    retired = client.post(path, json={"reason": "retired"}, headers=publisher.headers)
    assert retired.json()["status"] == "retired"
    assert retired.json()["compromised_since"] is None
    compromised = client.post(path, json={"reason": "compromised"}, headers=publisher.headers)
    assert compromised.json()["status"] == "compromised"
    assert compromised.json()["compromised_since"] is not None
    downgrade = client.post(path, json={"reason": "retired"}, headers=publisher.headers)
    assert downgrade.status_code == 422
    profile = client.get("/v1/vendors/acme").json()
    assert profile["keys"][0]["status"] == "compromised"


def _submit(client: TestClient, publisher: Publisher, **kw) -> dict:  # type: ignore[no-untyped-def, type-arg]
    response = client.post(
        "/v1/labels", content=publisher.envelope(**kw), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_get_label_returns_label_envelope_and_verification(
    client: TestClient, publisher: Publisher
) -> None:
    label = publisher.label()
    envelope = envelope_bytes(label, publisher.key)
    client.post("/v1/labels", content=envelope, headers=publisher.headers)
    body = client.get(f"/v1/labels/{label['label_id']}").json()
    assert body["label"] == label
    assert body["verification"]["signature"] == "verified"
    assert body["verification"]["keyid"] == publisher.keyid
    assert body["envelope"]["payloadType"] == "application/vnd.in-toto+json"
    raw = client.get(f"/v1/labels/{label['label_id']}/envelope")
    assert raw.content == envelope
    missing = client.get("/v1/labels/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert problem_kind(missing) == "not-found"


def test_list_filters_and_sort(
    client: TestClient, publisher: Publisher, other_publisher: Publisher
) -> None:
    _submit(client, publisher, model="small", power_w=100.0)
    _submit(client, publisher, model="big", power_w=900.0, zone="DE")
    _submit(client, publisher, model="mid", power_w=400.0, task="image-classification")
    _submit(client, other_publisher, model="theirs", power_w=200.0, phase="training")
    items = client.get("/v1/labels", params={"sort": "energy"}).json()["items"]
    energies = [i["energy_per_unit_wh"] for i in items]
    assert energies == sorted(energies)
    assert len(items) == 4
    desc = client.get("/v1/labels", params={"sort": "-energy"}).json()["items"]
    assert [i["label_id"] for i in desc] == [i["label_id"] for i in reversed(items)]
    assert {
        i["model"] for i in client.get("/v1/labels", params={"vendor": "acme"}).json()["items"]
    } == {"acme/small", "acme/big", "acme/mid"}
    assert [
        i["model"] for i in client.get("/v1/labels", params={"zone": "DE"}).json()["items"]
    ] == ["acme/big"]
    assert [
        i["model"]
        for i in client.get("/v1/labels", params={"task": "image-classification"}).json()["items"]
    ] == ["acme/mid"]
    assert [
        i["model"] for i in client.get("/v1/labels", params={"phase": "training"}).json()["items"]
    ] == ["globex/theirs"]
    assert [
        i["model"] for i in client.get("/v1/labels", params={"model": "acme/small"}).json()["items"]
    ] == ["acme/small"]
    assert client.get("/v1/labels", params={"hardware": "nvidia-l4-24gb"}).json()["items"] == []
    bad = client.get("/v1/labels", params={"sort": "price"})
    assert bad.status_code == 422
    assert problem_kind(bad) == "validation-error"


@pytest.mark.parametrize("sort", ["-received_at", "energy", "-co2e", "created_at"])
def test_cursor_pagination_visits_every_label_once(
    client: TestClient, publisher: Publisher, sort: str
) -> None:
    ids = {
        _submit(client, publisher, model=f"m{i % 3}", power_w=100.0 + (i % 4))["label_id"]
        for i in range(11)
    }
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/labels", params=params).json()
        seen += [i["label_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        pages += 1
        if not cursor:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 11
    assert set(seen) == ids


def test_bad_cursor_400(client: TestClient) -> None:
    response = client.get("/v1/labels", params={"cursor": "!!!garbage"})
    assert response.status_code == 400
    assert problem_kind(response) == "invalid-cursor"


def test_model_view_latest_and_history(client: TestClient, publisher: Publisher) -> None:
    _submit(client, publisher, model="bert", revision="v1")
    latest = _submit(client, publisher, model="bert", revision="v2")
    _submit(client, publisher, model="bert", revision="v1", phase="training")
    body = client.get("/v1/models/acme/bert").json()
    assert body["model"] == "acme/bert"
    assert len(body["history"]) == 3
    by_phase = {(x["task"], x["phase"]): x for x in body["latest"]}
    assert by_phase[("text-classification", "inference")]["label_id"] == latest["label_id"]
    assert ("text-classification", "training") in by_phase
    assert client.get("/v1/models/acme/nothing").status_code == 404
    assert client.get("/v1/models/nobody/bert").status_code == 404


def test_vendor_profile(client: TestClient, publisher: Publisher) -> None:
    _submit(client, publisher, model="bert")
    body = client.get("/v1/vendors/acme").json()
    assert body["vendor"] == "acme"
    assert body["models"] == ["acme/bert"]
    assert body["keys"][0]["keyid"] == publisher.keyid
    assert len(body["labels"]) == 1
    assert client.get("/v1/vendors/nobody").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("get", "/no/such/route", 404, "not-found"),
        ("delete", "/v1/labels", 405, "method-not-allowed"),
        ("get", "/v1/labels?limit=0", 422, "validation-error"),
        ("get", "/v1/labels?phase=sleeping", 422, "validation-error"),
    ],
)
def test_framework_errors_are_problem_json(
    client: TestClient, method: str, path: str, status: int, kind: str
) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert problem_kind(response) == kind


def test_malformed_json_body_is_problem_json(client: TestClient) -> None:
    response = client.post(
        "/v1/vendors", content=b"{", headers=ADMIN | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert problem_kind(response) == "validation-error"


def test_body_limit_applies_to_every_route(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/v1/vendors", content=b"x" * (settings.max_body_bytes + 1), headers=ADMIN
    )
    assert response.status_code == 413
    assert problem_kind(response) == "payload-too-large"


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    from registry.db import head_revision

    assert ready.json()["migration"] == head_revision("sqlite://")


def test_openapi_documents_problem_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/labels"]["post"]
    assert {"201", "200", "400", "401", "403", "409", "413", "422", "429"} <= set(post["responses"])
    assert "Problem" in spec["components"]["schemas"]


def test_metrics_count_requests_and_ingest_outcomes(
    client: TestClient, publisher: Publisher
) -> None:
    envelope = publisher.envelope()
    client.post("/v1/labels", content=envelope, headers=publisher.headers)
    client.post("/v1/labels", content=envelope, headers=publisher.headers)
    client.post("/v1/labels", content=b"{", headers=publisher.headers)
    client.get("/v1/labels/00000000-0000-4000-8000-000000000000")
    text = client.get("/metrics").text
    assert 'carbonlabel_label_submissions_total{outcome="created"} 1.0' in text
    assert 'carbonlabel_label_submissions_total{outcome="duplicate"} 1.0' in text
    assert 'carbonlabel_label_submissions_total{outcome="malformed-envelope"} 1.0' in text
    assert 'route="/v1/labels/{label_id}",status="404"' in text
