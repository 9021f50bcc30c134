"""DSSE signing: PAE, keyids, both base64 alphabets, independent verification with OpenSSL,
and a property test that any change to payload, payloadType or signature is rejected."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import PAYLOAD_TYPE
from schemas.dsse import (
    Envelope,
    EnvelopeError,
    Signature,
    b64decode_any,
    keyid_for,
    pae,
    parse_envelope,
    raw_public_key,
    sign_envelope,
    verify_signature,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_pae_matches_the_dsse_spec_example() -> None:
    # from the DSSE v1 protocol document
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_keyid_is_sha256_of_raw_public_key() -> None:
    raw = raw_public_key(KEY.public_key())
    assert len(raw) == 32
    assert keyid_for(KEY.public_key()) == hashlib.sha256(raw).hexdigest()
    envelope = sign_envelope(b"{}", KEY)
    assert envelope["signatures"][0]["keyid"] == hashlib.sha256(raw).hexdigest()


def test_both_base64_alphabets_accepted() -> None:
    data = bytes(range(256))
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert "+" in standard
    assert "-" in urlsafe
    assert b64decode_any(standard) == data
    assert b64decode_any(urlsafe) == data
    assert b64decode_any(urlsafe.rstrip("=")) == data
    with pytest.raises(EnvelopeError):
        b64decode_any("not base64 at all!")


def test_signature_verifies_with_openssl(tmp_path: Path) -> None:
    assert shutil.which("openssl"), "this test needs the openssl command line tool"
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v1", "x": 1}).encode()
    envelope = parse_envelope(json.dumps(sign_envelope(payload, KEY)))
    (tmp_path / "msg").write_bytes(pae(envelope.payload_type, envelope.payload))
    (tmp_path / "sig").write_bytes(envelope.signatures[0].sig)
    (tmp_path / "pub.pem").write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cmd = [
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "pub.pem",
        "-rawin",
        "-in",
        "msg",
        "-sigfile",
        "sig",
    ]
    ok = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Signature Verified Successfully" in ok.stdout
    # and OpenSSL rejects it once one byte of the message changes
    (tmp_path / "msg").write_bytes(pae(envelope.payload_type, envelope.payload + b" "))
    bad = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode != 0


def test_openssl_signature_verifies_with_the_project(tmp_path: Path) -> None:
    """The other direction: OpenSSL signs the PAE, the project verifies it."""
    (tmp_path / "key.pem").write_bytes(
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    payload = b'{"hello": "world"}'
    (tmp_path / "msg").write_bytes(pae(PAYLOAD_TYPE, payload))
    subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg", "-out", "sig"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    sig = (tmp_path / "sig").read_bytes()
    envelope = Envelope(PAYLOAD_TYPE, payload, (Signature(keyid_for(KEY.public_key()), sig),))
    assert verify_signature(envelope, KEY.public_key())


SIGNED = parse_envelope(json.dumps(sign_envelope(b'{"predicate": {"a": 1}}', KEY)))


def _flip(data: bytes, index: int, mask: int) -> bytes:
    out = bytearray(data)
    out[index % len(out)] ^= mask
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(
    part=st.sampled_from(["payload", "payloadType", "sig", "append", "truncate"]),
    index=st.integers(min_value=0, max_value=10_000),
    mask=st.integers(min_value=1, max_value=255),
    extra=st.binary(min_size=1, max_size=16),
)
def test_any_change_is_rejected(part: str, index: int, mask: int, extra: bytes) -> None:
    sig = SIGNED.signatures[0]
    payload, payload_type, sig_bytes = SIGNED.payload, SIGNED.payload_type, sig.sig
    if part == "payload":
        payload = _flip(payload, index, mask)
    elif part == "payloadType":
        encoded = _flip(payload_type.encode(), index, mask)
        payload_type = encoded.decode("latin-1")
    elif part == "sig":
        sig_bytes = _flip(sig_bytes, index, mask)
    elif part == "append":
        payload = payload + extra
    else:
        payload = payload[: index % len(payload)]
    tampered = Envelope(payload_type, payload, (Signature(sig.keyid, sig_bytes),))
    assert not verify_signature(tampered, KEY.public_key())


def test_untampered_verifies_and_other_key_does_not() -> None:
    assert verify_signature(SIGNED, KEY.public_key())
    assert not verify_signature(SIGNED, Ed25519PrivateKey.generate().public_key())


def test_strict_json_checks_every_string_and_depth_whatever_the_arrays_hold() -> None:
    """Arrays of numbers are passed over whole (a trace's samples); strings and nesting inside
    any other array are still checked, and depth counts arrays of numbers too."""
    from schemas.dsse import MAX_DEPTH, strict_json_loads

    assert strict_json_loads('{"t": [1, 2.5, true, null], "s": ["a", [3]]}') == {
        "t": [1, 2.5, True, None],
        "s": ["a", [3]],
    }
    assert strict_json_loads("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH) is not None
    for text in (
        "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1),
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    ):
        with pytest.raises(ValueError, match="nest deeper"):
            strict_json_loads(text)
    for text, reason in (
        ('[1, 2.5, true, null, "a\\u0000"]', "NUL"),
        ('[1, ["\\ud800"]]', "surrogate"),
        ('[1, {"k\\u0000": 2}]', "NUL"),
        ('{"t": [0.5, 1], "u": [2, "\\udfff"]}', "surrogate"),
    ):
        with pytest.raises(ValueError, match=reason):
            strict_json_loads(text)
