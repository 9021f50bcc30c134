"""Auditors and their attestations: registration (operator), attestation checks, the verified tier.

An auditor is a third party the operator registers with its own Ed25519 key (proof of possession
over ``key_proof_message(registry, "auditor:" + slug, keyid)``) and API token (shown once, stored
as SHA-256). It attests a label it reproduced with a DSSE envelope over an in-toto statement
(``schemas.attestation``). Checks, in order (the first failing one answers): envelope structure
(400) -> the label exists (404) -> a signature by the auditor's key (422) -> the same attestation
stored before (200) -> schema (422) -> subject names the label and its payload digest (422) ->
predicate names this auditor (403) -> no other attestation by this auditor for the label (409) ->
stored, logged, and the label made ``verified`` when the figures agree and it is in good standing
(201). A disagreeing attestation is stored and logged too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.errors import ProblemError
from registry.models import Attestation, Auditor, Label, PublicKey, Standing, Tier, utcnow
from registry.services import translog
from registry.services.vendors import SLUG_RE, hash_token, normalise_display_name
from schemas.attestation import (
    Verdict,
    agreement,
    attestation_issues,
    subject_name,
)
from schemas.dsse import (
    EnvelopeError,
    b64decode_any,
    b64encode,
    decode_statement,
    key_proof_message,
    keyid_for,
    load_public_key,
    parse_envelope,
    verify_signature,
)

AUDITOR_TOKEN_PREFIX = "cla_"  # noqa: S105  (a visible prefix, not a secret)
AUDITOR_SUBJECT_PREFIX = "auditor:"
"""What stands for the vendor slug in an auditor's proof of possession."""


def proof_subject(slug: str) -> str:
    return AUDITOR_SUBJECT_PREFIX + slug


def new_token() -> str:
    return AUDITOR_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------
# Auditors
# ------------------------------------------------------------------------------------------


def register_auditor(
    session: Session,
    *,
    slug: str,
    display_name: str | None,
    public_key_b64: str,
    proof_b64: str,
    registry: str,
) -> tuple[Auditor, str]:
    """Register an auditor with its key; returns the auditor and its token (the only time)."""
    if not SLUG_RE.match(slug):
        raise ProblemError(
            "validation-error",
            "auditor slug must be 1-64 lowercase letters, digits or inner hyphens",
        )
    name = normalise_display_name(display_name) if display_name else slug
    try:
        raw = b64decode_any(public_key_b64)
        proof = b64decode_any(proof_b64)
    except EnvelopeError as exc:
        raise ProblemError("invalid-key", f"public_key and proof must be base64: {exc}") from None
    if len(raw) != 32:
        raise ProblemError("invalid-key", f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    keyid = keyid_for(raw)
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            proof, key_proof_message(registry, proof_subject(slug), keyid)
        )
    except InvalidSignature:
        raise ProblemError(
            "bad-proof",
            "proof does not verify: sign key_proof_message(registry, 'auditor:' + slug, keyid) "
            "with the key",
        ) from None
    if session.exec(select(Auditor.id).where(Auditor.slug == slug)).first() is not None:
        raise ProblemError("auditor-exists", f"auditor {slug!r} already exists")
    if (
        session.exec(select(Auditor.id).where(Auditor.keyid == keyid)).first() is not None
        or session.exec(select(PublicKey.id).where(PublicKey.keyid == keyid)).first() is not None
    ):
        # A vendor's signing key cannot also be an auditor's: nobody verifies their own labels.
        raise ProblemError("key-exists", f"key {keyid} is already registered")
    token = new_token()
    auditor = Auditor(
        slug=slug,
        display_name=name,
        keyid=keyid,
        public_key_b64=b64encode(raw),
        token_sha256=hash_token(token),
    )
    session.add(auditor)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ProblemError(
            "auditor-exists", f"auditor {slug!r} or key {keyid} is already registered"
        ) from None
    translog.append(
        session.connection(),
        "auditor-add",
        logged_at=auditor.created_at,
        keyid=keyid,
        auditor=slug,
        public_key=auditor.public_key_b64,
    )
    return auditor, token


def authenticate(session: Session, token: str) -> Auditor | None:
    """The auditor a token belongs to, or None (looked up by the token's SHA-256)."""
    digest = hash_token(token)
    auditor = session.exec(select(Auditor).where(Auditor.token_sha256 == digest)).first()
    if auditor is None or not hmac.compare_digest(auditor.token_sha256, digest):
        return None
    return auditor


def auditor_view(auditor: Auditor, attestations: int = 0, agreeing: int = 0) -> dict[str, Any]:
    return {
        "auditor": auditor.slug,
        "display_name": auditor.display_name,
        "keyid": auditor.keyid,
        "public_key": auditor.public_key_b64,
        "created_at": _iso(auditor.created_at),
        "attestations": attestations,
        "agreeing": agreeing,
    }


def list_auditors(session: Session) -> list[dict[str, Any]]:
    """Every auditor with its public key and how many attestations it made (and agreed)."""
    counts: dict[int | None, tuple[int, int]] = {
        auditor_id: (int(total), int(agreeing or 0))
        for auditor_id, total, agreeing in session.exec(
            select(
                Attestation.auditor_id,
                func.count(),
                func.sum(case((col(Attestation.agrees).is_(True), 1), else_=0)),
            ).group_by(col(Attestation.auditor_id))
        ).all()
    }
    auditors = session.exec(select(Auditor).order_by(col(Auditor.slug))).all()
    return [auditor_view(a, *counts.get(a.id, (0, 0))) for a in auditors]


# ------------------------------------------------------------------------------------------
# Attestations
# ------------------------------------------------------------------------------------------


@dataclass
class AttestResult:
    attestation: Attestation
    label: Label
    created: bool


def _check_view(figures: dict[str, Any]) -> dict[str, Any]:
    check = figures.get("check")
    return check if isinstance(check, dict) else {}


def attest(session: Session, *, auditor: Auditor, label_id: str, body: bytes) -> AttestResult:
    """Verify, validate, judge and store one attestation. Raises ProblemError for a refusal."""
    try:
        envelope = parse_envelope(body)
        statement = decode_statement(envelope)
    except EnvelopeError as exc:
        raise ProblemError("malformed-envelope", str(exc)) from None
    label = session.get(Label, label_id.lower())
    if label is None:
        raise ProblemError("not-found", f"no label {label_id!r}")
    if not verify_signature(envelope, load_public_key(auditor.public_key_b64)):
        raise ProblemError(
            "bad-signature", f"no signature verifies under auditor {auditor.slug!r}'s key"
        )
    payload_sha256 = hashlib.sha256(envelope.payload).hexdigest()
    existing = _existing(session, label.id, auditor)
    if existing is not None and existing.payload_sha256 == payload_sha256:
        return AttestResult(existing, label, created=False)

    issues = attestation_issues(statement)
    if issues:
        raise ProblemError(
            "schema-violation",
            f"the statement does not match the attestation schema ({len(issues)} errors)",
            errors=[{"pointer": i.pointer, "message": i.message} for i in issues],
        )
    predicate = statement["predicate"]
    subject = statement["subject"][0]
    mismatches = []
    if subject["name"] != subject_name(label.id):
        mismatches.append(
            {"pointer": "/subject/0/name", "message": f"must be {subject_name(label.id)!r}"}
        )
    if subject["digest"]["sha256"] != label.payload_sha256:
        mismatches.append(
            {
                "pointer": "/subject/0/digest/sha256",
                "message": f"must be the label's payload SHA-256 {label.payload_sha256}",
            }
        )
    if predicate["label_id"] != label.id:
        mismatches.append({"pointer": "/predicate/label_id", "message": f"must be {label.id!r}"})
    if "market" in predicate.get("declarations", {}) and "market" not in label.predicate["carbon"]:
        mismatches.append(
            {
                "pointer": "/predicate/declarations/market",
                "message": "the label declares no carbon-free supply (carbon.market) to check",
            }
        )
    if mismatches:
        raise ProblemError(
            "subject-mismatch",
            f"the attestation is not about label {label.id} as stored",
            errors=mismatches,
        )
    if predicate["auditor"] != auditor.slug:
        raise ProblemError(
            "auditor-mismatch",
            f"the attestation names auditor {predicate['auditor']!r} but the token belongs to "
            f"{auditor.slug!r}",
        )
    if existing is not None:
        raise ProblemError(
            "attestation-conflict",
            f"auditor {auditor.slug!r} already attested label {label.id} with other content",
        )
    verdict = agreement(
        label_energy_wh=label.energy_per_unit_wh,
        label_hardware_class=label.hardware_class,
        label_functional_unit=label.functional_unit,
        predicate=predicate,
    )
    try:
        return _store(
            session,
            auditor=auditor,
            label=label,
            body=body,
            payload_sha256=payload_sha256,
            predicate=predicate,
            verdict=verdict,
        )
    except IntegrityError:
        # A concurrent request stored this auditor's attestation of the label first.
        session.rollback()
        raced = _existing(session, label.id, auditor)
        if raced is not None and raced.payload_sha256 == payload_sha256:
            stored = session.get(Label, label.id)
            return AttestResult(raced, stored or label, created=False)
        raise ProblemError(
            "attestation-conflict",
            f"auditor {auditor.slug!r} already attested label {label.id} with other content",
        ) from None


def _existing(session: Session, label_id: str, auditor: Auditor) -> Attestation | None:
    return session.exec(
        select(Attestation).where(
            Attestation.label_id == label_id, Attestation.auditor_id == auditor.id
        )
    ).first()


def _store(
    session: Session,
    *,
    auditor: Auditor,
    label: Label,
    body: bytes,
    payload_sha256: str,
    predicate: dict[str, Any],
    verdict: Verdict,
) -> AttestResult:
    assert auditor.id is not None
    figures: dict[str, Any] = {
        "reproduced_at": predicate["reproduced_at"],
        "hardware_class": predicate["hardware_class"],
        "trials": predicate["trials"],
        "results": predicate["results"],
        "check": {
            "relative_difference": verdict.relative_difference,
            "tolerance_relative": verdict.tolerance_relative,
            "reasons": verdict.reasons,
        },
    }
    if "notes" in predicate:
        figures["notes"] = predicate["notes"]
    if "declarations" in predicate:  # checks of declared figures (carbon.market)
        figures["declarations"] = predicate["declarations"]
    now = utcnow()
    connection = session.connection()
    logged = translog.append(
        connection,
        "audit",
        logged_at=now,
        label_id=label.id,
        keyid=auditor.keyid,
        auditor=auditor.slug,
        attestation_sha256=payload_sha256,
        verdict="agrees" if verdict.agrees else "disagrees",
    )
    attestation = Attestation(
        label_id=label.id,
        auditor_id=auditor.id,
        payload_sha256=payload_sha256,
        envelope=body,
        figures=figures,
        agrees=verdict.agrees,
        log_index=logged.index,
        created_at=now,
    )
    session.add(attestation)
    session.flush()
    if verdict.agrees:
        labels = Label.__table__  # type: ignore[attr-defined]
        # Conditional, so a key revocation committed meanwhile keeps the label out of the tier.
        updated = connection.execute(
            labels.update()
            .where((labels.c.id == label.id) & (labels.c.standing == Standing.ok))
            .values(tier=Tier.verified)
        )
        if updated.rowcount:
            label.tier = Tier.verified
    return AttestResult(attestation, label, created=True)


def attestation_result(result: AttestResult, auditor: Auditor, base_url: str) -> dict[str, Any]:
    """The answer to ``POST /v1/labels/{id}/attestations`` (less the receipt)."""
    attestation, label = result.attestation, result.label
    check = _check_view(attestation.figures)
    return {
        "label_id": label.id,
        "auditor": auditor.slug,
        "agrees": attestation.agrees,
        "tier": label.tier,
        "standing": label.standing,
        "relative_difference": check.get("relative_difference"),
        "tolerance_relative": check.get("tolerance_relative"),
        "reasons": check.get("reasons", []),
        "payload_sha256": attestation.payload_sha256,
        "log_index": attestation.log_index,
        "created_at": _iso(attestation.created_at),
        "links": {
            "label": f"{base_url}/v1/labels/{label.id}",
            "attestations": f"{base_url}/v1/labels/{label.id}/attestations",
            "log_entry": f"{base_url}/v1/log/entries/{attestation.log_index}",
        },
    }


def attestations_view(session: Session, label_id: str) -> list[dict[str, Any]]:
    """Every attestation of a label, oldest first: auditor, verdict, the auditor's figures, the
    attested payload digest, log index and the envelope as received (decoded JSON)."""
    rows = session.exec(
        select(Attestation, Auditor)
        .join(Auditor, col(Auditor.id) == Attestation.auditor_id)
        .where(Attestation.label_id == label_id.lower())
        .order_by(col(Attestation.created_at), col(Attestation.id))
    ).all()
    views = []
    for attestation, auditor in rows:
        figures = dict(attestation.figures)
        check = _check_view(figures)
        figures.pop("check", None)
        views.append(
            {
                "auditor": auditor.slug,
                "display_name": auditor.display_name,
                "keyid": auditor.keyid,
                "agrees": attestation.agrees,
                "relative_difference": check.get("relative_difference"),
                "tolerance_relative": check.get("tolerance_relative"),
                "reasons": check.get("reasons", []),
                "figures": figures,
                "payload_sha256": attestation.payload_sha256,
                "log_index": attestation.log_index,
                "created_at": _iso(attestation.created_at),
                "envelope": json.loads(attestation.envelope),
            }
        )
    return views


def verifying_auditors(session: Session, label_ids: list[str]) -> dict[str, list[str]]:
    """Display names of the auditors whose attestations agree, per label id (for pages, cards)."""
    if not label_ids:
        return {}
    rows = session.exec(
        select(Attestation.label_id, Auditor.display_name)
        .join(Auditor, col(Auditor.id) == Attestation.auditor_id)
        .where(col(Attestation.label_id).in_(label_ids), col(Attestation.agrees).is_(True))
        .order_by(col(Attestation.created_at), col(Attestation.id))
    ).all()
    found: dict[str, list[str]] = {}
    for label_id, name in rows:
        found.setdefault(label_id, []).append(name)
    return found
