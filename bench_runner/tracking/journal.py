"""The journal of a tracked run: what a label needs, flushed to disk as the run goes.

One JSON object per line, each written whole, flushed and fsync'ed before the run goes on:

- ``{"type": "header", "version": 1, "run_id": UUID, "context": {...}, "started_at": RFC 3339,
  "t0_s": ...}`` (the run's id, which is its label's id, its parameters, its wall-clock start and
  the monotonic clock then);
- ``{"type": "idle", "window": {...}}`` (the idle baseline, when one was measured);
- ``{"type": "segment", "segment": {...}}`` per closed segment;
- ``{"type": "end", "ended_at": RFC 3339}`` when the run ended cleanly.

A run killed before its end leaves a journal without ``end``: :func:`read` gives back every
segment written, and ``carbonlabel track recover JOURNAL`` turns them into a label marked
``incomplete``. A torn last line (killed mid-write) is ignored, never an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench_runner.tracking.segments import Segment

VERSION = 1


class JournalError(ValueError):
    """The file is not a carbonlabel run journal (the message says why)."""


class Journal:
    """Appends records to ``path`` (created; an existing file is refused, never overwritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file: TextIO = path.open("x", encoding="utf-8")
        except FileExistsError:
            raise JournalError(
                f"{path} exists: a journal is never overwritten (recover it with `carbonlabel "
                "track recover`, or choose another path)"
            ) from None

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass
class Recovered:
    run_id: str | None
    context: dict[str, Any]
    started_at: str
    t0_s: float
    idle: dict[str, Any] | None = None
    segments: list[Segment] = field(default_factory=list)
    ended_at: str | None = None

    @property
    def complete(self) -> bool:
        return self.ended_at is not None


def read(path: Path) -> Recovered:
    """The records of a journal, up to its last whole line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror or exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn by a kill mid-write
            raise JournalError(f"{path}:{number} is not a JSON record") from None
    if not records or records[0].get("type") != "header":
        raise JournalError(f"{path} is not a carbonlabel run journal (no header line)")
    header = records[0]
    if header.get("version") != VERSION:
        raise JournalError(f"{path}: journal version {header.get('version')!r} is not {VERSION}")
    run_id = header.get("run_id")
    out = Recovered(
        str(run_id) if run_id else None,
        dict(header["context"]),
        str(header["started_at"]),
        float(header["t0_s"]),
    )
    for record in records[1:]:
        kind = record.get("type")
        if kind == "idle":
            out.idle = dict(record["window"])
        elif kind == "segment":
            out.segments.append(Segment.from_json(record["segment"]))
        elif kind == "end":
            out.ended_at = str(record["ended_at"])
    return out
