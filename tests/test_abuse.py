"""Abuse limits besides rates: every string the API accepts is bounded, free-text names are
NFC-normalised and restricted to a documented character set, tokens are compared in constant time
and never logged."""

from __future__ import annotations

import ast
import copy
import hashlib
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy import Engine
from sqlmodel import Session

from registry.api import deps
from registry.config import Settings
from registry.errors import ProblemError
from registry.main import create_app
from registry.services import vendors as vendor_service
from registry.services.vendors import DISPLAY_NAME_MAX_CHARS, normalise_display_name
from schemas.contract import load_schema, validate_label, validate_statement
from schemas.dsse import build_statement
from schemas.synthetic import make_label
from tests.helpers import ADMIN_TOKEN, Publisher, spy_compare_digest
from tests.server import server_process

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
UNBOUNDED_WIDTH = 1 << 32  # re's parser reports unbounded repeats as at least this


# -- every string is bounded ---------------------------------------------------------------------


def _pattern_max_chars(pattern: str) -> int | None:
    """The longest string an anchored (``^...$``) pattern matches; None if unbounded or not
    anchored at both ends (a JSON Schema pattern matches anywhere in the string)."""
    from re import _parser  # type: ignore[attr-defined]

    items = list(_parser.parse(pattern))
    anchored = (
        len(items) >= 2
        and items[0] == (_parser.AT, _parser.AT_BEGINNING)
        and items[-1] == (_parser.AT, _parser.AT_END)
    )
    width = _parser.parse(pattern).getwidth()[1]
    return int(width) if anchored and width < UNBOUNDED_WIDTH else None


def _string_bounded(node: dict[str, Any]) -> bool:
    if "maxLength" in node or "const" in node or "enum" in node:
        return True
    pattern = node.get("pattern")
    return pattern is not None and _pattern_max_chars(pattern) is not None


def unbounded_strings(node: Any, path: str = "") -> Iterator[str]:
    """JSON pointers of the string schemas (property names included) without a bound.

    ``if``/``then``/``else``/``not`` are skipped: they only narrow what the schema they sit in
    admits (whose own strings are checked)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from unbounded_strings(item, f"{path}/{i}")
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and not _string_bounded(node):
        yield path
    if "object" in types and node.get("additionalProperties", True) is not False:
        names = node.get("propertyNames")
        if not (isinstance(names, dict) and _string_bounded(names)):
            yield path + " (property names)"
    for key, value in node.items():
        if key not in ("if", "then", "else", "not"):
            yield from unbounded_strings(value, f"{path}/{key}")


def test_pattern_bounds_are_read_right() -> None:
    assert _pattern_max_chars("^[0-9a-f]{64}$") == 64
    assert _pattern_max_chars("^[a-z](?:[a-z-]{0,62}[a-z])?$") == 64
    assert _pattern_max_chars("^[0-9]+$") is None
    assert _pattern_max_chars("[0-9]{4}") is None  # not anchored: any string containing it
    assert list(unbounded_strings({"type": "string", "format": "date-time"})) == [""]
    assert list(unbounded_strings({"type": "object", "properties": {}})) == [" (property names)"]


SCHEMAS = sorted(p.name for p in (ROOT / "schemas").glob("*.schema.json"))


@pytest.mark.parametrize("name", [n for n in SCHEMAS if n != "envelope.schema.json"])
def test_every_string_in_the_schemas_is_bounded(name: str) -> None:
    assert list(unbounded_strings(load_schema(name))) == []


def test_envelope_strings_are_bounded_by_the_body_limit() -> None:
    """The envelope's base64 fields have no maxLength of their own: the body limit
    (CARBONLABEL_MAX_BODY_BYTES) bounds them, and the payload's statement is bounded above.
    Members other than the envelope's own are refused by the ingest (400)."""
    assert sorted(unbounded_strings(load_schema("envelope.schema.json"))) == [
        " (property names)",
        "/properties/payload",
        "/properties/signatures/items (property names)",
        "/properties/signatures/items/properties/sig",
    ]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _api_unbounded(schema: dict[str, Any], components: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, components)
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            found += _api_unbounded(sub, components, f"{path}/{key}/{i}")
    if schema.get("type") == "string" and not _string_bounded(schema):
        found.append(path)
    for name, sub in schema.get("properties", {}).items():
        found += _api_unbounded(sub, components, f"{path}/{name}")
    if "items" in schema:
        found += _api_unbounded(schema["items"], components, f"{path}/items")
    return found


def test_every_string_parameter_and_body_field_of_the_api_is_bounded(settings: Settings) -> None:
    document = create_app(settings).openapi()
    components = document["components"]["schemas"]
    found = []
    for route, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {route}"
            for parameter in operation.get("parameters", []):
                name = f"{where} {parameter['in']} {parameter['name']}"
                found += _api_unbounded(parameter.get("schema", {}), components, name)
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                schema = content.get("schema", {})
                if schema.get("$ref") == "#/components/schemas/Envelope":
                    continue  # bounded by the body limit and the statement schema (above)
                found += _api_unbounded(schema, components, f"{where} {media}")
    assert found == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/labels", {"vendor": "a" * 65}),
        ("/v1/labels", {"task": "a" * 65}),
        ("/v1/labels", {"zone": "A" * 65}),
        ("/v1/labels", {"model": "a" * 194}),
        ("/v1/labels", {"hardware": "a" * 65}),
        (f"/v1/labels/{'0' * 37}", {}),
        (f"/v1/vendors/{'a' * 65}", {}),
        (f"/v1/models/acme/{'m' * 129}", {}),
    ],
)
def test_over_long_parameters_are_422(client: TestClient, path: str, params: dict[str, str]):
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":validation-error")


def test_over_long_instant_is_422(client: TestClient, publisher: Publisher) -> None:
    response = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": "2024-01-01T00:00:00." + "0" * 60},
        headers=ADMIN,
    )
    assert response.status_code == 422, response.text


def _both_validators_reject(statement: dict[str, Any]) -> bool:
    names = ("label.schema.json", "statement.schema.json", "envelope.schema.json")
    registry = Registry().with_resources(
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in names
    )
    reference = Draft202012Validator(load_schema("statement.schema.json"), registry=registry)
    fast = validate_statement(statement) != []
    assert fast == (not reference.is_valid(statement))
    return fast


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("predicate", "hardware", "cpu", "model_name"), "Xeon\u202egpj.exe"),  # RLO
        (("predicate", "hardware", "cpu", "model_name"), "Xeon\u2066x\u2069"),  # isolates
        (("predicate", "hardware", "cpu", "model_name"), "Xe\u200bon"),  # zero-width space
        (("predicate", "provenance", "runner", "name"), "carbon\nlabel"),
        (("predicate", "provenance", "environment", "frameworks", "torch"), "2.13\u200e"),
        (("predicate", "benchmark", "suite", "version"), "1" * 33),
        (("predicate", "measurement", "methodology_version"), "1" * 9),
        (("subject", 0, "name"), "acme/m@" + "r" * 400),
    ],
)
def test_schema_rejects_hidden_characters_and_over_long_text(
    where: tuple[Any, ...], value: str
) -> None:
    statement = build_statement(make_label(vendor="acme", model="m", registry="http://x"))
    assert not _both_validators_reject(statement)
    node: Any = statement
    for key in where[:-1]:
        node = node[key]
    if where[-1] not in node:
        pytest.skip(f"the synthetic label has no {'/'.join(map(str, where))}")
    mutated = copy.deepcopy(statement)
    node = mutated
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert _both_validators_reject(mutated)


def test_model_names_are_ascii() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x")
    label["model"]["id"] = "acme/modèle"
    assert any(issue.pointer == "/model/id" for issue in validate_label(label))


# -- free-text names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Acme AI", "Acme AI"),
        ("  Acme AI  ", "Acme AI"),
        ("Cafe\u0301 Labs", "Caf\u00e9 Labs"),  # NFC
        ("\u212bngstr\u00f6m", "\u00c5ngstr\u00f6m"),  # the Angstrom sign folds to A-ring
        ("株式会社 カーボン", "株式会社 カーボン"),
        ("R&D / \u00abLabs\u00bb \u2122 \u20ac", "R&D / \u00abLabs\u00bb \u2122 \u20ac"),
    ],
)
def test_display_names_are_nfc(raw: str, stored: str) -> None:
    assert normalise_display_name(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "Acme\u202eIA",  # right-to-left override
        "Acme\u202a",  # left-to-right embedding
        "\u2067Acme\u2069",  # isolates
        "Ac\u200bme",  # zero-width space
        "Ac\u200dme",  # zero-width joiner
        "\ufeffAcme",  # BOM
        "Acme\x07",  # control
        "Acme\nAI",  # line feed
        "Acme\u2028AI",  # line separator
        "Acme\u00a0AI",  # no-break space (only U+0020 is allowed)
        "Acme\ue000",  # private use
        "Acme\U000e0001",  # language tag (format)
        "\u0301Acme",  # leading combining mark
        "A" + "\u0301" * 6,  # stacked combining marks
        "   ",
        "x" * (DISPLAY_NAME_MAX_CHARS + 1),
    ],
)
def test_display_names_outside_the_set_are_refused(raw: str) -> None:
    with pytest.raises(ProblemError) as caught:
        normalise_display_name(raw)
    assert caught.value.kind == "validation-error"
    assert caught.value.extensions["errors"][0]["pointer"] == "/body/display_name"


def test_vendor_display_name_through_the_api(client: TestClient) -> None:
    response = client.post(
        "/v1/vendors", json={"slug": "cafe", "display_name": "Cafe\u0301"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "Caf\u00e9"
    assert client.get("/v1/vendors/cafe").json()["display_name"] == "Caf\u00e9"
    refused = client.post(
        "/v1/vendors", json={"slug": "evil", "display_name": "Acme\u202eIA"}, headers=ADMIN
    )
    assert refused.status_code == 422
    assert refused.json()["type"].endswith(":validation-error")
    assert refused.json()["errors"][0]["pointer"] == "/body/display_name"
    assert client.get("/v1/vendors/evil").status_code == 404


@pytest.mark.parametrize(
    "slug", ["Acme", "acmé", "ac me", "-acme", "acme-", "a" * 65, "\uff41\uff43\uff4d\uff45"]
)
def test_vendor_slugs_are_ascii(client: TestClient, slug: str) -> None:
    response = client.post("/v1/vendors", json={"slug": slug}, headers=ADMIN)
    assert response.status_code == 422


# -- constant-time comparison --------------------------------------------------------------------


def test_admin_token_is_compared_in_constant_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_compare_digest(monkeypatch, lambda a, b: (len(a), len(b)))
    assert deps.is_admin(settings, ADMIN_TOKEN)
    assert not deps.is_admin(settings, ADMIN_TOKEN[:-1])
    assert not deps.is_admin(settings, "x")
    assert not deps.is_admin(settings, ADMIN_TOKEN + "x" * 1000)
    assert calls == [(32, 32)] * 4  # digests: the same length whatever the token


def test_vendor_token_match_is_confirmed_in_constant_time(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(db) as session:
        _vendor, token = vendor_service.create_vendor(session, slug="acme")
        session.commit()
        calls = spy_compare_digest(monkeypatch, lambda a, b: b)
        found = vendor_service.authenticate(session, token)
        assert found is not None
        assert found.slug == "acme"
        assert vendor_service.authenticate(session, token + "x") is None
    assert calls == [hashlib.sha256(token.encode()).hexdigest()]


# -- tokens are never logged ---------------------------------------------------------------------

LOG_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


def test_no_logging_call_in_the_registry_mentions_a_token() -> None:
    offenders = []
    for path in sorted((ROOT / "registry").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_CALLS
            ):
                continue
            receiver = ast.unparse(node.func.value)
            if "log" not in receiver.lower():
                continue
            arguments = " ".join(ast.unparse(a) for a in [*node.args, *node.keywords])
            if re.search(r"token|authorization|secret|bearer", arguments, re.IGNORECASE):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {arguments}")
    assert offenders == []


def _exercise(http: httpx.Client, vendor_token: str, bogus: str) -> None:
    """Requests with good, bad and malformed credentials, and failing requests with a token."""
    vendor = {"Authorization": f"Bearer {vendor_token}"}
    answers = [
        http.post("/v1/labels", content=b"{not json", headers=vendor),  # 400 with a valid token
        http.post("/v1/labels", content=b"{}", headers={"Authorization": f"Bearer {bogus}"}),
        http.post("/v1/labels", content=b"{}", headers={"Authorization": bogus}),  # no scheme
        http.post("/v1/labels", content=b"{}", headers={"Authorization": f"Token {bogus}"}),
        http.post("/v1/labels", content=b"{}", headers={"Authorization": f"Bearer{bogus}"}),
        http.post(  # a byte outside ASCII
            "/v1/labels",
            content=b"{}",
            headers={"Authorization": f"Bearer {bogus}".encode() + b"\xff"},
        ),
        http.post("/v1/vendors", json={"slug": "Bad Slug"}, headers=ADMIN),  # 422, admin token
        http.post("/v1/vendors", json={"slug": "x"}, headers=vendor),  # 401: not the admin
        http.post(
            "/v1/vendors/other/keys/" + "0" * 64 + "/revoke",
            json={"reason": "retired"},
            headers=vendor,
        ),  # 403: another vendor
        http.get("/v1/labels", headers=vendor),
        http.get("/badge/acme/m.svg", headers=vendor),
    ]
    answers += [http.post("/v1/labels", content=b"{}", headers=vendor) for _ in range(4)]
    statuses = {r.status_code for r in answers}
    assert {400, 401, 403, 422, 429} <= statuses, statuses


@pytest.mark.server
def test_tokens_never_reach_the_server_output(
    db: Engine, database_url: str, tmp_path: Path
) -> None:
    bogus = "clt_" + secrets.token_urlsafe(32)
    output_path = tmp_path / "server.log"
    with (
        output_path.open("wb") as output,
        server_process(
            database_url,
            ADMIN_TOKEN,
            output=output,
            log_level="trace",  # uvicorn's most verbose: the access log and every ASGI message
            CARBONLABEL_RATE_LIMIT_PER_MINUTE="60",
            CARBONLABEL_RATE_LIMIT_BURST="3",
        ) as server,
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        created = http.post("/v1/vendors", json={"slug": "acme"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        vendor_token = created.json()["token"]
        _exercise(http, vendor_token, bogus)
    logged = output_path.read_text(errors="replace")
    assert "POST /v1/labels" in logged  # the access log was on
    assert " 429" in logged
    for secret in (vendor_token, bogus, ADMIN_TOKEN, vendor_token[4:], bogus[4:]):
        assert secret not in logged


def test_tokens_never_reach_the_app_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    bogus = "clt_" + secrets.token_urlsafe(32)
    with caplog.at_level(logging.DEBUG):
        created = client.post("/v1/vendors", json={"slug": "acme"}, headers=ADMIN)
        vendor_token = created.json()["token"]
        vendor = {"Authorization": f"Bearer {vendor_token}"}
        client.post("/v1/labels", content=b"{not json", headers=vendor)
        client.post("/v1/labels", content=b"{}", headers={"Authorization": f"Bearer {bogus}"})
        client.post("/v1/vendors", json={"slug": "Bad Slug"}, headers=ADMIN)
    for secret in (vendor_token, bogus, ADMIN_TOKEN):
        assert secret not in caplog.text
