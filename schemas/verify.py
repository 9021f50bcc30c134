"""Offline verification of an envelope against a public key: signature, schema, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.contract import semantic_issues, validate_statement
from schemas.dsse import (
    EnvelopeError,
    decode_statement,
    keyid_for,
    parse_envelope,
    verify_signature,
)
from schemas.results import check_results


class VerifyExit(IntEnum):
    """Exit codes of ``carbonlabel verify`` (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1
    MALFORMED = 3
    BAD_SIGNATURE = 4
    SCHEMA = 5
    INCONSISTENT = 6
    NOT_LOGGED = 7
    LOG_INCONSISTENT = 8


@dataclass
class Verification:
    outcome: VerifyExit
    message: str
    keyid: str | None = None
    statement: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def verify_envelope_bytes(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Check one envelope completely; the first failing step decides the outcome."""
    keyid = keyid_for(public_key)
    try:
        envelope = parse_envelope(data)
    except EnvelopeError as exc:
        return Verification(VerifyExit.MALFORMED, f"not a DSSE envelope: {exc}", keyid)
    if not verify_signature(envelope, public_key):
        return Verification(
            VerifyExit.BAD_SIGNATURE, f"signature does not verify under {keyid}", keyid
        )
    try:
        statement = decode_statement(envelope)
    except EnvelopeError as exc:
        return Verification(VerifyExit.MALFORMED, str(exc), keyid)
    issues = validate_statement(statement) or semantic_issues(statement)
    if issues:
        return Verification(
            VerifyExit.SCHEMA,
            f"statement fails the schema ({len(issues)} errors)",
            keyid,
            statement,
            [f"{i.pointer or '/'}: {i.message}" for i in issues],
        )
    mismatches = check_results(statement["predicate"])
    if mismatches:
        return Verification(
            VerifyExit.INCONSISTENT,
            f"{len(mismatches)} results do not follow from the traces",
            keyid,
            statement,
            [f"{m.pointer}: stated {m.stated}, recomputed {m.recomputed}" for m in mismatches],
        )
    return Verification(VerifyExit.OK, "signature, schema and results verified", keyid, statement)
