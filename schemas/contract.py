"""Load the JSON Schemas and the methodology file; validate statements and labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

LABEL_SCHEMA_ID = "urn:carbonlabel:label:v1"
STATEMENT_SCHEMA_ID = "urn:carbonlabel:statement:v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

_SCHEMA_FILES = ("label.schema.json", "statement.schema.json", "envelope.schema.json")


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: where (a JSON pointer into the validated document) and what."""

    pointer: str
    message: str


def _read_json(name: str) -> Any:
    return json.loads(resources.files("schemas").joinpath(name).read_text(encoding="utf-8"))


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return one of the bundled schema documents by file name."""
    schema: dict[str, Any] = _read_json(name)
    return schema


@cache
def load_methodology() -> dict[str, Any]:
    """Return the versioned methodology file (tasks, hardware classes, tolerances)."""
    methodology: dict[str, Any] = _read_json("methodology.json")
    return methodology


@cache
def _validator(schema_file: str) -> Any:
    """A compiled Draft 2020-12 validator (jsonschema-rs) with the bundled schemas registered.

    Formats are not asserted (Draft 2020-12's default); the schemas pin the formats that matter
    (UUIDs, RFC 3339 UTC timestamps) with patterns. ``tests/test_schema_examples.py`` checks this
    validator against the pure-Python ``jsonschema`` and against ajv.
    """
    registry = jsonschema_rs.Registry(
        [(load_schema(n)["$id"], load_schema(n)) for n in _SCHEMA_FILES]
    )
    return jsonschema_rs.Draft202012Validator(
        load_schema(schema_file), registry=registry, validate_formats=False
    )


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _issues(schema_file: str, document: Any, limit: int) -> list[SchemaIssue]:
    issues: list[SchemaIssue] = []
    validator = _validator(schema_file)
    if validator.is_valid(document):
        return issues
    for error in validator.iter_errors(document):
        issues.append(SchemaIssue(_pointer(error.instance_path), error.message[:300]))
        if len(issues) >= limit:
            break
    issues.sort(key=lambda i: i.pointer)
    return issues


def validate_statement(statement: Any, *, limit: int = 50) -> list[SchemaIssue]:
    """Validate an in-toto statement carrying a label; return at most ``limit`` issues."""
    return _issues("statement.schema.json", statement, limit)


def validate_label(label: Any, *, limit: int = 50) -> list[SchemaIssue]:
    """Validate a bare label (the statement's predicate)."""
    return _issues("label.schema.json", label, limit)


def semantic_issues(statement: dict[str, Any]) -> list[SchemaIssue]:
    """Rules a JSON Schema cannot state, for a statement that passed the schema: the subject
    names the model revision and its artifact digest, the model belongs to the vendor, the phase
    is offered for the task, and created_at is a real instant."""
    from datetime import datetime

    label = statement["predicate"]
    issues = []
    vendor, model_id, revision = label["vendor"], label["model"]["id"], label["model"]["revision"]
    if not model_id.startswith(vendor + "/"):
        issues.append(SchemaIssue("/predicate/model/id", "must start with vendor + '/'"))
    subject = statement["subject"][0]
    if subject["name"] != f"{model_id}@{revision}":
        issues.append(SchemaIssue("/subject/0/name", "must be '<model.id>@<model.revision>'"))
    if subject["digest"]["sha256"] != label["provenance"]["model_artifact_sha256"]:
        issues.append(
            SchemaIssue(
                "/subject/0/digest/sha256",
                "must equal predicate.provenance.model_artifact_sha256",
            )
        )
    issues.extend(_suite_issues(label))
    try:
        datetime.fromisoformat(label["created_at"])
    except ValueError:
        issues.append(SchemaIssue("/predicate/created_at", "not a real date and time"))
    return issues


def _suite_issues(label: dict[str, Any]) -> list[SchemaIssue]:
    """The suite exists and offers the task and phase, the functional unit is the suite's, and a
    suite-2 model's file manifest is what the subject digest names."""
    from schemas import suites

    benchmark = label["benchmark"]
    version, task, phase = benchmark["suite"]["version"], benchmark["task"], benchmark["phase"]
    try:
        phases = suites.phases_of(version, task)
    except suites.UnknownSuiteError as exc:
        return [SchemaIssue("/predicate/benchmark", str(exc))]
    if phase not in phases:
        return [SchemaIssue("/predicate/benchmark/phase", f"not offered for {task}")]
    issues = []
    unit = suites.functional_unit_name(version, task, phase)
    if label["results"]["functional_unit"] != unit:
        issues.append(
            SchemaIssue(
                "/predicate/results/functional_unit", f"suite {version} {task} {phase}: {unit}"
            )
        )
    bias = label["measurement"].get("bias")
    if bias is not None:
        expected = suites.meter_bias(label["hardware"]["hardware_class"])
        if (bias["relative"], bias["validated"]) != (expected["relative"], expected["validated"]):
            issues.append(
                SchemaIssue(
                    "/predicate/measurement/bias",
                    "must be the methodology's bound for the hardware class: "
                    f"{expected['relative']} (validated: {expected['validated']})",
                )
            )
    serving = label["benchmark"]["workload"].get("serving")
    if serving and serving["headline_concurrency"] != suites.headline_concurrency(
        serving["concurrency_levels"]
    ):
        issues.append(
            SchemaIssue(
                "/predicate/benchmark/workload/serving/headline_concurrency",
                "must be the methodology's standard concurrency, or the level closest to it",
            )
        )
    files = label["model"].get("files")
    if files and suites.files_digest(files) != label["provenance"]["model_artifact_sha256"]:
        issues.append(
            SchemaIssue(
                "/predicate/model/files",
                "the subject digest must be sha256 of the files' manifest (docs/label.md)",
            )
        )
    return issues
