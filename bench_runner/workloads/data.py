"""Deterministic data for suite v1: bytes from SHAKE-256 of a fixed seed string.

The same seed gives the same bytes on every machine and Python version; the label records the
sha256 of exactly those bytes, so anyone can regenerate and check them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    dataset_id: str
    n_bytes: int

    def generate(self) -> bytes:
        return hashlib.shake_256(f"carbonlabel-suite-v1:{self.dataset_id}".encode()).digest(
            self.n_bytes
        )

    def sha256(self, data: bytes | None = None) -> str:
        return hashlib.sha256(self.generate() if data is None else data).hexdigest()
