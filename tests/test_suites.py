"""Suite 2 in the contract: sample rule, file manifest digest, token and quality recomputation,
suite-aware semantic checks and grades. Suite 1 labels keep their meaning."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas import suites
from schemas.contract import semantic_issues, validate_label
from schemas.dsse import build_statement
from schemas.grading import grade_for, grading_version
from schemas.results import check_results, fill_results
from schemas.synthetic import make_label

DATA = Path(__file__).resolve().parent.parent / "bench_runner" / "data" / "suite-v2"


def _label(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "vendor": "acme",
        "model": "m",
        "registry": "http://x",
        "suite": "2",
        "task": "text-generation",
    }
    return make_label(**(args | kwargs))


def _pointers(label: dict[str, Any]) -> list[str]:
    return [m.pointer for m in check_results(label)]


def test_sample_is_deterministic_sorted_and_of_the_stated_size() -> None:
    sample = suites.sample_indices("gsm8k-test", 1319, 200)
    assert sample == sorted(sample)
    assert len(set(sample)) == 200
    assert all(0 <= i < 1319 for i in sample)
    assert sample == suites.sample_indices("gsm8k-test", 1319, 200)
    # a different data set draws a different sample; the rule is the one documented
    assert sample != suites.sample_indices("banking77-test", 1319, 200)
    digests = {
        i: hashlib.sha256(f"carbonlabel-suite-v2:gsm8k-test:{i}".encode()).hexdigest()
        for i in range(1319)
    }
    cut = max(digests[i] for i in sample)
    assert all((digests[i] <= cut) == (i in sample) for i in range(1319))
    with pytest.raises(ValueError, match="sample size"):
        suites.sample_indices("gsm8k-test", 10, 11)


def test_shipped_data_matches_the_methodology() -> None:
    for task in ("text-generation", "text-classification"):
        data = suites.task_spec("2", task)["data"]
        path = DATA / data["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == data["sha256"]
        assert (path.parent / "LICENSE").is_file()
    lines = (DATA / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == suites.task_spec("2", "text-generation")["data"]["items"]


def test_files_digest_is_sha256sum_of_the_sorted_manifest(tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    contents = {"config.json": b"{}", "model.safetensors": b"weights", "tok/vocab.json": b"[]"}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    files = [
        {"path": name, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in reversed(contents.items())
    ]
    manifest = subprocess.run(
        ["sha256sum", *sorted(contents)], cwd=tmp_path, capture_output=True, check=True
    ).stdout
    assert suites.files_digest(files) == hashlib.sha256(manifest).hexdigest()


def test_outputs_digest_is_compact_utf8_json() -> None:
    outputs = ["The answer is 18.", "ça fait 3"]
    text = json.dumps(outputs, ensure_ascii=False, separators=(",", ":"))
    assert suites.outputs_digest(outputs) == hashlib.sha256(text.encode()).hexdigest()


def test_suite_2_generation_label_recomputes_tokens_and_quality() -> None:
    label = _label()
    assert check_results(label) == []
    assert validate_label(label) == []
    assert semantic_issues(build_statement(label)) == []
    assert label["results"]["functional_unit"] == "1k-requests"
    trials = label["traces"]["trials"]
    energy_j = [c["counter_end_j"] - c["counter_start_j"] for t in trials for c in t["components"]]
    per_token = [e / t["output_tokens"] for e, t in zip(energy_j, trials, strict=True)]
    stated = label["results"]["energy_per_output_token_j"]
    assert stated["mean"] == pytest.approx(sum(per_token) / len(per_token))
    assert label["results"]["output_tokens_total"] == sum(t["output_tokens"] for t in trials)
    assert label["results"]["input_tokens_total"] == sum(t["input_tokens"] for t in trials)
    outcomes = label["quality"]["measured"]["outcomes"]
    assert label["quality"]["measured"]["value"] == sum(outcomes) / len(outcomes)
    assert label["quality"]["measured"]["items"] == label["benchmark"]["workload"]["samples"]
    # per 1,000 requests: units are requests
    gross_wh = [e / t["units"] * 1000 / 3600 for e, t in zip(energy_j, trials, strict=True)]
    assert label["results"]["energy_per_unit_wh"]["mean"] == pytest.approx(
        sum(gross_wh) / len(gross_wh)
    )


def test_a_changed_output_token_count_is_inconsistent() -> None:
    label = _label()
    label["traces"]["trials"][2]["output_tokens"] += 7
    pointers = _pointers(label)
    assert "/results/energy_per_output_token_j/mean" in pointers
    assert "/results/output_tokens_total" in pointers


def test_a_changed_quality_outcome_is_inconsistent() -> None:
    label = _label()
    outcomes = label["quality"]["measured"]["outcomes"]
    outcomes[0] = 1 - outcomes[0]
    assert _pointers(label) == ["/quality/measured/value"]


def test_quality_must_score_every_sampled_item() -> None:
    label = _label()
    del label["quality"]["measured"]["outcomes"][-1]
    fill_results(label)  # value and items follow the shortened list ...
    assert _pointers(label) == ["/quality/measured/outcomes"]  # ... but not the sample


def test_a_token_figure_without_token_counts_follows_from_nothing() -> None:
    label = _label(task="text-classification")
    label["results"]["output_tokens_total"] = 10
    assert _pointers(label) == ["/results/output_tokens_total"]


def test_semantic_checks_know_the_suite() -> None:
    label = _label()
    wrong_unit = copy.deepcopy(label)
    wrong_unit["results"]["functional_unit"] = "1k-inferences"
    issues = semantic_issues(build_statement(wrong_unit))
    assert [i.pointer for i in issues] == ["/predicate/results/functional_unit"]
    unknown = copy.deepcopy(label)
    unknown["benchmark"]["suite"]["version"] = "9"
    assert [i.pointer for i in semantic_issues(build_statement(unknown))] == [
        "/predicate/benchmark"
    ]
    tampered = copy.deepcopy(label)
    tampered["model"]["files"][0]["sha256"] = "0" * 64
    assert [i.pointer for i in semantic_issues(build_statement(tampered))] == [
        "/predicate/model/files"
    ]


def test_suite_1_labels_are_unchanged() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x", task="text-generation")
    assert label["results"]["functional_unit"] == "1k-inferences"
    assert "energy_per_output_token_j" not in label["results"]
    assert "quality" not in label
    assert check_results(label) == []
    assert suites.label_size_class(label) == ""
    assert grading_version() == "1.1"  # suite 1's bands, the basis widened by the meter bias
    assert grading_version("2") == "2"


@pytest.mark.parametrize(
    ("parameters", "size_class"),
    [(1, "up-to-20b"), (20_000_000_000, "up-to-20b"), (20_000_000_001, "up-to-66b"),
     (66_000_000_000, "up-to-66b"), (70_000_000_000, "over-66b")],
)  # fmt: skip
def test_size_classes(parameters: int, size_class: str) -> None:
    assert suites.size_class_for("2", parameters) == size_class
    label = _label(parameter_count=parameters)
    assert suites.label_size_class(label) == size_class
    assert suites.label_size_class(_label(task="text-classification")) == ""


def test_text_generation_is_graded_within_its_size_class() -> None:
    common = {
        "suite": "2",
        "task": "text-generation",
        "phase": "inference",
        "hardware_class": "nvidia-h100-sxm-80gb",
        "energy_ci95_high_wh": 90.0,  # widened by H100's (default) 15 % bias bound: 103.5
        "measured": True,
    }
    assert grade_for(**common, size_class="up-to-20b") == "C"  # 63.3 <= 103.5 < 126.7
    assert grade_for(**common, size_class="up-to-66b") == "A"  # 103.5 < 106.7
    assert grade_for(**common, size_class="") is None  # no class, no bands
    # suite 1 keeps its bands: 90 Wh per 1,000 inferences is far past E's boundary
    assert grade_for(**(common | {"suite": "1"})) == "E"
    assert grade_for(**(common | {"measured": False}), size_class="up-to-20b") is None
