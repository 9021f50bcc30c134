"""Build the workload for a run: a reference model, or the user's ``package.module:factory``.

A factory is called as ``factory(task=..., phase=..., device=...)`` and returns either a
``torch.nn.Module`` (run on the suite's data for the task: token ids ``[batch, length]`` for text
tasks, float images ``[batch, 3, size, size]`` for image classification; it must return logits)
or a plain callable taking one batch (for training, the callable performs one optimizer step).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench_runner.workloads.base import Workload, WorkloadError, hash_artifact, visible_device
from bench_runner.workloads.reference import (
    SPECS,
    TASKS,
    CallableWorkload,
    TorchWorkload,
    build_reference_model,
    model_digest,
)


def load_factory(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise WorkloadError(f"--model must look like package.module:factory, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkloadError(f"cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise WorkloadError(f"{module_name!r} has no callable {attr!r}")
    return factory


def build_workload(
    *,
    task: str,
    phase: str,
    model: str | None = None,
    artifact: Path | None = None,
    device: str | None = None,
    precision: str = "fp32",
    revision: str | None = None,
    samples: int | None = None,
    max_new_tokens: int | None = None,
) -> Workload:
    """The workload for ``task``/``phase``: the reference model unless ``model`` names a factory
    (suite 1) or ``hf:PATH_OR_ID`` a Hugging Face model (suite 2)."""
    if model is not None and model.startswith("hf:"):
        from bench_runner.workloads.hf import build_hf_workload

        if artifact is not None:
            raise WorkloadError("--artifact is for suite 1 models; an hf: model hashes its files")
        return build_hf_workload(
            task=task,
            phase=phase,
            spec=model.removeprefix("hf:"),
            revision=revision,
            device=device or visible_device(),
            precision=precision,
            samples=samples,
            max_new_tokens=max_new_tokens,
        )
    if samples is not None or max_new_tokens is not None:
        raise WorkloadError("--samples and --max-new-tokens are for hf: models (suite 2)")
    if task not in SPECS:
        raise WorkloadError(f"unknown task {task!r}; suite v1 has {', '.join(TASKS)}")
    if phase not in ("inference", "training"):
        raise WorkloadError(f"phase must be 'inference' or 'training', got {phase!r}")
    torch_device = device or visible_device()
    artifact_sha256 = hash_artifact(artifact) if artifact else None
    if model is None or model == "reference":
        return TorchWorkload(
            task,
            phase,
            build_reference_model(task),
            device=torch_device,
            precision=precision,
            artifact_sha256=artifact_sha256,
        )
    built = load_factory(model)(task=task, phase=phase, device=torch_device)
    try:
        import torch

        is_module = isinstance(built, torch.nn.Module)
    except ImportError:
        is_module = False
    if is_module:
        return TorchWorkload(
            task,
            phase,
            built,
            device=torch_device,
            precision=precision,
            artifact_sha256=artifact_sha256 or model_digest(built),
            model_source=model,
        )
    if callable(built):
        if artifact_sha256 is None:
            raise WorkloadError(
                "a plain-callable model has no weights to hash: pass --artifact PATH "
                "(the model's files) so the label can name what was measured"
            )
        return CallableWorkload(task, phase, built, artifact_sha256=artifact_sha256)
    raise WorkloadError(
        f"{model} returned {type(built).__name__}: expected a torch.nn.Module or a callable"
    )
