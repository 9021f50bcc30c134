"""The example statements under schemas/examples agree with the Python validator.

tools/ajv/check.mjs runs the same examples through ajv (strict mode); together they check that two
independent validators read the schemas alike. Regenerate the examples with
``tools/make_examples.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import schemas
from schemas import suites
from schemas.contract import load_methodology, load_schema

EXAMPLES = Path(schemas.__file__).resolve().parent / "examples"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))

# invalid example -> the JSON pointer (prefix) of the one rule it breaks
EXPECTED_POINTER = {
    "chat-serving-trial-without-requests.json": "/predicate/traces/trials/2",
    "counter-reading-with-samples-method.json": "/predicate/traces/trials/2/components/1",
    "created-at-not-utc.json": "/predicate/created_at",
    "dataset-sha256-not-lowercase-hex.json": "/predicate/benchmark/workload/dataset_sha256",
    "extra-property-in-results.json": "/predicate/results",
    "functional-unit-inconsistent-with-phase.json": "/predicate/results/functional_unit",
    "hardware-class-unknown.json": "/predicate/hardware/hardware_class",
    "missing-required-carbon.json": "/predicate",
    "n-trials-below-two.json": "/predicate/results/energy_per_unit_wh/n_trials",
    "phase-not-in-enum.json": "/predicate/benchmark/phase",
    "power-sample-negative.json": "/predicate/traces/trials/0/components/0",
    "power-sample-not-a-pair.json": "/predicate/traces/trials/1/components/0",
    "predicate-type-not-label.json": "/predicateType",
    "pue-below-one.json": "/predicate/carbon/pue",
    "single-trial-trace.json": "/predicate/traces/trials",
    "statement-type-v0.1.json": "/_type",
    "subject-missing-digest.json": "/subject/0",
    "suite-2-model-without-parameter-count.json": "/predicate/model",
    "suite-2-quality-measured-and-unavailable.json": "/predicate/quality",
    "suite-2-quality-outcome-not-binary.json": "/predicate/quality/measured/outcomes/3",
    "suite-2-trial-without-output-tokens.json": "/predicate/traces/trials/1",
    "suite-2-without-quality.json": "/predicate",
    "task-not-in-suite.json": "/predicate/benchmark/task",
    "zone-not-iso-3166.json": "/predicate/carbon/zone",
}


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2) + "\n", f"{path.name}: not indent=2 + newline"
    return doc


def _under(pointer: str, prefix: str) -> bool:
    return pointer == prefix or pointer.startswith(prefix + "/")


def test_examples_present() -> None:
    assert len(VALID) >= 3
    assert len(INVALID) >= 8
    assert {p.name for p in INVALID} == set(EXPECTED_POINTER)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example(path: Path) -> None:
    doc = _load(path)
    assert schemas.validate_statement(doc) == []
    assert schemas.validate_label(doc["predicate"]) == []
    assert schemas.check_results(doc["predicate"]) == []
    subject = doc["subject"][0]
    label = doc["predicate"]
    assert subject["name"] == f"{label['model']['id']}@{label['model']['revision']}"
    assert label["registry"] == "https://registry.carbonlabel.example"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example(path: Path) -> None:
    issues = schemas.validate_statement(_load(path))
    assert issues, f"{path.name} passes the schema"
    pointers = [issue.pointer for issue in issues]
    prefix = EXPECTED_POINTER[path.name]
    assert any(_under(p, prefix) for p in pointers), pointers
    # each invalid example breaks one rule: nothing is reported elsewhere
    assert all(_under(p, prefix) for p in pointers), pointers


def test_valid_examples_cover_the_trace_kinds() -> None:
    components = [
        component
        for path in VALID
        for trial in _load(path)["predicate"]["traces"]["trials"]
        for component in trial["components"]
    ]
    assert any(c["method"] == "nvml-power-sampling" and "samples" in c for c in components)
    wrapped = [
        c for c in components if c["method"] == "rapl" and c["counter_end_j"] < c["counter_start_j"]
    ]
    assert wrapped
    assert all(c.get("counter_range_j", 0) > 0 for c in wrapped)
    phases = {_load(p)["predicate"]["benchmark"]["phase"] for p in VALID}
    assert phases == {"inference", "training"}
    assert any("declared_total_steps" in _load(p)["predicate"]["results"] for p in VALID)


def test_task_enum_matches_methodology() -> None:
    label_schema = load_schema("label.schema.json")
    enum = label_schema["properties"]["benchmark"]["properties"]["task"]["enum"]
    every_suite = {task for v in suites.suite_versions() for task in suites.suite_spec(v)["tasks"]}
    assert sorted(enum) == sorted(every_suite)
    assert len(enum) == len(set(enum))


def test_hardware_class_enum_matches_methodology() -> None:
    label_schema = load_schema("label.schema.json")
    enum = label_schema["properties"]["hardware"]["properties"]["hardware_class"]["enum"]
    assert sorted(enum) == sorted(load_methodology()["hardware_classes"])
    assert len(enum) == len(set(enum))
