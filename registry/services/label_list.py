"""The label list: labels filtered and sorted, one page at a time behind an opaque cursor
(``/v1/labels``, and the pages' lists through ``pages.rows.all_labels``)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import String, and_, any_, bindparam, or_
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import Label, Model, Vendor
from registry.services import briefs

SORTS: dict[str, Any] = {
    "received_at": Label.received_at,
    "created_at": Label.created_at,
    "energy": Label.energy_per_unit_wh,
    "co2e": Label.co2e_per_unit_g,
}


@dataclass(frozen=True)
class LabelFilters:
    vendor: str | None = None
    model: str | None = None
    task: str | None = None
    phase: str | None = None
    hardware_class: str | None = None
    zone: str | None = None
    current: bool | None = None
    """True: only the newest label of each model for its suite, task, phase and hardware class."""
    suite: str | None = None
    size_class: str | None = None
    min_quality: float | None = None
    """Only labels with a measured quality figure of at least this (0..1)."""
    kind: str | None = None
    """Only labels of this kind (``benchmark``, ``training-run``, ``operational``)."""
    standing: str | None = None
    """Only labels of this standing (``ok``, ``key-compromised``)."""
    vendors: tuple[str, ...] | None = None
    """Only labels of these vendors (slugs; with ``vendor``, of both conditions)."""
    model_id: int | None = None
    """Only labels of the model with this row id (a page that found the model already: read
    over the model's own index, however many labels its vendor has)."""


def _encode_cursor(value: Any, label_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, label_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, is_time: bool) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, label_id = json.loads(raw)
        if not isinstance(label_id, str) or len(label_id) > 64 or "\x00" in label_id:
            raise TypeError("not an id")
        if is_time:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise TypeError("naive time")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("not a number")
        elif not math.isfinite(value) or abs(value) > 1e300:
            raise TypeError("out of range")
        else:
            value = float(value)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise ProblemError("invalid-cursor", "cursor is not one this API issued") from None
    return value, label_id


def list_labels(
    session: Session,
    *,
    filters: LabelFilters,
    sort: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[tuple[Label, str, str]], str | None]:
    """One page of labels and the cursor of the next page (None at the end): brief labels
    (``services.briefs``: no envelope, the document's listed parts only) with their vendor's
    slug and model's name. The statement is built once per shape of the query (which filters,
    the sort, whether a cursor) and takes the values as parameters: on PostgreSQL a driver read
    (``registry.db.read_mappings``) of a statement psycopg prepares."""
    column = SORTS[sort.lstrip("-")]
    shape, params = _shape_of(filters, limit, cursor, sort.lstrip("-").endswith("_at"))
    connection = session.connection()
    statement = _statement(connection.dialect.name, shape, sort)
    found = read_mappings(connection, statement, params)
    rows = [
        (label, r["v_slug"], r["m_name"])
        for label, r in zip(briefs.brief_labels(found), found, strict=True)
    ]
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = _encode_cursor(getattr(last, column.key), last.id)
    return page, next_cursor


_COLUMN_FILTERS = ("task", "phase", "hardware_class", "zone")


def _shape_of(
    filters: LabelFilters, limit: int, cursor: str | None, by_time: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The query's shape (the names of the conditions it has) and its parameters."""
    shape: list[str] = []
    params: dict[str, Any] = {"f_n": limit + 1}

    def given(name: str, value: Any) -> None:
        shape.append(name)
        params[f"f_{name}"] = value

    if filters.vendor:
        given("vendor", filters.vendor)
    if filters.vendors is not None:
        given("vendors", list(filters.vendors))
    if filters.model:
        vendor_part, _, name = filters.model.partition("/")
        if name:
            given("model_vendor", vendor_part)
        given("model", name or vendor_part)
    if filters.model_id is not None:
        given("model_id", filters.model_id)
    for attr in _COLUMN_FILTERS:
        value = getattr(filters, attr)
        if value:
            given(attr, value)
    if filters.current is not None:
        shape.append("current" if filters.current else "not_current")
    if filters.suite is not None:
        given("suite", filters.suite)
    if filters.size_class is not None:
        given("size_class", filters.size_class)
    if filters.min_quality is not None:
        given("min_quality", filters.min_quality)
    if filters.kind is not None:
        given("kind", str(filters.kind))
    if filters.standing is not None:
        given("standing", str(filters.standing))
    if cursor:
        value, last_id = _decode_cursor(cursor, by_time)
        given("after", value)
        params["f_after_id"] = last_id
    return tuple(shape), params


@lru_cache(maxsize=256)
def _statement(dialect: str, shape: tuple[str, ...], sort: str) -> Any:
    """The list's ``SELECT`` for a query of ``shape`` (:func:`_shape_of`), its values bound by
    name; built once per shape."""
    descending = sort.startswith("-")
    column = SORTS[sort.lstrip("-")]
    # the vendor's slug and the model's name are the label's own copies (they never change:
    # registry/models.py); the vendors and models are joined only to filter by them
    query = briefs.brief_select(
        col(Label.vendor_slug).label("v_slug"), col(Label.model_name).label("m_name")
    )
    given = set(shape)
    if given & {"vendor", "vendors", "model_vendor"}:
        query = query.join(Vendor, col(Vendor.id) == Label.vendor_id)
    if "model" in given:
        query = query.join(Model, col(Model.id) == Label.model_id)
    if "vendor" in given:
        query = query.where(Vendor.slug == bindparam("f_vendor"))
    if "vendors" in given:
        query = query.where(
            col(Vendor.slug) == any_(bindparam("f_vendors", type_=postgresql.ARRAY(String)))
            if dialect == "postgresql"
            else col(Vendor.slug).in_(bindparam("f_vendors", expanding=True))
        )
    if "model_vendor" in given:
        query = query.where(Vendor.slug == bindparam("f_model_vendor"))
    if "model" in given:
        query = query.where(Model.name == bindparam("f_model"))
    if "model_id" in given:
        query = query.where(Label.model_id == bindparam("f_model_id"))
    for attr in _COLUMN_FILTERS:
        if attr in given:
            query = query.where(getattr(Label, attr) == bindparam(f"f_{attr}"))
    # a bare boolean (not ``IS true``), so the partial indexes ``WHERE current`` apply
    if "current" in given:
        query = query.where(col(Label.current))
    if "not_current" in given:
        query = query.where(~col(Label.current))
    if "suite" in given:
        query = query.where(Label.suite == bindparam("f_suite"))
    if "size_class" in given:
        query = query.where(Label.size_class == bindparam("f_size_class"))
    if "min_quality" in given:  # labels without a measured figure drop out
        query = query.where(col(Label.quality) >= bindparam("f_min_quality"))
    if "kind" in given:
        query = query.where(Label.kind == bindparam("f_kind"))
    if "standing" in given:
        query = query.where(Label.standing == bindparam("f_standing"))
    if "after" in given:
        after: Any = bindparam("f_after")
        after_id: Any = bindparam("f_after_id")
        if descending:
            query = query.where(
                or_(column < after, and_(column == after, col(Label.id) < after_id))
            )
        else:
            query = query.where(
                or_(column > after, and_(column == after, col(Label.id) > after_id))
            )
    order = (
        (column.desc(), col(Label.id).desc()) if descending else (column.asc(), col(Label.id).asc())
    )
    return query.order_by(*order).limit(bindparam("f_n"))
