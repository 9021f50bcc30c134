"""Suite 2 workloads on tiny local models: loading, tokenising before measuring, generation to
EOS with token counts, every sampled item scored, classification and image tasks, the Hub cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from bench_runner.workloads import hfsource
from bench_runner.workloads.base import WorkloadError
from bench_runner.workloads.hf import HfWorkload, output_lengths
from bench_runner.workloads.plugin import build_workload
from schemas import suites
from tests.hf_models import TinyModels, eos_by_position, make_hub_cache


def hf(model: Path, task: str, phase: str = "inference", **kwargs: Any) -> HfWorkload:
    workload = build_workload(task=task, phase=phase, model=f"hf:{model}", device="cpu", **kwargs)
    assert isinstance(workload, HfWorkload)
    return workload


def test_output_lengths_count_up_to_and_including_eos() -> None:
    eos, pad, x = 0, 1, 7
    generated = torch.tensor(
        [
            [x, x, eos, pad, pad],  # stopped: 3, padding after EOS not counted
            [x, x, x, x, x],  # hit the cap: 5
            [eos, pad, pad, pad, pad],  # stopped at once: 1
            [x, 9, eos, eos, eos],  # second EOS id, then padding with the EOS id: 3
        ]
    )
    assert output_lengths(torch, generated, [eos]).tolist() == [3, 5, 1, 3]
    assert output_lengths(torch, generated, [9, eos]).tolist() == [3, 5, 1, 2]


def test_generation_stops_at_eos_and_counts_tokens(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.gen_eos, "text-generation", samples=16, max_new_tokens=64)
    assert workload.description["prompt_template"] == "chat"  # the tokenizer has a template
    assert workload.description["max_new_tokens"] == 64
    first = workload.batches[0]
    lengths = [len(workload.encoded[r]) for r in first.rows]
    stop_at = sorted(lengths)[len(lengths) // 2]  # the median prompt: some rows stop at once
    eos_by_position(workload.model, eos_id=0, other_id=7, stop_at=stop_at)
    workload.step()
    counted = workload.step_tokens()
    expected = [min(64, max(0, stop_at - n + 1) + 1) for n in lengths]
    assert len(set(expected)) > 2  # rows stop at different steps: padding follows some EOS
    assert counted is not None
    assert counted.input_tokens == sum(lengths)  # prompt tokens without padding
    assert counted.output_tokens == sum(expected)
    for row, n in zip(first.rows, expected, strict=True):
        assert workload.outputs[row] == [7] * (n - 1) + [0]  # kept up to and including EOS
    assert workload.model_call_s > 0


def test_every_sampled_item_is_scored_when_the_trials_end_early(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.gen, "text-generation", samples=24, max_new_tokens=4)
    assert workload.description["prompt_template"] == "plain"
    assert len(workload.batches) == 3
    workload.step()  # the protocol reached only the first batch
    seen: list[tuple[int, int]] = []
    block = workload.quality(lambda done, total: seen.append((done, total)))
    assert block is not None
    measured = block["measured"]
    assert workload.post_protocol_batches == 2
    assert seen[0] == (8, 24)
    assert seen[-1] == (24, 24)
    assert measured["metric"] == "gsm8k-exact-match"
    assert measured["items"] == len(measured["outcomes"]) == 24
    texts = [workload.tokenizer.decode(ids, skip_special_tokens=True) for ids in workload.outputs]
    assert measured["outputs_sha256"] == suites.outputs_digest(texts)
    # the items scored after the protocol got the outputs a protocol step gives them
    again = hf(tiny_models.gen, "text-generation", samples=24, max_new_tokens=4)
    for _ in range(3):
        again.step()
    assert again.outputs == workload.outputs


def test_items_are_tokenised_before_measuring(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = hf(tiny_models.gen, "text-generation", samples=8, max_new_tokens=2)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tokenised inside a step")

    for name in ("__call__", "encode", "apply_chat_template", "pad"):
        monkeypatch.setattr(type(workload.tokenizer), name, refuse)
    workload.step()
    workload.step()
    assert workload.step_tokens() is not None


def test_classification_accuracy_for_banking77_labels(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.cls77, "text-classification", samples=40)
    assert workload.batch_size == 32
    assert workload.description["max_input_tokens"] == 128
    assert len(workload.batches) == 5  # lcm(40, 32) / 32: the cycle over the sample
    workload.step()
    assert workload.step_tokens() == workload.step_tokens()
    counted = workload.step_tokens()
    assert counted is not None
    assert counted.output_tokens is None
    assert counted.input_tokens == sum(len(workload.encoded[r]) for r in range(32))
    block = workload.quality()
    assert block is not None
    measured = block["measured"]
    names = [workload.labels[p] for p in workload.outputs]
    expected = [int(n == ref) for n, ref in zip(names, workload.references, strict=True)]
    assert measured["metric"] == "accuracy"
    assert measured["outcomes"] == expected
    assert measured["outputs_sha256"] == suites.outputs_digest(names)


def test_classification_with_generic_labels_has_no_quality(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.cls4, "text-classification", samples=8)
    workload.step()
    assert workload.quality() == {
        "unavailable_reason": (
            "the model's 4 labels (LABEL_0, LABEL_1, LABEL_2, ...) are not BANKING77's 77 intents"
        )
    }
    assert workload.post_protocol_batches == 0  # nothing to score: nothing more is run
    training = hf(tiny_models.cls4, "text-classification", phase="training", samples=8)
    categories = training.categories
    assert training.class_targets == [categories.index(ref) % 4 for ref in training.references]
    before = training.model.classifier.weight.detach().clone()
    training.step()
    assert not torch.equal(before, training.model.classifier.weight)
    assert training.units_per_step == 1


def test_causal_lm_training_on_question_and_answer(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.gen, "text-generation", phase="training", samples=8)
    assert workload.description["max_input_tokens"] == 256
    assert "max_new_tokens" not in workload.description
    workload.step()
    counted = workload.step_tokens()
    assert counted is not None
    assert counted.input_tokens == sum(len(e) for e in workload.encoded)
    assert workload.quality() == {
        "unavailable_reason": (
            "a training run has no outputs to score; quality is measured by the inference phase"
        )
    }


def test_image_classification_on_generated_images(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.vit, "image-classification", samples=20)
    assert workload.description["image_size_px"] == 32
    assert workload.description["dataset_id"] == "generated-images-v2"
    assert workload.batch_size == 16
    workload.step()
    assert workload.step_tokens() is None
    block = workload.quality()
    assert block == {
        "unavailable_reason": suites.task_spec("2", "image-classification")["quality_unavailable"]
    }
    training = hf(tiny_models.vit, "image-classification", phase="training", samples=16)
    training.step()
    assert training.model_facts is not None
    assert training.model_facts["files"][0]["path"] == "config.json"


def test_model_facts_name_every_file(tiny_models: TinyModels) -> None:
    workload = hf(tiny_models.cls77, "text-classification", samples=8)
    facts = workload.model_facts
    assert facts is not None
    on_disk = sorted(p.name for p in tiny_models.cls77.iterdir())
    assert [f["path"] for f in facts["files"]] == on_disk
    weights = tiny_models.cls77 / "model.safetensors"
    entry = next(f for f in facts["files"] if f["path"] == "model.safetensors")
    assert entry["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry["size_bytes"] == weights.stat().st_size
    assert workload.artifact_sha256 == suites.files_digest(facts["files"])
    assert facts["parameter_count"] == sum(p.numel() for p in workload.model.parameters())
    assert facts["dtype"] == "float32"
    assert "hub_id" not in facts


def test_hub_cache_layout_records_id_and_commit(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = make_hub_cache(tmp_path, "acme/tiny-bert", tiny_models.cls4)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = hfsource.resolve_model("acme/tiny-bert")
    assert (source.hub_id, source.hub_revision) == ("acme/tiny-bert", commit)
    assert hfsource.resolve_model("acme/tiny-bert", commit).path == source.path
    workload = hf(Path("acme/tiny-bert"), "text-classification", samples=8)
    facts = workload.model_facts
    assert facts is not None
    assert (facts["hub_id"], facts["hub_revision"]) == ("acme/tiny-bert", commit)
    # the snapshot's files are links into blobs/: the manifest hashes what they point at
    assert [f["path"] for f in facts["files"]] == sorted(os.listdir(tiny_models.cls4))
    direct = hf(tiny_models.cls4, "text-classification", samples=8)
    assert workload.artifact_sha256 == direct.artifact_sha256
    # a snapshot directory given as a path is recognised as the Hub's
    assert hfsource.resolve_model(str(source.path)).hub_id == "acme/tiny-bert"


def test_missing_models_and_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(WorkloadError) as missing:
        hfsource.resolve_model("acme/nothing", "v2")
    assert str(missing.value) == (
        f"model 'acme/nothing' is not in the local Hugging Face cache ({tmp_path / 'hub'}); "
        "download it first: hf download acme/nothing --revision v2 (or pass a local directory)"
    )
    with pytest.raises(WorkloadError, match="does not exist"):
        hfsource.resolve_model("./no/such/dir")
    (tmp_path / "empty" / ".cache").mkdir(parents=True)
    (tmp_path / "empty" / ".cache" / "meta").write_text("x")  # hidden folders are skipped
    with pytest.raises(WorkloadError, match="holds no files"):
        hfsource.file_manifest(tmp_path / "empty")


def test_precision_and_option_checks(tiny_models: TinyModels) -> None:
    with pytest.raises(WorkloadError, match="needs a GPU"):
        hf(tiny_models.gen, "text-generation", precision="bf16")
    with pytest.raises(WorkloadError, match="text-generation inference only"):
        hf(tiny_models.cls4, "text-classification", max_new_tokens=8)
    with pytest.raises(WorkloadError, match="are for hf: models"):
        build_workload(task="text-classification", phase="inference", samples=8, device="cpu")
    with pytest.raises(WorkloadError, match="cannot load"):
        hf(tiny_models.vit, "text-generation")


def test_a_context_too_short_for_prompt_and_cap_is_refused(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_models.gen)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, n_embd=16, n_layer=1, n_head=2,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(WorkloadError, match=r"context of 256 tokens cannot hold .* cap of 64"):
        hf(tmp_path, "text-generation", samples=16, max_new_tokens=64)
    # a cap that fits is measured
    workload = hf(tmp_path, "text-generation", samples=4, max_new_tokens=2)
    longest = max(len(workload.encoded[r]) for r in range(workload.n_items))
    assert longest + 2 <= 256
