"""Suite v1: the built-in reference models and data, and the PyTorch workloads that run them.

Reference models are small PyTorch models built in code with fixed seeds (nothing is
downloaded), so anyone can calibrate a machine. The functional unit is one inference (a batch of
``batch_size`` inferences per step) or one optimizer step.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from typing import Any

from bench_runner.workloads.base import Workload, WorkloadError
from bench_runner.workloads.data import DatasetSpec

SEED = 20260101
TASKS = ("text-classification", "text-generation", "image-classification")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class TaskSpec:
    """Fixed workload parameters of suite v1 for one task."""

    task: str
    samples: int
    batch_size: int
    vocab: int = 0
    sequence_length: int = 0
    new_tokens: int = 0
    image_size_px: int = 0
    classes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def dataset(self) -> DatasetSpec:
        if self.image_size_px:
            n = self.samples * 3 * self.image_size_px**2 + self.samples
        else:
            n = self.samples * (self.sequence_length + 1) * 2
        return DatasetSpec(f"{self.task}-v1", n)


SPECS: dict[str, TaskSpec] = {
    "text-classification": TaskSpec(
        "text-classification",
        samples=512,
        batch_size=16,
        vocab=8192,
        sequence_length=128,
        classes=4,
    ),
    "text-generation": TaskSpec(
        "text-generation",
        samples=64,
        batch_size=4,
        vocab=8192,
        sequence_length=32,
        new_tokens=16,
    ),
    "image-classification": TaskSpec(
        "image-classification", samples=256, batch_size=16, image_size_px=224, classes=10
    ),
}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise WorkloadError(
            "PyTorch is not installed: `pip install torch` (CPU: `pip install torch==2.13.0`)"
        ) from None
    return torch


def build_reference_model(task: str) -> Any:
    """The reference model for a task, with weights from a fixed seed."""
    torch = _torch()
    nn = torch.nn
    spec = SPECS[task]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        if task == "image-classification":

            def block(cin: int, cout: int) -> Any:
                return nn.Sequential(
                    nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True),
                )

            return nn.Sequential(
                block(3, 32),
                block(32, 64),
                block(64, 128),
                block(128, 256),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(256, spec.classes),
            )
        causal = task == "text-generation"
        return _TextModel(torch, spec, causal=causal)


class _TextModel:  # built lazily as a torch.nn.Module subclass (see __new__)
    def __new__(cls, torch: Any, spec: TaskSpec, causal: bool) -> Any:
        nn = torch.nn

        class TextModel(nn.Module):  # type: ignore[name-defined]
            def __init__(self) -> None:
                super().__init__()
                d = 256
                self.causal = causal
                length = spec.sequence_length + spec.new_tokens
                self.embed = nn.Embedding(spec.vocab, d)
                self.position = nn.Embedding(length, d)
                layer = nn.TransformerEncoderLayer(
                    d, nhead=4, dim_feedforward=512, dropout=0.0, batch_first=True
                )
                self.encoder = nn.TransformerEncoder(
                    layer, num_layers=2, enable_nested_tensor=False
                )
                self.head = nn.Linear(d, spec.vocab if causal else spec.classes)

            def forward(self, tokens: Any) -> Any:
                positions = torch.arange(tokens.shape[1], device=tokens.device)
                x = self.embed(tokens) + self.position(positions)
                mask = None
                if self.causal:
                    mask = nn.Transformer.generate_square_subsequent_mask(
                        tokens.shape[1], device=tokens.device
                    )
                x = self.encoder(x, mask=mask, is_causal=self.causal)
                return self.head(x if self.causal else x.mean(dim=1))

        return TextModel()


def model_digest(model: Any) -> str:
    """sha256 over the state dict: each tensor's name, dtype, shape and bytes, sorted by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def load_data(spec: TaskSpec) -> tuple[Any, Any, str]:
    """(inputs, targets, sha256 of the generated bytes) for a task, on the CPU."""
    torch = _torch()
    dataset = spec.dataset()
    raw = dataset.generate()
    buffer = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    if spec.image_size_px:
        n_pixels = spec.samples * 3 * spec.image_size_px**2
        images = buffer[:n_pixels].float().div(255.0)
        images = images.reshape(spec.samples, 3, spec.image_size_px, spec.image_size_px)
        targets = buffer[n_pixels:].long() % spec.classes
        return images, targets, dataset.sha256(raw)
    pairs = buffer.reshape(-1, 2).long()
    ids = (pairs[:, 0] * 256 + pairs[:, 1]) % spec.vocab
    ids = ids.reshape(spec.samples, spec.sequence_length + 1)
    tokens, last = ids[:, :-1].contiguous(), ids[:, -1]
    targets = last % spec.classes if spec.classes else ids[:, 1:].contiguous()
    return tokens, targets, dataset.sha256(raw)


def frameworks() -> dict[str, str]:
    torch = _torch()
    return {"torch": str(torch.__version__), "python": platform.python_version()}


class TorchWorkload(Workload):
    """Runs a PyTorch module on the suite's data: inference batches or optimizer steps."""

    def __init__(
        self,
        task: str,
        phase: str,
        model: Any,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        artifact_sha256: str | None = None,
        model_source: str = "reference",
    ) -> None:
        if task not in SPECS:
            raise WorkloadError(f"unknown task {task!r}; suite v1 has {', '.join(TASKS)}")
        if phase not in ("inference", "training"):
            raise WorkloadError("phase must be 'inference' or 'training'")
        if precision not in PRECISIONS:
            raise WorkloadError(f"precision must be one of {', '.join(PRECISIONS)}")
        if precision != "fp32" and not device.startswith("cuda"):
            raise WorkloadError(f"{precision} needs a GPU; on the CPU use fp32")
        torch = _torch()
        self.torch = torch
        self.task, self.phase, self.device, self.precision = task, phase, device, precision
        self.spec = SPECS[task]
        self.model = model.to(device)
        inputs, targets, data_sha256 = load_data(self.spec)
        self.inputs, self.targets = inputs.to(device), targets.to(device)
        self.artifact_sha256 = artifact_sha256 or model_digest(model)
        self.frameworks = frameworks()
        self.units_per_step = 1 if phase == "training" else self.spec.batch_size
        self._cursor = 0
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        if phase == "training":
            self.model.train()
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        else:
            self.model.eval()
        self.description = {
            "dataset_id": self.spec.dataset().dataset_id,
            "dataset_sha256": data_sha256,
            "samples": self.spec.samples,
            "batch_size": self.spec.batch_size,
            "precision": precision,
        }
        if self.spec.sequence_length:
            self.description["sequence_length"] = self.spec.sequence_length
        if self.spec.new_tokens:
            self.description["new_tokens"] = self.spec.new_tokens
        if self.spec.image_size_px:
            self.description["image_size_px"] = self.spec.image_size_px
        self.model_source = model_source

    def _batch(self) -> tuple[Any, Any]:
        n, b = self.spec.samples, self.spec.batch_size
        start = self._cursor
        self._cursor = (self._cursor + b) % (n - n % b or n)
        return self.inputs[start : start + b], self.targets[start : start + b]

    def _autocast(self) -> Any:
        import contextlib

        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast("cuda", dtype=self._autocast_dtype)

    def step(self) -> None:
        inputs, targets = self._batch()
        torch = self.torch
        if self.phase == "training":
            with self._autocast():
                logits = self.model(inputs)
                if self.task == "text-generation":
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
                    )
                else:
                    loss = torch.nn.functional.cross_entropy(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            return
        with torch.inference_mode(), self._autocast():
            if self.task == "text-generation":
                tokens = inputs
                for _ in range(self.spec.new_tokens):  # greedy, fixed number of new tokens
                    next_token = self.model(tokens)[:, -1, :].argmax(dim=-1, keepdim=True)
                    tokens = torch.cat([tokens, next_token], dim=1)
            else:
                self.model(inputs)

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize(self.device)


class CallableWorkload(Workload):
    """A plain callable from a plugin: called with one batch of the task's data per step."""

    def __init__(self, task: str, phase: str, fn: Any, *, artifact_sha256: str) -> None:
        if task not in SPECS:
            raise WorkloadError(f"unknown task {task!r}; suite v1 has {', '.join(TASKS)}")
        self.task, self.phase, self.fn = task, phase, fn
        self.spec = SPECS[task]
        inputs, targets, data_sha256 = load_data(self.spec)
        self.inputs, self.targets = inputs, targets
        self.units_per_step = 1 if phase == "training" else self.spec.batch_size
        self.artifact_sha256 = artifact_sha256
        self.frameworks = frameworks()
        self.device = "cpu"
        self._cursor = 0
        self.description = {
            "dataset_id": self.spec.dataset().dataset_id,
            "dataset_sha256": data_sha256,
            "samples": self.spec.samples,
            "batch_size": self.spec.batch_size,
            "precision": "fp32",
        }
        for key in ("sequence_length", "new_tokens", "image_size_px"):
            if getattr(self.spec, key):
                self.description[key] = getattr(self.spec, key)

    def step(self) -> None:
        b = self.spec.batch_size
        start = self._cursor
        self._cursor = (self._cursor + b) % (self.spec.samples - self.spec.samples % b)
        self.fn(self.inputs[start : start + b])
