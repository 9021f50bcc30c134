"""Auditor attestations: the in-toto statement an auditor signs about a label it reproduced, its
validation, and the agreement rule (shared by the registry and ``carbonlabel attest``).

The statement's single subject is the attested label: ``{"name": "label:<label_id>", "digest":
{"sha256": <SHA-256 of the label's DSSE payload>}}``; its predicate (``schemas/
attestation.schema.json``, predicateType ``urn:carbonlabel:attestation:v1``) holds the auditor's
own figures. The envelope is an ordinary DSSE envelope (``payloadType``
``application/vnd.in-toto+json``) signed with the auditor's Ed25519 key.

Agreement (``methodology.json`` ``audit``): the auditor's mean gross energy per functional unit
lies within ``tolerance_relative`` (10 %) of the label's mean, on the same reference hardware
class (not ``other``) and in the same functional unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import jsonschema_rs

from schemas.contract import STATEMENT_TYPE, SchemaIssue, load_methodology, load_schema

ATTESTATION_PREDICATE_TYPE = "urn:carbonlabel:attestation:v1"
ATTESTATION_SCHEMA_FILE = "attestation.schema.json"
SUBJECT_PREFIX = "label:"
UNNAMED_HARDWARE_CLASS = "other"
"""A hardware class that names no reference hardware: never "the same hardware"."""


def subject_name(label_id: str) -> str:
    return SUBJECT_PREFIX + label_id


def build_attestation_statement(
    label_id: str, label_payload_sha256: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """Wrap an attestation predicate in an in-toto Statement v1 about the label."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name(label_id), "digest": {"sha256": label_payload_sha256}}],
        "predicateType": ATTESTATION_PREDICATE_TYPE,
        "predicate": predicate,
    }


@cache
def _validator() -> Any:
    """Validates a whole statement (``$defs/statement``), with the label schema registered for
    the hardware class enum."""
    names = ("label.schema.json", ATTESTATION_SCHEMA_FILE)
    registry = jsonschema_rs.Registry([(load_schema(n)["$id"], load_schema(n)) for n in names])
    return jsonschema_rs.Draft202012Validator(
        {"$ref": ATTESTATION_PREDICATE_TYPE + "#/$defs/statement"},
        registry=registry,
        validate_formats=False,
    )


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def attestation_issues(statement: Any, *, limit: int = 50) -> list[SchemaIssue]:
    """Schema violations of an attestation statement, then the rules a schema cannot state
    (each interval ordered low <= mean <= high; ``reproduced_at`` a real instant)."""
    validator = _validator()
    issues: list[SchemaIssue] = []
    if not validator.is_valid(statement):
        for error in validator.iter_errors(statement):
            issues.append(SchemaIssue(_pointer(error.instance_path), error.message[:300]))
            if len(issues) >= limit:
                break
        issues.sort(key=lambda i: i.pointer)
        return issues
    predicate = statement["predicate"]
    for name, interval in predicate["results"].items():
        if not isinstance(interval, dict):
            continue
        if not interval["ci95_low"] <= interval["mean"] <= interval["ci95_high"]:
            issues.append(
                SchemaIssue(
                    f"/predicate/results/{name}", "must satisfy ci95_low <= mean <= ci95_high"
                )
            )
    try:
        datetime.fromisoformat(predicate["reproduced_at"])
    except ValueError:
        issues.append(SchemaIssue("/predicate/reproduced_at", "not a real date and time"))
    return issues


def audit_tolerance_relative() -> float:
    return float(load_methodology()["audit"]["tolerance_relative"])


@dataclass(frozen=True)
class Verdict:
    agrees: bool
    relative_difference: float | None
    """(auditor's mean - label's mean) / label's mean; None when the label's mean is 0."""
    tolerance_relative: float
    reasons: list[str] = field(default_factory=list)
    """Why the figures disagree (empty when they agree)."""


def agreement(
    *,
    label_energy_wh: float,
    label_hardware_class: str,
    label_functional_unit: str,
    predicate: dict[str, Any],
    tolerance_relative: float | None = None,
) -> Verdict:
    """The audit rule applied to a label's figures and a (valid) attestation predicate."""
    tolerance = audit_tolerance_relative() if tolerance_relative is None else tolerance_relative
    mean = float(predicate["results"]["energy_per_unit_wh"]["mean"])
    reasons: list[str] = []
    relative: float | None = None
    if label_energy_wh > 0:
        relative = (mean - label_energy_wh) / label_energy_wh
    if not (math.isfinite(mean) and abs(mean - label_energy_wh) <= tolerance * label_energy_wh):
        shown = "n/a" if relative is None else f"{relative:+.1%}"
        reasons.append(
            f"energy per unit {mean:.6g} Wh differs from the label's {label_energy_wh:.6g} Wh "
            f"by {shown}, beyond the tolerance of {tolerance:.0%}"
        )
    hardware_class = predicate["hardware_class"]
    if hardware_class != label_hardware_class:
        reasons.append(
            f"hardware class {hardware_class!r} is not the label's {label_hardware_class!r}"
        )
    elif hardware_class == UNNAMED_HARDWARE_CLASS:
        reasons.append("hardware class 'other' names no reference hardware to compare on")
    unit = predicate["results"]["functional_unit"]
    if unit != label_functional_unit:
        reasons.append(f"functional unit {unit!r} is not the label's {label_functional_unit!r}")
    return Verdict(
        agrees=not reasons,
        relative_difference=relative,
        tolerance_relative=tolerance,
        reasons=reasons,
    )
