"""The leaderboard's reads: one page of the current labels of a suite, task and phase (filtered
by size class, hardware class and zone), in any of its sort orders, with the group's total and
filter options.

Every sort order is a keyset range of its own partial index (``models.leaderboard_indexes``,
migration 0007): a page reads its rows and no others, whatever the group's size, and the next
and previous pages continue from a cursor that holds the last (or first) row's sort key and its
position. The total and the filter options come from ``current_counts`` (services/standings.py),
kept in step with the current flags, so they count every matching label.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Boolean, bindparam, func, select, tuple_
from sqlmodel import Session

from registry.db import read_mappings
from registry.models import CurrentCount, Label, UTCDateTime
from registry.services import briefs

SORT_KEYS = ("grade", "energy", "quality", "co2e", "model", "vendor", "date")


def _sort_columns(key: str, descending: bool) -> list[Any]:
    """The sort's key expressions, all in one direction (so a row value compares them and one
    index, read forwards or backwards, serves the order): as ``models.LEADERBOARD_SORTS``."""
    c = Label.__table__.c  # type: ignore[attr-defined]
    model = func.lower(c.model_name)
    if key == "quality":
        # without a quality figure last, in both directions: each direction has its own index
        present = c.quality.is_(None) if not descending else c.quality.is_not(None)
        return [present, func.coalesce(c.quality, 0.0), c.vendor_slug, c.model_name, c.id]
    return {
        "grade": [c.grade.is_(None), c.energy_ci95_high_wh, c.vendor_slug, c.model_name, c.id],
        "energy": [c.energy_per_unit_wh, c.vendor_slug, c.model_name, c.id],
        "co2e": [c.co2e_per_unit_g, c.vendor_slug, c.model_name, c.id],
        "model": [model, c.vendor_slug, c.hardware_class, c.id],
        "vendor": [c.vendor_slug, model, c.hardware_class, c.id],
        "date": [c.created_at, c.vendor_slug, c.model_name, c.id],
    }[key]


@dataclass(frozen=True)
class Group:
    suite: str
    task: str
    phase: str
    size_class: str | None = None
    hardware_class: str | None = None
    zone: str | None = None

    def filters(self) -> tuple[str, ...]:
        """The optional filters it has (size class, hardware class, zone)."""
        return tuple(name for name in _OPTIONAL if getattr(self, name) is not None)

    def params(self) -> dict[str, Any]:
        """The values of :func:`_page_statement`'s conditions for this group."""
        names = ("suite", "task", "phase", *self.filters())
        return {f"g_{name}": getattr(self, name) for name in names}


_OPTIONAL = ("size_class", "hardware_class", "zone")


@dataclass(frozen=True)
class Page:
    rows: list[tuple[Label, str, str]]
    """Brief labels (``services.briefs``) with their vendor slug and model name."""
    offset: int
    """How many rows of the whole order come before the first of this page."""
    total: int
    next_cursor: str | None
    prev_cursor: str | None


def _encode(sort: str, position: int, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([sort, position, plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, sort: str, columns: list[Any]) -> tuple[int, list[Any]] | None:
    """The cursor's position and sort key; None when it is not one of this sort's cursors."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, position, values = json.loads(raw)
        if name != sort or not isinstance(position, int) or position < 0:
            return None
        if not isinstance(values, list) or len(values) != len(columns):
            return None
        decoded: list[Any] = []
        for value, column in zip(values, columns, strict=True):
            if isinstance(column.type, UTCDateTime):
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    return None
            elif value is not None and not isinstance(value, str | int | float | bool):
                return None
            decoded.append(value)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, AttributeError):
        return None
    return position, decoded


def _cursor_params(columns: list[Any], values: Sequence[Any]) -> dict[str, Any]:
    """The cursor's sort key, bound as :func:`_page_statement`'s row value (``c_0``, ...)."""
    return {
        f"c_{n}": bool(value) if isinstance(column.type, Boolean) else value
        for n, (column, value) in enumerate(zip(columns, values, strict=True))
    }


@lru_cache(maxsize=256)
def _page_statement(
    dialect: str, filters: tuple[str, ...], sort_key: str, descending: bool, direction: str
) -> Any:
    """A page's ``SELECT`` of brief labels in the sort order: the ``first`` rows, those
    ``after`` a cursor's key or those ``before`` it (in the opposite order); the group's values,
    the cursor's key (``c_0``, ...) and the number of rows (``g_n``) bound by name. Built once
    per shape; read on the driver on PostgreSQL."""
    c = Label.__table__.c  # type: ignore[attr-defined]
    columns = _sort_columns(sort_key, descending)
    keys = [column.label(f"k_{n}") for n, column in enumerate(columns)]
    # a bare boolean (the partial indexes' predicate), then the index's leading columns
    where = [c.current, *(c[name] == bindparam(f"g_{name}") for name in ("task", "phase"))]
    where += [c[name] == bindparam(f"g_{name}") for name in ("suite", *filters)]
    query = briefs.brief_select(*keys).where(*where)
    if direction != "first":
        key = tuple_(*(bindparam(f"c_{n}", type_=column.type) for n, column in enumerate(columns)))
        greater = descending == (direction == "before")  # the rows wanted have a greater key
        query = query.where(tuple_(*columns) > key if greater else tuple_(*columns) < key)
    forward = direction != "before"
    order = [col.desc() if descending == forward else col.asc() for col in columns]
    return query.order_by(*order).limit(bindparam("g_n"))


def page(
    session: Session,
    group: Group,
    *,
    sort_key: str,
    descending: bool,
    limit: int,
    after: str | None = None,
    before: str | None = None,
    counted: Counts | None = None,
) -> Page:
    """One page in the sort order: the first, the one after ``after`` or the one before
    ``before`` (cursors of this sort; any other cursor starts from the first page). Its total
    from ``counted`` (read when not given)."""
    sort = f"-{sort_key}" if descending else sort_key
    columns = _sort_columns(sort_key, descending)
    connection = session.connection()
    params = group.params()
    start = _decode(after, sort, columns) if after else None
    end = _decode(before, sort, columns) if before and start is None else None
    if end is not None:
        position, values = end
        statement = _page_statement(
            connection.dialect.name, group.filters(), sort_key, descending, "before"
        )
        params |= _cursor_params(columns, values) | {"g_n": limit}
        found = list(reversed(read_mappings(connection, statement, params)))
        offset = max(0, position - len(found))
        more_before = offset > 0
        more_after = True
    else:
        position, after_values = start if start is not None else (0, None)
        direction = "first"
        if after_values is not None:
            direction = "after"
            params |= _cursor_params(columns, after_values)
        statement = _page_statement(
            connection.dialect.name, group.filters(), sort_key, descending, direction
        )
        found = read_mappings(connection, statement, params | {"g_n": limit + 1})
        more_after = len(found) > limit
        found = found[:limit]
        offset = position
        more_before = offset > 0
    rows = [(label, label.vendor_slug, label.model_name) for label in briefs.brief_labels(found)]

    def key_of(row: Any) -> list[Any]:  # as the database compares them
        return [row[f"k_{n}"] for n in range(len(columns))]

    next_cursor = prev_cursor = None
    if found and more_after:
        next_cursor = _encode(sort, offset + len(found), key_of(found[-1]))
    if found and more_before:
        prev_cursor = _encode(sort, offset, key_of(found[0]))
    return Page(
        rows=rows,
        offset=offset,
        total=(counted or counts(session, group)).labels,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


@dataclass(frozen=True)
class Counts:
    """The group's total and filter options, from one read of ``current_counts``."""

    labels: int
    """Current labels matching every filter of the group."""
    peers: int
    """Of them, peers (measured, standard workload)."""
    hardware_classes: list[str]
    """The hardware classes with current labels in the group (its size class only, when one is
    chosen; whatever hardware class and zone are chosen)."""
    zones: list[str]
    """The zones likewise."""


def counts(session: Session, group: Group) -> Counts:
    """The group's :class:`Counts`: the rows of ``current_counts`` of its suite, task and phase
    (and size class), on their primary key, summed and listed here (one statement for the total
    and the options; a group has at most a row per hardware class, zone and size class)."""
    params = _in_counts(group.suite, group.task, group.phase, group.size_class)
    statement = _counts_statement(group.size_class is not None)
    rows = [tuple(row.values()) for row in read_mappings(session.connection(), statement, params)]
    chosen = [
        row
        for row in rows
        if group.hardware_class in (None, row[0]) and group.zone in (None, row[1])
    ]
    present = [row for row in rows if row[2] > 0]
    return Counts(
        labels=sum(int(row[2]) for row in chosen),
        peers=sum(int(row[3]) for row in chosen),
        hardware_classes=sorted({row[0] for row in present}),
        zones=sorted({row[1] for row in present}),
    )


def _in_counts(suite: str, task: str, phase: str, size_class: str | None) -> dict[str, str]:
    """The bound values of :func:`_counts_where` (the size class only when one is given)."""
    params = {"suite": suite, "task": task, "phase": phase}
    if size_class is not None:
        params["size_class"] = size_class
    return params


def _counts_where(by_size_class: bool) -> list[Any]:
    """The rows of ``current_counts`` of a suite, task and phase (and size class), bound."""
    c = CurrentCount.__table__.c  # type: ignore[attr-defined]
    where = [c.suite == bindparam("suite"), c.task == bindparam("task")]
    where.append(c.phase == bindparam("phase"))
    if by_size_class:
        where.append(c.size_class == bindparam("size_class"))
    return where


@cache
def _counts_statement(by_size_class: bool) -> Any:
    """:func:`counts`' statement, built once."""
    c = CurrentCount.__table__.c  # type: ignore[attr-defined]
    return select(c.hardware_class, c.zone, c.labels, c.peers).where(*_counts_where(by_size_class))


def busiest_hardware_class(
    session: Session, *, suite: str, task: str, phase: str, size_class: str | None = None
) -> str | None:
    """The hardware class with the most current measured peers in a suite, task and phase (its
    size class only, when one is given), ties broken by name; None when there is none. The
    compare page compares on it by default: like with like."""
    params = _in_counts(suite, task, phase, size_class)
    statement = _busiest_statement(size_class is not None)
    found = read_mappings(session.connection(), statement, params)
    return str(found[0]["hardware_class"]) if found else None


@cache
def _busiest_statement(by_size_class: bool) -> Any:
    """:func:`busiest_hardware_class`' statement, built once."""
    c = CurrentCount.__table__.c  # type: ignore[attr-defined]
    peers = func.sum(c.peers)
    return (
        select(c.hardware_class)
        .where(*_counts_where(by_size_class))
        .group_by(c.hardware_class)
        .having(peers > 0)
        .order_by(peers.desc(), c.hardware_class)
        .limit(1)
    )
