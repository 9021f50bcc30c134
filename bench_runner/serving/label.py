"""The pieces of a chat-serving label: the request stream, the engine, the levels, the model's
identity, and the label itself (``bench_runner.label.build_label``; the results, every level's
included, come from ``schemas.results``)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_runner import quality
from bench_runner.devices.base import Meter
from bench_runner.label import LabelInputs, build_label
from bench_runner.serving.client import API, ServerInfo, ServingError
from bench_runner.serving.protocol import ServingRun
from bench_runner.workloads.base import Workload
from bench_runner.workloads.hfsource import ModelSource
from schemas import suites

TASK = "chat-serving"
SUITE = suites.SUITE_2
#: the sample and prompt are text generation's: same data, same draw, same chat prompt
SAMPLE_TASK = "text-generation"
_ENGINE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._+-]{0,63})(?:==([A-Za-z0-9][A-Za-z0-9._+-]{0,63}))?$"
)
#: safetensors dtypes -> the label's model.dtype
_DTYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8",
    "F8_E5M2": "float8",
    "I8": "int8",
}


def task_spec() -> dict[str, Any]:
    return suites.task_spec(SUITE, TASK)


def request_prompts(samples: int | None) -> tuple[Any, list[str]]:
    """The suite's sample (``samples`` items instead of the standard size when given) and the
    user message of each item, in sample order."""
    from bench_runner.workloads.textdata import load_text_sample

    spec = task_spec()
    sample = load_text_sample(SAMPLE_TASK, samples or int(spec["sample_size"]))
    form = str(spec["prompt"]["chat"])
    return sample, [form.format(question=item.text) for item in sample.items]


def parse_levels(text: str) -> list[int]:
    """``1,8,32`` -> [1, 8, 32], in the given order; distinct positive integers."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ServingError(
            f"--concurrency must be integers separated by commas, got {text!r}"
        ) from None
    if not levels or any(level < 1 for level in levels):
        raise ServingError(f"--concurrency levels must be at least 1, got {text!r}")
    if len(set(levels)) != len(levels):
        raise ServingError(f"--concurrency repeats a level: {text!r}")
    if len(levels) > 32 or max(levels) > 100_000:
        raise ServingError("--concurrency: at most 32 levels, each at most 100000")
    return levels


def parse_engine(text: str) -> tuple[str, str | None]:
    """``--engine NAME[==VERSION]``."""
    found = _ENGINE.match(text.strip())
    if not found:
        raise ServingError(
            f"--engine must be NAME or NAME==VERSION (letters, digits, . _ + -), got {text!r}"
        )
    return found.group(1), found.group(2)


def engine_of(info: ServerInfo, declared: str | None) -> dict[str, Any]:
    """The label's engine: from the server when it names itself (``owned_by`` of a known
    engine, version from ``/version``), else as declared with ``--engine``. A declaration the
    server contradicts is an error."""
    name = info.engine_name
    wanted = parse_engine(declared) if declared else None
    if name:
        engine: dict[str, Any] = {"name": name, "source": "server"}
        if info.version:
            engine["version"] = info.version
        if wanted and (
            wanted[0].lower() != name or (wanted[1] and info.version and wanted[1] != info.version)
        ):
            said = name + (f" {info.version}" if info.version else "")
            raise ServingError(f"--engine says {declared}, but the server says it is {said}")
        return engine
    if wanted is None:
        said = f" (version {info.version})" if info.version else ""
        raise ServingError(
            f"the server does not say which engine it is{said}: name it with "
            "--engine NAME[==VERSION], e.g. --engine transformers==5.0.0"
        )
    engine = {"name": wanted[0], "source": "declared"}
    if wanted[1]:
        engine["version"] = wanted[1]
    return engine


def _safetensors_facts(files: Sequence[Path]) -> tuple[int, str] | None:
    """Parameter count and dtype from the safetensors headers (no weights are read)."""
    count, dtypes = 0, set()
    for file in files:
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > 100_000_000:
                return None
            header = json.loads(handle.read(size))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            elements = 1
            for dim in tensor["shape"]:
                elements *= int(dim)
            count += elements
            dtypes.add(_DTYPES.get(str(tensor["dtype"]), "mixed"))
    if not count:
        return None
    return count, dtypes.pop() if len(dtypes) == 1 else "mixed"


def model_facts(source: ModelSource) -> dict[str, Any]:
    """``model.files`` of the served model's directory, and, from its safetensors headers, the
    parameter count and dtype (which set its size class)."""
    from bench_runner.workloads.hfsource import file_manifest

    files = file_manifest(source.path)
    facts: dict[str, Any] = {"files": files}
    weights = [
        source.path / str(f["path"]) for f in files if str(f["path"]).endswith(".safetensors")
    ]
    try:
        found = _safetensors_facts(weights) if weights else None
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        found = None
    if found:
        facts["parameter_count"], facts["dtype"] = found
    if source.hub_id:
        facts["hub_id"] = source.hub_id
    if source.hub_revision:
        facts["hub_revision"] = source.hub_revision
    return facts


def served_model_digest(served_model: str) -> str:
    """The statement subject digest when the model's files are not given: sha256 of
    ``served-model:<id from /v1/models>``."""
    return hashlib.sha256(f"served-model:{served_model}".encode()).hexdigest()


class ServedModel(Workload):
    """A model behind an OpenAI-compatible server, as ``build_label`` describes a workload. The
    load generator drives it, not ``step()``."""

    task = TASK
    phase = "inference"
    units_per_step = 1
    suite = SUITE

    def __init__(
        self,
        *,
        description: dict[str, Any],
        served_model: str,
        frameworks: dict[str, str],
        source: ModelSource | None = None,
    ) -> None:
        self.description = description
        self.frameworks = frameworks
        self.source = source
        self.model_facts = model_facts(source) if source else None
        if self.model_facts:
            self.artifact_sha256 = suites.files_digest(self.model_facts["files"])
        else:
            self.artifact_sha256 = served_model_digest(served_model)

    def step(self) -> None:
        raise NotImplementedError("a served model is driven by the load generator")


def workload_description(
    sample: Any,
    *,
    precision: str,
    max_new_tokens: int,
    serving: dict[str, Any],
) -> dict[str, Any]:
    """The label's ``benchmark.workload``: the sample, the cap and the serving block. A closed
    loop has no fixed batch: ``batch_size`` is the headline level's concurrency."""
    return {
        "dataset_id": sample.dataset_id,
        "dataset_sha256": sample.dataset_sha256,
        "samples": len(sample.items),
        "batch_size": serving["headline_concurrency"],
        "precision": precision,
        "max_new_tokens": max_new_tokens,
        "stop": str(task_spec()["generation"]["stop"]),
        "prompt_template": "chat",
        "serving": serving,
    }


def serving_block(
    *,
    engine: dict[str, Any],
    endpoint_host: str,
    served_model: str,
    levels: Sequence[int],
    client_on_metered_host: bool,
    max_new_tokens: int,
) -> dict[str, Any]:
    """``benchmark.workload.serving``."""
    spec = task_spec()["serving"]
    return {
        "engine": engine,
        "api": API,
        "endpoint_host": endpoint_host,
        "served_model": served_model,
        "concurrency_levels": list(levels),
        "headline_concurrency": suites.headline_concurrency(levels),
        "max_error_rate": float(spec["max_error_rate"]),
        "client_on_metered_host": client_on_metered_host,
        "max_new_tokens": max_new_tokens,
    }


def build_serving_label(
    inputs: LabelInputs, served: ServedModel, meters: list[Meter], run: ServingRun
) -> dict[str, Any]:
    """The signed-to-be label of a serving run (quality: the methodology's reason it has none)."""
    reason = str(task_spec().get("quality_unavailable") or "not measured by chat-serving")
    return build_label(
        inputs, served, meters, run.as_run_result(), quality=quality.unavailable(reason)
    )
