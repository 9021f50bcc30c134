"""The transparency log: appends inside the caller's transaction, proofs, signed checkpoints.

Storage (migration 0004): ``log_entries`` holds each leaf, ``log_nodes`` the hash of every perfect
subtree, ``log_head`` the size, root and frontier (the O(log n) perfect nodes of the current
tree). An append locks the head row (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers
anyway), so appends take turns and indexes have no gaps; it reads only that row and writes
O(log n) new nodes (on PostgreSQL in one statement). A proof reads only the O(log n) perfect nodes
it needs, in one query. The database refuses updates and deletes of entries and nodes.

The head is also the data version of the pages and the vendor ranking (``registry/http_cache.py``:
their ETags, and the answers each process keeps). So every change that can alter a page or a
ranking must append here in its own transaction, as labels, keys and attestations do; a change
that does not leaves every process's validators stale.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    BigInteger,
    Connection,
    SmallInteger,
    and_,
    bindparam,
    select,
    text,
    tuple_,
)

from registry.db import array_rows, read_mappings
from registry.errors import ProblemError
from registry.models import Label, LogEntry, LogHead, LogNode, utcnow
from schemas import merkle
from schemas.note import checkpoint_body, sign_note, verifier_key
from schemas.tlog import LeafKind, decode_leaf, encode_leaf


@dataclass(frozen=True)
class Appended:
    index: int
    leaf: bytes
    leaf_hash: bytes
    tree_size: int
    root_hash: bytes
    logged_at: datetime
    # PATH(index, D[0:tree_size]): the entry's inclusion proof in the tree right after its append
    inclusion_proof: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Head:
    tree_size: int
    root_hash: bytes


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@cache
def _tables() -> tuple[Any, Any, Any]:
    return (
        LogEntry.__table__,  # type: ignore[attr-defined]
        LogNode.__table__,  # type: ignore[attr-defined]
        LogHead.__table__,  # type: ignore[attr-defined]
    )


HEAD_SQL = "SELECT tree_size, root_hash FROM log_head WHERE id = 1"
"""The head's read as text, for a caller on the driver's connection (``http_cache``)."""


def head(connection: Connection) -> Head:
    """The head on ``connection`` (in its transaction, if it has one; on the driver on
    PostgreSQL: ``registry.db.read_mappings``)."""
    rows = read_mappings(connection, head_statement(), {})
    return head_of((rows[0]["tree_size"], rows[0]["root_hash"]) if rows else None)


@cache
def head_statement() -> Any:
    """The head's read (tree size, root hash), built once."""
    _, _, heads = _tables()
    return select(heads.c.tree_size, heads.c.root_hash).where(heads.c.id == 1)


def head_of(row: Any) -> Head:
    """The head from its row, (tree size, root hash) as :data:`HEAD_SQL` reads them."""
    if row is None:
        raise RuntimeError("log_head has no row: is the database migrated to 0004?")
    return Head(int(row[0]), bytes(row[1]))


def read_nodes(connection: Connection, keys: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The stored perfect-subtree hashes for ``keys`` (one query)."""
    if not keys:
        return {}
    wanted = sorted(keys)
    if connection.dialect.name == "postgresql":
        # two arrays: the statement's text is the same whatever the number of nodes, so it is
        # compiled once and prepared by psycopg (an IN list of pairs is a new text per length)
        rows = read_mappings(
            connection,
            _nodes_by_arrays(),
            {"levels": [level for level, _ in wanted], "idxs": [idx for _, idx in wanted]},
        )
    else:
        _, nodes, _ = _tables()
        rows = list(
            connection.execute(
                select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(
                    tuple_(nodes.c.level, nodes.c.idx).in_(wanted)
                )
            ).mappings()
        )
    found = {(int(r["level"]), int(r["idx"])): bytes(r["hash"]) for r in rows}
    missing = keys - found.keys()
    if missing:
        raise RuntimeError(f"transparency log nodes missing: {sorted(missing)[:5]}")
    return found


@cache
def _nodes_by_arrays() -> Any:
    """PostgreSQL: the nodes whose (level, idx) pairs come as two arrays (``unnest``), each
    found by the primary key."""
    _, nodes, _ = _tables()
    wanted = array_rows("wanted", ("level", SmallInteger), ("idx", BigInteger))
    return select(nodes.c.level, nodes.c.idx, nodes.c.hash).select_from(
        wanted.join(nodes, and_(nodes.c.level == wanted.c.level, nodes.c.idx == wanted.c.idx))
    )


@cache
def _lock_head() -> Any:
    """The head's size and frontier, its row locked until the commit (built once)."""
    _, _, heads = _tables()
    return select(heads.c.tree_size, heads.c.frontier).where(heads.c.id == 1).with_for_update()


# PostgreSQL: the entry, its new nodes, the head and (for a label) labels.log_index in one
# statement, so the head's row lock is held for two round trips and the commit.
_PG_WRITE_CTES = """
new_entry AS (
  INSERT INTO log_entries (idx, kind, leaf, leaf_hash, logged_at, label_id, keyid)
  VALUES (:idx, :kind, :leaf, :leaf_hash, :logged_at, :label_id, :keyid)
), new_nodes AS (
  INSERT INTO log_nodes (level, idx, hash)
  SELECT * FROM unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[]),
                       CAST(:hashes AS bytea[]))
), labelled AS (
  UPDATE labels SET log_index = :idx WHERE :kind = 'label' AND id = :label_id
)"""
_PG_WRITE_HEAD = """
UPDATE log_head SET tree_size = :tree_size, root_hash = :root_hash, frontier = :frontier,
  updated_at = :updated_at
WHERE id = 1
"""


@lru_cache(maxsize=8)
def _pg_write(rider_ctes: str = "") -> Any:
    """The log's write statement, with a rider's CTEs (``name AS (...), ...``) when given."""
    ctes = _PG_WRITE_CTES + (f", {rider_ctes}" if rider_ctes else "")
    return text(f"WITH {ctes}{_PG_WRITE_HEAD}")


Rider = Callable[[Connection], "tuple[str, dict[str, Any]] | None"]
"""Work that must run under the log's lock (it is called once the lock is taken) and may hand
back data-modifying CTEs and their parameters to run in the log's own write statement
(PostgreSQL), or None once it has done its writes itself."""


def append(
    connection: Connection,
    kind: LeafKind,
    *,
    logged_at: datetime | None = None,
    label_id: str | None = None,
    keyid: str | None = None,
    rider: Rider | None = None,
    **fields: Any,
) -> Appended:
    """Append one entry in the caller's transaction (it commits or rolls back with the rest).

    The head row is locked (``FOR UPDATE``; SQLite serialises writers anyway) and read with the
    frontier, the O(log n) perfect nodes of the current tree: the new nodes, the new root and the
    entry's inclusion proof follow from it without another read. A ``label`` entry also sets
    ``labels.log_index``. Call it last in the transaction: the lock is held until the commit.
    ``rider``: called with the lock held, before the write (see :data:`Rider`).
    """
    entries, nodes, heads = _tables()
    logged_at = logged_at or utcnow()
    if label_id is not None:
        fields["label_id"] = label_id
    if keyid is not None:
        fields["keyid"] = keyid
    leaf = encode_leaf(kind, logged_at, **fields)
    leaf_hash = merkle.leaf_hash(leaf)
    row = connection.execute(_lock_head()).first()
    if row is None:
        raise RuntimeError("log_head has no row: is the database migrated to 0004?")
    index = int(row.tree_size)
    known = merkle.unpack_frontier(index, bytes(row.frontier))
    new_nodes = merkle.append_nodes(index, leaf_hash, known)
    known.update(new_nodes)
    size = index + 1
    root = merkle.root_from(size, known)
    proof = tuple(merkle.inclusion_proof(index, size, known))
    values = {
        "idx": index,
        "kind": kind,
        "leaf": leaf,
        "leaf_hash": leaf_hash,
        "logged_at": logged_at,
        "label_id": label_id,
        "keyid": keyid,
        "tree_size": size,
        "root_hash": root,
        "frontier": merkle.pack_frontier(size, known),
        "updated_at": utcnow(),
    }
    riding = rider(connection) if rider is not None else None
    if connection.dialect.name == "postgresql":
        ordered = sorted(new_nodes.items())
        ctes, extra = riding if riding is not None else ("", {})
        connection.execute(
            _pg_write(ctes),
            {
                **extra,
                **values,
                "levels": [level for (level, _), _ in ordered],
                "idxs": [idx for (_, idx), _ in ordered],
                "hashes": [h for _, h in ordered],
            },
        )
    else:
        assert riding is None, "a rider hands back CTEs on PostgreSQL only"
        entry_columns = ("idx", "kind", "leaf", "leaf_hash", "logged_at", "label_id", "keyid")
        connection.execute(entries.insert(), {k: values[k] for k in entry_columns})
        connection.execute(
            nodes.insert(),
            [{"level": level, "idx": idx, "hash": h} for (level, idx), h in new_nodes.items()],
        )
        connection.execute(
            heads.update()
            .where(heads.c.id == 1)
            .values({k: values[k] for k in ("tree_size", "root_hash", "frontier", "updated_at")})
        )
        if kind == "label":
            labels = Label.__table__  # type: ignore[attr-defined]
            connection.execute(
                labels.update().where(labels.c.id == label_id).values(log_index=index)
            )
    return Appended(index, leaf, leaf_hash, size, root, logged_at, proof)


def root_at(connection: Connection, tree_size: int) -> bytes:
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    return merkle.root_from(tree_size, read_nodes(connection, merkle.root_keys(tree_size)))


def _check_size(tree_size: int, current: Head, name: str) -> None:
    if tree_size > current.tree_size:
        raise ProblemError(
            "bad-request", f"{name}={tree_size} is beyond the log's size {current.tree_size}"
        )


def inclusion_proof(
    connection: Connection, index: int, tree_size: int | None = None
) -> tuple[int, list[bytes]]:
    current = head(connection)
    size = current.tree_size if tree_size is None else tree_size
    _check_size(size, current, "tree_size")
    if not 0 <= index < size:
        raise ProblemError("bad-request", f"index {index} is not in a tree of size {size}")
    nodes = read_nodes(connection, merkle.inclusion_keys(index, size))
    return size, merkle.inclusion_proof(index, size, nodes)


def consistency_proof(connection: Connection, first: int, second: int) -> list[bytes]:
    current = head(connection)
    _check_size(second, current, "second")
    if not 1 <= first <= second:
        raise ProblemError("bad-request", f"need 1 <= first <= second, got {first}, {second}")
    nodes = read_nodes(connection, merkle.consistency_keys(first, second))
    return merkle.consistency_proof(first, second, nodes)


def entry(connection: Connection, index: int) -> LogEntry:
    entries, _, _ = _tables()
    row = connection.execute(select(entries).where(entries.c.idx == bindparam("i")), {"i": index})
    found = row.first()
    if found is None:
        raise ProblemError("not-found", f"the log has no entry {index}")
    return LogEntry.model_validate(dict(found._mapping))


def entry_view(item: LogEntry) -> dict[str, Any]:
    return {
        "index": item.idx,
        "kind": item.kind,
        "leaf": b64(item.leaf),
        "leaf_hash": b64(item.leaf_hash),
        "entry": decode_leaf(item.leaf),
    }


class CheckpointSigner:
    """Signs C2SP checkpoints with the registry's key; remembers the latest one it signed."""

    def __init__(self, origin: str, key: Ed25519PrivateKey) -> None:
        self.origin = origin
        self._key = key
        self.verifier_key = verifier_key(origin, key.public_key())
        self._last: tuple[int, bytes, str] | None = None

    def checkpoint(self, tree_size: int, root_hash: bytes) -> str:
        last = self._last
        if last is not None and last[0] == tree_size and last[1] == root_hash:
            return last[2]
        note = sign_note(checkpoint_body(self.origin, tree_size, root_hash), self.origin, self._key)
        self._last = (tree_size, root_hash, note)
        return note


def _receipt_view(
    index: int, leaf_hash: bytes, proof: Sequence[bytes], head: Head, signer: CheckpointSigner
) -> dict[str, Any]:
    return {
        "log_index": index,
        "leaf_hash": b64(leaf_hash),
        "tree_size": head.tree_size,
        "inclusion_proof": [b64(h) for h in proof],
        "checkpoint": signer.checkpoint(head.tree_size, head.root_hash),
    }


def appended_receipt(signer: CheckpointSigner, appended: Appended) -> dict[str, Any]:
    """The receipt of an entry just appended: its proof in the tree right after its append."""
    tree = Head(appended.tree_size, appended.root_hash)
    return _receipt_view(appended.index, appended.leaf_hash, appended.inclusion_proof, tree, signer)


@cache
def _entry_and_head() -> Any:
    """An entry's leaf hash with the log's head (:func:`receipt_columns` of the entry ``i``),
    in one statement (built once)."""
    return select(*receipt_columns(bindparam("i")))


def receipt(connection: Connection, signer: CheckpointSigner, index: int) -> dict[str, Any]:
    """Proof that entry ``index`` is in the log as it stands now, with a signed checkpoint: two
    statements (the entry with the head, then the proof's nodes)."""
    (row,) = read_mappings(connection, _entry_and_head(), {"i": index})
    return receipt_from(
        connection, signer, index, row["r_leaf_hash"], row["r_tree_size"], row["r_root_hash"]
    )


def receipt_columns(index: Any) -> tuple[Any, Any, Any]:
    """For a caller's own read of the entry at ``index`` (a column or a value): its leaf hash
    and the log's head (tree size, root hash), as scalar subqueries labelled ``r_leaf_hash``,
    ``r_tree_size`` and ``r_root_hash``; :func:`receipt_from` then makes the receipt with one
    statement less than :func:`receipt` (a label's answer reads them with the label)."""
    entries, _, heads = _tables()
    return (
        select(entries.c.leaf_hash)
        .where(entries.c.idx == index)
        .scalar_subquery()
        .label("r_leaf_hash"),
        select(heads.c.tree_size).where(heads.c.id == 1).scalar_subquery().label("r_tree_size"),
        select(heads.c.root_hash).where(heads.c.id == 1).scalar_subquery().label("r_root_hash"),
    )


def receipt_from(
    connection: Connection,
    signer: CheckpointSigner,
    index: int,
    leaf_hash: Any,
    tree_size: Any,
    root_hash: Any,
) -> dict[str, Any]:
    """:func:`receipt` of entry ``index`` whose leaf hash and the head were read already
    (:func:`receipt_columns`): the proof's nodes, one statement."""
    if leaf_hash is None or tree_size is None or root_hash is None:
        raise RuntimeError(f"transparency log entry {index} or the log's head not found")
    current = Head(int(tree_size), bytes(root_hash))
    nodes = read_nodes(connection, merkle.inclusion_keys(index, current.tree_size))
    proof = merkle.inclusion_proof(index, current.tree_size, nodes)
    return _receipt_view(index, bytes(leaf_hash), proof, current, signer)
