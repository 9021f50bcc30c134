"""schemas.note: C2SP signed notes and tlog checkpoints.

Known vectors come from golang.org/x/mod/sumdb/note (note_test.go): the PeterNeumann and EnochRoot
keys, their signatures over the same text, and Go's table of malformed notes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import note
from schemas.note import Checkpoint, NoteError

# --- golang.org/x/mod/sumdb/note vectors ---------------------------------------------------------
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = TEXT + "\n" + PETER_SIG

ROOT = hashlib.sha256(b"some root").digest()
_FF32 = b"\xff" * 32
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _non_canonical_b64(raw: bytes) -> str:
    """Base64 of 32 bytes with non-zero unused trailing bits (decodes to the same bytes)."""
    text = base64.b64encode(raw).decode()
    last = _B64_ALPHABET.index(text[-2]) | 1
    out = text[:-2] + _B64_ALPHABET[last] + "="
    assert out != text
    assert base64.b64decode(out) == raw
    return out


def _peter_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 1
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


@pytest.fixture(scope="module")
def log_key() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, note.verifier_key("example.com/log", key.public_key())


@pytest.fixture(scope="module")
def signed(log_key: tuple[Ed25519PrivateKey, str]) -> str:
    body = note.checkpoint_body("example.com/log", 12345, ROOT)
    return note.sign_note(body, "example.com/log", log_key[0])


# --- known vectors -------------------------------------------------------------------------------


def test_go_verifier_keys_round_trip() -> None:
    for vkey, name, kid in (
        (PETER_VKEY, "PeterNeumann", "c74f20a3"),
        (ENOCH_VKEY, "EnochRoot", "af0cfe78"),
    ):
        got_name, public_key = note.parse_verifier_key(vkey)
        assert got_name == name
        assert note.verifier_key(name, public_key) == vkey
        raw = base64.b64decode(vkey.split("+", 2)[2])[1:]
        assert note.key_hash(name, raw).hex() == kid


def test_go_vector_sign_is_byte_identical() -> None:
    key = _peter_private_key()
    assert note.verifier_key("PeterNeumann", key.public_key()) == PETER_VKEY
    assert note.sign_note(TEXT, "PeterNeumann", key) == GO_NOTE


def test_go_vector_open() -> None:
    assert note.open_note(GO_NOTE, PETER_VKEY) == TEXT
    assert note.open_note(GO_NOTE.encode(), PETER_VKEY) == TEXT
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert note.open_note(both, PETER_VKEY) == TEXT  # Enoch's line: unknown key, ignored
    assert note.open_note(both, ENOCH_VKEY) == TEXT
    with pytest.raises(NoteError, match="no signature"):
        note.open_note(GO_NOTE, ENOCH_VKEY)
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note(GO_NOTE.replace("cryptography", "cryptographY"), PETER_VKEY)
    bad_sig = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note(TEXT + "\n" + bad_sig, PETER_VKEY)
    # A valid note whose body is not a checkpoint.
    with pytest.raises(NoteError, match="checkpoint"):
        note.open_checkpoint(GO_NOTE, PETER_VKEY)


def test_go_malformed_notes() -> None:
    bad = [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "\u2014 Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ]
    for msg in bad:
        with pytest.raises(NoteError):
            note.open_note(msg, PETER_VKEY)
    with pytest.raises(NoteError, match="UTF-8"):
        note.open_note(b"\xff" + GO_NOTE.encode(), PETER_VKEY)


def test_signature_count_limit() -> None:
    assert note.open_note(TEXT + "\n" + PETER_SIG * 100, PETER_VKEY) == TEXT
    with pytest.raises(NoteError, match="more than 100"):
        note.open_note(TEXT + "\n" + PETER_SIG * 101, PETER_VKEY)
    with pytest.raises(NoteError, match="more than 100"):
        note.open_note(TEXT + "\n" + ENOCH_SIG * 101, PETER_VKEY)


def test_go_verifier_key_manglings_rejected() -> None:
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(NoteError):
                    note.parse_verifier_key(b[i:j])
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(NoteError):
            note.parse_verifier_key(mangled)
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
        "++",
    ):
        with pytest.raises(NoteError):
            note.parse_verifier_key(bad)
    # Upper-case hex is accepted, as by Go's strconv.ParseUint.
    assert note.parse_verifier_key(PETER_VKEY.replace("c74f20a3", "C74F20A3"))[0] == "PeterNeumann"


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_round_trip(log_key: tuple[Ed25519PrivateKey, str], signed: str) -> None:
    _, vkey = log_key
    cp = note.open_checkpoint(signed, vkey)
    assert cp == Checkpoint("example.com/log", 12345, ROOT, (), signed)
    assert note.parse_checkpoint_unverified(signed) == cp
    root_b64 = base64.b64encode(ROOT).decode()
    assert signed.startswith(f"example.com/log\n12345\n{root_b64}\n\n\u2014 example.com/log ")
    assert signed.count("\n") == 5


def test_checkpoint_with_extensions_and_cosignature(log_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, vkey = log_key
    body = note.checkpoint_body("example.com/log", 0, ROOT, ["ext one", "ext-2 \u00e9"])
    assert body.endswith("ext one\next-2 \u00e9\n")
    text = note.sign_note(body, "example.com/log", key)
    witness = Ed25519PrivateKey.generate()
    cosigned = text + note.sign_note(body, "witness.example", witness).split("\n\n")[-1]
    for t in (text, cosigned):
        cp = note.open_checkpoint(t, vkey)
        assert (cp.origin, cp.tree_size, cp.root_hash) == ("example.com/log", 0, ROOT)
        assert cp.extensions == ("ext one", "ext-2 \u00e9")
        assert cp.text == t
    wvkey = note.verifier_key("witness.example", witness.public_key())
    assert note.open_checkpoint(cosigned, wvkey).tree_size == 0
    with pytest.raises(NoteError, match="no signature"):
        note.open_checkpoint(text, wvkey)


def test_tampering_fails(log_key: tuple[Ed25519PrivateKey, str], signed: str) -> None:
    _, vkey = log_key
    body, sig_line = signed.split("\n\n")
    other_root = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    root_b64 = base64.b64encode(ROOT).decode()
    tampered = [
        signed.replace("12345", "12346"),
        signed.replace("example.com/log\n", "example.com/lag\n", 1),
        signed.replace(root_b64, other_root),
        body + "\nextension\n\n" + sig_line,
    ]
    sig_b64 = sig_line.split(" ")[2].rstrip("\n")
    sig = bytearray(base64.b64decode(sig_b64))
    for pos in (4, 20, 40, 67):
        flipped = bytearray(sig)
        flipped[pos] ^= 0x01
        tampered.append(signed.replace(sig_b64, base64.b64encode(bytes(flipped)).decode()))
    tampered.append(signed.replace(sig_b64, base64.b64encode(bytes(sig[:-1])).decode()))
    for t in tampered:
        with pytest.raises(NoteError):
            note.open_checkpoint(t, vkey)
    # The key ID bytes changed: it is another (unknown) key's line, so there is no signature.
    wrong_id = bytearray(sig)
    wrong_id[0] ^= 0x01
    with pytest.raises(NoteError, match="no signature"):
        note.open_checkpoint(
            signed.replace(sig_b64, base64.b64encode(bytes(wrong_id)).decode()), vkey
        )


def test_wrong_key_fails(signed: str) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(NoteError, match="no signature"):
        note.open_checkpoint(signed, note.verifier_key("example.com/log", other))
    with pytest.raises(NoteError, match="no signature"):
        note.open_checkpoint(signed, PETER_VKEY)
    with pytest.raises(NoteError):
        note.open_checkpoint(signed, "not a key")


@pytest.mark.parametrize(
    "size_line",
    ["007", "00", "+5", "-1", " 5", "5 ", "", "1_000", "\u0665", "1e3", "0x10", str(1 << 64)],
)
def test_non_canonical_sizes_rejected(
    log_key: tuple[Ed25519PrivateKey, str], size_line: str
) -> None:
    key, vkey = log_key
    body = f"example.com/log\n{size_line}\n{base64.b64encode(ROOT).decode()}\n"
    text = note.sign_note(body, "example.com/log", key)
    with pytest.raises(NoteError, match="tree size"):
        note.open_checkpoint(text, vkey)
    with pytest.raises(NoteError, match="tree size"):
        note.parse_checkpoint_unverified(text)


def test_max_size_accepted(log_key: tuple[Ed25519PrivateKey, str]) -> None:
    key, _vkey = log_key
    text = note.sign_note(note.checkpoint_body("o", (1 << 64) - 1, ROOT), "o", key)
    assert note.parse_checkpoint_unverified(text).tree_size == (1 << 64) - 1


@pytest.mark.parametrize(
    "body",
    [
        f"o\n1\n{base64.b64encode(b'x' * 31).decode()}\n",
        f"o\n1\n{base64.b64encode(b'x' * 33).decode()}\n",
        f"o\n1\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",
        f"o\n1\n{base64.urlsafe_b64encode(_FF32).decode()}\n",
        f"o\n1\n{_non_canonical_b64(ROOT)}\n",
        f"o\n1\n {base64.b64encode(ROOT).decode()}\n",
        f"\n1\n{base64.b64encode(ROOT).decode()}\n",
        "o\n1\n",
        f"o\n1\n{base64.b64encode(ROOT).decode()}\n\next\n",
        "o\n",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(NoteError):
        note.parse_checkpoint_unverified(note.sign_note(body, "o", Ed25519PrivateKey.generate()))


def test_note_text_rules(signed: str, log_key: tuple[Ed25519PrivateKey, str]) -> None:
    _, vkey = log_key
    body, sig_line = signed.split("\n\n")
    for bad in (
        signed.replace("example.com/log\n", "example.com/log\r\n", 1),
        signed.replace("example.com/log\n", "example.com\t/log\n", 1),
        "\x00" + signed,
        signed.replace("example", "exa\ud800mple", 1),
        signed + "\n",
        signed[:-1],
        signed.replace("\u2014 ", "- "),
        signed.replace("\u2014 ", "\u2014  "),
        signed.replace("\u2014 example.com/log ", "\u2014 example.com/log+x "),
        body + "\n" + "\u2014 " + "a" * note.MAX_LINE_BYTES + " AAAAAAAA\n" + sig_line,
        signed + "x" * note.MAX_NOTE_BYTES,
    ):
        with pytest.raises(NoteError):
            note.open_checkpoint(bad, vkey)
        with pytest.raises(NoteError):
            note.parse_checkpoint_unverified(bad)
    with pytest.raises(NoteError):
        note.open_checkpoint(b"\xc3\x28" + signed.encode(), vkey)
    with pytest.raises(NoteError):
        note.open_checkpoint(None, vkey)  # type: ignore[arg-type]


def test_builders_reject_bad_input() -> None:
    key = Ed25519PrivateKey.generate()
    for name in ("", "a b", "a+b", "a\u00a0b", "a\nb"):
        with pytest.raises(NoteError, match="key name"):
            note.sign_note("x\n", name, key)
        with pytest.raises(NoteError, match="key name"):
            note.verifier_key(name, key.public_key())
    for body in ("", "no newline", "ctrl\x07\n", "cr\r\n"):
        with pytest.raises(NoteError):
            note.sign_note(body, "ok", key)
    with pytest.raises(NoteError, match="32 bytes"):
        note.key_hash("ok", b"\x00" * 31)
    with pytest.raises(NoteError, match="tree size"):
        note.checkpoint_body("o", -1, ROOT)
    with pytest.raises(NoteError, match="tree size"):
        note.checkpoint_body("o", 1 << 64, ROOT)
    with pytest.raises(NoteError, match="tree size"):
        note.checkpoint_body("o", True, ROOT)
    with pytest.raises(NoteError, match="root hash"):
        note.checkpoint_body("o", 1, ROOT[:-1])
    for origin, exts in (("", ()), ("a\nb", ()), ("o", ("",)), ("o", ("a\nb",)), ("o", ("\x01",))):
        with pytest.raises(NoteError):
            note.checkpoint_body(origin, 1, ROOT, exts)
    with pytest.raises(NoteError, match="sequence"):
        note.checkpoint_body("o", 1, ROOT, "ext")
    assert issubclass(NoteError, ValueError)


# --- property tests ------------------------------------------------------------------------------

_NOTE_ALPHABET = st.sampled_from(["\n", "\n\n", "\u2014 ", " ", "+", "=", "/", "A", "0", "1", "o"])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text() | st.lists(_NOTE_ALPHABET, max_size=40).map("".join))
def test_arbitrary_text_only_raises_note_error(
    text: str, log_key: tuple[Ed25519PrivateKey, str]
) -> None:
    _, vkey = log_key
    for func in (
        lambda: note.open_checkpoint(text, vkey),
        lambda: note.parse_checkpoint_unverified(text),
    ):
        with contextlib.suppress(NoteError):
            func()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_notes_only_raise_note_error(
    data: st.DataObject, log_key: tuple[Ed25519PrivateKey, str], signed: str
) -> None:
    _, vkey = log_key
    pos = data.draw(st.integers(0, len(signed)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.text(max_size=3) | _NOTE_ALPHABET)
    mutated = signed[:pos] + insert + signed[pos + cut :]
    try:
        cp = note.open_checkpoint(mutated, vkey)
    except NoteError:
        return
    # Anything that still opens must carry exactly the signed tree head.
    assert (cp.origin, cp.tree_size, cp.root_hash) == ("example.com/log", 12345, ROOT)


@settings(max_examples=200, deadline=None)
@given(vkey=st.text(max_size=80))
def test_arbitrary_verifier_keys_only_raise_note_error(vkey: str) -> None:
    with contextlib.suppress(NoteError):
        note.parse_verifier_key(vkey)
