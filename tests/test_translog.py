"""The transparency log as stored and served: receipts, entries, proofs from the database against an
independent computation, signed checkpoints, append-only enforced by the database, key events."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from registry.services import translog
from schemas import merkle
from schemas.note import open_checkpoint
from schemas.tlog import decode_leaf
from tests.helpers import ADMIN_TOKEN, Publisher, add_key, append_only_bypassed

# --- an independent RFC 9162 computation over the whole leaf list (no stored nodes) ----------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return _h(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _h(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], complete), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True)


# --- helpers -------------------------------------------------------------------------------


def b64d(text_value: str) -> bytes:
    return base64.b64decode(text_value)


def verifier(client: TestClient) -> str:
    info = client.get("/v1/log")
    assert info.status_code == 200, info.text
    return str(info.json()["verifier_key"])


def leaves_of(client: TestClient) -> list[bytes]:
    size = client.get("/v1/log").json()["tree_size"]
    return [b64d(client.get(f"/v1/log/entries/{i}").json()["leaf"]) for i in range(size)]


def append_many(db: Engine, count: int) -> None:
    with db.begin() as conn:
        for i in range(count):
            translog.append(conn, "key-retire", keyid=f"{i:064x}", vendor="v")


# --- receipts --------------------------------------------------------------------------------


def test_submission_returns_a_receipt_that_verifies_offline(
    client: TestClient, publisher: Publisher
) -> None:
    vkey = verifier(client)
    body = publisher.envelope()
    response = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert response.status_code == 201, response.text
    receipt = response.json()["receipt"]
    checkpoint = open_checkpoint(receipt["checkpoint"], vkey)
    assert checkpoint.tree_size == receipt["tree_size"] == receipt["log_index"] + 1
    leaf_hash = b64d(receipt["leaf_hash"])
    proof = [b64d(p) for p in receipt["inclusion_proof"]]
    assert merkle.verify_inclusion(
        leaf_hash, receipt["log_index"], checkpoint.tree_size, proof, checkpoint.root_hash
    )
    # the entry commits to this very envelope
    entry = client.get(f"/v1/log/entries/{receipt['log_index']}").json()
    leaf = b64d(entry["leaf"])
    assert merkle.leaf_hash(leaf) == leaf_hash
    fields = decode_leaf(leaf)
    assert fields["kind"] == "label"
    assert fields["envelope_sha256"] == hashlib.sha256(body).hexdigest()
    assert fields["label_id"] == response.json()["label_id"]
    assert fields["vendor"] == publisher.slug
    assert fields["keyid"] == publisher.keyid
    # the stored label and a replay carry the same index; GET /v1/labels/{id} proves it too
    again = client.post("/v1/labels", content=body, headers=publisher.headers)
    assert again.status_code == 200
    assert again.json()["receipt"]["log_index"] == receipt["log_index"]
    detail = client.get(f"/v1/labels/{response.json()['label_id']}").json()["receipt"]
    later = open_checkpoint(detail["checkpoint"], vkey)
    assert merkle.verify_inclusion(
        leaf_hash,
        detail["log_index"],
        later.tree_size,
        [b64d(p) for p in detail["inclusion_proof"]],
        later.root_hash,
    )


def test_refused_submissions_leave_no_entry(client: TestClient, publisher: Publisher) -> None:
    size = client.get("/v1/log").json()["tree_size"]
    label = publisher.label()
    label["results"]["energy_per_unit_wh"]["mean"] *= 3
    assert client.post("/v1/labels", content=publisher.envelope(label), headers=publisher.headers)
    assert client.get("/v1/log").json()["tree_size"] == size
    body = publisher.envelope()
    assert client.post("/v1/labels", content=body, headers=publisher.headers).status_code == 201
    assert client.post("/v1/labels", content=body, headers=publisher.headers).status_code == 200
    assert client.get("/v1/log").json()["tree_size"] == size + 1


# --- proofs from the database against the independent computation ---------------------------


def test_every_proof_for_every_size_up_to_64_matches_an_independent_computation(
    db: Engine,
) -> None:
    append_many(db, 64)
    with db.connect() as conn:
        rows = conn.execute(text("SELECT idx, leaf FROM log_entries ORDER BY idx")).all()
        leaves = [bytes(r.leaf) for r in rows]
        assert [r.idx for r in rows] == list(range(64))
        for n in range(1, 65):
            root = translog.root_at(conn, n)
            assert root == ref_mth(leaves[:n])
            for m in range(n):
                size, proof = translog.inclusion_proof(conn, m, n)
                assert size == n
                assert proof == ref_path(m, leaves[:n]), (m, n)
                assert merkle.verify_inclusion(_h(b"\x00" + leaves[m]), m, n, proof, root)
            for m in range(1, n + 1):
                proof = translog.consistency_proof(conn, m, n)
                assert proof == ref_proof(m, leaves[:n]), (m, n)
                assert merkle.verify_consistency(m, n, ref_mth(leaves[:m]), root, proof)


def test_each_append_returns_the_root_and_proof_of_its_tree_and_keeps_the_frontier(
    db: Engine,
) -> None:
    """The append computes the new root, the receipt's proof and the head's frontier from the
    frontier alone; each must match the independent computation at every size up to 64."""
    leaves: list[bytes] = []
    with db.begin() as conn:
        for i in range(64):
            appended = translog.append(conn, "key-retire", keyid=f"{i:064x}", vendor="v")
            leaves.append(appended.leaf)
            n = len(leaves)
            assert (appended.index, appended.tree_size) == (n - 1, n)
            assert appended.root_hash == ref_mth(leaves)
            assert list(appended.inclusion_proof) == ref_path(n - 1, leaves)
            head = conn.execute(text("SELECT tree_size, root_hash, frontier FROM log_head")).one()
            assert (head.tree_size, bytes(head.root_hash)) == (n, ref_mth(leaves))
            # the frontier: the perfect subtrees of [0, n), largest first
            expected, lo = b"", 0
            for level in range(n.bit_length() - 1, -1, -1):
                if n >> level & 1:
                    expected += ref_mth(leaves[lo : lo + (1 << level)])
                    lo += 1 << level
            assert bytes(head.frontier) == expected


def test_proof_endpoints_serve_the_same_proofs(client: TestClient, db: Engine) -> None:
    append_many(db, 13)
    leaves = leaves_of(client)
    assert len(leaves) == 13
    for n in (1, 5, 8, 13):
        for m in range(n):
            body = client.get(f"/v1/log/proof/inclusion?index={m}&tree_size={n}").json()
            assert [b64d(p) for p in body["proof"]] == ref_path(m, leaves[:n])
            assert b64d(body["leaf_hash"]) == _h(b"\x00" + leaves[m])
        for m in range(1, n + 1):
            body = client.get(f"/v1/log/proof/consistency?first={m}&second={n}").json()
            assert [b64d(p) for p in body["proof"]] == ref_proof(m, leaves[:n])
    checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").text, verifier(client))
    assert checkpoint.tree_size == 13
    assert checkpoint.root_hash == ref_mth(leaves)
    assert client.get("/v1/log/checkpoint").headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/log/proof/inclusion?index=5&tree_size=5",
        "/v1/log/proof/inclusion?index=0&tree_size=99",
        "/v1/log/proof/consistency?first=4&second=3",
        "/v1/log/proof/consistency?first=1&second=99",
    ],
)
def test_impossible_proof_requests_are_400(client: TestClient, db: Engine, path: str) -> None:
    append_many(db, 5)
    response = client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_missing_entry_is_404(client: TestClient) -> None:
    response = client.get("/v1/log/entries/12345")
    assert response.status_code == 404
    assert client.get("/v1/log/entries/-1").status_code == 422


def test_a_proof_reads_a_constant_number_of_queries(db: Engine) -> None:
    """O(log n) reads: one query for the head and one for the O(log n) nodes, whatever n is."""
    append_many(db, 300)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with db.connect() as conn:
        event.listen(conn, "before_cursor_execute", count)
        translog.inclusion_proof(conn, 3, 300)
        inclusion_queries = len(statements)
        statements.clear()
        translog.consistency_proof(conn, 17, 300)
        consistency_queries = len(statements)
        event.remove(conn, "before_cursor_execute", count)
    assert inclusion_queries == 2
    assert consistency_queries == 2
    assert len(merkle.inclusion_keys(3, 300)) <= 2 * 9 + 2


# --- append-only in the database --------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE log_entries SET kind = 'label' WHERE idx = 0",
        "DELETE FROM log_entries WHERE idx = 0",
        "UPDATE log_nodes SET hash = hash WHERE level = 0 AND idx = 0",
        "DELETE FROM log_nodes",
        "UPDATE log_head SET tree_size = 0",
        "DELETE FROM log_head",
    ],
)
def test_the_database_refuses_to_change_history(db: Engine, statement: str) -> None:
    append_many(db, 3)
    with pytest.raises(DBAPIError), db.begin() as conn:
        conn.execute(text(statement))
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM log_entries")).scalar_one() == 3
        assert conn.execute(text("SELECT tree_size FROM log_head")).scalar_one() == 3


def test_postgresql_refuses_truncate(db: Engine) -> None:
    if db.dialect.name != "postgresql":
        return  # SQLite has no TRUNCATE (DELETE is covered above)
    append_many(db, 2)
    for table in ("log_entries", "log_nodes", "log_head"):
        with pytest.raises(DBAPIError), db.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))


def test_bypassing_the_triggers_is_detected_by_proofs(client: TestClient, db: Engine) -> None:
    """Even an operator who lifts the triggers cannot rewrite an entry unnoticed: the old
    checkpoint is no longer consistent with the new one."""
    append_many(db, 6)
    vkey = verifier(client)
    old = open_checkpoint(client.get("/v1/log/checkpoint").text, vkey)
    leaves = leaves_of(client)
    forged = leaves[:]
    forged[2] = leaves[2].replace(b'"vendor":"v"', b'"vendor":"w"')
    with db.begin() as conn, append_only_bypassed(conn):
        conn.execute(
            text("UPDATE log_entries SET leaf = :leaf, leaf_hash = :h WHERE idx = 2"),
            {"leaf": forged[2], "h": _h(b"\x00" + forged[2])},
        )
    # the entry no longer matches the signed root
    entry_hash = merkle.leaf_hash(b64d(client.get("/v1/log/entries/2").json()["leaf"]))
    proof = [b64d(p) for p in client.get("/v1/log/proof/inclusion?index=2").json()["proof"]]
    assert not merkle.verify_inclusion(entry_hash, 2, 6, proof, old.root_hash)
    # and a rebuilt tree cannot be proved consistent with what clients saw
    assert ref_mth(forged) != old.root_hash
    proof = ref_proof(6, [*forged, b"x"])
    assert not merkle.verify_consistency(6, 7, old.root_hash, ref_mth([*forged, b"x"]), proof)


# --- key events -------------------------------------------------------------------------------


def test_every_key_event_is_logged(client: TestClient, publisher: Publisher) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    second = Ed25519PrivateKey.generate()
    add_key(client, publisher.slug, publisher.token, second)
    from schemas.dsse import keyid_for

    second_id = keyid_for(second.public_key())
    retire = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{second_id}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    assert retire.status_code == 200, retire.text
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    revoke = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{publisher.keyid}/revoke",
        json={"reason": "compromised", "compromised_since": since},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert revoke.status_code == 200, revoke.text
    entries = [decode_leaf(leaf) for leaf in leaves_of(client)]
    assert [(e["kind"], e["keyid"]) for e in entries] == [
        ("key-add", publisher.keyid),
        ("key-add", second_id),
        ("key-retire", second_id),
        ("key-revoke", publisher.keyid),
    ]
    assert entries[0]["public_key"]
    assert entries[0]["vendor"] == publisher.slug
    assert entries[3]["reason"] == "compromised"
    assert entries[3]["compromised_since"].startswith(since[:19])
    # retiring again changes nothing and logs nothing
    again = client.post(
        f"/v1/vendors/{publisher.slug}/keys/{second_id}/revoke",
        json={"reason": "retired"},
        headers=publisher.headers,
    )
    assert again.status_code == 200
    assert client.get("/v1/log").json()["tree_size"] == 4


def test_the_model_page_links_the_log_entry(client: TestClient, publisher: Publisher) -> None:
    body = publisher.envelope()
    answer = client.post("/v1/labels", content=body, headers=publisher.headers).json()
    page = client.get("/models/acme/model-a").text
    index = answer["receipt"]["log_index"]
    assert f'<a href="/v1/log/entries/{index}">entry {index}</a>' in page
    assert f"carbonlabel verify {answer['label_id']} --registry http://testserver" in page
