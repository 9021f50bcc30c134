"""Load the JSON Schemas and the methodology file; validate statements and labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

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
def _registry() -> Registry:
    resources_ = [
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in _SCHEMA_FILES
    ]
    return Registry().with_resources(resources_)


@cache
def _validator(schema_file: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(schema_file), registry=_registry())


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _issues(schema_file: str, document: Any, limit: int) -> list[SchemaIssue]:
    issues: list[SchemaIssue] = []
    for error in _validator(schema_file).iter_errors(document):
        issues.append(SchemaIssue(_pointer(error.absolute_path), error.message[:300]))
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
