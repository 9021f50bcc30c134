"""DSSE v1 envelopes over in-toto Statement v1, signed with Ed25519.

PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body; the signature covers PAE.
The keyid is the lowercase hex SHA-256 of the raw 32-byte public key. Verifiers accept the standard
and the URL-safe base64 alphabets, with or without padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.contract import LABEL_SCHEMA_ID, PAYLOAD_TYPE, STATEMENT_TYPE


class EnvelopeError(ValueError):
    """The bytes are not a DSSE envelope this project accepts (the reason is the message)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key[:64]!r}: a verifier could read another value")
        obj[key] = value
    return obj


MAX_DEPTH = 64
"""How deep arrays and objects may nest in a signed document (a label needs 7 levels): deeper
ones are refused before anything recursive (schema validators, serialisers) sees them."""


_LEAVES = {int, float, bool, type(None)}
"""The JSON values that hold no string and no nesting."""


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise ValueError("strings must not contain NUL (U+0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must not contain lone surrogates") from None


def _check_strings(value: Any) -> None:
    """No NUL characters and no lone surrogates anywhere (neither survives storage or UTF-8), and
    no nesting deeper than ``MAX_DEPTH``."""
    if isinstance(value, str):
        _check_string(value)
        return
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            for key in item:
                _check_string(key)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"arrays and objects must not nest deeper than {MAX_DEPTH} levels")
        if set(map(type, children)) <= _LEAVES:
            continue  # only numbers (a trace's samples): nothing to look into one by one
        for child in children:
            if isinstance(child, str):
                _check_string(child)
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))


def strict_json_loads(data: bytes | str) -> Any:
    """json.loads for signed documents: refuses NaN and Infinity, duplicate keys, NUL characters
    and lone surrogates, all of which Python's parser accepts and other parsers read otherwise.
    Bytes must be UTF-8 without a byte order mark (RFC 8259 section 8.1): Python would also read
    UTF-16 and UTF-32, which other verifiers refuse."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"JSON text must be UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except RecursionError:  # not a ValueError: callers would let it through as a 500
        raise ValueError("JSON nested too deeply") from None
    _check_strings(value)
    return value


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def b64decode_any(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; raise EnvelopeError otherwise."""
    if not isinstance(text, str):
        raise EnvelopeError("expected a base64 string")
    stripped = text.rstrip("=")
    if "-" in stripped or "_" in stripped:
        stripped = stripped.replace("-", "+").replace("_", "/")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"invalid base64: {exc}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid_for(public_key: Ed25519PublicKey | bytes) -> str:
    """Lowercase hex SHA-256 of the raw 32-byte public key."""
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    return hashlib.sha256(raw).hexdigest()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key in PKCS#8 PEM (as written by ``carbonlabel keygen``)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """Accept a PEM SubjectPublicKeyInfo or base64 of the raw 32 bytes."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM does not hold an Ed25519 public key")
        return key
    raw = b64decode_any(data.decode("ascii", errors="replace").strip())
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_proof_message(registry: str, vendor: str, keyid: str) -> bytes:
    """What a key signs to prove possession when it is registered to a vendor at a registry."""
    return f"carbonlabel key registration v1\n{registry.rstrip('/')}\n{vendor}\n{keyid}\n".encode()


def build_statement(label: dict[str, Any], artifact_sha256: str | None = None) -> dict[str, Any]:
    """Wrap a label in an in-toto Statement v1 whose subject is the model revision."""
    digest = artifact_sha256 or label["provenance"]["model_artifact_sha256"]
    name = f"{label['model']['id']}@{label['model']['revision']}"
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}}],
        "predicateType": LABEL_SCHEMA_ID,
        "predicate": label,
    }


def sign_envelope(
    payload: bytes, private_key: Ed25519PrivateKey, payload_type: str = PAYLOAD_TYPE
) -> dict[str, Any]:
    """Sign ``payload`` and return the envelope as a JSON-ready dict."""
    sig = private_key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": b64encode(payload),
        "signatures": [{"keyid": keyid_for(private_key.public_key()), "sig": b64encode(sig)}],
    }


def sign_statement(statement: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Serialise a statement canonically (sorted keys, compact) and sign it."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return sign_envelope(payload, private_key)


def parse_envelope(data: bytes | str | dict[str, Any]) -> Envelope:
    """Parse envelope bytes (or an already-decoded object); raise EnvelopeError if malformed."""
    if isinstance(data, bytes | str):
        try:
            obj = strict_json_loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise EnvelopeError(f"body is not JSON: {exc}") from None
    else:
        obj = data
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope must be a JSON object")
    unknown = sorted(set(obj) - {"payloadType", "payload", "signatures"})
    if unknown:
        raise EnvelopeError(f"unknown envelope members: {', '.join(unknown)[:200]}")
    payload_type = obj.get("payloadType")
    if not isinstance(payload_type, str):
        raise EnvelopeError("payloadType must be a string")
    if payload_type != PAYLOAD_TYPE:
        raise EnvelopeError(f"payloadType must be {PAYLOAD_TYPE!r}, got {payload_type[:100]!r}")
    payload = b64decode_any(obj.get("payload"))  # type: ignore[arg-type]
    raw_sigs = obj.get("signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise EnvelopeError("signatures must be a non-empty list")
    if len(raw_sigs) > 16:
        raise EnvelopeError("at most 16 signatures are accepted")
    signatures = []
    for i, item in enumerate(raw_sigs):
        if not isinstance(item, dict):
            raise EnvelopeError(f"signatures[{i}] must be an object")
        keyid = item.get("keyid", "")
        if not isinstance(keyid, str):
            raise EnvelopeError(f"signatures[{i}].keyid must be a string")
        try:
            sig = b64decode_any(item.get("sig"))  # type: ignore[arg-type]
        except EnvelopeError as exc:
            raise EnvelopeError(f"signatures[{i}].sig: {exc}") from None
        signatures.append(Signature(keyid=keyid.lower(), sig=sig))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


def verify_signature(envelope: Envelope, public_key: Ed25519PublicKey) -> bool:
    """True when any signature of the envelope verifies under ``public_key``."""
    message = pae(envelope.payload_type, envelope.payload)
    for signature in envelope.signatures:
        try:
            public_key.verify(signature.sig, message)
        except InvalidSignature:
            continue
        return True
    return False


def decode_statement(envelope: Envelope) -> dict[str, Any]:
    """The payload as a JSON object; EnvelopeError when it is not one."""
    try:
        statement = strict_json_loads(envelope.payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"payload is not JSON: {exc}") from None
    if not isinstance(statement, dict):
        raise EnvelopeError("payload must be a JSON object")
    return statement
