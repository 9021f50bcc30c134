"""Signed label ingest: the checks of contract section 3, in a fixed order, then one insert.

Order (the first failing check answers): envelope structure (400) -> an identical stored envelope
(200) -> key known to the token's vendor (403) -> key active (403) -> signature (422) -> schema
(422) -> label vendor is the token's vendor (403) -> audience (422) -> results follow from traces
(422) -> label_id unused (409) -> stored (201).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session

from registry.errors import ProblemError
from registry.models import (
    Label,
    LabelKind,
    Model,
    Standing,
    Vendor,
    utcnow,
)
from registry.services import briefs, signers, standings, translog
from registry.services import vendors as vendor_service
from registry.services.peers import PeerRank, peer_rank
from registry.services.workloads import grade_of, suite_columns
from schemas import check_results, kinds, validate_statement
from schemas.contract import semantic_issues
from schemas.dsse import (
    EnvelopeError,
    decode_statement,
    parse_envelope,
    verify_signature,
)


@dataclass
class IngestTimings:
    """Seconds spent in each stage of one ingest (for the benchmark and metrics)."""

    verify_s: float = 0.0
    validate_s: float = 0.0
    store_s: float = 0.0


@dataclass
class IngestResult:
    label: Label
    created: bool
    vendor: Vendor
    model_name: str
    timings: IngestTimings = field(default_factory=IngestTimings)
    logged: translog.Appended | None = None  # the log append of a new label
    rank: PeerRank | None = None  # a new label's place among its peers, read with its store


BENCHMARK: ColumnElement[str] = literal_column("'benchmark'")


@dataclass(frozen=True)
class _StoreStatements:
    upsert_model: Any | None
    """SQLite: the model's upsert, run first (its id goes into the label). PostgreSQL: None, the
    label's INSERT does it in a CTE (one round trip fewer)."""
    insert_label: Any
    """Returns ``(id, model_id)`` of a new label, nothing when the id is already stored."""
    refresh_current: Any
    """Returns the id and ``standings.CHANGED_COLUMNS`` of each label whose flag changed."""


@cache
def _statements(dialect: str) -> _StoreStatements:
    """The statements of a store, built once per dialect so their compiled form is reused."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    models = Model.__table__  # type: ignore[attr-defined]
    labels = Label.__table__  # type: ignore[attr-defined]
    model_insert = insert(models).values(
        vendor_id=bindparam("m_vendor_id"),
        name=bindparam("m_name"),
        created_at=bindparam("m_created_at"),
    )
    # whether the model is new or not: a no-op update returns the existing id (and locks the
    # model's row until the commit)
    upsert_model = model_insert.on_conflict_do_update(
        index_elements=["vendor_id", "name"], set_={"name": model_insert.excluded.name}
    ).returning(models.c.id)
    if dialect == "postgresql":
        model = upsert_model.cte("model")
        columns = [c for c in labels.c if c.name != "model_id"]
        insert_label = (
            insert(labels)
            .from_select(
                [*(c.name for c in columns), "model_id"],
                # bind names prefixed: a bare "id" would also feed the models INSERT
                select(*(bindparam(f"l_{c.name}", type_=c.type) for c in columns), model.c.id),
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(labels.c.id, labels.c.model_id)
        )
        separate_upsert = None
    else:
        insert_label = (
            insert(labels)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(labels.c.id, labels.c.model_id)
        )
        separate_upsert = upsert_model

    def group(table: Any) -> Any:
        return (
            (table.c.model_id == bindparam("g_model_id"))
            & (table.c.suite == bindparam("g_suite"))
            & (table.c.task == bindparam("g_task"))
            & (table.c.phase == bindparam("g_phase"))
            & (table.c.hardware_class == bindparam("g_hardware_class"))
        )

    newer = labels.alias("newer")  # an alias, so the subquery is not correlated to the UPDATE
    newest = (
        select(newer.c.id)
        # a literal, so the planner can use the partial index (benchmark labels only, 0008)
        .where(group(newer) & (newer.c.standing == Standing.ok) & (newer.c.kind == BENCHMARK))
        .order_by(newer.c.created_at.desc(), newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    is_newest = func.coalesce(labels.c.id == newest, false())
    # Only the rows whose flag changes (the new label and the one it replaces), found through
    # the partial index of current labels and the primary key, not by reading the whole group
    # (migration 0005).
    refresh = (
        labels.update()
        .where(
            group(labels)
            & (labels.c.current | (labels.c.id == newest))
            & labels.c.current.is_distinct_from(is_newest)
        )
        .values(current=is_newest)
    )
    refresh_current = refresh.returning(labels.c.id, *standings.changed_columns())
    return _StoreStatements(separate_upsert, insert_label, refresh_current)


def refresh_current(
    connection: Any, *, model_id: int, suite: str, task: str, phase: str, hardware_class: str
) -> list[Any]:
    """Mark the newest label in good standing of this group current, the others not; returns
    the labels whose flag changed (their id and ``standings.CHANGED_COLUMNS``), for
    ``standings.apply_changes``."""
    statement = _statements(connection.dialect.name).refresh_current
    return list(
        connection.execute(
            statement,
            {
                "g_model_id": model_id,
                "g_suite": suite,
                "g_task": task,
                "g_phase": phase,
                "g_hardware_class": hardware_class,
            },
        ).mappings()
    )


def _existing(session: Session, label_id: str) -> Label | None:
    return session.get(Label, label_id)


def _same(existing: Label, vendor: Vendor, payload_sha256: str) -> bool:
    return existing.vendor_id == vendor.id and existing.payload_sha256 == payload_sha256


def ingest(
    session: Session,
    *,
    body: bytes,
    audience: str,
    vendor: Vendor | None = None,
    token: str | None = None,
) -> IngestResult:
    """Verify, validate and store one envelope from ``vendor``, or from the vendor of the API
    ``token`` (checked with the key look-up, in one round trip: a 401 problem before any other
    refusal). Raises ProblemError for every refusal."""
    if (vendor is None) == (token is None):
        raise TypeError("ingest needs a vendor or a token")
    timings = IngestTimings()
    started = time.perf_counter()
    try:
        envelope = parse_envelope(body)
        statement = decode_statement(envelope)
    except EnvelopeError as exc:
        if token is not None:
            signers.caller(session, token, [])  # a bad token is answered first
        raise ProblemError("malformed-envelope", str(exc)) from None
    payload_sha256 = hashlib.sha256(envelope.payload).hexdigest()
    predicate = statement.get("predicate")
    label_id = predicate.get("label_id") if isinstance(predicate, dict) else None
    params: dict[str, Any] = {"label_id": label_id if isinstance(label_id, str) else None}
    connection = session.connection()
    if token is not None:
        params["digest"] = vendor_service.hash_token(token)
        rows = connection.execute(signers.caller_keys_and_seen(), params).all()
        vendor = signers.caller(session, token, rows)
    else:
        assert vendor is not None
        rows = connection.execute(signers.keys_and_seen(), params | {"vendor_id": vendor.id}).all()
    keys = [signers.SigningKey(r.keyid, r.status, r.public_key_b64) for r in rows]
    # The same envelope again: same vendor, same payload, and signed by the key that signed the
    # stored label (even if since revoked: that label keeps its standing).
    seen = rows[0] if rows else None
    if (
        seen is not None
        and (seen.seen_vendor_id, seen.seen_payload_sha256) == (vendor.id, payload_sha256)
        and any(
            key.keyid == seen.seen_keyid
            and verify_signature(envelope, signers.public_key(key.public_key_b64))
            for key in keys
        )
    ):
        existing = _existing(session, str(label_id))
        model = session.get(Model, existing.model_id) if existing else None
        if existing is not None and model is not None:
            return IngestResult(existing, False, vendor, model.name, timings)

    key = signers.key_for(envelope, vendor, keys)
    timings.verify_s = time.perf_counter() - started

    started = time.perf_counter()
    issues = [{"pointer": i.pointer, "message": i.message} for i in validate_statement(statement)]
    if not issues:
        issues = [{"pointer": i.pointer, "message": i.message} for i in semantic_issues(statement)]
    if issues:
        raise ProblemError(
            "schema-violation",
            f"the statement does not match the label schema ({len(issues)} errors)",
            errors=issues,
        )
    label = statement["predicate"]
    if label["vendor"] != vendor.slug:
        raise ProblemError(
            "vendor-mismatch",
            f"label is for vendor {label['vendor']!r} but the token belongs to {vendor.slug!r}",
        )
    if label["registry"].rstrip("/") != audience.rstrip("/"):
        raise ProblemError(
            "wrong-audience",
            f"label is addressed to {label['registry']!r}, this registry is {audience!r}",
        )
    mismatches = check_results(label)
    if mismatches:
        raise ProblemError(
            "inconsistent-results",
            f"{len(mismatches)} stated results do not follow from the traces",
            errors=[
                {"pointer": m.pointer, "stated": m.stated, "recomputed": m.recomputed}
                for m in mismatches[:50]
            ],
        )
    timings.validate_s = time.perf_counter() - started

    started = time.perf_counter()
    result = _store(session, vendor=vendor, key=key, label=label, body=body, sha=payload_sha256)
    result.timings = timings
    timings.store_s = time.perf_counter() - started
    return result


def _log(
    connection: Connection,
    row: Label,
    key: signers.SigningKey,
    vendor: Vendor,
    body: bytes,
    rider: translog.Rider | None = None,
) -> translog.Appended:
    """Append the label's log entry (last in the transaction: the log's lock is held from here to
    the commit); sets ``row.log_index``."""
    logged = translog.append(
        connection,
        "label",
        logged_at=row.received_at,
        label_id=row.id,
        keyid=key.keyid,
        rider=rider,
        vendor=vendor.slug,
        payload_sha256=row.payload_sha256,
        envelope_sha256=hashlib.sha256(body).hexdigest(),
    )
    row.log_index = logged.index
    return logged


def _store(
    session: Session,
    *,
    vendor: Vendor,
    key: signers.SigningKey,
    label: dict[str, Any],
    body: bytes,
    sha: str,
) -> IngestResult:
    assert vendor.id is not None
    model_name = label["model"]["id"].split("/", 1)[1]
    connection = session.connection()
    statements = _statements(connection.dialect.name)
    model_params = {"m_vendor_id": vendor.id, "m_name": model_name, "m_created_at": utcnow()}
    model_id = 0  # PostgreSQL: set from the INSERT's answer
    if statements.upsert_model is not None:
        model_id = connection.execute(statements.upsert_model, model_params).scalar_one()
    methods = {c["method"] for c in label["measurement"]["components"]}
    measured = "estimate" not in methods
    suite = suite_columns(label)
    kind = label.get("kind", LabelKind.benchmark)
    benchmark = kind == LabelKind.benchmark
    # only benchmark labels are graded, current and ranked (contract: label kinds)
    grade, graded_under = (
        grade_of(label, measured=measured, suite=suite["suite"], size_class=suite["size_class"])
        if benchmark
        else (None, None)
    )
    row = Label(
        id=label["label_id"],
        vendor_id=vendor.id,
        model_id=model_id,
        revision=label["model"]["revision"],
        task=label["benchmark"]["task"],
        phase=label["benchmark"]["phase"],
        hardware_class=label["hardware"]["hardware_class"],
        zone=label["carbon"]["zone"],
        functional_unit=label["results"]["functional_unit"],
        measured=measured,
        energy_per_unit_wh=kinds.headline_energy_wh(label),
        energy_ci95_high_wh=label["results"]["energy_per_unit_wh"]["ci95_high"],
        co2e_per_unit_g=label["carbon"]["co2e_per_unit_g"]["mean"],
        created_at=datetime.fromisoformat(label["created_at"]),
        grade=grade,
        graded_under=graded_under,
        keyid=key.keyid,
        payload_sha256=sha,
        envelope=body,
        predicate=label,
        brief=briefs.brief_of(label),
        vendor_slug=vendor.slug,
        model_name=model_name,
        kind=kind,
        current=benchmark,
        **suite,
    )
    params = row.model_dump()
    if statements.upsert_model is None:
        del params["model_id"]
        params = {f"l_{name}": value for name, value in params.items()} | model_params
    inserted = connection.execute(statements.insert_label, params).first()
    if inserted is not None:
        row.model_id = model_id = int(inserted.model_id)
        if not benchmark:  # logged, and nothing else changes
            logged = _log(connection, row, key, vendor, body)
            return IngestResult(row, True, vendor, model_name, logged=logged)
        # The model row is locked by the upsert above until commit, so concurrent labels of the
        # same model take turns here and exactly one label per group stays current.
        changed = refresh_current(
            connection,
            model_id=model_id,
            suite=row.suite,
            task=row.task,
            phase=row.phase,
            hardware_class=row.hardware_class,
        )
        for change in changed:
            if change["id"] == row.id:
                row.current = bool(change["current"])
        # The label arrived current (counted by standings.rider below), and the refresh's changes
        # follow it.
        arrived = {name: getattr(row, name) for name in standings.CHANGED_COLUMNS}
        changes = [arrived | {"current": True}, *changed]
        # Read before the log's lock (which is held until the commit), with this transaction's
        # changes counted as the rider will count them.
        rank = peer_rank(session, row, changes)
        # Last, so the log's lock is held only from here to the commit; it sets log_index too.
        # The kept figures ride with it: read under the lock (so the standings are recomputed
        # one change at a time), written in the log's own statement on PostgreSQL.
        slugs = {vendor.id: vendor.slug}
        logged = _log(
            connection,
            row,
            key,
            vendor,
            body,
            rider=lambda locked: standings.rider(locked, changes, slugs),
        )
    if inserted is None:
        existing = _existing(session, row.id)
        if existing is not None and _same(existing, vendor, sha):
            return IngestResult(existing, False, vendor, model_name)
        raise ProblemError(
            "label-conflict",
            f"label_id {row.id} is already used by a label with different content",
        )
    return IngestResult(row, True, vendor, model_name, logged=logged, rank=rank)
