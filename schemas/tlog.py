"""The transparency log's entries: what each leaf holds and how it is encoded.

Every accepted label and every key or auditor event is one leaf of an RFC 9162 Merkle tree (see
``schemas.merkle``). A leaf is the canonical JSON of a small object: keys sorted, no whitespace,
UTF-8, version ``"v": 1``. The registry stores the leaf bytes; anyone can hash them
(``merkle.leaf_hash``), check them against an inclusion proof and a signed checkpoint
(``schemas.note``), and read what they commit to:

- ``label``: label_id, vendor, keyid that signed it, SHA-256 of the DSSE payload (the in-toto
  statement) and of the envelope bytes as stored, logged_at;
- ``key-add`` / ``key-retire`` / ``key-revoke``: vendor, keyid (and the public key when added;
  ``compromised_since`` when revoked as compromised);
- ``auditor-add``: auditor, keyid, public key;
- ``audit``: label_id, auditor, keyid, SHA-256 of the attestation payload, verdict.

``logged_at`` is the registry's clock when the entry was appended (RFC 3339 UTC, microseconds). A
label logged after its key's ``compromised_since`` loses its standing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

LEAF_VERSION = 1

LeafKind = Literal["label", "key-add", "key-retire", "key-revoke", "auditor-add", "audit"]
LEAF_KINDS: tuple[str, ...] = (
    "label",
    "key-add",
    "key-retire",
    "key-revoke",
    "auditor-add",
    "audit",
)


class LeafError(ValueError):
    """Leaf bytes that are not a well-formed log entry."""


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, the only time format in leaves."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: leaves carry UTC instants")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_leaf(kind: LeafKind, logged_at: datetime, **fields: Any) -> bytes:
    """The canonical bytes of one entry (sorted keys, no whitespace, UTF-8)."""
    if kind not in LEAF_KINDS:
        raise ValueError(f"unknown leaf kind {kind!r}")
    document = {"v": LEAF_VERSION, "kind": kind, "logged_at": timestamp(logged_at), **fields}
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def decode_leaf(data: bytes) -> dict[str, Any]:
    """The entry in ``data``; LeafError unless it is canonical JSON of a known kind."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LeafError(f"leaf is not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LeafError("leaf is not a JSON object")
    if document.get("v") != LEAF_VERSION or document.get("kind") not in LEAF_KINDS:
        raise LeafError(
            f"unknown leaf version or kind: {document.get('v')!r} {document.get('kind')!r}"
        )
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    if canonical != data:
        raise LeafError("leaf is not in canonical form")
    return document
