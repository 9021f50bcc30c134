"""Importing lm-evaluation-harness results files as declared quality figures."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from bench_runner.lmeval import LmEvalError, parse_lm_eval_results
from schemas.contract import validate_label
from schemas.synthetic import make_label

DATA = Path(__file__).resolve().parents[1] / "data" / "lmeval"
GSM8K = DATA / "gsm8k-v0.4.13.json"
MULTI = DATA / "multi-v0.4.13.json"
LEGACY = DATA / "legacy-v0.4.0-results.json"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "label.schema.json"
SOURCE = "lm-evaluation-harness"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _declared_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    resource = Resource.from_contents(schema)
    registry: Registry[Any] = Registry().with_resource("urn:carbonlabel:label", resource)
    declared = {
        "$schema": schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
        "$ref": "urn:carbonlabel:label#/properties/quality/properties/declared",
    }
    cls = jsonschema.validators.validator_for(schema)
    return cls(declared, registry=registry)


def _assert_valid(entries: list[dict[str, Any]]) -> None:
    errors = [e.message for e in _declared_validator().iter_errors(entries)]
    assert errors == []
    label = make_label(
        vendor="a", model="b", registry="http://x", suite="2", task="text-generation"
    )
    label["quality"]["declared"] = entries
    assert validate_label(label) == []


def _write(tmp_path: Path, doc: Any, name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def test_gsm8k_file_gives_one_entry_per_filter() -> None:
    sha = _sha(GSM8K)
    common = {
        "source": SOURCE,
        "task": "gsm8k",
        "n_shot": 5,
        "n_samples": 1319,
        "harness_version": "0.4.13",
        "file_sha256": sha,
    }
    assert parse_lm_eval_results(GSM8K) == [
        {
            "metric": "exact_match",
            "value": 0.310841546626232,
            "stderr": 0.012748860507777715,
            "filter": "strict-match",
            **common,
        },
        {
            "metric": "exact_match",
            "value": 0.5041698256254739,
            "stderr": 0.013772005774791549,
            "filter": "flexible-extract",
            **common,
        },
    ]


def test_multi_task_file_with_group() -> None:
    sha = _sha(MULTI)
    entries = parse_lm_eval_results(MULTI)
    tail = {"harness_version": "0.4.13", "file_sha256": sha}

    def task(name: str, shots: int, n: int | None) -> dict[str, Any]:
        extra = {} if n is None else {"n_samples": n}
        return {"source": SOURCE, "task": name, "n_shot": shots, **extra, **tail}

    assert entries == [
        {
            "metric": "exact_match",
            "value": 0.325,
            "stderr": 0.03320221279784479,
            "filter": "strict-match",
            **task("gsm8k", 5, 200),
        },
        {
            "metric": "exact_match",
            "value": 0.49,
            "stderr": 0.03543697072934369,
            "filter": "flexible-extract",
            **task("gsm8k", 5, 200),
        },
        {
            "metric": "acc",
            "value": 0.625,
            "stderr": 0.03431856376795913,
            **task("banking77_intents_query", 0, 200),
        },
        {
            "metric": "acc_norm",
            "value": 0.38,
            "stderr": 0.03440813273035821,
            **task("banking77_intents_query", 0, 200),
        },
        {
            "metric": "acc",
            "value": 0.57,
            "stderr": 0.035094989549183275,
            **task("banking77_intents_question", 0, 200),
        },
        {
            "metric": "acc_norm",
            "value": 0.345,
            "stderr": 0.03369796379336737,
            **task("banking77_intents_question", 0, 200),
        },
        # the group: aggregated figures, n-shot propagated, no n-samples (leaf tasks only)
        {
            "metric": "acc",
            "value": 0.5975,
            "stderr": 0.024542932335770113,
            **task("banking77_intents", 0, None),
        },
        {
            "metric": "acc_norm",
            "value": 0.3625,
            "stderr": 0.024080450378933145,
            **task("banking77_intents", 0, None),
        },
    ]
    assert all("filter" not in e for e in entries[2:])  # filter "none" is left out


def test_legacy_v040_results_json() -> None:
    assert parse_lm_eval_results(LEGACY) == [
        {
            "metric": "exact_match",
            "value": 0.310841546626232,
            "stderr": 0.012748860507777715,
            "source": SOURCE,
            "task": "gsm8k",
            "filter": "get-answer",
            "n_shot": 5,
            "file_sha256": _sha(LEGACY),
        }
    ]


@pytest.mark.parametrize("path", [GSM8K, MULTI, LEGACY], ids=lambda p: p.name)
def test_entries_validate_against_the_label_schema(path: Path) -> None:
    _assert_valid(parse_lm_eval_results(path))


def test_the_schema_check_is_not_vacuous() -> None:
    entries = parse_lm_eval_results(GSM8K)
    bad = [
        dict(entries[0], stderr=-1.0),
        dict(entries[1], extra="x"),
        dict(entries[1], file_sha256="ABC"),
    ]
    errors = sorted(e.json_path for e in _declared_validator().iter_errors(bad))
    assert errors == ["$[0].stderr", "$[1]", "$[2].file_sha256"]
    label = make_label(
        vendor="a", model="b", registry="http://x", suite="2", task="text-generation"
    )
    label["quality"]["declared"] = bad[:1]
    assert [i.pointer for i in validate_label(label)] == ["/quality/declared/0/stderr"]


def test_tasks_filter_keeps_the_requested_order() -> None:
    entries = parse_lm_eval_results(MULTI, tasks=["banking77_intents", "gsm8k", "gsm8k"])
    assert [(e["task"], e["metric"], e.get("filter")) for e in entries] == [
        ("banking77_intents", "acc", None),
        ("banking77_intents", "acc_norm", None),
        ("gsm8k", "exact_match", "strict-match"),
        ("gsm8k", "exact_match", "flexible-extract"),
    ]
    _assert_valid(entries)


def test_na_stderr_and_non_numeric_values_are_skipped(tmp_path: Path) -> None:
    doc = json.loads(GSM8K.read_text(encoding="utf-8"))
    figures = doc["results"]["gsm8k"]
    figures["exact_match_stderr,strict-match"] = "N/A"  # bootstrap_iters=0 or one item
    figures["exact_match,flexible-extract"] = "N/A"
    figures["bleu,none"] = True
    figures[" "] = " "  # how v0.4.3-v0.4.11 marked a group without figures
    path = _write(tmp_path, doc)
    entries = parse_lm_eval_results(path)
    assert [(e["metric"], e["value"], "stderr" in e) for e in entries] == [
        ("exact_match", 0.310841546626232, False)
    ]
    _assert_valid(entries)


def test_harness_version_only_when_it_is_a_version(tmp_path: Path) -> None:
    doc = json.loads(GSM8K.read_text(encoding="utf-8"))
    # add_env_info stores the exception text when the package metadata is missing
    doc["lm_eval_version"] = "No package metadata was found for lm_eval"
    entries = parse_lm_eval_results(_write(tmp_path, doc))
    assert all("harness_version" not in e for e in entries)
    assert all(e["file_sha256"] == _sha(tmp_path / "results.json") for e in entries)


def test_more_than_32_figures_needs_a_tasks_filter(tmp_path: Path) -> None:
    doc = json.loads(GSM8K.read_text(encoding="utf-8"))
    for i in range(17):  # 18 tasks x 2 figures = 36 > 32
        doc["results"][f"gsm8k_copy_{i:02d}"] = copy.deepcopy(doc["results"]["gsm8k"])
    path = _write(tmp_path, doc)
    with pytest.raises(LmEvalError, match=r"36 figures, a label declares at most 32; pass tasks="):
        parse_lm_eval_results(path)
    picked = [f"gsm8k_copy_{i:02d}" for i in range(16)]
    entries = parse_lm_eval_results(path, tasks=picked)
    assert len(entries) == 32
    _assert_valid(entries)
    with pytest.raises(LmEvalError, match=r"34 figures.*choose fewer tasks"):
        parse_lm_eval_results(path, tasks=[*picked, "gsm8k"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LmEvalError, match=r"lm-eval results file not found: .*nope\.json"):
        parse_lm_eval_results(tmp_path / "nope.json")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(LmEvalError, match="not a file"):
        parse_lm_eval_results(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"results": {', r"not JSON \(Expecting property name"),
        (b"\xff\xfe{}", r"not JSON \(not UTF-8 text\)"),
        (b"", r"not JSON \(Expecting value at line 1 column 1\)"),
    ],
)
def test_not_json(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(LmEvalError, match=message):
        parse_lm_eval_results(path)


@pytest.mark.parametrize(
    "doc",
    [
        [1, 2],
        {"version": 1},
        {"results": [1]},
        {"metrics": {"gsm8k": {"exact_match,strict-match": 0.3}}},
    ],
)
def test_not_an_lm_eval_file(tmp_path: Path, doc: Any) -> None:
    with pytest.raises(
        LmEvalError, match=r"results.json: not an lm-evaluation-harness results file"
    ):
        parse_lm_eval_results(_write(tmp_path, doc))


def test_requested_task_not_present_lists_the_tasks() -> None:
    with pytest.raises(LmEvalError) as info:
        parse_lm_eval_results(MULTI, tasks=["gsm8k", "mmlu"])
    message = str(info.value)
    assert "'mmlu' not in the file" in message
    assert (
        "tasks present: gsm8k, banking77_intents_query, banking77_intents_question, "
        "banking77_intents" in message
    )
    assert "\n" not in message


def test_empty_tasks_list() -> None:
    with pytest.raises(LmEvalError, match="no tasks requested"):
        parse_lm_eval_results(GSM8K, tasks=[])


def test_no_numeric_figures(tmp_path: Path) -> None:
    # lm-eval 0.3 wrote "acc" without a filter; groups without aggregation carry only an alias
    doc = {"results": {"hellaswag": {"acc": 0.5, "alias": "hellaswag"}, "mmlu": {"alias": "mmlu"}}}
    with pytest.raises(LmEvalError, match="no numeric figures in the file"):
        parse_lm_eval_results(_write(tmp_path, doc))
    with pytest.raises(LmEvalError, match="no numeric figures in task\\(s\\) 'mmlu'"):
        parse_lm_eval_results(_with_empty_group(tmp_path), tasks=["mmlu"])


def _with_empty_group(tmp_path: Path) -> Path:
    doc = json.loads(MULTI.read_text(encoding="utf-8"))
    doc["results"]["mmlu"] = {"alias": "mmlu", " ": " "}
    return _write(tmp_path, doc, "groupless.json")


@pytest.mark.parametrize(
    ("task", "key", "message"),
    [
        ("t" * 129, "acc,none", "task name longer than 128 characters"),
        ("gsm8k", "m" * 65 + ",none", "metric name longer than 64 characters"),
        ("gsm8k", "acc," + "f" * 65, "filter name longer than 64 characters"),
        ("gsm\u202e8k", "acc,none", "task name has control or invisible characters"),
        ("gsm8k", "acc\n,none", "metric name has control or invisible characters"),
        ("gsm8k", "acc,strict\u200b", "filter name has control or invisible characters"),
        ("gsm8k", ",none", "empty metric name"),
        ("gsm8k", "acc,", "empty filter name"),
    ],
)
def test_names_outside_the_schema_limits(tmp_path: Path, task: str, key: str, message: str) -> None:
    doc = {"results": {task: {key: 0.5}}}
    with pytest.raises(LmEvalError, match=message) as info:
        parse_lm_eval_results(_write(tmp_path, doc))
    assert "\n" not in str(info.value)


def test_non_object_task_entry(tmp_path: Path) -> None:
    with pytest.raises(LmEvalError, match=r"results\['gsm8k'\] is not an object"):
        parse_lm_eval_results(_write(tmp_path, {"results": {"gsm8k": 0.3}}))


def test_nan_and_bad_counts_are_left_out(tmp_path: Path) -> None:
    doc = json.loads(GSM8K.read_text(encoding="utf-8"))
    doc["results"]["gsm8k"]["exact_match_stderr,strict-match"] = float("nan")
    doc["results"]["gsm8k"]["exact_match,flexible-extract"] = float("inf")
    doc["n-shot"]["gsm8k"] = -1
    doc["n-samples"]["gsm8k"] = {"original": 1319, "effective": 0}
    entries = parse_lm_eval_results(_write(tmp_path, doc))  # json.dumps writes NaN / Infinity
    assert len(entries) == 1
    assert {"stderr", "n_shot", "n_samples"}.isdisjoint(entries[0])
    _assert_valid(entries)


def test_error_is_a_value_error() -> None:
    assert issubclass(LmEvalError, ValueError)
