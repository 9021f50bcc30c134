"""The fast validator (jsonschema-rs, used on ingest) and the reference Python implementation
(jsonschema) agree on every example and on mutated labels."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas.contract import load_schema, validate_statement
from schemas.dsse import build_statement
from schemas.synthetic import make_label

EXAMPLES = sorted((Path(__file__).parent.parent / "schemas" / "examples").rglob("*.json"))


def reference_validator() -> Draft202012Validator:
    names = ("label.schema.json", "statement.schema.json", "envelope.schema.json")
    registry = Registry().with_resources(
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in names
    )
    return Draft202012Validator(load_schema("statement.schema.json"), registry=registry)


def mutations() -> list[dict]:  # type: ignore[type-arg]
    base = build_statement(make_label(vendor="acme", model="m", registry="http://x"))
    edits = [
        ("predicate", "vendor", "Not A Slug"),
        ("predicate", "results", "functional_unit", "step"),
        ("predicate", "carbon", "pue", 0.5),
        ("predicate", "carbon", "zone", "fr"),
        ("predicate", "created_at", "2026-01-01T00:00:00+01:00"),
        ("predicate", "label_id", "not-a-uuid"),
        ("predicate", "traces", "trials", []),
        ("predicate", "measurement", "flags", ["estimated", "estimated"]),
        ("predicate", "hardware", "ram_bytes", -1),
        ("subject", []),
    ]
    out = [base]
    for edit in edits:
        doc = copy.deepcopy(base)
        node = doc
        for key in edit[:-2]:
            node = node[key]
        node[edit[-2]] = edit[-1]
        out.append(doc)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_agree(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert (validate_statement(doc) == []) == reference_validator().is_valid(doc)


@pytest.mark.parametrize("index", range(11))
def test_mutations_agree(index: int) -> None:
    doc = mutations()[index]
    fast = validate_statement(doc)
    assert (fast == []) == reference_validator().is_valid(doc)
    assert (fast == []) == (index == 0)
