"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and tlog checkpoints on top of them
(c2sp.org/tlog-checkpoint).

A signed note is a body (UTF-8 text ending in a newline, no ASCII control characters other than
newline), a blank line, then one or more signature lines ``"— <key name> <base64>\\n"`` (U+2014
em dash, space). The base64 holds a 4-byte key ID and the signature over the body. For Ed25519 the
key ID is SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4], and a verifier key is written
``<name>+<8 hex key ID>+<base64(0x01 || public key)>``, as in golang.org/x/mod/sumdb/note.

A checkpoint body is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` plus optional non-empty
extension lines. Opening a checkpoint requires a valid signature by the given verifier key;
signature lines by other keys are ignored, as the spec requires. This module is stricter than the Go
reference in a few places: base64 must be canonical, tree sizes must fit in a uint64, and notes are
bounded in size (MAX_NOTE_BYTES, MAX_LINE_BYTES, MAX_SIGNATURES).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
KEY_HASH_SIZE = 4
ROOT_HASH_SIZE = 32
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 256 * 1024
MAX_LINE_BYTES = 8 * 1024
MAX_TREE_SIZE = (1 << 64) - 1

SIG_PREFIX = "\u2014 "  # em dash, space

_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX8_RE = re.compile(r"[0-9a-fA-F]{8}")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """Not a signed note or checkpoint this module accepts (the reason is the message)."""


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint; `text` is the full signed note it came from."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    text: str


# --------------------------------------------------------------------------------------------------
# Helpers


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict, canonical standard base64 (with padding)."""
    if not text or _B64_RE.fullmatch(text) is None:
        raise NoteError(f"{what} is not standard base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard base64") from None
    if _b64encode(raw) != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _is_valid_name(name: str) -> bool:
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")


def _check_text(text: str, what: str) -> bytes:
    """UTF-8 encode `text`, rejecting ASCII control characters other than newline."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    if any(b < 0x20 and b != 0x0A for b in raw):
        raise NoteError(f"{what} contains control characters")
    return raw


def _raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --------------------------------------------------------------------------------------------------
# Keys


def key_hash(name: str, public_key_raw: bytes) -> bytes:
    """The 4-byte Ed25519 key ID: SHA-256(name || "\\n" || 0x01 || 32-byte public key)[:4]."""
    _check_name(name)
    if not isinstance(public_key_raw, bytes | bytearray) or len(public_key_raw) != 32:
        raise NoteError("an Ed25519 public key is 32 bytes")
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + bytes(public_key_raw)
    return hashlib.sha256(material).digest()[:KEY_HASH_SIZE]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string ``<name>+<8 hex key ID>+<base64(0x01 || public key)>``."""
    raw = _raw_public_key(public_key)
    return f"{name}+{key_hash(name, raw).hex()}+{_b64encode(bytes([ALG_ED25519]) + raw)}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse an Ed25519 verifier key; NoteError on anything malformed or a key ID mismatch."""
    if not isinstance(vkey, str) or len(vkey) > MAX_LINE_BYTES:
        raise NoteError("verifier key must be a short string")
    parts = vkey.split("+", 2)  # the base64 key material may itself contain '+'
    if len(parts) != 3:
        raise NoteError("verifier key must be <name>+<hash>+<key>")
    name, hash_hex, key_b64 = parts
    _check_name(name)
    if _HEX8_RE.fullmatch(hash_hex) is None:
        raise NoteError("verifier key hash must be 8 hex digits")
    key = _b64decode(key_b64, "verifier key material")
    if len(key) != 33:
        raise NoteError("verifier key material must be 33 bytes (0x01 || Ed25519 public key)")
    if key[0] != ALG_ED25519:
        raise NoteError(f"unknown verifier key algorithm {key[0]:#04x}")
    if key_hash(name, key[1:]) != bytes.fromhex(hash_hex):
        raise NoteError("verifier key hash does not match the key")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(key[1:])
    except ValueError:
        raise NoteError("invalid Ed25519 public key") from None
    return name, public_key


# --------------------------------------------------------------------------------------------------
# Notes


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign `body` (ending in a newline) with `private_key` under key name `name`."""
    _check_name(name)
    if not isinstance(body, str) or not body.endswith("\n"):
        raise NoteError("note body must be text ending in a newline")
    raw = _check_text(body, "note body")
    raw_key = _raw_public_key(private_key.public_key())
    signature = private_key.sign(raw)
    line = f"{SIG_PREFIX}{name} {_b64encode(key_hash(name, raw_key) + signature)}\n"
    note = f"{body}\n{line}"
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError(f"signed note is larger than {MAX_NOTE_BYTES} bytes")
    return note


def _split_note(text: str | bytes) -> tuple[str, str, list[tuple[str, bytes]]]:
    """Check the note format; return (full text, body, [(key name, key ID || signature)])."""
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_NOTE_BYTES:
            raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    if not isinstance(text, str):
        raise NoteError("note must be text")
    if len(text) > MAX_NOTE_BYTES:
        raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    raw = _check_text(text, "note")
    if len(raw) > MAX_NOTE_BYTES:
        raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("note must end with a signature line and a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for line in lines:
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise NoteError(f"signature line is longer than {MAX_LINE_BYTES} bytes")
        if not line.startswith(SIG_PREFIX):
            raise NoteError("signature line must start with an em dash and a space")
        name, sep, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not _is_valid_name(name):
            raise NoteError("signature line has an invalid key name")
        sig = _b64decode(sig_b64, "signature")
        if len(sig) < KEY_HASH_SIZE + 1:
            raise NoteError("signature is too short")
        signatures.append((name, sig))
    return text, body, signatures


def _parse_body(body: str) -> tuple[str, int, bytes, tuple[str, ...]]:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body needs origin, tree size and root hash lines")
    for line in lines:
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise NoteError(f"checkpoint line is longer than {MAX_LINE_BYTES} bytes")
    origin, size_text, root_b64, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if _SIZE_RE.fullmatch(size_text) is None:
        raise NoteError("checkpoint tree size is not a canonical decimal number")
    tree_size = int(size_text)
    if tree_size > MAX_TREE_SIZE:
        raise NoteError("checkpoint tree size does not fit in 64 bits")
    root_hash = _b64decode(root_b64, "checkpoint root hash")
    if len(root_hash) != ROOT_HASH_SIZE:
        raise NoteError(f"checkpoint root hash must be {ROOT_HASH_SIZE} bytes")
    if any(not line for line in extensions):
        raise NoteError("checkpoint extension lines must be non-empty")
    return origin, tree_size, root_hash, tuple(extensions)


# --------------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_body(
    origin: str, tree_size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """The checkpoint note body for a tree head (validated as open_checkpoint would)."""
    if isinstance(extensions, str):
        raise NoteError("extensions must be a sequence of lines, not a string")
    if isinstance(tree_size, bool) or not isinstance(tree_size, int):
        raise NoteError("tree size must be an int")
    if not 0 <= tree_size <= MAX_TREE_SIZE:
        raise NoteError("tree size must be in [0, 2**64)")
    if not isinstance(root_hash, bytes | bytearray) or len(root_hash) != ROOT_HASH_SIZE:
        raise NoteError(f"root hash must be {ROOT_HASH_SIZE} bytes")
    for line in (origin, *extensions):
        if not isinstance(line, str) or not line or "\n" in line:
            raise NoteError("origin and extension lines must be non-empty single lines")
    body = f"{origin}\n{tree_size}\n{_b64encode(bytes(root_hash))}\n"
    body += "".join(f"{line}\n" for line in extensions)
    _check_text(body, "checkpoint body")
    _parse_body(body)  # the same limits as parsing
    return body


def parse_checkpoint_unverified(text: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint note WITHOUT checking any signature (format only)."""
    full, body, _ = _split_note(text)
    origin, tree_size, root_hash, extensions = _parse_body(body)
    return Checkpoint(origin, tree_size, root_hash, extensions, full)


def _open(text: str | bytes, vkey: str) -> tuple[str, str]:
    name, public_key = parse_verifier_key(vkey)
    expected_id = key_hash(name, _raw_public_key(public_key))
    full, body, signatures = _split_note(text)
    message = body.encode("utf-8")
    verified = False
    for sig_name, sig in signatures:
        if sig_name != name or sig[:KEY_HASH_SIZE] != expected_id:
            continue  # unknown key: ignored
        try:
            if len(sig) != KEY_HASH_SIZE + 64:
                raise InvalidSignature
            public_key.verify(sig[KEY_HASH_SIZE:], message)
        except InvalidSignature:
            raise NoteError(f"invalid signature by {name}+{expected_id.hex()}") from None
        verified = True
    if not verified:
        raise NoteError(f"note has no signature by {name}+{expected_id.hex()}")
    return full, body


def open_note(text: str | bytes, vkey: str) -> str:
    """The body of a signed note that carries a valid signature by verifier key `vkey`.

    Signature lines by other keys are ignored; every line by this key must verify. Raises
    NoteError on any failure.
    """
    return _open(text, vkey)[1]


def open_checkpoint(text: str | bytes, vkey: str) -> Checkpoint:
    """Parse a checkpoint that carries a valid signature by verifier key `vkey`.

    Signature lines by other keys are ignored; every line by this key must verify. Checking that
    the origin is the expected one is the caller's job. Raises NoteError on any failure.
    """
    full, body = _open(text, vkey)
    origin, tree_size, root_hash, extensions = _parse_body(body)
    return Checkpoint(origin, tree_size, root_hash, extensions, full)
