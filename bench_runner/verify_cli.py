"""``carbonlabel verify``: one envelope, one label id, or a vendor's whole set.

Offline (an envelope file and ``--public-key``): signature, schema, results from the traces.
With ``--registry``: the envelope is fetched when a label id is given, the vendor's keys come
from the registry unless ``--public-key`` is given, and every label must be in the registry's
signed log, whose checkpoint must be consistent with the last one seen (``logcheck``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bench_runner.client import RegistryClient, RegistryError
from bench_runner.logcheck import LogChecker, LogCheckError, default_state_path
from schemas.dsse import EnvelopeError, load_public_key, parse_envelope
from schemas.verify import Verification, VerifyExit, verify_envelope_bytes

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_LABELS = 100_000


class VerifyUsageError(Exception):
    """Arguments that cannot work together (reported as one line, exit 1)."""


@dataclass
class ItemResult:
    label_id: str
    outcome: VerifyExit
    message: str
    keyid: str | None = None
    log_index: int | None = None
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "outcome": self.outcome.name.lower(),
            "exit_code": int(self.outcome),
            "message": self.message,
            "keyid": self.keyid,
            "log_index": self.log_index,
            "problems": self.problems,
        }


@dataclass
class Results:
    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def worst(self) -> VerifyExit:
        return max((i.outcome for i in self.items), default=VerifyExit.OK)


def _label_id_of(data: bytes) -> str:
    try:
        statement = json.loads(parse_envelope(data).payload)
        label_id = statement["predicate"]["label_id"]
    except (EnvelopeError, ValueError, KeyError, TypeError):
        return "(unknown label)"
    return str(label_id)


def _vendor_keys(client: RegistryClient, vendor: str) -> list[Ed25519PublicKey]:
    profile = client.get_json(f"/v1/vendors/{vendor}")
    keys = []
    for item in profile.get("keys", []):
        try:
            keys.append(load_public_key(str(item["public_key"])))
        except (KeyError, ValueError, TypeError):
            continue
    return keys


def _verify_with(data: bytes, keys: list[Ed25519PublicKey]) -> Verification:
    """Offline checks under whichever key made the signature (the first verdict if none)."""
    first: Verification | None = None
    for key in keys:
        result = verify_envelope_bytes(data, key)
        if result.outcome != VerifyExit.BAD_SIGNATURE:
            return result
        first = first or result
    if first is None:
        return Verification(VerifyExit.BAD_SIGNATURE, "no public key to verify with")
    return first


def _check_one(
    data: bytes,
    keys: list[Ed25519PublicKey],
    checker: LogChecker | None,
) -> ItemResult:
    result = _verify_with(data, keys)
    label_id = _label_id_of(data)
    item = ItemResult(label_id, result.outcome, result.message, result.keyid, None, result.problems)
    if result.outcome != VerifyExit.OK or checker is None or result.keyid is None:
        return item
    payload = parse_envelope(data).payload
    try:
        logged = checker.check_label(label_id, payload, result.keyid)
    except LogCheckError as exc:
        code = VerifyExit.LOG_INCONSISTENT if exc.inconsistent else VerifyExit.NOT_LOGGED
        return ItemResult(label_id, code, str(exc), result.keyid)
    item.log_index = logged.index
    item.message += (
        f"; logged at index {logged.index} ({logged.logged_at}), included in the signed "
        f"checkpoint of size {logged.tree_size}"
    )
    return item


def _vendor_label_ids(client: RegistryClient, vendor: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while len(ids) < MAX_LABELS:
        path = f"/v1/labels?vendor={vendor}&limit=200&sort=received_at"
        page = client.get_json(path + (f"&cursor={cursor}" if cursor else ""))
        ids += [str(i["label_id"]) for i in page.get("items", [])]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return ids


def run_verify(
    *,
    target: str | None,
    public_key: Ed25519PublicKey | None,
    registry: str | None,
    vendor: str | None,
    log_key: str | None,
    state: Path | None,
) -> Results:
    """Verify what the arguments name; raises VerifyUsageError, RegistryError, LogCheckError
    (the last two when the registry cannot be asked at all or the log itself is untrustworthy)."""
    results = Results()
    local = Path(target) if target is not None and Path(target).is_file() else None
    if target is None and vendor is None:
        raise VerifyUsageError("give an envelope file, a label id, or --vendor")
    if registry is None:
        if local is None:
            raise VerifyUsageError(
                f"{target or vendor!r}: label ids and --vendor need --registry"
                if target is None or UUID.match(target)
                else f"{target}: no such file"
            )
        if public_key is None:
            raise VerifyUsageError("offline verification needs --public-key (or use --registry)")
        data = local.read_bytes()
        results.items.append(_check_one(data, [public_key], None))
        return results
    with RegistryClient(registry) as client:
        checker = LogChecker(client, registry, state or default_state_path(), log_key)
        try:
            checker.checkpoint()
        except LogCheckError as exc:
            results.notes += checker.notes
            results.items.append(
                ItemResult("(log)", VerifyExit.LOG_INCONSISTENT, str(exc), problems=[])
            )
            return results
        keys_by_vendor: dict[str, list[Ed25519PublicKey]] = {}

        def keys_for(data: bytes) -> list[Ed25519PublicKey]:
            if public_key is not None:
                return [public_key]
            try:
                owner = json.loads(parse_envelope(data).payload)["predicate"]["vendor"]
            except (EnvelopeError, ValueError, KeyError, TypeError):
                return []
            if owner not in keys_by_vendor:
                keys_by_vendor[str(owner)] = _vendor_keys(client, str(owner))
            return keys_by_vendor[str(owner)]

        envelopes: list[tuple[str, bytes | None]] = []
        if local is not None:
            envelopes.append((_label_id_of(local.read_bytes()), local.read_bytes()))
        elif target is not None:
            if not UUID.match(target):
                raise VerifyUsageError(f"{target}: neither a file nor a label id")
            envelopes.append((target, None))
        if vendor is not None:
            envelopes += [(label_id, None) for label_id in _vendor_label_ids(client, vendor)]
        for label_id, given in envelopes:
            if given is None:
                try:
                    given = client.get_bytes(f"/v1/labels/{label_id}/envelope")
                except RegistryError as exc:
                    results.items.append(ItemResult(label_id, VerifyExit.NOT_LOGGED, str(exc)))
                    continue
            results.items.append(_check_one(given, keys_for(given), checker))
        checker.save()
        results.notes += checker.notes
    return results
