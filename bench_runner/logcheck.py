"""Checking a registry's transparency log from the client side, trusting nothing it says.

- The checkpoint must carry a valid signature by the registry's log key: given with ``--log-key``,
  or pinned in the state file on first use (and never silently replaced afterwards).
- The new checkpoint must be consistent (RFC 9162 consistency proof) with the last one this
  client saw, kept in a local state file: a registry that rewrote, dropped or reordered anything
  it had already shown cannot produce such a proof.
- A label's entry must be included (RFC 9162 inclusion proof) in that checkpoint, and the entry
  must commit to this very envelope: its label_id, the SHA-256 of the signed payload and the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_runner.client import RegistryClient, RegistryError
from schemas import merkle
from schemas.note import Checkpoint, NoteError, open_checkpoint, parse_verifier_key
from schemas.tlog import LeafError, decode_leaf


class LogCheckError(Exception):
    """The log does not vouch for what it should. ``inconsistent``: the log itself is not to be
    trusted (bad checkpoint signature, changed key, history rewritten); otherwise one label is
    not in it as claimed."""

    def __init__(self, message: str, *, inconsistent: bool) -> None:
        super().__init__(message)
        self.inconsistent = inconsistent


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/carbonlabel/verify-state.json`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "carbonlabel" / "verify-state.json"


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    return base64.b64decode(text, validate=True)


@dataclass
class LabelInLog:
    index: int
    logged_at: str
    tree_size: int


class LogChecker:
    """One registry's log as this client has seen it (state file keyed by registry URL)."""

    def __init__(
        self, client: RegistryClient, registry: str, state_path: Path, log_key: str | None
    ) -> None:
        self.client = client
        self.registry = registry.rstrip("/")
        self.state_path = state_path
        self.log_key = log_key
        self.notes: list[str] = []
        self._state = self._load()
        self._checkpoint: Checkpoint | None = None

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"registries": {}}
        except (OSError, ValueError) as exc:
            raise LogCheckError(
                f"cannot read the state file {self.state_path}: {exc}", inconsistent=False
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("registries"), dict):
            raise LogCheckError(f"{self.state_path} is not a verify state file", inconsistent=False)
        return data

    @property
    def _seen(self) -> dict[str, Any]:
        seen: dict[str, Any] = self._state["registries"].setdefault(self.registry, {})
        return seen

    def _verifier_key(self) -> str:
        pinned = self._seen.get("verifier_key")
        if self.log_key:
            if pinned and pinned != self.log_key:
                self.notes.append("the given --log-key replaces the key pinned in the state file")
            key = self.log_key
        elif pinned:
            key = str(pinned)
        else:
            info = self.client.get_json("/v1/log")
            key = str(info.get("verifier_key", ""))
            self.notes.append(
                f"first use of this registry: pinned its log key {key} "
                "(compare it with the operator's published key)"
            )
        try:
            parse_verifier_key(key)
        except NoteError as exc:
            raise LogCheckError(f"unusable log key {key!r}: {exc}", inconsistent=True) from None
        return key

    def checkpoint(self) -> Checkpoint:
        """The registry's current checkpoint, verified and consistent with the last one seen."""
        if self._checkpoint is not None:
            return self._checkpoint
        key = self._verifier_key()
        text = self.client.get_text("/v1/log/checkpoint")
        try:
            current = open_checkpoint(text, key)
        except NoteError as exc:
            raise LogCheckError(
                f"the checkpoint is not signed by the log key {key}: {exc}", inconsistent=True
            ) from None
        seen = self._seen
        if seen.get("tree_size") is not None:
            old_size = int(seen["tree_size"])
            old_root = _b64(seen["root_hash"])
            if current.tree_size < old_size:
                raise LogCheckError(
                    f"the log shrank: size {current.tree_size} now, {old_size} seen before "
                    "(history rewritten)",
                    inconsistent=True,
                )
            if current.tree_size == old_size:
                consistent = current.root_hash == old_root
            else:
                proof = self.client.get_json(
                    f"/v1/log/proof/consistency?first={old_size}&second={current.tree_size}"
                )
                try:
                    hashes = [_b64(h) for h in proof.get("proof", [])]
                except (ValueError, TypeError):
                    hashes = []
                consistent = merkle.verify_consistency(
                    old_size, current.tree_size, old_root, current.root_hash, hashes
                )
            if not consistent:
                raise LogCheckError(
                    f"the log at size {current.tree_size} is not consistent with the checkpoint "
                    f"of size {old_size} seen before: the registry rewrote its history",
                    inconsistent=True,
                )
        seen.update(
            verifier_key=key,
            origin=current.origin,
            tree_size=current.tree_size,
            root_hash=base64.b64encode(current.root_hash).decode(),
            checkpoint=current.text,
        )
        self._checkpoint = current
        return current

    def check_label(self, label_id: str, envelope_payload: bytes, keyid: str) -> LabelInLog:
        """The label's entry is in the checkpoint and commits to this payload and key."""
        checkpoint = self.checkpoint()
        try:
            detail = self.client.get_json(f"/v1/labels/{label_id}")
        except RegistryError as exc:
            raise LogCheckError(
                f"the registry has no label {label_id}: {exc}", inconsistent=False
            ) from None
        receipt = detail.get("receipt") or {}
        index = receipt.get("log_index")
        if not isinstance(index, int) or not 0 <= index < checkpoint.tree_size:
            raise LogCheckError(
                f"label {label_id} has no entry in the log of size {checkpoint.tree_size}",
                inconsistent=False,
            )
        entry = self.client.get_json(f"/v1/log/entries/{index}")
        proof = self.client.get_json(
            f"/v1/log/proof/inclusion?index={index}&tree_size={checkpoint.tree_size}"
        )
        try:
            leaf = _b64(entry.get("leaf"))
            hashes = [_b64(h) for h in proof.get("proof", [])]
        except (ValueError, TypeError):
            raise LogCheckError(f"entry {index}: malformed answer", inconsistent=False) from None
        if not merkle.verify_inclusion(
            merkle.leaf_hash(leaf), index, checkpoint.tree_size, hashes, checkpoint.root_hash
        ):
            raise LogCheckError(
                f"entry {index} (label {label_id}) is not in the signed checkpoint of size "
                f"{checkpoint.tree_size}: the stored entry was changed",
                inconsistent=False,
            )
        try:
            fields = decode_leaf(leaf)
        except LeafError as exc:
            raise LogCheckError(f"entry {index}: {exc}", inconsistent=False) from None
        expected = {
            "kind": "label",
            "label_id": label_id,
            "payload_sha256": hashlib.sha256(envelope_payload).hexdigest(),
            "keyid": keyid,
        }
        wrong = [name for name, value in expected.items() if fields.get(name) != value]
        if wrong:
            raise LogCheckError(
                f"entry {index} does not commit to this label ({', '.join(wrong)} differ)",
                inconsistent=False,
            )
        return LabelInLog(index, str(fields.get("logged_at")), checkpoint.tree_size)

    def save(self) -> None:
        """Remember the checkpoint just verified (atomically: a crash leaves the old state)."""
        if self._checkpoint is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_name(self.state_path.name + ".tmp")
        partial.write_text(json.dumps(self._state, indent=2, sort_keys=True) + "\n")
        partial.replace(self.state_path)
