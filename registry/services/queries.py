"""Read side: label views (a label's summary, detail and grade), stored labels by id (the
filtered list with cursor pagination: ``services.label_list``; a model's and a vendor's views:
``services.profiles``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import String, any_, bindparam, exists
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, select

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import Attestation, Label, LabelKind, Model, PublicKey, Standing, Vendor
from registry.services import briefs, translog
from registry.services.audit import attestations_view
from registry.services.footprint import footprint, market_checks
from registry.services.label_list import LabelFilters, list_labels  # noqa: F401  (callers' names)
from registry.services.peers import (  # noqa: F401  (the read side's names, for its callers)
    MIN_PEERS,
    PeerRank,
    peer_percentile,
    peer_percentiles,
    peer_rank,
    peer_ranks,
    peers_of,
    percentile_of,
)
from registry.services.workloads import NON_STANDARD_WORKLOAD
from schemas.suites import meter_bias


def quality_view(label: Label) -> dict[str, Any]:
    """The label's quality: the measured figure (the one the registry recomputed from the
    per-item outcomes), or why there is none, and the figures the vendor declared beside it."""
    stated = label.predicate.get("quality") or {}
    measured = stated.get("measured") or {}
    if label.quality is not None:
        status = "measured"
    elif "unavailable_reason" in stated:
        status = "unavailable"
    else:
        status = "not-reported"
    return {
        "status": status,
        "metric": label.quality_metric,
        "value": label.quality,
        "items": measured.get("items") if label.quality is not None else None,
        "unavailable_reason": stated.get("unavailable_reason"),
        # as stated: neither measured nor checked by the registry, never the measured figure
        "declared": [{**figure, "declared": True} for figure in stated.get("declared", [])],
    }


def serving_summary(predicate: Any) -> dict[str, Any] | None:
    """chat-serving: the engine (``name``, ``version`` or None, ``source``), the served model,
    the headline concurrency and the measured concurrency levels, from the stored label; None
    for any other label."""
    try:
        serving = predicate["benchmark"]["workload"]["serving"]
        engine = serving["engine"]
        levels = [int(level["concurrency"]) for level in predicate["results"]["serving"]["levels"]]
        return {
            "engine": {
                "name": str(engine["name"]),
                "version": str(engine["version"]) if engine.get("version") else None,
                "source": str(engine["source"]),
            },
            "served_model": str(serving["served_model"]),
            "headline_concurrency": int(predicate["results"]["serving"]["headline_concurrency"]),
            "concurrency_levels": levels,
            "levels": len(levels),
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def label_summary(label: Label, vendor: str, model: str, base_url: str) -> dict[str, Any]:
    return {
        "label_id": label.id,
        "vendor": vendor,
        "model": f"{vendor}/{model}",
        "revision": label.revision,
        "kind": label.kind,
        "suite": label.suite,
        "task": label.task,
        "phase": label.phase,
        "hardware_class": label.hardware_class,
        "size_class": label.size_class,
        "zone": label.zone,
        "functional_unit": label.functional_unit,
        "method": "measured" if label.measured else "estimated",
        "energy_per_unit_wh": label.energy_per_unit_wh,
        "energy_ci95_high_wh": label.energy_ci95_high_wh,
        "energy_per_output_token_j": label.energy_per_output_token_j,
        "co2e_per_unit_g": label.co2e_per_unit_g,
        "quality": quality_view(label),
        "serving": serving_summary(label.predicate) if label.task == "chat-serving" else None,
        "grade": label.grade if label.standing == Standing.ok else None,
        "current": label.current,
        "standing": label.standing,
        "tier": label.tier,
        "log_index": label.log_index,
        "created_at": label.created_at.isoformat().replace("+00:00", "Z"),
        "received_at": label.received_at.isoformat().replace("+00:00", "Z"),
        "links": {
            "self": f"{base_url}/v1/labels/{label.id}",
            "envelope": f"{base_url}/v1/labels/{label.id}/envelope",
            "model": f"{base_url}/v1/models/{vendor}/{model}",
            "log_entry": (
                f"{base_url}/v1/log/entries/{label.log_index}"
                if label.log_index is not None
                else None
            ),
        },
    }


NOT_A_BENCHMARK = "not-a-benchmark"
"""Why a training-run or operational label has no grade: only benchmark labels are graded."""

_QUERY = object()
"""A default that means: read it (the caller did not pass what it already has)."""


def label_detail(
    session: Session,
    label: Label,
    vendor: str,
    model: str,
    base_url: str,
    key_status: Any = _QUERY,
    attested: bool | None = None,
    *,
    envelope: bool = True,
    rank: Any = _QUERY,
) -> dict[str, Any]:
    """The whole label view (``key_status`` and ``attested``, when the caller read them with the
    label, save a query each: :func:`get_label_with_key`; ``envelope`` False: without the
    parsed envelope, for a page that links to it instead; ``rank``: :func:`grade_view`'s)."""
    if key_status is _QUERY:
        key = session.exec(select(PublicKey).where(PublicKey.keyid == label.keyid)).first()
        key_status = key.status if key else None
    detail = label_summary(label, vendor, model, base_url)
    detail["verification"] = {
        "signature": "verified",
        "keyid": label.keyid,
        "key_status": key_status or "unknown",
        "schema": "valid",
        "results": "recomputed-from-traces",
        "payload_sha256": label.payload_sha256,
    }
    detail["grade"] = grade_view(session, label, rank)
    detail["receipt"] = None
    if envelope:
        detail["envelope"] = json.loads(label.envelope)
    detail["label"] = label.predicate
    detail["attestations"] = attestations_view(session, label.id) if attested is not False else []
    detail["footprint"] = footprint(
        label.predicate, label.functional_unit, label.measured, detail["quality"]
    )
    operational = detail["footprint"]["operational_co2e"]
    if operational["market_status"] == "declared":
        operational["market_checked_by"] = market_checks(detail["attestations"])
    return detail


def peer_group(label: Label) -> dict[str, Any]:
    """The labels a label is graded and ranked among (``size_class`` "" where none applies)."""
    return {
        "suite": label.suite,
        "task": label.task,
        "phase": label.phase,
        "hardware_class": label.hardware_class,
        "size_class": label.size_class,
    }


def _basis(label: Label) -> dict[str, Any]:
    """What the grade is given on: the CI's upper bound (``basis_value_wh``) widened by the
    hardware class's meter bias bound (``graded_value_wh``; grading 1, the first, did not widen)."""
    bias = meter_bias(label.hardware_class)
    widened = label.graded_under != "1"
    return {
        "basis": "energy_per_unit_wh.ci95_high x (1 + meter_bias.relative)"
        if widened
        else "energy_per_unit_wh.ci95_high",
        "basis_value_wh": label.energy_ci95_high_wh,
        "graded_value_wh": label.energy_ci95_high_wh * (1.0 + bias["relative"])
        if widened
        else label.energy_ci95_high_wh,
        "meter_bias": bias,
    }


def grade_view(session: Session, label: Label, rank: Any = _QUERY) -> dict[str, Any]:
    """The grade with what it means: status, version, basis, and beside it the percentile among
    current measured peers with their number (``peers``); the percentile is null below
    ``MIN_PEERS`` peers. ``rank`` (a ``PeerRank``), when the caller already has it, saves the
    query."""
    if label.standing != Standing.ok:
        # Logged after its key's compromised_since: no grade, no percentile, no ranking.
        return {
            "status": "withheld",
            "grade": None,
            "reason": label.standing,
            "recorded_grade": label.grade,
            "graded_under": label.graded_under,
            **_basis(label),
            "percentile": None,
            "peers": None,
            "peer_group": peer_group(label),
        }
    reason = None
    if label.kind != LabelKind.benchmark:  # a training run or a production period
        status, rank, reason = "ungraded", None, NOT_A_BENCHMARK
    elif not label.measured:  # estimates are neither graded nor ranked
        status, rank = "estimated", None
    elif not label.standard_workload:
        # a shrunk run (fewer samples, a lower cap): not comparable with its peers
        status, rank, reason = "ungraded", None, NON_STANDARD_WORKLOAD
    else:
        status = "ungraded" if label.grade is None else "graded"
        if rank is _QUERY:
            rank = peer_rank(session, label)
    view: dict[str, Any] = {
        "status": status,
        "grade": label.grade,
        "graded_under": label.graded_under,
        **_basis(label),
        "percentile": rank.shown if rank is not None else None,
        "peers": rank.peers if rank is not None else None,
        "peer_group": peer_group(label),
    }
    if reason is not None:
        view["reason"] = reason
    return view


def _label_row(session: Session, label_id: str) -> Any:
    """A stored label (whole, even where this session holds it brief: services.briefs) with its
    vendor's slug and its model's name; not-found when there is none."""
    statement = (
        select(Label, Vendor.slug, Model.name)
        .join(Vendor, col(Vendor.id) == Label.vendor_id)
        .join(Model, col(Model.id) == Label.model_id)
        .where(Label.id == label_id.lower())
        .execution_options(populate_existing=True)
    )
    row = session.exec(statement).first()
    if row is None:
        raise ProblemError("not-found", f"no label {label_id!r}")
    return row


@cache
def _stored_select(dialect: str, envelope: bool, receipt: bool = False) -> Any:
    """Labels by id (``ids``: one array on PostgreSQL, an IN list elsewhere) with their
    vendor's slug, their model's name, their key's status and whether any auditor attested
    them (``receipt``: and what their log receipt needs, ``translog.receipt_columns``); built
    once."""
    table = Label.__table__  # type: ignore[attr-defined]
    attestations = Attestation.__table__  # type: ignore[attr-defined]
    keys = PublicKey.__table__  # type: ignore[attr-defined]
    columns = [c for c in table.c if envelope or c.name != "envelope"]
    ids = (
        table.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(String)))
        if dialect == "postgresql"
        else table.c.id.in_(bindparam("ids", expanding=True))
    )
    return (
        core_select(
            *columns,
            # the label's own copies of its vendor's slug and its model's name (never changed)
            table.c.vendor_slug.label("s_vendor"),
            table.c.model_name.label("s_model"),
            keys.c.status.label("s_key_status"),
            exists().where(attestations.c.label_id == table.c.id).label("s_attested"),
            *(translog.receipt_columns(table.c.log_index) if receipt else ()),
        )
        .select_from(table.outerjoin(keys, keys.c.keyid == table.c.keyid))
        .where(ids)
    )


LogRead = tuple[Any, Any, Any]
"""A label's log entry's leaf hash and the log's head (tree size, root hash), as read with it
for its receipt (``translog.receipt_from``)."""
StoredLabel = tuple[Label, str, str, str | None, bool, LogRead | None]
"""A label, its vendor's slug, its model's name, its key's status, whether it was attested,
and what its receipt needs (None where that was not read)."""
_RECEIPT_COLUMNS = ("r_leaf_hash", "r_tree_size", "r_root_hash")


def _stored_labels(
    session: Session, label_ids: Sequence[str], *, envelope: bool, receipt: bool = False
) -> dict[str, StoredLabel]:
    """Labels by id (whole, as :class:`~registry.services.briefs.PlainLabel`; without their
    envelopes when ``envelope`` is False) with :func:`_stored_select`'s other columns."""
    connection = session.connection()
    statement = _stored_select(connection.dialect.name, envelope, receipt)
    found: dict[str, StoredLabel] = {}
    for row in read_mappings(connection, statement, {"ids": [i.lower() for i in label_ids]}):
        values = dict(row)
        vendor, model = values.pop("s_vendor"), values.pop("s_model")
        key_status, attested = values.pop("s_key_status"), bool(values.pop("s_attested"))
        logged = tuple(values.pop(name) for name in _RECEIPT_COLUMNS) if receipt else None
        label: Any = briefs.PlainLabel(values)
        found[values["id"]] = (label, vendor, model, key_status, attested, logged)
    return found


def get_label_with_key(
    session: Session, label_id: str
) -> tuple[Label, str, str, str | None, bool, LogRead]:
    """A stored label (whole, as a plain object: :func:`_stored_labels`) with its vendor's
    slug, its model's name, the status of the key that signed it, whether any auditor attested
    it and what its log receipt needs (:data:`LogRead`), in one statement; not-found when there
    is none."""
    found = _stored_labels(session, [label_id], envelope=True, receipt=True).get(label_id.lower())
    if found is None:
        raise ProblemError("not-found", f"no label {label_id!r}")
    label, vendor, model, key_status, attested, logged = found
    assert logged is not None  # read with receipt=True
    return label, vendor, model, key_status, attested, logged


def labels_with_key(
    session: Session, label_ids: Sequence[str]
) -> dict[str, tuple[Label, str | None, bool]]:
    """Labels by id (plain objects: :func:`_stored_labels`), each with its key's status and
    whether it was attested, in one statement and without their envelopes (for a page that
    links to them: the model page); ids that name no label are absent."""
    found = _stored_labels(session, label_ids, envelope=False)
    return {i: (f[0], f[3], f[4]) for i, f in found.items()}


def get_label(session: Session, label_id: str) -> tuple[Label, str, str]:
    row = _label_row(session, label_id)
    return row[0], row[1], row[2]
