"""Read side: a model's view (its latest benchmark label per task and phase, its history, its
training runs and production periods apart) and a vendor's profile (keys, models, labels)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import Label, LabelKind, Model, PublicKey, Vendor
from registry.services import briefs
from registry.services import vendors as vendor_service
from registry.services.queries import LabelFilters, label_summary, list_labels

MODEL_TRAINING_RUNS = 100
"""Training runs a model view lists (the newest)."""


def _model_labels(
    session: Session, model_id: int, kind: str, *, newest_by: Any, limit: int | None = None
) -> list[Label]:
    """A model's labels of one kind, brief (``services.briefs``), newest first by ``newest_by``."""
    query = (
        briefs.brief_select()
        .where(Label.model_id == model_id, Label.kind == kind)
        .order_by(newest_by.desc(), col(Label.id).desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return briefs.brief_labels(session.exec(query).all())


def model_view(
    session: Session, vendor_slug: str, model_name: str, base_url: str
) -> dict[str, Any]:
    """The model's latest benchmark label per suite, task and phase and its benchmark history
    (newest first); the other kinds apart: its training runs (the newest
    ``MODEL_TRAINING_RUNS``) and its production periods (their number, the newest, and the
    series that holds them)."""
    vendor = session.exec(select(Vendor).where(Vendor.slug == vendor_slug)).first()
    model = (
        session.exec(
            select(Model).where(Model.vendor_id == vendor.id, Model.name == model_name)
        ).first()
        if vendor
        else None
    )
    if vendor is None or model is None or model.id is None:
        raise ProblemError("not-found", f"no model {vendor_slug}/{model_name}")
    received = col(Label.received_at)
    labels = _model_labels(session, model.id, LabelKind.benchmark, newest_by=received)
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    history = []
    for label in labels:
        summary = label_summary(label, vendor.slug, model.name, base_url)
        latest.setdefault((label.suite, label.task, label.phase), summary)
        history.append(summary)
    runs = _model_labels(
        session,
        model.id,
        LabelKind.training_run,
        newest_by=col(Label.created_at),
        limit=MODEL_TRAINING_RUNS,
    )
    periods = session.exec(
        select(func.count())
        .select_from(Label)
        .where(Label.model_id == model.id, Label.kind == LabelKind.operational)
    ).one()
    newest_period = _model_labels(
        session, model.id, LabelKind.operational, newest_by=col(Label.created_at), limit=1
    )
    series = f"{base_url}/v1/models/{vendor.slug}/{model.name}/series"
    return {
        "vendor": vendor.slug,
        "model": f"{vendor.slug}/{model.name}",
        "latest": list(latest.values()),
        "history": history,
        "training_runs": [label_summary(r, vendor.slug, model.name, base_url) for r in runs],
        "operational": {
            "periods": int(periods),
            "latest": label_summary(newest_period[0], vendor.slug, model.name, base_url)
            if newest_period
            else None,
            "series": series,
        },
        "series": series,
    }


def vendor_keys(session: Session, vendor: Vendor) -> list[dict[str, Any]]:
    """A vendor's keys (:func:`key_view`), oldest first."""
    found = read_mappings(session.connection(), _keys_statement(), {"vendor_id": vendor.id})
    return [key_view(briefs.PlainLabel(row)) for row in found]  # type: ignore[arg-type]


def vendor_models(session: Session, vendor: Vendor) -> list[str]:
    """A vendor's model names, in name order."""
    found = read_mappings(session.connection(), _models_statement(), {"vendor_id": vendor.id})
    return [row["name"] for row in found]


@dataclass(frozen=True)
class VendorSummary:
    """A vendor with what its page heads with: its model names (in name order) and how many
    benchmark labels it has."""

    vendor: Vendor
    model_names: list[str]
    benchmark_labels: int


def vendor_summary(session: Session, slug: str) -> VendorSummary:
    """The vendor ``slug`` names (detached, as ``vendors.get_vendor``), its model names and its
    benchmark labels' count, in one statement (three before: a statement costs a vendor page
    about 70 microseconds of CPU in the registry besides the database's own); a not-found
    problem if there is no such vendor."""
    connection = session.connection()
    found = read_mappings(connection, _summary_statement(connection.dialect.name), {"slug": slug})
    if not found:
        raise ProblemError("not-found", f"no vendor {slug!r}")
    row = found[0]
    names = row["model_names"]
    if isinstance(names, str):  # SQLite's JSON comes as text
        names = json.loads(names)
    return VendorSummary(
        vendor=vendor_service.detached(row),
        # in name order whatever the aggregate's order (SQLite's does not promise one)
        model_names=sorted(names or []),
        benchmark_labels=int(row["benchmark_labels"]),
    )


@cache
def _summary_statement(dialect: str) -> Any:
    """:func:`vendor_summary`'s read (``slug``), built once per dialect: the model names as a
    JSON array (``json_agg`` on PostgreSQL, ``json_group_array`` on SQLite), the count over
    ``ix_labels_vendor_received``'s vendor."""
    vendors = Vendor.__table__  # type: ignore[attr-defined]
    models = Model.__table__  # type: ignore[attr-defined]
    labels = Label.__table__  # type: ignore[attr-defined]
    aggregate = func.json_agg if dialect == "postgresql" else func.json_group_array
    names = (
        core_select(aggregate(models.c.name))
        .where(models.c.vendor_id == vendors.c.id)
        .scalar_subquery()
        .label("model_names")
    )
    count = (
        core_select(func.count())
        .select_from(labels)
        .where(labels.c.vendor_id == vendors.c.id, labels.c.kind == LabelKind.benchmark.value)
        .scalar_subquery()
        .label("benchmark_labels")
    )
    return core_select(*vendors.c, names, count).where(vendors.c.slug == bindparam("slug"))


@cache
def _keys_statement() -> Any:
    """:func:`vendor_keys`' read (the vendor by ``vendor_id``), built once."""
    keys = PublicKey.__table__  # type: ignore[attr-defined]
    return select(keys).where(keys.c.vendor_id == bindparam("vendor_id")).order_by(keys.c.id)


@cache
def _models_statement() -> Any:
    """:func:`vendor_models`' read (the vendor by ``vendor_id``), built once."""
    models = Model.__table__  # type: ignore[attr-defined]
    return (
        select(models.c.name)
        .where(models.c.vendor_id == bindparam("vendor_id"))
        .order_by(models.c.name)
    )


def vendor_profile(
    session: Session, vendor: Vendor, base_url: str, limit: int = 100
) -> dict[str, Any]:
    """The vendor's profile, keys, models and newest benchmark labels; the other kinds (and the
    trend) are a link away: a deployed model adds a production period every hour."""
    keys = vendor_keys(session, vendor)
    page, next_cursor = list_labels(
        session,
        filters=LabelFilters(vendor=vendor.slug, kind=LabelKind.benchmark),
        sort="-received_at",
        limit=limit,
        cursor=None,
    )
    models = vendor_models(session, vendor)
    return {
        "vendor": vendor.slug,
        "display_name": vendor.display_name,
        "created_at": vendor.created_at.isoformat().replace("+00:00", "Z"),
        "keys": keys,
        "models": [f"{vendor.slug}/{m}" for m in models],
        "labels": [label_summary(lbl, v, m, base_url) for lbl, v, m in page],
        "labels_next": (
            f"{base_url}/v1/labels?vendor={vendor.slug}&kind=benchmark&cursor={next_cursor}"
            if next_cursor
            else None
        ),
        "links": {
            "training_runs": f"{base_url}/v1/labels?vendor={vendor.slug}&kind=training-run",
            "operational": f"{base_url}/v1/labels?vendor={vendor.slug}&kind=operational",
            "series": f"{base_url}/v1/vendors/{vendor.slug}/series",
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def key_view(key: PublicKey) -> dict[str, Any]:
    return {
        "keyid": key.keyid,
        "public_key": key.public_key_b64,
        "status": key.status,
        "created_at": _iso(key.created_at),
        "revoked_at": _iso(key.revoked_at),
        "compromised_since": _iso(key.compromised_since),
    }
