"""The label list: labels filtered and sorted, one page at a time behind an opaque cursor
(``/v1/labels``, and the pages' lists through ``pages.rows.all_labels``)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

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
    vendors: tuple[str, ...] | None = None
    """Only labels of these vendors (slugs; with ``vendor``, of both conditions)."""


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
    brief: bool = False,
) -> tuple[list[tuple[Label, str, str]], str | None]:
    """One page of labels and the cursor of the next page (None at the end). ``brief``: the
    labels as lists show them (``services.briefs``: no envelope, the document's listed parts
    only)."""
    descending = sort.startswith("-")
    column = SORTS[sort.lstrip("-")]
    selected: Any = (
        briefs.brief_select(col(Vendor.slug).label("v_slug"), col(Model.name).label("m_name"))
        if brief
        else select(Label, Vendor.slug, Model.name)
    )
    query = selected.join(Vendor, col(Vendor.id) == Label.vendor_id).join(
        Model, col(Model.id) == Label.model_id
    )
    if filters.vendor:
        query = query.where(Vendor.slug == filters.vendor)
    if filters.vendors is not None:
        query = query.where(col(Vendor.slug).in_(filters.vendors))
    if filters.model:
        vendor_part, _, name = filters.model.partition("/")
        if name:
            query = query.where(Vendor.slug == vendor_part, Model.name == name)
        else:
            query = query.where(Model.name == vendor_part)
    for attr in ("task", "phase", "hardware_class", "zone"):
        value = getattr(filters, attr)
        if value:
            query = query.where(getattr(Label, attr) == value)
    if filters.current is not None:
        # a bare boolean (not ``IS true``), so the partial indexes ``WHERE current`` apply
        query = query.where(col(Label.current) if filters.current else ~col(Label.current))
    if filters.suite is not None:
        query = query.where(Label.suite == filters.suite)
    if filters.size_class is not None:
        query = query.where(Label.size_class == filters.size_class)
    if filters.min_quality is not None:  # labels without a measured figure drop out
        query = query.where(col(Label.quality) >= filters.min_quality)
    if filters.kind is not None:
        query = query.where(Label.kind == filters.kind)
    if cursor:
        value, last_id = _decode_cursor(cursor, sort.lstrip("-").endswith("_at"))
        if descending:
            query = query.where(or_(column < value, and_(column == value, col(Label.id) < last_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, col(Label.id) > last_id)))
    order = (
        (column.desc(), col(Label.id).desc()) if descending else (column.asc(), col(Label.id).asc())
    )
    query = query.order_by(*order).limit(limit + 1)
    if brief:  # a Core SELECT of columns: on the connection, without the ORM's execution
        found = session.connection().execute(query).all()
        rows: Sequence[Any] = [
            (label, r._mapping["v_slug"], r._mapping["m_name"])
            for label, r in zip(briefs.brief_labels(found), found, strict=True)
        ]
    else:
        rows = session.exec(query).all()
    page = [(r[0], r[1], r[2]) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = _encode_cursor(getattr(last, column.key), last.id)
    return page, next_cursor
