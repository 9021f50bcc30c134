"""RFC 9162 (section 2.1) Merkle tree hashing, proofs and proof verification.

Leaf hash = SHA-256(0x00 || data), interior node = SHA-256(0x01 || left || right), and the root of
the empty tree is SHA-256(""). The registry stores the hash of every *perfect* subtree: node
``(level, index)`` is the hash of leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0
holds the leaf hashes. Nothing here ever needs the whole leaf list: each operation first names the
O(log n) perfect nodes it needs (the ``*_keys`` functions) and then computes from a mapping that
holds at least those nodes.

Every range ``[lo, hi)`` that appears in the RFC's recursive definitions starts at a multiple of
the smallest power of two >= its length, so it splits into the perfect pieces of its binary
decomposition (sizes descending) and its hash is the right fold ``H(p1, H(p2, H(p3, ...)))``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

Node = tuple[int, int]
"""A perfect subtree ``(level, index)``, over leaves [index * 2**level, (index + 1) * 2**level)."""

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

# Verifiers reject tree sizes past the RFC's uint64 range instead of looping over huge integers.
_MAX_TREE_SIZE = (1 << 64) - 1

_Range = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + bytes(left) + bytes(right)).digest()


# --------------------------------------------------------------------------------------------------
# Helpers


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _pieces(lo: int, hi: int) -> list[Node]:
    """The perfect nodes of the binary decomposition of ``[lo, hi)``, largest first."""
    nodes: list[Node] = []
    offset = lo
    length = hi - lo
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            width = 1 << level
            if offset % width:  # cannot happen for ranges of the RFC recursion
                raise AssertionError(f"range [{lo}, {hi}) is not aligned")
            nodes.append((level, offset >> level))
            offset += width
    return nodes


def _get(nodes: Mapping[Node, bytes], key: Node) -> bytes:
    try:
        value = nodes[key]
    except KeyError:
        raise ValueError(f"missing Merkle node (level={key[0]}, index={key[1]})") from None
    raw = _as_hash(value)
    if raw is None:
        raise ValueError(f"Merkle node (level={key[0]}, index={key[1]}) is not a 32-byte hash")
    return raw


def _range_hash(lo: int, hi: int, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[lo:hi]) for a non-empty range of the RFC recursion, folded from its pieces."""
    pieces = _pieces(lo, hi)
    acc = _get(nodes, pieces[-1])
    for key in reversed(pieces[:-1]):
        acc = node_hash(_get(nodes, key), acc)
    return acc


def _keys_of(ranges: Sequence[_Range]) -> set[Node]:
    keys: set[Node] = set()
    for lo, hi in ranges:
        keys.update(_pieces(lo, hi))
    return keys


def _inclusion_ranges(index: int, size: int) -> list[_Range]:
    """The ranges whose hashes form PATH(index, D[0:size]), leaf-to-root order."""
    index = _check_int(index, "index")
    size = _check_int(size, "size")
    if index >= size:
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    siblings: list[_Range] = []  # root-to-leaf while descending
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """The ranges whose hashes form PROOF(old_size, D[0:new_size]), in proof order."""
    old_size = _check_int(old_size, "old_size")
    new_size = _check_int(new_size, "new_size")
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} is larger than new_size {new_size}")
    if old_size == 0:
        raise ValueError("no consistency proof from the empty tree (old_size must be >= 1)")
    appended: list[_Range] = []  # outermost first while descending
    m, lo, hi, complete = old_size, 0, new_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            appended.append((lo + k, hi))
            hi = lo + k
        else:
            appended.append((lo, lo + k))
            m -= k
            lo += k
            complete = False
    appended.reverse()
    return appended if complete else [(lo, hi), *appended]


def _proof_hashes(nodes: Mapping[Node, bytes], ranges: Sequence[_Range]) -> list[bytes]:
    return [_range_hash(lo, hi, nodes) for lo, hi in ranges]


def _as_hash(value: object) -> bytes | None:
    """`value` as 32 raw bytes (bytes, bytearray or a database driver's memoryview), else None."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == HASH_SIZE:
            return raw
    return None


def _is_hash(value: object) -> bool:
    return _as_hash(value) is not None


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TREE_SIZE


# --------------------------------------------------------------------------------------------------
# Appending


def append_keys(index: int) -> list[Node]:
    """Perfect nodes to read (left siblings) when appending leaf number `index` (0-based, so the
    tree grows from size index to index+1)."""
    index = _check_int(index, "index")
    keys: list[Node] = []
    level, i = 0, index
    while i & 1:
        keys.append((level, i - 1))
        level += 1
        i >>= 1
    return keys


def append_nodes(index: int, leaf: bytes, siblings: Mapping[Node, bytes]) -> dict[Node, bytes]:
    """The perfect nodes completed by appending leaf hash `leaf` at `index` (always includes
    (0, index)); `siblings` holds at least append_keys(index)."""
    index = _check_int(index, "index")
    if not _is_hash(leaf):
        raise ValueError("leaf must be a 32-byte leaf hash")
    acc = bytes(leaf)
    out: dict[Node, bytes] = {(0, index): acc}
    level, i = 0, index
    while i & 1:
        acc = node_hash(_get(siblings, (level, i - 1)), acc)
        level += 1
        i >>= 1
        out[(level, i)] = acc
    return out


def root_of_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a (small) list of leaf hashes, built with append_nodes and root_from."""
    nodes: dict[Node, bytes] = {}
    for index, leaf in enumerate(leaf_hashes):
        nodes.update(append_nodes(index, leaf, nodes))
    return root_from(len(leaf_hashes), nodes)


# --------------------------------------------------------------------------------------------------
# Roots and proofs


def frontier_keys(size: int) -> list[Node]:
    """The perfect nodes of the decomposition of ``[0, size)``, largest first: all an append
    needs (its siblings and the new root) and, for the last leaf, its whole inclusion proof."""
    return _pieces(0, _check_int(size, "size"))


def pack_frontier(size: int, nodes: Mapping[Node, bytes]) -> bytes:
    """The hashes of frontier_keys(size), concatenated (how the registry stores the frontier)."""
    return b"".join(_get(nodes, key) for key in frontier_keys(size))


def unpack_frontier(size: int, packed: bytes) -> dict[Node, bytes]:
    """The inverse of pack_frontier."""
    keys = frontier_keys(size)
    if len(packed) != HASH_SIZE * len(keys):
        raise ValueError(f"a frontier of {len(packed)} bytes does not fit tree size {size}")
    return {key: packed[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i, key in enumerate(keys)}


def root_keys(size: int) -> set[Node]:
    """Perfect nodes needed for the root of a tree of `size` leaves (none for the empty tree)."""
    size = _check_int(size, "size")
    return set(_pieces(0, size))


def root_from(size: int, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[0:size]) from a mapping holding at least root_keys(size)."""
    size = _check_int(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, nodes)


def inclusion_keys(index: int, size: int) -> set[Node]:
    """Perfect nodes needed for inclusion_proof(index, size)."""
    return _keys_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size]), leaf-to-root order."""
    return _proof_hashes(nodes, _inclusion_ranges(index, size))


def consistency_keys(old_size: int, new_size: int) -> set[Node]:
    """Perfect nodes needed for consistency_proof(old_size, new_size)."""
    return _keys_of(_consistency_ranges(old_size, new_size))


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size]); empty when the sizes are equal."""
    return _proof_hashes(nodes, _consistency_ranges(old_size, new_size))


# --------------------------------------------------------------------------------------------------
# Verification. These follow the shape of the RFC recursion (top-down, then fold bottom-up); the
# tests check them against the RFC's bit-twiddling algorithms of 2.1.3.2 and 2.1.4.2.


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: whether `proof` shows leaf hash `leaf` at `index` in the tree of `size`
    leaves with root `root`. Never raises: any malformed input is just False."""
    if not (_is_size(index) and _is_size(size) and index < size):
        return False
    if not (_is_hash(leaf) and _is_hash(root)):
        return False
    if isinstance(proof, str | bytes | bytearray) or not isinstance(proof, Sequence):
        return False
    # Top-down: is the sibling at each depth on the right of the path?
    sibling_right: list[bool] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            sibling_right.append(True)
            hi = lo + k
        else:
            sibling_right.append(False)
            lo += k
    if len(proof) != len(sibling_right):
        return False
    acc = bytes(leaf)
    for element, right in zip(proof, reversed(sibling_right), strict=True):
        if not _is_hash(element):
            return False
        acc = node_hash(acc, element) if right else node_hash(element, acc)
    return acc == bytes(root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: whether `proof` shows that the tree of `old_size` leaves with root
    `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.

    Equal sizes need an empty proof and equal roots. The empty tree (old_size 0, root
    EMPTY_ROOT) is a prefix of every tree, with an empty proof. Never raises.
    """
    if not (_is_size(old_size) and _is_size(new_size) and old_size <= new_size):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if isinstance(proof, str | bytes | bytearray) or not isinstance(proof, Sequence):
        return False
    if not all(_is_hash(element) for element in proof):
        return False
    old_root, new_root = bytes(old_root), bytes(new_root)
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    # Top-down along SUBPROOF: True = old tree inside the left child (sibling appended on the
    # right), False = left child wholly in the old tree (sibling appended on the left).
    went_left: list[bool] = []
    m, width, complete = old_size, new_size, True
    while m != width:
        k = _split(width)
        if m <= k:
            went_left.append(True)
            width = k
        else:
            went_left.append(False)
            m -= k
            width -= k
            complete = False
    elements = [bytes(element) for element in proof]
    if len(elements) != len(went_left) + (0 if complete else 1):
        return False
    if complete:  # the subtree where the recursion stopped is the whole old tree
        old_acc = new_acc = old_root
    else:
        old_acc = new_acc = elements.pop(0)
    for element, left in zip(elements, reversed(went_left), strict=True):
        if left:
            new_acc = node_hash(new_acc, element)
        else:
            old_acc = node_hash(element, old_acc)
            new_acc = node_hash(element, new_acc)
    return old_acc == old_root and new_acc == new_root
