"""schemas.merkle against an independent reference written straight from RFC 9162 section 2.1.

The reference (MTH, PATH, PROOF/SUBPROOF over the list of leaf data, and the RFC's own verification
algorithms of 2.1.3.2 and 2.1.4.2) uses hashlib only and shares no code with the module. The module's
node dicts are built only through append_nodes, one leaf at a time.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from typing import cast

import pytest

from schemas import merkle

MAX_N = 64


# --------------------------------------------------------------------------------------------------
# Reference implementation (RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1, 2.1.3.2, 2.1.4.2)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _k(n)
    return _sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def _lsb(x: int) -> int:
    return x & 1


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, h: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, h
    for p in path:
        if sn == 0:
            return False
        if _lsb(fn) or fn == sn:
            r = _sha(b"\x01" + p + r)
            if not _lsb(fn):
                while True:
                    fn >>= 1
                    sn >>= 1
                    if _lsb(fn) or fn == 0:
                        break
        else:
            r = _sha(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2, step by step (for 0 < first < second)."""
    path = list(path)
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    if _lsb(fn):
        while _lsb(fn):
            fn >>= 1
            sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if _lsb(fn) or fn == sn:
            fr = _sha(b"\x01" + c + fr)
            sr = _sha(b"\x01" + c + sr)
            if not _lsb(fn):
                while True:
                    fn >>= 1
                    sn >>= 1
                    if _lsb(fn) or fn == 0:
                        break
        else:
            sr = _sha(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# --------------------------------------------------------------------------------------------------
# Fixtures: one tree of MAX_N leaves; prefixes of it are the smaller trees.

DATA = [f"leaf {i}".encode() + bytes([i % 256]) * (i % 5) for i in range(MAX_N)]
REF_ROOTS = [ref_mth(DATA[:n]) for n in range(MAX_N + 1)]


def _build_nodes() -> dict[merkle.Node, bytes]:
    nodes: dict[merkle.Node, bytes] = {}
    for i, data in enumerate(DATA):
        leaf = merkle.leaf_hash(data)
        siblings = {key: nodes[key] for key in merkle.append_keys(i)}
        new = merkle.append_nodes(i, leaf, siblings)
        assert (0, i) in new
        assert not set(new) & set(nodes)
        nodes.update(new)
    return nodes


NODES = _build_nodes()


def _bound(n: int) -> int:
    return 2 * math.ceil(math.log2(n)) + 2 if n > 1 else 2


def _perfect_and_present(keys: set[merkle.Node], n: int) -> bool:
    return all(lv >= 0 and idx >= 0 and (idx + 1) << lv <= n for lv, idx in keys)


def _restrict(keys: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    return {key: NODES[key] for key in keys}


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# --------------------------------------------------------------------------------------------------
# Tests


def test_hash_primitives_and_empty_root() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"abc") == _sha(b"\x00abc")
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == _sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert merkle.root_from(0, {}) == merkle.EMPTY_ROOT
    assert merkle.root_keys(0) == set()
    assert merkle.root_of_leaves([]) == merkle.EMPTY_ROOT


def test_rfc6962_known_root() -> None:
    # Root of the 8-leaf tree of RFC 6962's / certificate-transparency-go's test leaves.
    leaves = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    root = merkle.root_of_leaves([merkle.leaf_hash(x) for x in leaves])
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert root == ref_mth(leaves)


def test_append_keys_are_left_siblings() -> None:
    assert merkle.append_keys(0) == []
    assert merkle.append_keys(1) == [(0, 0)]
    assert merkle.append_keys(2) == []
    assert merkle.append_keys(3) == [(0, 2), (1, 0)]
    assert merkle.append_keys(7) == [(0, 6), (1, 2), (2, 0)]
    for i in range(MAX_N):
        keys = merkle.append_keys(i)
        assert _perfect_and_present(set(keys), i)  # all exist before the append
        assert len(keys) <= max(1, math.ceil(math.log2(i + 1)))


def test_every_perfect_node_is_built() -> None:
    expected = {
        (lv, idx) for lv in range(7) for idx in range(MAX_N >> lv) if (idx + 1) << lv <= MAX_N
    }
    assert set(NODES) == expected
    for (lv, idx), value in NODES.items():
        assert value == ref_mth(DATA[idx << lv : (idx + 1) << lv])


def test_root_from_matches_reference_every_size() -> None:
    for n in range(MAX_N + 1):
        keys = merkle.root_keys(n)
        assert _perfect_and_present(keys, n)
        assert len(keys) <= max(n.bit_length(), 0)
        assert merkle.root_from(n, _restrict(keys)) == REF_ROOTS[n]
        assert merkle.root_of_leaves([merkle.leaf_hash(x) for x in DATA[:n]]) == REF_ROOTS[n]


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_every_index(n: int) -> None:
    d = DATA[:n]
    root = REF_ROOTS[n]
    for m in range(n):
        keys = merkle.inclusion_keys(m, n)
        assert _perfect_and_present(keys, n)
        assert len(keys) <= _bound(n)
        proof = merkle.inclusion_proof(m, n, _restrict(keys))
        assert proof == ref_path(m, d)
        assert all(type(p) is bytes and len(p) == 32 for p in proof)
        leaf = merkle.leaf_hash(d[m])
        assert merkle.verify_inclusion(leaf, m, n, proof, root)
        assert rfc_verify_inclusion(m, n, leaf, proof, root)


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_every_pair(n: int) -> None:
    d = DATA[:n]
    for m in range(1, n + 1):
        keys = merkle.consistency_keys(m, n)
        assert _perfect_and_present(keys, n)
        assert len(keys) <= _bound(n)
        proof = merkle.consistency_proof(m, n, _restrict(keys))
        expected = ref_proof(m, d)
        assert proof == expected
        assert all(type(p) is bytes and len(p) == 32 for p in proof)
        assert merkle.verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof)
        if m < n:
            assert rfc_verify_consistency(m, n, REF_ROOTS[m], REF_ROOTS[n], proof)
        else:
            assert proof == []


def test_equal_and_empty_consistency() -> None:
    for n in (1, 5, 64):
        assert merkle.verify_consistency(n, n, REF_ROOTS[n], REF_ROOTS[n], [])
        assert not merkle.verify_consistency(n, n, REF_ROOTS[n], REF_ROOTS[n - 1], [])
        assert not merkle.verify_consistency(n, n, REF_ROOTS[n], REF_ROOTS[n], [REF_ROOTS[n]])
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 7, merkle.EMPTY_ROOT, REF_ROOTS[7], [])
    assert not merkle.verify_consistency(0, 7, REF_ROOTS[1], REF_ROOTS[7], [])
    assert not merkle.verify_consistency(0, 7, merkle.EMPTY_ROOT, REF_ROOTS[7], [REF_ROOTS[1]])


def test_inclusion_tampering_fails() -> None:
    rng = random.Random(9162)
    for n in range(1, MAX_N + 1):
        root = REF_ROOTS[n]
        for m in sorted({0, n - 1, rng.randrange(n), rng.randrange(n)}):
            leaf = merkle.leaf_hash(DATA[m])
            proof = merkle.inclusion_proof(m, n, NODES)
            assert merkle.verify_inclusion(leaf, m, n, proof, root)
            for pos in range(len(proof)):
                bad = list(proof)
                bad[pos] = _flip(bad[pos], rng.randrange(256))
                assert not merkle.verify_inclusion(leaf, m, n, bad, root)
                assert not rfc_verify_inclusion(m, n, leaf, bad, root)
            assert not merkle.verify_inclusion(_flip(leaf, rng.randrange(256)), m, n, proof, root)
            assert not merkle.verify_inclusion(leaf, m, n, proof, _flip(root, 3))
            for wrong_m in {m - 1, m + 1, rng.randrange(n + 2)} - {m}:
                assert not merkle.verify_inclusion(leaf, wrong_m, n, proof, root)
                if wrong_m >= 0:  # the RFC's indices are unsigned
                    assert not rfc_verify_inclusion(wrong_m, n, leaf, proof, root)
            for wrong_n in {n - 1, n + 1, 2 * n, rng.randrange(1, 2 * MAX_N)} - {n}:
                # Against the true root of a tree of the wrong size: always rejected.
                if m < wrong_n <= MAX_N:
                    assert not merkle.verify_inclusion(leaf, m, wrong_n, proof, REF_ROOTS[wrong_n])
                # Against the same root value some sizes share the proof's shape (the RFC
                # algorithm accepts those too: the hashes cannot tell the size apart).
                got = merkle.verify_inclusion(leaf, m, wrong_n, proof, root)
                assert got == (m < wrong_n and rfc_verify_inclusion(m, wrong_n, leaf, proof, root))
            if proof:
                assert not merkle.verify_inclusion(leaf, m, n, proof[:-1], root)
                assert not rfc_verify_inclusion(m, n, leaf, proof[:-1], root)
            assert not merkle.verify_inclusion(leaf, m, n, [*proof, root], root)
            assert not rfc_verify_inclusion(m, n, leaf, [*proof, root], root)


def test_consistency_tampering_fails() -> None:
    rng = random.Random(6962)
    for n in range(2, MAX_N + 1):
        for m in sorted({1, n - 1, rng.randrange(1, n), rng.randrange(1, n)}):
            old, new = REF_ROOTS[m], REF_ROOTS[n]
            proof = merkle.consistency_proof(m, n, NODES)
            assert merkle.verify_consistency(m, n, old, new, proof)
            for pos in range(len(proof)):
                bad = list(proof)
                bad[pos] = _flip(bad[pos], rng.randrange(256))
                assert not merkle.verify_consistency(m, n, old, new, bad)
                assert not rfc_verify_consistency(m, n, old, new, bad)
            assert not merkle.verify_consistency(m, n, _flip(old, 1), new, proof)
            assert not merkle.verify_consistency(m, n, old, _flip(new, 1), proof)
            assert not merkle.verify_consistency(m, n, new, old, proof)
            for wrong_m in {m - 1, m + 1, rng.randrange(1, n + 1)} - {m}:
                if 0 < wrong_m < n:
                    wrong_old = REF_ROOTS[wrong_m]
                    assert not merkle.verify_consistency(wrong_m, n, wrong_old, new, proof)
                    got = merkle.verify_consistency(wrong_m, n, old, new, proof)
                    assert got == rfc_verify_consistency(wrong_m, n, old, new, proof)
            for wrong_n in {n - 1, n + 1, 2 * n} - {n}:
                if m < wrong_n <= MAX_N:
                    wrong_new = REF_ROOTS[wrong_n]
                    assert not merkle.verify_consistency(m, wrong_n, old, wrong_new, proof)
                got = merkle.verify_consistency(m, wrong_n, old, new, proof)
                assert got == (m < wrong_n and rfc_verify_consistency(m, wrong_n, old, new, proof))
            assert not merkle.verify_consistency(m, n, old, new, proof[:-1])
            assert not merkle.verify_consistency(m, n, old, new, proof[1:])
            assert not merkle.verify_consistency(m, n, old, new, [*proof, new])
            assert not merkle.verify_consistency(m, n, old, new, [old, *proof])
            assert not rfc_verify_consistency(m, n, old, new, [*proof, new])


def test_verifiers_never_raise_on_garbage() -> None:
    leaf = merkle.leaf_hash(DATA[0])
    proof = merkle.inclusion_proof(0, 5, NODES)
    root = REF_ROOTS[5]
    garbage: list[tuple[object, ...]] = [
        (leaf, -1, 5, proof, root),
        (leaf, 5, 5, proof, root),
        (leaf, 0, 0, [], root),
        (leaf, 0, -3, proof, root),
        (leaf, 0, 1 << 70, proof, root),
        (leaf, True, 5, proof, root),
        (leaf, "0", 5, proof, root),
        (leaf[:31], 0, 5, proof, root),
        (leaf, 0, 5, proof, root + b"\x00"),
        (leaf, 0, 5, [p[:16] for p in proof], root),
        (leaf, 0, 5, [None, *proof[1:]], root),
        (leaf, 0, 5, b"".join(proof), root),
        (leaf, 0, 5, None, root),
        (None, 0, 5, proof, root),
    ]
    for args in garbage:
        assert merkle.verify_inclusion(*args) is False  # type: ignore[arg-type]
    cproof = merkle.consistency_proof(3, 5, NODES)
    old, new = REF_ROOTS[3], REF_ROOTS[5]
    cgarbage: list[tuple[object, ...]] = [
        (5, 3, new, old, cproof),
        (-1, 5, old, new, cproof),
        (3, 1 << 70, old, new, cproof),
        (3, 5, old[:5], new, cproof),
        (3, 5, old, None, cproof),
        (3, 5, old, new, [*cproof[:-1], cproof[-1] + b"x"]),
        (3, 5, old, new, [*cproof[:-1], 7]),
        (3, 5, old, new, b"".join(cproof)),
        (3, 5, old, new, None),
        (3, 5, old, new, []),
        (3.0, 5, old, new, cproof),
    ]
    for args in cgarbage:
        assert merkle.verify_consistency(*args) is False  # type: ignore[arg-type]


def test_value_errors() -> None:
    with pytest.raises(ValueError, match="out of range"):
        merkle.inclusion_proof(5, 5, NODES)
    with pytest.raises(ValueError, match="out of range"):
        merkle.inclusion_keys(0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        merkle.inclusion_keys(-1, 5)
    with pytest.raises(ValueError, match=">= 0"):
        merkle.root_keys(-1)
    with pytest.raises(ValueError, match=">= 0"):
        merkle.root_from(-2, NODES)
    with pytest.raises(ValueError, match="larger than"):
        merkle.consistency_keys(6, 5)
    with pytest.raises(ValueError, match="larger than"):
        merkle.consistency_proof(6, 5, NODES)
    with pytest.raises(ValueError, match="empty tree"):
        merkle.consistency_proof(0, 5, NODES)
    with pytest.raises(ValueError, match="empty tree"):
        merkle.consistency_keys(0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        merkle.append_keys(-1)
    with pytest.raises(ValueError, match="32-byte"):
        merkle.append_nodes(0, b"short", {})
    with pytest.raises(ValueError, match="missing Merkle node"):
        merkle.append_nodes(1, merkle.leaf_hash(b"x"), {})
    with pytest.raises(ValueError, match="missing Merkle node"):
        merkle.root_from(3, {(1, 0): NODES[(1, 0)]})
    with pytest.raises(ValueError, match="missing Merkle node"):
        merkle.inclusion_proof(0, 8, _restrict(merkle.inclusion_keys(0, 8) - {(0, 1)}))
    with pytest.raises(ValueError, match="not a 32-byte"):
        merkle.root_from(1, {(0, 0): b"\x00" * 31})
    with pytest.raises(ValueError, match="must be an int"):
        merkle.root_keys(1.5)  # type: ignore[arg-type]


def test_large_tree_key_bounds() -> None:
    # No leaf list needed: the key sets stay logarithmic even for huge trees.
    n = (1 << 40) + 12345
    for m in (0, 1, n // 3, n - 2, n - 1):
        assert len(merkle.inclusion_keys(m, n)) <= _bound(n)
        assert _perfect_and_present(merkle.inclusion_keys(m, n), n)
    for m in (1, 2, 1 << 20, n // 2, n - 1, n):
        keys = merkle.consistency_keys(m, n)
        assert len(keys) <= _bound(n)
        assert _perfect_and_present(keys, n)
    assert len(merkle.root_keys(n)) == bin(n).count("1")


def test_memoryview_nodes_from_a_database_driver() -> None:
    # psycopg and friends hand BYTEA back as memoryview; the module accepts any bytes-like hash.
    keys = merkle.inclusion_keys(5, 13)
    as_views = cast(dict[merkle.Node, bytes], {key: memoryview(NODES[key]) for key in keys})
    proof = merkle.inclusion_proof(5, 13, as_views)
    assert proof == ref_path(5, DATA[:13])
    assert all(type(p) is bytes for p in proof)
    leaf = cast(bytes, memoryview(merkle.leaf_hash(DATA[5])))
    views = [cast(bytes, memoryview(p)) for p in proof]
    assert merkle.verify_inclusion(leaf, 5, 13, views, REF_ROOTS[13])
