"""Who signed an envelope: the API token's vendor, the vendor's registered keys, and the key whose
signature verifies (contract section 3: 401, 403 ``unknown-key``, 403 ``revoked-key``, 422
``bad-signature``); with them, whether a label with the same id is already stored (the replay
check), in the same statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import bindparam, select
from sqlmodel import Session

from registry.errors import ProblemError
from registry.models import ApiToken, KeyStatus, Label, PublicKey, Vendor
from registry.services import vendors as vendor_service
from schemas.dsse import Envelope, load_public_key, verify_signature


@lru_cache(maxsize=4096)
def public_key(public_key_b64: str) -> Ed25519PublicKey:
    """Parsed keys, cached by their bytes (content-addressed, so never stale)."""
    return load_public_key(public_key_b64)


@dataclass(frozen=True)
class SigningKey:
    keyid: str
    status: str
    public_key_b64: str


@cache
def caller_keys_and_seen() -> Any:
    """:func:`keys_and_seen` for the vendor that a token's digest names, with the token's and
    the vendor's columns on each row: the token check, the key look-up and the replay check in
    one round trip. No row: the token is unknown, or its vendor has no key (told apart by
    ``vendors.authenticate``, off the hot path)."""
    tokens = ApiToken.__table__  # type: ignore[attr-defined]
    vendors = Vendor.__table__  # type: ignore[attr-defined]
    keys, columns, seen_on = _keys_and_seen_parts()
    return (
        select(*vendor_service.token_columns(), *columns)
        .select_from(
            seen_on(
                tokens.join(vendors, vendors.c.id == tokens.c.vendor_id).join(
                    keys, keys.c.vendor_id == vendors.c.id
                )
            )
        )
        .where(tokens.c.token_sha256 == bindparam("digest"))
        .with_for_update(read=True, of=keys)
    )


def caller(session: Session, token: str, rows: Sequence[Any]) -> Vendor:
    """The token's vendor from the rows of :func:`caller_keys_and_seen` (or, with none, from
    its own look-up), or a 401 problem, as ``vendors.authenticate`` decides it."""
    vendor = (
        vendor_service.vendor_of_token(rows[0], vendor_service.hash_token(token))
        if rows
        else vendor_service.authenticate(session, token)
    )
    if vendor is None:
        raise vendor_service.invalid_token()
    return vendor


@cache
def keys_and_seen() -> Any:
    """The vendor's keys and, on each row, the stored label with this id if there is one: the
    key look-up and the replay check in one round trip."""
    keys, columns, seen_on = _keys_and_seen_parts()
    # FOR SHARE of the key rows (PostgreSQL; SQLite serialises writers anyway): a revocation
    # committed while this label is being stored waits for it, so no label is stored under a
    # key revoked first.
    return (
        select(*columns)
        .select_from(seen_on(keys))
        .where(keys.c.vendor_id == bindparam("vendor_id"))
        .with_for_update(read=True, of=keys)
    )


def _keys_and_seen_parts() -> tuple[Any, list[Any], Any]:
    """The keys' table, the columns of a key and of the stored label with the id
    ``:label_id`` (if any), and the outer join that brings that label onto each key's row."""
    keys = PublicKey.__table__  # type: ignore[attr-defined]
    seen = Label.__table__.alias("seen")  # type: ignore[attr-defined]
    columns = [
        keys.c.keyid,
        keys.c.status,
        keys.c.public_key_b64,
        seen.c.vendor_id.label("seen_vendor_id"),
        seen.c.payload_sha256.label("seen_payload_sha256"),
        seen.c.keyid.label("seen_keyid"),
    ]

    def seen_on(joined: Any) -> Any:
        return joined.outerjoin(seen, seen.c.id == bindparam("label_id"))

    return keys, columns, seen_on


def key_for(envelope: Envelope, vendor: Vendor, keys: list[SigningKey]) -> SigningKey:
    by_keyid = {key.keyid: key for key in keys}
    hinted = [by_keyid[s.keyid] for s in envelope.signatures if s.keyid in by_keyid]
    if hinted:
        active = [key for key in hinted if key.status == KeyStatus.active]
        if not active:
            raise ProblemError(
                "revoked-key",
                f"key {hinted[0].keyid} was revoked ({hinted[0].status}); sign with an active key",
            )
        for key in active:
            if verify_signature(envelope, public_key(key.public_key_b64)):
                return key
        raise ProblemError(
            "bad-signature", "no signature verifies under the vendor's registered keys"
        )
    # No keyid names one of the vendor's keys (keyids are hints, and optional in DSSE): the
    # signature decides which key, if any, made it.
    for key in keys:
        if verify_signature(envelope, public_key(key.public_key_b64)):
            if key.status != KeyStatus.active:
                raise ProblemError(
                    "revoked-key",
                    f"key {key.keyid} was revoked ({key.status}); sign with an active key",
                )
            return key
    raise ProblemError(
        "unknown-key", f"no key registered to vendor {vendor.slug!r} made these signatures"
    )
