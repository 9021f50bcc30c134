"""Test helpers: a publisher (vendor + token + key) and label/envelope factories."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, text

from schemas.dsse import (
    b64encode,
    build_statement,
    key_proof_message,
    keyid_for,
    raw_public_key,
    sign_envelope,
    sign_statement,
)
from schemas.results import fill_results
from schemas.synthetic import make_label

AUDIENCE = "http://testserver"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
# The registry's checkpoint key in tests (a fixed seed, so servers and clients agree).
LOG_KEY_B64 = base64.b64encode(hashlib.sha256(b"carbonlabel test log key").digest()).decode()


@dataclass
class Publisher:
    slug: str
    token: str
    key: Ed25519PrivateKey
    seq: int = field(default=0)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def keyid(self) -> str:
        return keyid_for(self.key.public_key())

    def label(self, **overrides: Any) -> dict[str, Any]:
        self.seq += 1
        kwargs: dict[str, Any] = {
            "vendor": self.slug,
            "model": "model-a",
            "registry": AUDIENCE,
            "seed": self.seq,
        }
        kwargs.update(overrides)
        return make_label(**kwargs)

    def envelope(self, label: dict[str, Any] | None = None, **overrides: Any) -> bytes:
        return envelope_bytes(label or self.label(**overrides), self.key)


def envelope_bytes(label: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    return json.dumps(sign_statement(build_statement(label), key)).encode()


def sign_raw_payload(payload: bytes, key: Ed25519PrivateKey) -> bytes:
    return json.dumps(sign_envelope(payload, key)).encode()


def refill(label: dict[str, Any]) -> dict[str, Any]:
    return fill_results(label)


def register_publisher(client: Any, slug: str, *, audience: str = AUDIENCE) -> Publisher:
    response = client.post(
        "/v1/vendors",
        json={"slug": slug},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    key = Ed25519PrivateKey.generate()
    add_key(client, slug, token, key, audience=audience)
    return Publisher(slug=slug, token=token, key=key)


def add_key(
    client: Any, slug: str, token: str, key: Ed25519PrivateKey, *, audience: str = AUDIENCE
) -> Any:
    raw = raw_public_key(key.public_key())
    proof = key.sign(key_proof_message(audience, slug, keyid_for(raw)))
    response = client.post(
        f"/v1/vendors/{slug}/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(proof)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response


def urlsafe(envelope: bytes) -> bytes:
    """The same envelope with its base64 fields in the URL-safe alphabet, unpadded."""
    obj = json.loads(envelope)

    def conv(text: str) -> str:
        return base64.urlsafe_b64encode(base64.b64decode(text)).decode().rstrip("=")

    obj["payload"] = conv(obj["payload"])
    for sig in obj["signatures"]:
        sig["sig"] = conv(sig["sig"])
    return json.dumps(obj).encode()


@contextmanager
def append_only_bypassed(conn: Connection) -> Iterator[None]:
    """Inside a transaction, lift the log's append-only triggers (as a dishonest operator with
    the database's superuser could), then put them back. Tests only."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield
        conn.execute(text("SET LOCAL session_replication_role = origin"))
        return
    triggers = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'log_%'")
    ).all()
    for name, _ in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    try:
        yield
    finally:
        for _, sql in triggers:
            conn.execute(text(sql))


def reset_log(conn: Connection) -> None:
    """Empty the transparency log (tests only) and put back its empty head."""
    with append_only_bypassed(conn):
        for table in ("log_entries", "log_nodes", "log_head"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(
            text(
                "INSERT INTO log_head (id, tree_size, root_hash, frontier, updated_at) "
                "VALUES (1, 0, :root, :frontier, :now)"
            ),
            {"root": hashlib.sha256(b"").digest(), "frontier": b"", "now": datetime.now(UTC)},
        )


def spy_compare_digest(monkeypatch: Any, record: Callable[[Any, Any], Any]) -> list[Any]:
    """Every ``hmac.compare_digest`` call from now on, as ``record(a, b)`` puts it in the list
    returned (the constant-time comparison tests); the comparison itself is unchanged."""
    calls: list[Any] = []
    compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(record(a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls
