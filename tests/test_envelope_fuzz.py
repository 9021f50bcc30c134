"""Hypothesis feeds the envelope parser and ``POST /v1/labels`` arbitrary bytes and near misses:
the parser raises only ``EnvelopeError``, the API answers only typed 4xx problems (or stores a
label that turned out valid), never a 500.

Three sources of input, from the outside in: arbitrary bytes; JSON that is almost an envelope
(wrong member types, base64 garbage, extra members, duplicate keys, NaN, huge numbers, deep
nesting, a BOM, invalid UTF-8, truncation); and properly signed envelopes over a statement with
one part replaced by something odd, which reach schema validation, the results checks and the
store.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from registry.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PROBLEM_TYPES
from schemas.contract import PAYLOAD_TYPE
from schemas.dsse import EnvelopeError, build_statement, decode_statement, parse_envelope
from tests.helpers import Publisher, sign_raw_payload

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    # One client, database and publisher per test, shared by its examples: each example is one
    # request, and whatever an earlier one stored leaves the next one's outcomes as they must be.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

KNOWN_PROBLEMS = {PROBLEM_BASE + kind: status for kind, status in PROBLEM_TYPES.items()}
DEEP = 100_000
"""Nesting far past Python's recursion limit (the body stays under the 1 MiB limit)."""

# Tokens that are not valid JSON, or that Python's parser reads as something else than another
# parser would: spliced in where a placeholder string was serialised.
RAW_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "9" * 5000,
    "123456789012345678901234567890",
    "0.1e99999999999",
    "[" * 2000 + "]" * 2000,
    '"\\u0000"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    "true false",
    "",
]
PLACEHOLDER = "\ue000placeholder\ue000"
SEED = 7
"""The synthetic label every example starts from."""


def check_parser(data: bytes) -> None:
    """parse_envelope (and decode_statement on what it accepts) raise EnvelopeError, nothing else."""
    try:
        envelope = parse_envelope(data)
    except EnvelopeError:
        return
    with contextlib.suppress(EnvelopeError):
        decode_statement(envelope)


def post(client: TestClient, publisher: Publisher, body: bytes) -> Any:
    return client.post("/v1/labels", content=body, headers=publisher.headers)


def assert_problem(response: Any) -> None:
    """A 4xx RFC 9457 problem of a type the API documents, with a matching status."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.headers
    body = response.json()
    assert body["type"] in KNOWN_PROBLEMS, body
    assert body["status"] == response.status_code, body
    assert isinstance(body["detail"], str), body
    event(f"{response.status_code} {body['type'].removeprefix(PROBLEM_BASE)}")


# --------------------------------------------------------------------------- arbitrary bytes

PREFIXES = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b" \t\r\n", b"{", b"[", b'"']


@st.composite
def arbitrary_bytes(draw: st.DrawFn) -> bytes:
    prefix = draw(st.sampled_from(PREFIXES))
    return prefix + draw(st.binary(max_size=512))


@FUZZ
@given(data=arbitrary_bytes())
@example(data=b"")
@example(data=b"null")
@example(data=b"[" * DEEP + b"]" * DEEP)
@example(data=b'{"a":' * DEEP + b"1" + b"}" * DEEP)
@example(data=b"\xef\xbb\xbf{}")
@example(data=b"\xff\xfe{\x00}\x00")
@example(data=b'{"payloadType": "\xff\xfe"}')
def test_arbitrary_bytes(client: TestClient, publisher: Publisher, data: bytes) -> None:
    check_parser(data)
    assert_problem(post(client, publisher, data))


# --------------------------------------------------------------------------- near-envelopes

mostly = st.sampled_from([True, True, True, False])
"""True three times in four (and True when shrunk)."""

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
base64_text = st.one_of(
    st.binary(max_size=96).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=96).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-%. ",
        max_size=64,
    ),
)
payload_values = st.one_of(
    base64_text,
    st.sampled_from(["", "=", "====", "e30", "e30=", "W10=", "bnVsbA==", "IkhpIg"]),  # {}, [], ...
    json_values,
)


@st.composite
def near_envelopes(draw: st.DrawFn, keyid: str, payload: str) -> dict[str, Any]:
    """Objects shaped more or less like an envelope; ``keyid`` names a registered key and
    ``payload`` is the base64 of a valid (unsigned) statement, so some get as far as the key
    lookup and the signature check."""
    keyids = st.one_of(st.sampled_from([keyid, keyid.upper(), ""]), st.text(max_size=70))
    signature_items = mostly.flatmap(
        lambda well_formed: (
            st.fixed_dictionaries({"sig": base64_text}, optional={"keyid": keyids})
            if well_formed
            else st.one_of(
                st.dictionaries(st.sampled_from(["sig", "keyid", "x"]), json_values, max_size=3),
                json_values,
            )
        )
    )
    envelope: dict[str, Any] = {}
    if draw(mostly):
        envelope["payloadType"] = (
            PAYLOAD_TYPE if draw(mostly) else draw(st.one_of(st.text(max_size=40), json_values))
        )
    if draw(mostly):
        envelope["payload"] = payload if draw(mostly) else draw(payload_values)
    if draw(mostly):
        envelope["signatures"] = draw(
            st.one_of(
                st.lists(signature_items, min_size=1, max_size=3),
                st.lists(signature_items, max_size=20),
                json_values,
            )
        )
    if not draw(mostly):
        envelope[draw(st.text(max_size=10))] = draw(json_values)
    return envelope


SERIALISATIONS = [
    "plain",
    "plain",
    "plain",
    "bom",
    "utf-16",
    "duplicate-key",
    "raw-token",
    "deep",
    "invalid-utf-8",
    "truncated",
    "trailing-garbage",
]


@st.composite
def serialised(draw: st.DrawFn, documents: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A document as bytes, possibly spoilt in one of the ways a hostile client would."""
    document = draw(documents)
    how = draw(st.sampled_from(SERIALISATIONS))
    if how == "raw-token" or how == "deep":
        document = dict(document)
        document[draw(st.sampled_from(["payloadType", "payload", "signatures", "x"]))] = PLACEHOLDER
    text = json.dumps(document)
    if how == "raw-token":
        text = text.replace(json.dumps(PLACEHOLDER), draw(st.sampled_from(RAW_TOKENS)))
    elif how == "deep":
        depth = draw(st.sampled_from([10, 900, 1100, DEEP]))
        text = text.replace(json.dumps(PLACEHOLDER), "[" * depth + "]" * depth)
    elif how == "duplicate-key":
        member = draw(st.sampled_from(["payloadType", "payload", "signatures"]))
        text = "{" + json.dumps(member) + ": " + json.dumps(draw(json_values)) + ", " + text[1:]
    data = text.encode("utf-8", "surrogatepass")
    if how == "bom":
        data = b"\xef\xbb\xbf" + data
    elif how == "utf-16":
        data = text.encode("utf-16", "surrogatepass")
    elif how == "invalid-utf-8":
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"]))
            + data[at:]
        )
    elif how == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif how == "trailing-garbage":
        data = data + draw(st.sampled_from([b" {}", b"\x00", b",", b"]"]))
    return data


@FUZZ
@given(data=st.data())
def test_near_envelopes(client: TestClient, publisher: Publisher, data: st.DataObject) -> None:
    # The same statement for every example: what is drawn must not depend on anything else.
    statement = json.dumps(build_statement(publisher.label(seed=SEED)), sort_keys=True).encode()
    payload = base64.b64encode(statement).decode()
    body = data.draw(serialised(near_envelopes(publisher.keyid, payload)))
    check_parser(body)
    assert_problem(post(client, publisher, body))


# --------------------------------------------------------------------------- signed near misses


@st.composite
def spoilt_statements(draw: st.DrawFn, statement: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A copy of ``statement`` with one value, somewhere inside it, replaced or removed; and the
    raw JSON token (if any) that its placeholder string stands for."""
    document = json.loads(json.dumps(statement))
    parent: Any = document
    key: Any = None
    for _ in range(draw(st.integers(1, 6))):
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = parent[key]
        if not isinstance(child, dict | list) or not child or not draw(st.integers(0, 3)):
            break
        parent, key = child, None
    if key is None:  # an empty container, or one to add to
        key = draw(st.text(max_size=8)) if isinstance(parent, dict) else len(parent)
        if isinstance(parent, list):
            parent.append(None)
    token = ""
    action = draw(st.sampled_from(["replace", "remove", "raw-token"]))
    if action == "replace":
        parent[key] = draw(json_values)
    elif action == "remove":
        if isinstance(parent, list) or key in parent:
            del parent[key]
    else:
        parent[key] = PLACEHOLDER
        token = draw(st.sampled_from(RAW_TOKENS))
    return document, token


@FUZZ
@given(data=st.data())
def test_signed_near_misses(client: TestClient, publisher: Publisher, data: st.DataObject) -> None:
    # The same label every time (so a spoilt copy that is still valid is a duplicate, or a
    # conflict with the first one stored).
    statement = build_statement(publisher.label(seed=SEED))
    document, token = data.draw(spoilt_statements(statement))
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"))
    if token:
        payload = payload.replace(json.dumps(PLACEHOLDER), token)
    body = sign_raw_payload(payload.encode("utf-8", "surrogatepass"), publisher.key)
    check_parser(body)
    response = post(client, publisher, body)
    if response.status_code in (200, 201):  # the change left a valid label
        assert response.headers["content-type"].startswith("application/json")
        event(f"{response.status_code} stored")
        return
    assert_problem(response)
