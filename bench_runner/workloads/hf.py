"""Suite 2: a Hugging Face model (transformers Auto class of the task) on the suite's real data.

Everything the windows should not see happens before the protocol: loading, tokenising every
sampled item with the model's own tokenizer, padding the batches and moving them to the device.
A ``step()`` is one batch of the fixed batch size (or one optimizer step), cycling over the sample
in order. The first output of each sampled item is kept (token ids or the predicted class, cheap
CPU copies); after the protocol, items the warm-up and trials never reached are run too (outside
the windows), and every sampled item is scored: quality in the same run.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench_runner import quality
from bench_runner.workloads.base import StepTokens, Workload, WorkloadError
from bench_runner.workloads.hfsource import ModelSource, file_manifest
from bench_runner.workloads.textdata import generated_images, load_text_sample
from schemas import suites

SUITE = suites.SUITE_2
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
TRAINING_NO_QUALITY = (
    "a training run has no outputs to score; quality is measured by the inference phase"
)


@dataclass
class _Batch:
    rows: list[int]  # positions in the sample, one per row
    inputs: dict[str, Any]  # model inputs on the device
    input_tokens: int  # non-padding tokens
    targets: Any = None  # training: class targets or LM labels


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise WorkloadError("PyTorch is not installed: `pip install torch`") from None
    return torch


def _transformers() -> Any:
    try:
        import transformers
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise WorkloadError(
            "transformers is not installed: `pip install 'carbonlabel[bench]'`"
        ) from None
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return transformers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class HfWorkload(Workload):
    """A transformers model on suite 2's data for one task and phase."""

    suite = SUITE

    def __init__(
        self,
        *,
        task: str,
        phase: str,
        source: ModelSource,
        device: str = "cpu",
        precision: str = "fp32",
        samples: int | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        try:
            self.spec = suites.task_spec(SUITE, task)
        except suites.UnknownSuiteError:
            tasks = ", ".join(suites.suite_spec(SUITE)["tasks"])
            raise WorkloadError(f"unknown task {task!r}; suite 2 has {tasks}") from None
        if phase not in self.spec["phases"]:
            raise WorkloadError(f"phase must be 'inference' or 'training', got {phase!r}")
        if precision not in DTYPES:
            raise WorkloadError(f"precision must be one of {', '.join(DTYPES)}")
        if precision != "fp32" and not device.startswith("cuda"):
            raise WorkloadError(f"{precision} needs a GPU; on the CPU use fp32")
        self.generating = task == "text-generation" and phase == "inference"
        if max_new_tokens is not None and not self.generating:
            raise WorkloadError("--max-new-tokens is for text-generation inference only")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise WorkloadError("--max-new-tokens must be at least 1")
        torch = _torch()
        self.torch = torch
        self.task, self.phase, self.device, self.precision = task, phase, device, precision
        self.source = source
        self.model_call_s = 0.0  # seconds inside model calls (a benchmark may reset it)
        self.post_protocol_batches = 0  # batches run after the protocol, for scoring only
        self._last: StepTokens | None = None
        #: text classification: why there is no quality figure (None: the labels are the intents)
        self.unavailable: str | None = None
        self._cursor = 0
        files = file_manifest(source.path)
        self.artifact_sha256 = suites.files_digest(files)
        self._load(task)
        self.frameworks = {
            "torch": str(torch.__version__),
            "transformers": str(self.transformers.__version__),
            "python": platform.python_version(),
        }
        facts: dict[str, Any] = {
            "parameter_count": int(sum(p.numel() for p in self.model.parameters())),
            "dtype": DTYPES[precision],
            "files": files,
        }
        if source.hub_id:
            facts["hub_id"] = source.hub_id
        if source.hub_revision:
            facts["hub_revision"] = source.hub_revision
        self.model_facts = facts
        self.cap = int(max_new_tokens or self.spec.get("generation", {}).get("max_new_tokens", 0))
        self._prepare(samples)
        if phase == "training":
            self.model.train()
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        else:
            self.model.eval()

    # -- loading -------------------------------------------------------------------------------

    def _load(self, task: str) -> None:
        transformers = _transformers()
        self.transformers = transformers
        auto = getattr(transformers, self.spec["auto_class"])
        dtype = getattr(self.torch, DTYPES[self.precision])
        path = str(self.source.path)
        try:
            self.model = auto.from_pretrained(path, dtype=dtype, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WorkloadError(
                f"cannot load {self.source.spec} as {self.spec['auto_class']}: {_first_line(exc)}"
            ) from None
        self.model.to(self.device)
        self.config = self.model.config
        self.tokenizer: Any = None
        if task == "image-classification":
            return
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WorkloadError(
                f"cannot load the tokenizer of {self.source.spec}: {_first_line(exc)}"
            ) from None
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise WorkloadError(
                    f"the tokenizer of {self.source.spec} has neither a pad nor an eos token"
                )
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        if getattr(self.config, "pad_token_id", None) is None:
            self.config.pad_token_id = self.pad_id  # sequence classifiers find the last token by it

    # -- data ----------------------------------------------------------------------------------

    def _prepare(self, samples: int | None) -> None:
        """Draw the sample, tokenise every item and build the batches, before any window."""
        spec = self.spec
        self.description: dict[str, Any] = {}
        if self.task == "image-classification":
            self._prepare_images(samples)
        else:
            self._prepare_text(samples)
        self.n_items = len(self.references)
        self.batch_size = min(int(spec["batch_size"]), self.n_items)
        self.units_per_step = 1 if self.phase == "training" else self.batch_size
        self.description = {
            "dataset_id": self.dataset_id,
            "dataset_sha256": self.dataset_sha256,
            "samples": self.n_items,
            "batch_size": self.batch_size,
            "precision": self.precision,
            **self.description,
        }
        # the distinct batches of the cycle over the sample: lcm(n, batch) / batch of them
        cycle = self.n_items * self.batch_size // math.gcd(self.n_items, self.batch_size)
        self.batches = [
            self._make_batch([(start + j) % self.n_items for j in range(self.batch_size)])
            for start in range(0, cycle, self.batch_size)
        ]
        self.outputs: list[Any] = [None] * self.n_items

    def _prepare_text(self, samples: int | None) -> None:
        sample = load_text_sample(self.task, samples)
        self.dataset_id, self.dataset_sha256 = sample.dataset_id, sample.dataset_sha256
        self.n_dataset_items = sample.n_items
        self.references = [item.reference for item in sample.items]
        self.categories = sample.categories
        tok = self.tokenizer
        if self.task == "text-classification":
            limit = int(self.spec["max_input_tokens"])
            self.description["max_input_tokens"] = limit
            self.encoded = [
                list(tok(item.text, truncation=True, max_length=limit)["input_ids"])
                for item in sample.items
            ]
            self._class_targets(sample.categories)
        elif self.phase == "training":
            limit = int(self.spec["training"]["max_input_tokens"])
            self.description["max_input_tokens"] = limit
            prompt = str(self.spec["prompt"]["plain"])
            eos = tok.eos_token or ""
            texts = [f"{prompt.format(question=i.text)} {i.answer}{eos}" for i in sample.items]
            self.encoded = [
                list(tok(text, truncation=True, max_length=limit)["input_ids"]) for text in texts
            ]
        else:
            self._prepare_prompts([item.text for item in sample.items])

    def _prepare_prompts(self, questions: Sequence[str]) -> None:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            template = "chat"
            form = str(self.spec["prompt"]["chat"])
            texts = [
                tok.apply_chat_template(
                    [{"role": "user", "content": form.format(question=q)}],
                    add_generation_prompt=True,
                    tokenize=False,
                )
                for q in questions
            ]
            self.encoded = [list(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        else:
            template = "plain"
            form = str(self.spec["prompt"]["plain"])
            self.encoded = [list(tok(form.format(question=q))["input_ids"]) for q in questions]
        self.prompt_template = template
        self.description.update(
            max_new_tokens=self.cap,
            stop=str(self.spec["generation"]["stop"]),
            prompt_template=template,
        )
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            raise WorkloadError(f"{self.source.spec} names no eos token: generation could not stop")
        self.eos_ids = [int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])]
        self._check_context(max(len(ids) for ids in self.encoded))

    def _check_context(self, longest_prompt: int) -> None:
        """Refuse, before measuring, a model whose context cannot hold the longest prompt of the
        sample plus the cap (it would fail, or silently wrap positions, mid-run)."""
        config = self.config
        context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        if isinstance(context, int) and longest_prompt + self.cap > context:
            raise WorkloadError(
                f"{self.source.spec}: its context of {context} tokens cannot hold the longest "
                f"prompt of the sample ({longest_prompt} tokens) plus the cap of {self.cap} new "
                "tokens"
            )

    def _class_targets(self, categories: Sequence[str]) -> None:
        id2label = getattr(self.config, "id2label", None) or {}
        self.num_labels = int(getattr(self.config, "num_labels", len(id2label)) or 1)
        self.labels = {int(k): str(v) for k, v in id2label.items()}
        self.unavailable = quality.banking77_unavailable_reason(id2label, categories)
        by_name = {name: index for index, name in self.labels.items()}
        index_of = {name: i for i, name in enumerate(categories)}
        self.class_targets = [
            by_name[ref] if self.unavailable is None else index_of[ref] % self.num_labels
            for ref in self.references
        ]

    def _prepare_images(self, samples: int | None) -> None:
        size = getattr(self.config, "image_size", None)
        if isinstance(size, list | tuple) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        if not isinstance(size, int) or size < 1:
            raise WorkloadError(
                f"{self.source.spec}: config.image_size must be one square size, got {size!r}"
            )
        if int(getattr(self.config, "num_channels", 3)) != 3:
            raise WorkloadError(f"{self.source.spec}: the suite's images are RGB (3 channels)")
        images = generated_images(size, samples)
        self.dataset_id, self.dataset_sha256 = images.dataset_id, images.dataset_sha256
        self.n_dataset_items = images.n_items
        self.description["image_size_px"] = size
        torch = self.torch
        pixels = torch.frombuffer(bytearray(images.pixels), dtype=torch.uint8)
        self.pixels = (
            pixels.reshape(len(images.indices), 3, size, size)
            .to(self.device)
            .to(getattr(torch, DTYPES[self.precision]))
            .div(255.0)
        )
        self.num_labels = int(getattr(self.config, "num_labels", 1) or 1)
        self.class_targets = [b % self.num_labels for b in images.label_bytes]
        self.references = [""] * len(images.indices)

    def _pad(self, rows: Sequence[list[int]], left: bool) -> tuple[Any, Any]:
        torch = self.torch
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            at = width - len(row) if left else 0
            ids[i, at : at + len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, at : at + len(row)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _make_batch(self, rows: list[int]) -> _Batch:
        torch = self.torch
        if self.task == "image-classification":
            index = torch.tensor(rows, device=self.device)
            targets = torch.tensor([self.class_targets[r] for r in rows], device=self.device)
            return _Batch(rows, {"pixel_values": self.pixels.index_select(0, index)}, 0, targets)
        ids, mask = self._pad([self.encoded[r] for r in rows], left=self.generating)
        tokens = sum(len(self.encoded[r]) for r in rows)
        targets = None
        if self.task == "text-classification":
            targets = torch.tensor([self.class_targets[r] for r in rows], device=self.device)
        elif self.phase == "training":
            targets = ids.masked_fill(mask == 0, -100)
        return _Batch(rows, {"input_ids": ids, "attention_mask": mask}, tokens, targets)

    # -- running -------------------------------------------------------------------------------

    def step(self) -> None:
        batch = self.batches[self._cursor]
        self._cursor = (self._cursor + 1) % len(self.batches)
        self._run(batch)

    def _run(self, batch: _Batch) -> None:
        if self.phase == "training":
            self._timed(self._train, batch)
            self._last = StepTokens(batch.input_tokens) if self.tokenizer else None
        elif self.generating:
            out = self._timed(self._generate, batch)
            self._last = StepTokens(batch.input_tokens, self._keep_generated(batch, out))
        else:
            logits = self._timed(self._forward, batch)
            self._keep_predicted(batch, logits)
            self._last = StepTokens(batch.input_tokens) if self.tokenizer else None

    def _timed(self, call: Callable[[_Batch], Any], batch: _Batch) -> Any:
        """Run one model call, adding its seconds (to the device's end) to ``model_call_s``."""
        started = time.perf_counter()
        try:
            return call(batch)
        finally:
            self.synchronize()
            self.model_call_s += time.perf_counter() - started

    def _generate(self, batch: _Batch) -> Any:
        with self.torch.inference_mode():
            return self.model.generate(
                **batch.inputs,
                do_sample=False,
                use_cache=True,
                max_new_tokens=self.cap,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_ids,
            )

    def _keep_generated(self, batch: _Batch, out: Any) -> int:
        """Count the step's output tokens; keep the first output of each item not seen yet."""
        generated = out[:, batch.inputs["input_ids"].shape[1] :]
        counts = output_lengths(self.torch, generated, self.eos_ids).tolist()
        if any(self.outputs[r] is None for r in batch.rows):
            rows = generated.cpu().tolist()
            for i, r in enumerate(batch.rows):
                if self.outputs[r] is None:
                    self.outputs[r] = rows[i][: counts[i]]
        return int(sum(counts))

    def _forward(self, batch: _Batch) -> Any:
        with self.torch.inference_mode():
            return self.model(**batch.inputs).logits

    def _keep_predicted(self, batch: _Batch, logits: Any) -> None:
        if self.task == "image-classification" or self.unavailable is not None:
            return  # nothing to score: nothing to keep
        if any(self.outputs[r] is None for r in batch.rows):
            predicted = logits.argmax(dim=-1).cpu().tolist()
            for i, r in enumerate(batch.rows):
                if self.outputs[r] is None:
                    self.outputs[r] = int(predicted[i])

    def _train(self, batch: _Batch) -> None:
        functional = self.torch.nn.functional
        if self.task == "text-generation":
            loss = self.model(**batch.inputs, labels=batch.targets).loss
        else:
            logits = self.model(**batch.inputs).logits
            loss = functional.cross_entropy(logits.float(), batch.targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def step_tokens(self) -> StepTokens | None:
        return self._last

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize(self.device)

    # -- quality -------------------------------------------------------------------------------

    def quality(
        self, on_progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any] | None:
        if self.phase == "training":
            return quality.unavailable(TRAINING_NO_QUALITY)
        if self.task == "image-classification":
            return quality.unavailable(str(self.spec["quality_unavailable"]))
        if self.task == "text-classification" and self.unavailable is not None:
            return quality.unavailable(self.unavailable)
        report = on_progress or (lambda _done, _total: None)
        missing = [r for r in range(self.n_items) if self.outputs[r] is None]
        report(self.n_items - len(missing), self.n_items)
        for start in range(0, len(missing), self.batch_size):
            self._run(self._make_batch(missing[start : start + self.batch_size]))
            self.post_protocol_batches += 1
            done = self.n_items - len(missing) + start + self.batch_size
            report(min(done, self.n_items), self.n_items)
        if self.generating:
            texts = [
                str(self.tokenizer.decode(ids, skip_special_tokens=True)) for ids in self.outputs
            ]
            return quality.score_generation(texts, self.references)
        names = [self.labels.get(int(p), str(p)) for p in self.outputs]
        return quality.score_classification(names, self.references)

    def data_summary(self) -> str:
        """What the run measures on: the dataset id and the items sampled."""
        return f"{self.dataset_id}, {self.n_items:,} of {self.n_dataset_items:,} items"


def output_lengths(torch: Any, generated: Any, eos_ids: Sequence[int]) -> Any:
    """Per row, the generated tokens up to and including the first EOS (all of them when the
    row never stopped): the padding a batch adds after a row's EOS is not counted."""
    is_eos = torch.isin(generated, torch.tensor(list(eos_ids), device=generated.device))
    stopped = is_eos.any(dim=1)
    first = is_eos.int().argmax(dim=1)
    return torch.where(stopped, first + 1, torch.full_like(first, generated.shape[1]))


def build_hf_workload(
    *,
    task: str,
    phase: str,
    spec: str,
    revision: str | None,
    device: str,
    precision: str,
    samples: int | None = None,
    max_new_tokens: int | None = None,
) -> HfWorkload:
    """``--model hf:SPEC``: resolve the model on this machine (never the network) and load it."""
    from bench_runner.workloads.hfsource import resolve_model

    source = resolve_model(spec, revision)
    return HfWorkload(
        task=task,
        phase=phase,
        source=source,
        device=device,
        precision=precision,
        samples=samples,
        max_new_tokens=max_new_tokens,
    )
