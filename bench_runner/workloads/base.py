"""The workload interface the protocol drives, and artifact hashing."""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class WorkloadError(RuntimeError):
    """A workload cannot be built or run (bad plugin path, unknown task, missing PyTorch...)."""


@dataclass(frozen=True)
class StepTokens:
    """Tokens of the requests one step completed: prompt tokens without padding, and generated
    tokens up to and including EOS (None when the step generates nothing)."""

    input_tokens: int
    output_tokens: int | None = None


class Workload(abc.ABC):
    """One task and phase of the suite, ready to run step by step.

    ``step()`` does one unit of work: one batch of inferences (``units_per_step`` = batch size)
    or one optimizer step (``units_per_step`` = 1). ``synchronize()`` waits for queued device
    work, so a window's edges see finished work.
    """

    task: str
    phase: str
    units_per_step: int
    #: the label's benchmark.workload block (dataset id and sha256, sizes, precision...)
    description: dict[str, Any]
    #: sha256 of the model (weights or files), the in-toto subject digest
    artifact_sha256: str
    #: "cpu" or "cuda:N"
    device: str = "cpu"
    #: framework name -> version, for provenance
    frameworks: dict[str, str]
    #: the benchmark suite version the workload belongs to ("1": reference models and plugins)
    suite: str = "1"
    #: suite 2: the label's model facts (parameter_count, dtype, hub_id, hub_revision, files)
    model_facts: dict[str, Any] | None = None

    @abc.abstractmethod
    def step(self) -> None:
        """Run one batch (inference) or one optimizer step (training)."""

    def synchronize(self) -> None:  # noqa: B027  (no-op unless a device queues work)
        """Wait until the device has finished all queued work."""

    def step_tokens(self) -> StepTokens | None:
        """The tokens of the last ``step()``, or None when the workload does not count tokens."""
        return None

    def quality(
        self, on_progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any] | None:
        """After the protocol: the label's ``quality`` block (None: the suite has none).
        ``on_progress(done, total)`` reports the scoring."""
        return None


def hash_artifact(path: Path) -> str:
    """sha256 over a file, or over a directory's files in a stable order.

    For a directory, each regular file contributes its POSIX relative path, a NUL, its size in
    decimal, a NUL, and its bytes, in sorted path order; symbolic links are not followed.
    """
    if not path.exists():
        raise WorkloadError(f"artifact {path} does not exist")
    if path.is_file():
        return _hash_file(path, hashlib.sha256()).hexdigest()
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise WorkloadError(f"artifact directory {path} holds no files")
    for file in files:
        rel = file.relative_to(path).as_posix()
        digest.update(rel.encode() + b"\0" + str(file.stat().st_size).encode() + b"\0")
        _hash_file(file, digest)
    return digest.hexdigest()


def _hash_file(path: Path, digest: Any) -> Any:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest


def visible_device(prefer_gpu: bool = True) -> str:
    """ "cuda:0" when PyTorch sees a GPU (and it is wanted), else "cpu"."""
    import torch

    if prefer_gpu and torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES") != "":
        return "cuda:0"
    return "cpu"
