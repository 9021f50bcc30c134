"""Nothing lost, nothing doubled: concurrent clients against a real uvicorn server on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from schemas.dsse import b64encode, key_proof_message, keyid_for, raw_public_key
from schemas.synthetic import make_label
from tests.helpers import ADMIN_TOKEN, envelope_bytes
from tests.server import running_server

pytestmark = pytest.mark.postgres


def _setup_vendor(base: str) -> tuple[str, Ed25519PrivateKey]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    token = httpx.post(f"{base}/v1/vendors", json={"slug": "acme"}, headers=admin).json()["token"]
    key = Ed25519PrivateKey.generate()
    raw = raw_public_key(key.public_key())
    proof = key.sign(key_proof_message(base, "acme", keyid_for(raw)))
    response = httpx.post(
        f"{base}/v1/vendors/acme/keys",
        json={"public_key": b64encode(raw), "proof": b64encode(proof)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return token, key


def _post_all(base: str, token: str, bodies: list[bytes], clients: int) -> list[int]:
    local = {}

    def send(body: bytes) -> int:
        import threading

        ident = threading.get_ident()
        if ident not in local:
            local[ident] = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
        return local[ident].post("/v1/labels", content=body).status_code

    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = list(pool.map(send, bodies))
    for http in local.values():
        http.close()
    return statuses


def test_200_distinct_labels_from_8_clients_stored_once(postgres_url: str, db: Engine) -> None:
    with running_server(postgres_url, ADMIN_TOKEN) as base:
        token, key = _setup_vendor(base)
        labels = [
            make_label(vendor="acme", model=f"m{i % 7}", registry=base, seed=i) for i in range(200)
        ]
        bodies = [envelope_bytes(label, key) for label in labels]
        statuses = _post_all(base, token, bodies, clients=8)
    assert Counter(statuses) == {201: 200}
    with db.connect() as conn:
        ids = conn.execute(text("SELECT id FROM labels")).scalars().all()
    assert len(ids) == 200
    assert set(ids) == {label["label_id"] for label in labels}


def test_same_envelope_20_times_concurrently_stored_once(postgres_url: str, db: Engine) -> None:
    with running_server(postgres_url, ADMIN_TOKEN) as base:
        token, key = _setup_vendor(base)
        body = envelope_bytes(make_label(vendor="acme", model="m", registry=base, seed=1), key)
        statuses = _post_all(base, token, [body] * 20, clients=20)
    counts = Counter(statuses)
    assert set(counts) <= {200, 201}
    assert counts[201] == 1
    assert counts[200] == 19
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM labels")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM models")).scalar_one() == 1
