"""The label contract: JSON Schemas, the methodology file, DSSE signing and results recomputation.

This package is the leaf of the project: it imports nothing from ``registry`` or ``bench_runner``.
"""

from schemas.contract import (
    LABEL_SCHEMA_ID,
    PAYLOAD_TYPE,
    STATEMENT_TYPE,
    SchemaIssue,
    load_methodology,
    validate_label,
    validate_statement,
)
from schemas.dsse import (
    Envelope,
    EnvelopeError,
    b64decode_any,
    build_statement,
    keyid_for,
    load_private_key,
    load_public_key,
    pae,
    parse_envelope,
    sign_envelope,
    sign_statement,
    verify_signature,
)
from schemas.results import ResultMismatch, check_results, compute_results

__all__ = [
    "LABEL_SCHEMA_ID",
    "PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "Envelope",
    "EnvelopeError",
    "ResultMismatch",
    "SchemaIssue",
    "b64decode_any",
    "build_statement",
    "check_results",
    "compute_results",
    "keyid_for",
    "load_methodology",
    "load_private_key",
    "load_public_key",
    "pae",
    "parse_envelope",
    "sign_envelope",
    "sign_statement",
    "validate_label",
    "validate_statement",
    "verify_signature",
]
