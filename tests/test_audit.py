"""Auditors: registration, attestations, the verified tier on the API, badges, card and pages,
and ``carbonlabel attest``."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import Engine, text
from sqlmodel import Session

from bench_runner.attest_cli import EXIT_DISAGREES, run_attest
from bench_runner.cli import CliError
from registry.api.badges import IMMUTABLE_CACHE_CONTROL, MUTABLE_CACHE_CONTROL, BadgeCache
from registry.db import upgrade
from registry.services.audit import attestations_view
from schemas.attestation import (
    ATTESTATION_PREDICATE_TYPE,
    agreement,
    attestation_issues,
    build_attestation_statement,
)
from schemas.contract import load_methodology, load_schema
from schemas.dsse import b64encode, key_proof_message, keyid_for, raw_public_key, sign_statement
from tests.helpers import ADMIN_TOKEN, AUDIENCE, Publisher, envelope_bytes, register_publisher
from tests.server import running_server

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLE = Path(__file__).resolve().parent.parent / "schemas/examples/attestation/statement.json"
SVG_NS = "{http://www.w3.org/2000/svg}"


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


class AuditorAccount:
    def __init__(self, slug: str, token: str, key: Ed25519PrivateKey) -> None:
        self.slug = slug
        self.token = token
        self.key = key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def keyid(self) -> str:
        return keyid_for(self.key.public_key())


def registration(
    slug: str, key: Ed25519PrivateKey, *, proof_for: str | None = None, **extra: Any
) -> dict[str, Any]:
    raw = raw_public_key(key.public_key())
    subject = proof_for if proof_for is not None else f"auditor:{slug}"
    proof = key.sign(key_proof_message(AUDIENCE, subject, keyid_for(raw)))
    return {"slug": slug, "public_key": b64encode(raw), "proof": b64encode(proof), **extra}


def register_auditor(
    client: TestClient, slug: str = "green-audit", display_name: str = "Green Audit Lab"
) -> AuditorAccount:
    key = Ed25519PrivateKey.generate()
    response = client.post(
        "/v1/auditors", json=registration(slug, key, display_name=display_name), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return AuditorAccount(slug, response.json()["token"], key)


def submit_label(client: TestClient, publisher: Publisher, **kw: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/labels", content=publisher.envelope(**kw), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    view: dict[str, Any] = client.get(f"/v1/labels/{response.json()['label_id']}").json()
    return view


def predicate_for(
    label: dict[str, Any], auditor: str, *, factor: float = 1.0, **overrides: Any
) -> dict[str, Any]:
    mean = label["energy_per_unit_wh"] * factor
    predicate: dict[str, Any] = {
        "label_id": label["label_id"],
        "auditor": auditor,
        "reproduced_at": "2026-04-02T09:30:00Z",
        "hardware_class": label["hardware_class"],
        "trials": 5,
        "results": {
            "functional_unit": label["functional_unit"],
            "energy_per_unit_wh": {"mean": mean, "ci95_low": mean * 0.98, "ci95_high": mean * 1.02},
        },
    }
    predicate.update(overrides)
    return predicate


def attestation_bytes(
    label: dict[str, Any],
    auditor: AuditorAccount,
    *,
    key: Ed25519PrivateKey | None = None,
    digest: str | None = None,
    predicate: dict[str, Any] | None = None,
    **kw: Any,
) -> bytes:
    statement = build_attestation_statement(
        label["label_id"],
        digest or label["verification"]["payload_sha256"],
        predicate if predicate is not None else predicate_for(label, auditor.slug, **kw),
    )
    return json.dumps(sign_statement(statement, key or auditor.key)).encode()


def post_attestation(
    client: TestClient, label_id: str, body: bytes, auditor: AuditorAccount
) -> Any:
    return client.post(f"/v1/labels/{label_id}/attestations", content=body, headers=auditor.headers)


def problem_kind(response: Any) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit(":", 1)[-1]


def payload_sha256(envelope: bytes) -> str:
    return hashlib.sha256(base64.b64decode(json.loads(envelope)["payload"])).hexdigest()


def message_of(svg: str) -> str:
    texts = ET.fromstring(svg).findall(f"./{SVG_NS}g/{SVG_NS}text")
    return "".join(texts[-1].itertext())


def log_entry(client: TestClient, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = client.get(f"/v1/log/entries/{index}").json()["entry"]
    return entry


@pytest.fixture
def no_cache(client: TestClient) -> BadgeCache:
    cache = BadgeCache(ttl_s=0)
    client.app.state.badge_cache = cache  # type: ignore[attr-defined]
    return cache


# ------------------------------------------------------------------------------------------
# The rule and the schema
# ------------------------------------------------------------------------------------------


def test_methodology_states_the_tolerance() -> None:
    audit = load_methodology()["audit"]
    assert audit["tolerance_relative"] == 0.1
    assert audit["same_hardware_class"] is True


@pytest.mark.parametrize(
    ("mean", "hardware_class", "unit", "agrees"),
    [
        (100.0, "nvidia-h100-sxm-80gb", "1k-inferences", True),
        (109.9, "nvidia-h100-sxm-80gb", "1k-inferences", True),
        (90.1, "nvidia-h100-sxm-80gb", "1k-inferences", True),
        (110.1, "nvidia-h100-sxm-80gb", "1k-inferences", False),
        (89.9, "nvidia-h100-sxm-80gb", "1k-inferences", False),
        (100.0, "nvidia-a100-sxm-80gb", "1k-inferences", False),
        (100.0, "nvidia-h100-sxm-80gb", "step", False),
    ],
)
def test_agreement_rule(mean: float, hardware_class: str, unit: str, agrees: bool) -> None:
    predicate = {
        "hardware_class": hardware_class,
        "results": {"functional_unit": unit, "energy_per_unit_wh": {"mean": mean}},
    }
    verdict = agreement(
        label_energy_wh=100.0,
        label_hardware_class="nvidia-h100-sxm-80gb",
        label_functional_unit="1k-inferences",
        predicate=predicate,
    )
    assert verdict.agrees is agrees
    assert verdict.relative_difference == pytest.approx((mean - 100.0) / 100.0)
    assert bool(verdict.reasons) is not agrees


def test_other_hardware_never_agrees() -> None:
    predicate = {
        "hardware_class": "other",
        "results": {"functional_unit": "step", "energy_per_unit_wh": {"mean": 1.0}},
    }
    verdict = agreement(
        label_energy_wh=1.0,
        label_hardware_class="other",
        label_functional_unit="step",
        predicate=predicate,
    )
    assert not verdict.agrees
    assert "other" in verdict.reasons[0]


def test_example_is_valid_for_both_validators() -> None:
    text_ = EXAMPLE.read_text()
    statement = json.loads(text_)
    assert text_ == json.dumps(statement, indent=2) + "\n"
    assert statement["predicateType"] == ATTESTATION_PREDICATE_TYPE
    assert attestation_issues(statement) == []
    registry: Registry[Any] = Registry().with_resources(
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n)))
        for n in ("label.schema.json", "attestation.schema.json")
    )
    reference = Draft202012Validator(
        {"$ref": ATTESTATION_PREDICATE_TYPE + "#/$defs/statement"}, registry=registry
    )
    assert reference.is_valid(statement)
    broken = copy.deepcopy(statement)
    broken["predicate"]["results"]["energy_per_unit_wh"]["mean"] = -1
    broken["predicate"]["notes"] = "x" * 2001
    assert not reference.is_valid(broken)
    pointers = {i.pointer for i in attestation_issues(broken)}
    assert pointers == {"/predicate/results/energy_per_unit_wh/mean", "/predicate/notes"}
    for notes, valid in (("line one\nline two", True), ("a\u202eb", False), ("a\x07b", False)):
        noted = copy.deepcopy(statement)
        noted["predicate"]["notes"] = notes
        assert reference.is_valid(noted) is valid
        assert (attestation_issues(noted) == []) is valid
    unordered = copy.deepcopy(statement)
    unordered["predicate"]["results"]["energy_per_unit_wh"]["ci95_low"] = 1.0
    assert [i.pointer for i in attestation_issues(unordered)] == [
        "/predicate/results/energy_per_unit_wh"
    ]


# ------------------------------------------------------------------------------------------
# Registration
# ------------------------------------------------------------------------------------------


def test_registration_is_for_the_operator_with_proof_of_possession(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    key = Ed25519PrivateKey.generate()
    body = registration("green-audit", key, display_name="Green Audit Lab")
    assert client.post("/v1/auditors", json=body).status_code == 401
    assert client.post("/v1/auditors", json=body, headers=publisher.headers).status_code == 401
    # a proof for another name, or a vendor-style proof, does not register the key
    for proof_for in ("auditor:someone-else", "green-audit"):
        wrong = registration("green-audit", key, proof_for=proof_for)
        refused = client.post("/v1/auditors", json=wrong, headers=ADMIN)
        assert refused.status_code == 422
        assert problem_kind(refused) == "bad-proof"
    short = dict(body, public_key=b64encode(b"x" * 31))
    assert problem_kind(client.post("/v1/auditors", json=short, headers=ADMIN)) == "invalid-key"

    created = client.post("/v1/auditors", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    answer = created.json()
    token = answer["token"]
    assert token.startswith("cla_")
    assert len(token) > 40
    assert answer["auditor"] == "green-audit"
    assert answer["display_name"] == "Green Audit Lab"
    assert answer["keyid"] == keyid_for(key.public_key())
    # the token is shown once: stored as its SHA-256 only, never listed
    listed = client.get("/v1/auditors")
    assert listed.status_code == 200
    assert token not in listed.text
    (item,) = listed.json()["auditors"]
    assert item["auditor"] == "green-audit"
    assert item["public_key"] == b64encode(raw_public_key(key.public_key()))
    assert item["keyid"] == answer["keyid"]
    assert item["attestations"] == 0
    with db.connect() as conn:
        stored = conn.execute(text("SELECT token_sha256 FROM auditors")).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # logged: auditor-add with the key
    size = client.get("/v1/log").json()["tree_size"]
    entry = log_entry(client, size - 1)
    assert entry["kind"] == "auditor-add"
    assert entry["auditor"] == "green-audit"
    assert entry["keyid"] == answer["keyid"]
    assert entry["public_key"] == item["public_key"]

    again = client.post("/v1/auditors", json=body, headers=ADMIN)
    assert again.status_code == 409
    assert problem_kind(again) == "auditor-exists"
    same_key = registration("other-audit", key)
    again = client.post("/v1/auditors", json=same_key, headers=ADMIN)
    assert again.status_code == 409
    assert problem_kind(again) == "key-exists"
    # a vendor's signing key cannot be an auditor's
    vendor_key = registration("self-audit", publisher.key)
    again = client.post("/v1/auditors", json=vendor_key, headers=ADMIN)
    assert again.status_code == 409
    assert problem_kind(again) == "key-exists"
    assert client.get("/v1/log").json()["tree_size"] == size


# ------------------------------------------------------------------------------------------
# Attestations through the API
# ------------------------------------------------------------------------------------------


def test_agreeing_attestation_verifies_the_label_everywhere(
    client: TestClient, publisher: Publisher, db: Engine, no_cache: BadgeCache
) -> None:
    label = submit_label(client, publisher, model="m1", power_w=300.0)
    assert label["tier"] == "self-reported"
    before = message_of(client.get("/badge/acme/m1.svg").text)
    assert "verified" not in before
    assert "Self-reported" in client.get("/label/acme/m1.svg").text
    auditor = register_auditor(client)

    body = attestation_bytes(label, auditor, factor=1.05)
    response = post_attestation(client, label["label_id"], body, auditor)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["label_id"] == label["label_id"]
    assert answer["auditor"] == "green-audit"
    assert answer["agrees"] is True
    assert answer["tier"] == "verified"
    assert answer["relative_difference"] == pytest.approx(0.05)
    assert answer["tolerance_relative"] == 0.1
    assert answer["reasons"] == []
    assert answer["payload_sha256"] == payload_sha256(body)
    assert response.headers["location"].endswith(f"/v1/labels/{label['label_id']}/attestations")
    receipt = answer["receipt"]
    assert receipt["log_index"] == answer["log_index"]
    assert receipt["checkpoint"]
    assert receipt["tree_size"] == answer["log_index"] + 1

    # the log entry commits to the attestation's payload
    entry = log_entry(client, answer["log_index"])
    assert entry["kind"] == "audit"
    assert entry["label_id"] == label["label_id"]
    assert entry["auditor"] == "green-audit"
    assert entry["keyid"] == auditor.keyid
    assert entry["attestation_sha256"] == payload_sha256(body)
    assert entry["verdict"] == "agrees"

    # stored: the row, the tier, the label views
    with db.connect() as conn:
        tier = conn.execute(
            text("SELECT tier FROM labels WHERE id = :id"), {"id": label["label_id"]}
        ).scalar_one()
        row = conn.execute(text("SELECT agrees, envelope, log_index FROM attestations")).one()
    assert tier == "verified"
    assert bool(row.agrees) is True
    assert bytes(row.envelope) == body
    assert row.log_index == answer["log_index"]
    assert client.get(f"/v1/labels/{label['label_id']}").json()["tier"] == "verified"
    listed = client.get(f"/v1/labels/{label['label_id']}/attestations").json()
    assert listed["tier"] == "verified"
    assert listed["standing"] == "ok"
    (view,) = listed["attestations"]
    assert view["auditor"] == "green-audit"
    assert view["display_name"] == "Green Audit Lab"
    assert view["agrees"] is True
    assert view["figures"]["results"]["energy_per_unit_wh"]["mean"] == pytest.approx(
        label["energy_per_unit_wh"] * 1.05
    )
    assert view["envelope"] == json.loads(body)
    with Session(db) as session:
        assert attestations_view(session, label["label_id"]) == listed["attestations"]
    detail = client.get(f"/v1/labels/{label['label_id']}").json()
    assert detail["attestations"] == listed["attestations"]
    auditors = client.get("/v1/auditors").json()["auditors"]
    assert (auditors[0]["attestations"], auditors[0]["agreeing"]) == (1, 1)

    # badges, endpoint JSON, pinned badge, card
    svg = message_of(client.get("/badge/acme/m1.svg").text)
    assert svg == before + " · ✓ verified"
    endpoint = client.get("/badge/acme/m1.json").json()
    assert endpoint["message"].endswith("· ✓ verified")
    pinned = client.get(f"/badge/label/{label['label_id']}.svg")
    assert message_of(pinned.text).endswith("✓ verified")
    assert pinned.headers["cache-control"] == IMMUTABLE_CACHE_CONTROL
    card = client.get("/label/acme/m1.svg").text
    assert "✓ Verified by Green Audit Lab" in card
    assert "Self-reported" not in card

    # pages
    page = client.get("/models/acme/m1").text
    assert "✓ verified" in page
    assert "by Green Audit Lab" in page
    assert f'href="/v1/labels/{label["label_id"]}/attestations"' in page
    vendor = client.get("/vendors/acme").text
    assert "1 verified by an auditor" in vendor
    assert 'class="tier tier-verified"' in vendor


def test_disagreeing_attestation_is_stored_and_logged_but_verifies_nothing(
    client: TestClient, publisher: Publisher, db: Engine, no_cache: BadgeCache
) -> None:
    label = submit_label(client, publisher, model="m1", power_w=300.0)
    auditor = register_auditor(client)
    body = attestation_bytes(label, auditor, factor=1.2)
    response = post_attestation(client, label["label_id"], body, auditor)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["agrees"] is False
    assert answer["tier"] == "self-reported"
    assert answer["relative_difference"] == pytest.approx(0.2)
    assert "beyond the tolerance of 10%" in answer["reasons"][0]
    entry = log_entry(client, answer["log_index"])
    assert entry["verdict"] == "disagrees"
    assert entry["attestation_sha256"] == payload_sha256(body)
    with db.connect() as conn:
        agrees = conn.execute(text("SELECT agrees FROM attestations")).scalar_one()
    assert bool(agrees) is False
    assert client.get(f"/v1/labels/{label['label_id']}").json()["tier"] == "self-reported"
    assert "verified" not in message_of(client.get("/badge/acme/m1.svg").text)
    pinned = client.get(f"/badge/label/{label['label_id']}.svg")
    assert pinned.headers["cache-control"] == MUTABLE_CACHE_CONTROL
    assert "Self-reported" in client.get("/label/acme/m1.svg").text
    assert "self-reported" in client.get("/models/acme/m1").text

    # on other hardware the figures never agree, however close
    other = register_auditor(client, "other-lab", "Other Lab")
    body = attestation_bytes(label, other, hardware_class="nvidia-a100-sxm-80gb")
    answer = post_attestation(client, label["label_id"], body, other).json()
    assert answer["agrees"] is False
    assert answer["relative_difference"] == pytest.approx(0.0)
    assert "hardware class" in answer["reasons"][0]
    assert client.get(f"/v1/labels/{label['label_id']}").json()["tier"] == "self-reported"


def test_refusals_are_the_right_problems(
    client: TestClient, publisher: Publisher, db: Engine
) -> None:
    label = submit_label(client, publisher, model="m1")
    label_id = label["label_id"]
    auditor = register_auditor(client)
    good = attestation_bytes(label, auditor)
    size = client.get("/v1/log").json()["tree_size"]

    def refused(body: bytes, headers: dict[str, str], path_id: str = label_id) -> Any:
        return client.post(f"/v1/labels/{path_id}/attestations", content=body, headers=headers)

    # tokens: none, garbage, a vendor's, the operator's
    assert problem_kind(refused(good, {})) == "unauthorized"
    for token in ("cla_nope", publisher.token, ADMIN_TOKEN):
        response = refused(good, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert problem_kind(response) == "unauthorized"
    # malformed
    for body in (b"{", b"[]", b'{"payloadType": "x", "payload": "", "signatures": []}'):
        response = refused(body, auditor.headers)
        assert response.status_code == 400
        assert problem_kind(response) == "malformed-envelope"
    # unknown label
    response = refused(good, auditor.headers, "00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert problem_kind(response) == "not-found"
    # signed by another key (the vendor's, or a stranger's)
    for key in (publisher.key, Ed25519PrivateKey.generate()):
        response = refused(attestation_bytes(label, auditor, key=key), auditor.headers)
        assert response.status_code == 422
        assert problem_kind(response) == "bad-signature"
    # another auditor's token with this auditor's envelope
    other = register_auditor(client, "other-lab", "Other Lab")
    size = client.get("/v1/log").json()["tree_size"]
    response = refused(good, other.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "bad-signature"
    # schema
    predicate = predicate_for(label, auditor.slug)
    del predicate["results"]
    response = refused(attestation_bytes(label, auditor, predicate=predicate), auditor.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "schema-violation"
    assert {"pointer": "/predicate", "message": '"results" is a required property'} in (
        response.json()["errors"]
    )
    not_a_statement = json.dumps(sign_statement({"hello": "world"}, auditor.key)).encode()
    assert problem_kind(refused(not_a_statement, auditor.headers)) == "schema-violation"
    # the subject: a wrong digest, another label's id
    response = refused(attestation_bytes(label, auditor, digest="0" * 64), auditor.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "subject-mismatch"
    assert response.json()["errors"][0]["pointer"] == "/subject/0/digest/sha256"
    elsewhere = submit_label(client, publisher, model="m2")
    size = client.get("/v1/log").json()["tree_size"]
    response = refused(attestation_bytes(elsewhere, auditor), auditor.headers)
    assert response.status_code == 422
    assert problem_kind(response) == "subject-mismatch"
    mixed = predicate_for(label, auditor.slug, label_id=elsewhere["label_id"])
    response = refused(attestation_bytes(label, auditor, predicate=mixed), auditor.headers)
    assert problem_kind(response) == "subject-mismatch"
    assert response.json()["errors"] == [
        {"pointer": "/predicate/label_id", "message": f"must be {label_id!r}"}
    ]
    # the predicate names another auditor
    response = refused(
        attestation_bytes(label, auditor, predicate=predicate_for(label, "other-lab")),
        auditor.headers,
    )
    assert response.status_code == 403
    assert problem_kind(response) == "auditor-mismatch"
    # nothing was stored or logged
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM attestations")).scalar_one() == 0
    assert client.get("/v1/log").json()["tree_size"] == size
    assert client.get(f"/v1/labels/{label_id}").json()["tier"] == "self-reported"


def test_the_same_attestation_again_is_idempotent_another_conflicts(
    client: TestClient, publisher: Publisher
) -> None:
    label = submit_label(client, publisher, model="m1")
    auditor = register_auditor(client)
    body = attestation_bytes(label, auditor, factor=0.97)
    first = post_attestation(client, label["label_id"], body, auditor)
    assert first.status_code == 201, first.text
    size = client.get("/v1/log").json()["tree_size"]
    again = post_attestation(client, label["label_id"], body, auditor)
    assert again.status_code == 200, again.text
    for key in ("agrees", "tier", "log_index", "payload_sha256", "relative_difference"):
        assert again.json()[key] == first.json()[key]
    assert client.get("/v1/log").json()["tree_size"] == size
    # the same statement in another envelope encoding is the same attestation
    envelope = json.loads(body)
    envelope["payload"] = base64.urlsafe_b64encode(base64.b64decode(envelope["payload"])).decode()
    reencoded = json.dumps(envelope).encode()
    assert post_attestation(client, label["label_id"], reencoded, auditor).status_code == 200
    # different figures by the same auditor for the same label
    other = attestation_bytes(label, auditor, factor=1.5)
    conflict = post_attestation(client, label["label_id"], other, auditor)
    assert conflict.status_code == 409
    assert problem_kind(conflict) == "attestation-conflict"
    assert client.get("/v1/log").json()["tree_size"] == size
    # an uppercase label id in the path is the same label
    upper = post_attestation(client, label["label_id"].upper(), body, auditor)
    assert upper.status_code == 200


def test_a_label_that_lost_its_standing_is_not_verified_and_pages_warn(
    client: TestClient, publisher: Publisher, no_cache: BadgeCache
) -> None:
    label = submit_label(client, publisher, model="m1")
    revoked = client.post(
        f"/v1/vendors/acme/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": "2020-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert revoked.status_code == 200, revoked.text
    auditor = register_auditor(client)
    answer = post_attestation(
        client, label["label_id"], attestation_bytes(label, auditor), auditor
    ).json()
    assert answer["agrees"] is True
    assert answer["tier"] == "self-reported"
    assert answer["standing"] == "key-compromised"
    # the badge and the card show the model's label that lost its standing
    assert message_of(client.get("/badge/acme/m1.svg").text) == "key compromised"
    assert "Key compromised" in client.get("/label/acme/m1.svg").text
    model_page = client.get("/models/acme/m1").text
    assert 'class="warning" role="alert"' in model_page
    assert "1 label of this model was signed with a key reported compromised" in model_page
    assert ">key compromised</span>" in model_page
    vendor_page = client.get("/vendors/acme").text
    assert "1 label of this vendor was signed with a key reported compromised" in vendor_page
    assert 'href="/models/acme/m1"' in vendor_page


def test_openapi_documents_the_auditor_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/v1/labels/{label_id}/attestations"]["post"]
    assert {"201", "200", "400", "401", "403", "404", "409", "422"} <= set(post["responses"])
    assert "get" in paths["/v1/labels/{label_id}/attestations"]
    assert {"get", "post"} <= set(paths["/v1/auditors"])


# ------------------------------------------------------------------------------------------
# carbonlabel attest
# ------------------------------------------------------------------------------------------


class AppTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to the app's test client (no server)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


def test_attest_command_through_the_app(
    client: TestClient, publisher: Publisher, tmp_path: Path
) -> None:
    label = submit_label(client, publisher, model="m1", power_w=300.0)
    auditor = register_auditor(client)
    key = write_key(tmp_path / "auditor.pem", auditor.key)
    transport = AppTransport(client)
    figures = tmp_path / "mine.label.json"
    mine = publisher.label(model="m1", seed=99)  # the auditor's own label: its own figures
    mine["results"]["energy_per_unit_wh"].update(
        mean=label["energy_per_unit_wh"] * 1.04,
        ci95_low=label["energy_per_unit_wh"] * 1.0,
        ci95_high=label["energy_per_unit_wh"] * 1.08,
    )
    figures.write_text(json.dumps(mine))
    common: dict[str, Any] = {
        "key": key,
        "label_id": label["label_id"],
        "figures": figures,
        "registry": AUDIENCE,
        "auditor": None,
        "label_sha256": None,
        "notes": "reproduced on our own node",
        "transport": transport,
    }
    # offline: no registry call at all
    offline = tmp_path / "offline.json"

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected: {request.url}")

    run_attest(
        **(
            common
            | {
                "token": None,
                "out_path": offline,
                "submit": False,
                "auditor": auditor.slug,
                "label_sha256": label["verification"]["payload_sha256"],
                "transport": httpx.MockTransport(unreachable),
            }
        )
    )
    assert json.loads(offline.read_text())["payloadType"] == "application/vnd.in-toto+json"
    out = tmp_path / "attestation.json"
    assert run_attest(**common, token=auditor.token, out_path=out, submit=True) == 0
    assert client.get(f"/v1/labels/{label['label_id']}").json()["tier"] == "verified"
    # what was written is what was sent (Ed25519 is deterministic: the same as offline)
    assert offline.read_text() == out.read_text()
    stored = client.get(f"/v1/labels/{label['label_id']}/attestations").json()["attestations"]
    assert stored[0]["envelope"] == json.loads(out.read_text())
    assert stored[0]["figures"]["notes"] == "reproduced on our own node"
    assert stored[0]["figures"]["trials"] == mine["measurement"]["trials"]
    # again: already stored, still exit 0
    assert run_attest(**common, token=auditor.token, out_path=out, submit=True) == 0

    # errors: one clear message each
    other = register_auditor(client, "other-lab", "Other Lab")
    with pytest.raises(CliError, match="no label"):
        run_attest(
            **(common | {"label_id": "00000000-0000-4000-8000-000000000000"}),
            token=other.token,
            out_path=out,
            submit=True,
        )
    with pytest.raises(CliError, match="not registered to an auditor"):
        run_attest(
            **(
                common | {"key": write_key(tmp_path / "stranger.pem", Ed25519PrivateKey.generate())}
            ),
            token=other.token,
            out_path=out,
            submit=True,
        )
    with pytest.raises(CliError, match="token is needed"):
        run_attest(**common, token=None, out_path=out, submit=True)
    with pytest.raises(CliError, match="not a label id"):
        run_attest(**(common | {"label_id": "nope"}), token=other.token, out_path=out, submit=True)

    # disagreeing figures: stored, exit code 7
    far = tmp_path / "far.json"
    mine["results"]["energy_per_unit_wh"].update(
        mean=label["energy_per_unit_wh"] * 2,
        ci95_low=label["energy_per_unit_wh"] * 1.9,
        ci95_high=label["energy_per_unit_wh"] * 2.1,
    )
    far.write_text(json.dumps({"predicate": mine}))  # a statement works as well as a label
    other_key = write_key(tmp_path / "other.pem", other.key)
    with pytest.raises(CliError, match="disagree") as raised:
        run_attest(
            **(common | {"key": other_key, "figures": far}),
            token=other.token,
            out_path=tmp_path / "other.json",
            submit=True,
        )
    assert raised.value.code == EXIT_DISAGREES
    listed = client.get(f"/v1/labels/{label['label_id']}/attestations").json()["attestations"]
    assert [a["agrees"] for a in listed] == [True, False]


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", *args],
        cwd=cwd,
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_attest_command_end_to_end_against_a_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    with running_server(url, ADMIN_TOKEN) as base, httpx.Client(base_url=base) as http:
        publisher = register_publisher(http, "acme", audience=base)
        label = publisher.label(model="m1", registry=base)
        stored = http.post(
            "/v1/labels", content=envelope_bytes(label, publisher.key), headers=publisher.headers
        )
        assert stored.status_code == 201, stored.text
        key = Ed25519PrivateKey.generate()
        raw = raw_public_key(key.public_key())
        proof = key.sign(key_proof_message(base, "auditor:green-audit", keyid_for(raw)))
        created = http.post(
            "/v1/auditors",
            json={"slug": "green-audit", "public_key": b64encode(raw), "proof": b64encode(proof)},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        write_key(tmp_path / "auditor.pem", key)
        (tmp_path / "mine.json").write_text(json.dumps(label))  # identical figures
        env = {"CARBONLABEL_REGISTRY": base, "CARBONLABEL_AUDITOR_TOKEN": created.json()["token"]}
        args = ("attest", "--key", "auditor.pem", "--label-id", label["label_id"])
        result = cli(*args, "--figures", "mine.json", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("stored: agrees (+0.0% vs the label's energy per unit)")
        assert "is verified" in result.stdout
        assert (tmp_path / f"{label['label_id']}.attestation.dsse.json").exists()
        again = cli(*args, "--figures", "mine.json", cwd=tmp_path, env=env)
        assert again.returncode == 0
        assert again.stdout.startswith("already stored: agrees")
        assert http.get(f"/v1/labels/{label['label_id']}").json()["tier"] == "verified"
        # one line and a non-zero exit for each failure
        missing = cli(*args, "--figures", "absent.json", cwd=tmp_path, env=env)
        errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
        assert missing.returncode == 1
        assert len(errors) == 1
        assert "absent.json" in errors[0]
        wrong = cli(
            *args,
            "--figures",
            "mine.json",
            cwd=tmp_path,
            env=env | {"CARBONLABEL_AUDITOR_TOKEN": "x"},
        )
        assert wrong.returncode == 1
        assert "401" in wrong.stderr


def test_an_auditors_key_cannot_become_a_vendors_key(
    client: TestClient, publisher: Publisher
) -> None:
    auditor = register_auditor(client)
    raw = raw_public_key(auditor.key.public_key())
    proof = auditor.key.sign(key_proof_message(AUDIENCE, publisher.slug, keyid_for(raw)))
    response = client.post(
        f"/v1/vendors/{publisher.slug}/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(proof)},
        headers=publisher.headers,
    )
    assert response.status_code == 409
    assert problem_kind(response) == "key-exists"
