"""Schemathesis against the app's own OpenAPI document: every operation, every check, a bounded
and deterministic number of examples, zero failures.

The document is built by the app factory (describing the API needs no database); requests go
in-process to the app of the ``client`` fixture, whose database holds a vendor with a registered
key and one label, and an auditor, so that operations taking ids reach both their "found" and
"not found" paths. Requests to operations that declare the bearer scheme carry a valid token of
the role the operation needs; the checks resend them without a token and with a wrong one
(``ignored_auth``), and the coverage phase leaves the header out (``missing_required_header``).

Two tests: every operation on its own (``examples``, ``coverage`` and ``fuzzing`` phases, in
positive and negative modes), and the stateful workflows schemathesis infers from the document
(create a vendor, then read it; submit a label, then read it, its envelope and its badge...),
which is where ``ensure_resource_availability`` and ``use_after_free`` apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import Engine

from registry.config import Settings
from registry.main import create_app
from schemas.dsse import b64encode, key_proof_message, keyid_for, raw_public_key
from tests.conftest import empty_tables
from tests.helpers import ADMIN_TOKEN, AUDIENCE, register_publisher

MAX_EXAMPLES = 50
"""Examples per operation and generation phase (the coverage phase adds its own: one per
boundary and mutation the document implies)."""
WORKFLOWS = 40
"""Stateful scenarios, of at most ``WORKFLOW_STEPS`` calls each."""
WORKFLOW_STEPS = 8

FUZZ_SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    # The fixture's database and app are shared by every example of a test: each example is
    # independent requests, and what earlier ones stored leaves the checks as they must hold.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PATH_PARAMETERS = {"vendor", "model", "label_id", "keyid"}
"""Path parameters that name stored things."""

ROLES = {
    ("POST", "/v1/vendors"): "admin",
    ("POST", "/v1/auditors"): "admin",
    ("POST", "/v1/labels/{label_id}/attestations"): "auditor",
}
"""Whose token an operation takes, where it is not a vendor's."""

# Where a check cannot hold for reasons no OpenAPI document can express, its expected statuses
# are widened for that one operation, and only by the statuses named here.
SIGNED_ENVELOPE = {
    # A schema-valid envelope is JSON with base64 strings; whether its payload decodes to a
    # statement (else 400 malformed-envelope), is signed by a registered key (else 403 or 422
    # bad-signature) and holds a valid document (else 422) is beyond what a JSON Schema can say,
    # and no generator can sign.
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422", "429"]
    }
}
PROOF_OF_POSSESSION = {
    # The proof is an Ed25519 signature, by the key being registered, over a message naming this
    # registry and the vendor or auditor: a generated one never verifies (422 bad-proof).
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
    }
}
CHECK_OVERRIDES: list[dict[str, Any]] = [
    {"include-name": "POST /v1/labels", "checks": SIGNED_ENVELOPE},
    {"include-name": "POST /v1/labels/{label_id}/attestations", "checks": SIGNED_ENVELOPE},
    {"include-name": "POST /v1/vendors/{vendor}/keys", "checks": PROOF_OF_POSSESSION},
    {"include-name": "POST /v1/auditors", "checks": PROOF_OF_POSSESSION},
    {
        # display_name is restricted to Unicode general categories (letters, marks, numbers,
        # punctuation, symbols and U+0020, after NFC normalisation; docs/api.md "Names"): JSON
        # Schema patterns have no portable way to say so (no \p{...} across regex dialects).
        "include-name": "POST /v1/vendors",
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "409", "422", "429"]
            }
        },
    },
    {
        # Two rules no schema can state: compromised_since cannot be in the future (that depends
        # on the clock), and a compromised key cannot go back to retired (on the stored state).
        "include-name": "POST /v1/vendors/{vendor}/keys/{keyid}/revoke",
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "422", "429"]
            }
        },
    },
    *(
        {
            # Tree sizes and indexes beyond the log's current size are 400 (as RFC 9162 logs
            # answer): the bound is the log's size, which grows with every label.
            "include-name": name,
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "429"]}
            },
        }
        for name in ("GET /v1/log/proof/inclusion", "GET /v1/log/proof/consistency")
    ),
    {
        # Which suites offer which task and phase (chat-serving: suite 2, inference only) is a
        # rule across parameters that OpenAPI cannot state: other combinations are 422; and
        # ``cursor`` is opaque, as for GET /v1/labels (400 invalid-cursor).
        "include-name": "GET /v1/vendors",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "422", "429"]}},
    },
    {
        # Which of the zones the pattern allows the bundled yearly table covers is data, not
        # schema: a code of no country (or one the table lacks) is 422 naming /query/zone.
        "include-name": "GET /v1/labels/{label_id}/projection",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "422", "429"]}},
    },
    {
        # ``cursor`` is opaque: only strings this API issued are valid, any other is 400
        # invalid-cursor, and which strings it issued is not something a schema can list.
        "include-name": "GET /v1/labels",
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "429"]}},
    },
]


class _App:
    """The ASGI app requests go to: the ``client`` fixture's app of the running test. Its lifespan
    is the fixture's; this one only answers the lifespan protocol of the schemathesis client."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.app is not None, "no app: the test runs without the fuzz_target fixture"
        await self.app(scope, receive, send)


TARGET = _App()
STORED = "stored-thing"
"""Stands, in a generated path parameter, for the stored thing of its kind (see ``KNOWN``)."""
TOKEN = "token-of-the-"
"""Prefix of the stand-ins for the vendor's and the auditor's tokens (made per test, after the
cases are generated)."""
KNOWN: dict[str, str] = {}
"""What the stand-ins stand for in the running test, set by ``fuzz_target``."""

DOCUMENT = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=schemathesis.Config.from_dict({"operations": CHECK_OVERRIDES})
)
schema.app = TARGET


@schema.auth(refresh_interval=None)
class BearerToken:
    """For operations that declare the bearer scheme, a token of the role they need."""

    def get(self, case: Any, ctx: Any) -> str | None:
        method, path = case.operation.method.upper(), case.operation.path
        if not DOCUMENT["paths"][path][method.lower()].get("security"):
            return None
        role = ROLES.get((method, path), "vendor")
        return ADMIN_TOKEN if role == "admin" else TOKEN + role

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.hook
def flatmap_case(ctx: Any, case: Any) -> st.SearchStrategy[Any]:
    """Half the time, point a case whose path parameters are schema-valid at stored things."""
    names = set(case.path_parameters or {})
    meta = case.meta
    if not names or not names <= PATH_PARAMETERS:
        return st.just(case)
    if meta is not None and meta.is_negative_at(ParameterLocation.PATH):
        return st.just(case)
    found = case.derive(keep_auth=True)
    found.path_parameters = dict.fromkeys(names, STORED)
    return st.sampled_from([case, found])


def bind(case: Any) -> None:
    """Put the running test's ids and tokens in place of their stand-ins. Only a changed part is
    assigned: schemathesis revalidates what a test changes."""
    if STORED in (case.path_parameters or {}).values():
        case.path_parameters = {
            name: KNOWN[name] if value == STORED else value
            for name, value in case.path_parameters.items()
        }
    authorization = (case.headers or {}).get("Authorization", "")
    if authorization.startswith(f"Bearer {TOKEN}"):
        case.headers["Authorization"] = "Bearer " + KNOWN[authorization.removeprefix("Bearer ")]


def register_auditor(client: TestClient, slug: str) -> str:
    """An auditor with a key, registered by the operator; its token."""
    key = Ed25519PrivateKey.generate()
    raw = raw_public_key(key.public_key())
    proof = key.sign(key_proof_message(AUDIENCE, f"auditor:{slug}", keyid_for(raw)))
    response = client.post(
        "/v1/auditors",
        json={"slug": slug, "public_key": b64encode(raw), "proof": b64encode(proof)},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def seed(client: TestClient) -> None:
    """Store a vendor with a key and a label, and an auditor; note their ids and tokens."""
    publisher = register_publisher(client, "acme")
    label = publisher.label(seed=1)
    response = client.post(
        "/v1/labels", content=publisher.envelope(label), headers=publisher.headers
    )
    assert response.status_code == 201, response.text
    KNOWN.clear()
    KNOWN.update(
        vendor=publisher.slug,
        model=label["model"]["id"].split("/", 1)[1],
        label_id=label["label_id"],
        keyid=publisher.keyid,
    )
    KNOWN[TOKEN + "vendor"] = publisher.token
    KNOWN[TOKEN + "auditor"] = register_auditor(client, "lab")


RESEED: list[Any] = []
"""How to empty the running test's database and seed it again (for each stateful scenario)."""


@pytest.fixture
def fuzz_target(client: TestClient, db: Engine) -> Iterator[None]:
    def reseed() -> None:
        empty_tables(db)
        cache = getattr(client.app.state, "badge_cache", None)  # type: ignore[attr-defined]
        if cache is not None:
            cache.clear()
        seed(client)

    seed(client)
    TARGET.app = client.app
    RESEED.append(reseed)
    yield
    RESEED.clear()
    TARGET.app = None
    KNOWN.clear()


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=MAX_EXAMPLES)
def test_every_operation_conforms(case: Any, fuzz_target: None) -> None:
    bind(case)
    case.call_and_validate()


class Workflows(schema.as_state_machine()):  # type: ignore[misc]
    """Each scenario starts from the same stored state: what it draws must not depend on what an
    earlier scenario stored."""

    def setup(self) -> None:
        RESEED[0]()

    def before_call(self, case: Any) -> None:
        bind(case)


def test_workflows_conform(fuzz_target: None) -> None:
    Workflows.run(
        settings=settings(FUZZ_SETTINGS, max_examples=WORKFLOWS, stateful_step_count=WORKFLOW_STEPS)
    )
