"""Vendors' Ed25519 public keys: registration with proof of possession, retirement, compromise.

Proof of possession: the key's owner signs ``schemas.dsse.key_proof_message(registry, vendor,
keyid)``; ``carbonlabel key register`` does this. Binding the registry URL and the vendor slug
stops a proof from being replayed elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from registry.errors import ProblemError
from registry.models import Auditor, KeyStatus, Label, PublicKey, Standing, Vendor, utcnow
from registry.services import standings, translog
from registry.services.ingest import refresh_current
from schemas.dsse import EnvelopeError, b64decode_any, b64encode, key_proof_message, keyid_for
from schemas.tlog import timestamp


def register_key(
    session: Session, *, vendor: Vendor, public_key_b64: str, proof_b64: str, registry: str
) -> PublicKey:
    try:
        raw = b64decode_any(public_key_b64)
        proof = b64decode_any(proof_b64)
    except EnvelopeError as exc:
        raise ProblemError("invalid-key", f"public_key and proof must be base64: {exc}") from None
    if len(raw) != 32:
        raise ProblemError("invalid-key", f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    public_key = Ed25519PublicKey.from_public_bytes(raw)
    keyid = keyid_for(raw)
    try:
        public_key.verify(proof, key_proof_message(registry, vendor.slug, keyid))
    except InvalidSignature:
        raise ProblemError(
            "bad-proof",
            "proof does not verify: sign proof_message(registry, vendor, keyid) with the key",
        ) from None
    if session.exec(select(PublicKey).where(PublicKey.keyid == keyid)).first() is not None:
        raise ProblemError("key-exists", f"key {keyid} is already registered")
    if session.exec(select(Auditor).where(Auditor.keyid == keyid)).first() is not None:
        # one key, one role: an auditor's countersignature must never pass for a vendor's label
        raise ProblemError("key-exists", f"key {keyid} is already an auditor's key")
    assert vendor.id is not None
    key = PublicKey(vendor_id=vendor.id, keyid=keyid, public_key_b64=b64encode(raw))
    session.add(key)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ProblemError("key-exists", f"key {keyid} is already registered") from None
    translog.append(
        session.connection(),
        "key-add",
        logged_at=key.created_at,
        keyid=keyid,
        vendor=vendor.slug,
        public_key=key.public_key_b64,
    )
    return key


def get_key(session: Session, *, vendor: Vendor, keyid: str) -> PublicKey:
    key = session.exec(
        select(PublicKey).where(PublicKey.vendor_id == vendor.id, PublicKey.keyid == keyid.lower())
    ).first()
    if key is None:
        raise ProblemError("not-found", f"vendor {vendor.slug!r} has no key {keyid!r}")
    return key


def revoke_key(
    session: Session,
    *,
    vendor: Vendor,
    key: PublicKey,
    reason: KeyStatus,
    compromised_since: datetime | None,
) -> PublicKey:
    """Retire a key (earlier labels keep their standing) or mark it compromised since an instant."""
    if reason == KeyStatus.active:
        raise ProblemError("validation-error", "reason must be 'retired' or 'compromised'")
    if reason == KeyStatus.retired and compromised_since is not None:
        raise ProblemError("validation-error", "compromised_since only goes with 'compromised'")
    if key.status == KeyStatus.compromised and reason == KeyStatus.retired:
        raise ProblemError("validation-error", "a compromised key cannot be downgraded to retired")
    now = utcnow()
    if compromised_since is not None and compromised_since.tzinfo is None:
        raise ProblemError("validation-error", "compromised_since needs a timezone (RFC 3339)")
    if compromised_since is not None and compromised_since > now + timedelta(minutes=5):
        raise ProblemError("validation-error", "compromised_since cannot be in the future")
    if key.status == reason == KeyStatus.retired:
        return key  # nothing changes: no new log entry
    key.status = reason
    key.revoked_at = key.revoked_at or now
    connection = session.connection()
    if reason == KeyStatus.retired:
        session.add(key)
        session.flush()
        translog.append(connection, "key-retire", keyid=key.keyid, vendor=vendor.slug)
        return key
    since = compromised_since or now
    # Only ever earlier: moving the instant later would restore labels' standing.
    if key.compromised_since is not None:
        if since >= key.compromised_since:
            return key  # nothing changes: no new log entry
        since = min(since, key.compromised_since)
    key.compromised_since = since
    session.add(key)
    session.flush()
    translog.append(
        connection,
        "key-revoke",
        keyid=key.keyid,
        vendor=vendor.slug,
        reason="compromised",
        compromised_since=timestamp(since),
    )
    _withdraw_standing(connection, key.keyid, since)
    return key


def _withdraw_standing(connection: Connection, keyid: str, since: datetime) -> None:
    """Labels logged at or after ``since`` under this key lose their standing: they leave the
    grades' peer groups and the rankings (no longer current), and the pages flag them."""
    labels = Label.__table__  # type: ignore[attr-defined]
    losing = (
        (labels.c.keyid == keyid)
        & (labels.c.received_at >= since)
        & (labels.c.standing == Standing.ok)
    )
    # the current ones among them stop being current: read them first (RETURNING gives only
    # the new values)
    changed = [
        dict(row) | {"current": False}
        for row in connection.execute(
            sa_select(*standings.changed_columns()).where(losing & labels.c.current)
        ).mappings()
    ]
    groups = connection.execute(
        labels.update()
        .where(losing)
        .values(standing=Standing.key_compromised, current=False)
        .returning(
            labels.c.model_id,
            labels.c.suite,
            labels.c.task,
            labels.c.phase,
            labels.c.hardware_class,
        )
    ).all()
    for model_id, suite, task, phase, hardware_class in sorted(set(groups)):
        changed.extend(
            refresh_current(
                connection,
                model_id=model_id,
                suite=suite,
                task=task,
                phase=phase,
                hardware_class=hardware_class,
            )
        )
    # the revocation has taken the log's lock (its entry is appended first)
    standings.apply_changes(connection, changed)
