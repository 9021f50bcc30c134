"""Suite v1 workloads: deterministic data, artifact hashing, reference models, plugins."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

from bench_runner.workloads.base import WorkloadError, hash_artifact
from bench_runner.workloads.data import DatasetSpec
from bench_runner.workloads.plugin import build_workload, load_factory
from bench_runner.workloads.reference import SPECS, build_reference_model, load_data, model_digest


def test_dataset_bytes_are_shake256_of_the_seed() -> None:
    spec = DatasetSpec("text-classification-v1", 64)
    expected = hashlib.shake_256(b"carbonlabel-suite-v1:text-classification-v1").digest(64)
    assert spec.generate() == expected
    assert spec.sha256() == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("task", sorted(SPECS))
def test_data_and_models_are_deterministic(task: str) -> None:
    a_inputs, a_targets, a_sha = load_data(SPECS[task])
    b_inputs, b_targets, b_sha = load_data(SPECS[task])
    assert a_sha == b_sha
    assert bool((a_inputs == b_inputs).all())
    assert bool((a_targets == b_targets).all())
    assert a_inputs.shape[0] == SPECS[task].samples
    assert model_digest(build_reference_model(task)) == model_digest(build_reference_model(task))


def test_hash_artifact_file_and_directory_in_stable_order(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "b.bin").write_bytes(b"bbbb")
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "a.json").write_bytes(b"{}")
    digest = hashlib.sha256()
    for rel, data in (("b.bin", b"bbbb"), ("sub/a.json", b"{}")):
        digest.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    assert hash_artifact(tmp_path / "model") == digest.hexdigest()
    assert hash_artifact(tmp_path / "model" / "b.bin") == hashlib.sha256(b"bbbb").hexdigest()
    (tmp_path / "model" / "sub" / "a.json").write_bytes(b"{ }")
    assert hash_artifact(tmp_path / "model") != digest.hexdigest()
    with pytest.raises(WorkloadError, match="does not exist"):
        hash_artifact(tmp_path / "missing")


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch
            calls = []

            def classifier(task, phase, device):
                torch.manual_seed(0)
                return torch.nn.Sequential(
                    torch.nn.Embedding(8192, 8), torch.nn.Flatten(), torch.nn.Linear(8 * 128, 4)
                )

            def plain(task, phase, device):
                return lambda batch: calls.append(tuple(batch.shape))

            def not_a_model(task, phase, device):
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_models"
    sys.modules.pop("my_models", None)


def test_plugin_module_factory_runs_on_suite_data(plugin_module: str) -> None:
    workload = build_workload(
        task="text-classification",
        phase="training",
        model=f"{plugin_module}:classifier",
        device="cpu",
    )
    workload.step()
    assert workload.units_per_step == 1
    assert len(workload.artifact_sha256) == 64


def test_plugin_plain_callable_needs_an_artifact(plugin_module: str, tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="--artifact"):
        build_workload(
            task="text-classification",
            phase="inference",
            model=f"{plugin_module}:plain",
            device="cpu",
        )
    (tmp_path / "weights.bin").write_bytes(b"w")
    workload = build_workload(
        task="text-classification",
        phase="inference",
        model=f"{plugin_module}:plain",
        artifact=tmp_path / "weights.bin",
        device="cpu",
    )
    workload.step()
    assert sys.modules[plugin_module].calls == [(16, 128)]
    assert workload.artifact_sha256 == hashlib.sha256(b"w").hexdigest()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "package.module:factory"),
        ("no_such_module_xyz:f", "cannot import"),
        ("json:nothing", "no callable"),
    ],
)
def test_bad_plugin_specs(spec: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        load_factory(spec)


def test_plugin_returning_something_else(plugin_module: str) -> None:
    with pytest.raises(WorkloadError, match=r"expected a torch\.nn\.Module or a callable"):
        build_workload(
            task="text-classification",
            phase="inference",
            model=f"{plugin_module}:not_a_model",
            device="cpu",
        )


def test_unknown_task_and_gpu_precision_on_cpu() -> None:
    with pytest.raises(WorkloadError, match="unknown task"):
        build_workload(task="speech", phase="inference", device="cpu")
    with pytest.raises(WorkloadError, match="phase"):
        build_workload(task="text-classification", phase="serving", device="cpu")
    with pytest.raises(WorkloadError, match="needs a GPU"):
        build_workload(
            task="text-classification", phase="inference", device="cpu", precision="fp16"
        )
