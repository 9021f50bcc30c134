"""Labels read for lists: every typed column, and of the stored JSON only the parts a list shows
(the quality statement, the CI's lower bound, the serving summary), never the envelope or the
whole document (which carries the traces: kilobytes to megabytes a label). The listed parts are
stored beside the document when a label is stored (the ``brief`` column, :func:`brief_of`), so
a list never reads the document at all: in PostgreSQL, taking parts out of it decompressed the
whole document of each listed label (1.4 of the 1.9 ms of a page of 50).

A brief label is a :class:`BriefLabel`: the label's columns as attributes, read by a Core
``SELECT`` (no ORM instance, identity map or deferred loaders: building those cost more than the
query), with ``predicate`` a document holding just the listed parts at their usual paths and no
``envelope`` (reading it raises). The views that read lists (``queries.label_summary``,
``pages.rows.label_row``) take it as they take a stored label; it is never added to a session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import select

from registry.models import Label

PARTS: tuple[tuple[str, ...], ...] = (
    ("quality",),
    ("results", "energy_per_unit_wh", "ci95_low"),
    ("results", "serving"),
    ("benchmark", "workload", "serving"),
)
"""The paths of the listed parts in the label document."""


def brief_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The listed parts of a label document at their paths (those absent or null left out):
    the ``brief`` column stored with the label."""
    found: dict[str, Any] = {}
    for path in PARTS:
        value: Any = document
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None:
            _put(found, path, value)
    return found


class PlainLabel:
    """A label's columns as attributes, like a stored :class:`~registry.models.Label` but a
    plain object read by a Core ``SELECT``: never added to a session, no ORM instance state.
    A column that was not read is an AttributeError."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class BriefLabel(PlainLabel):
    """A label as lists show it (see the module): a :class:`PlainLabel` whose ``predicate`` holds
    only the listed parts, and no ``envelope``."""

    @property
    def envelope(self) -> bytes:
        raise AttributeError("a brief label has no envelope: read the label whole")


@cache
def _columns() -> tuple[Any, ...]:
    """The label's columns but the envelope and the document (found once)."""
    table = Label.__table__  # type: ignore[attr-defined]
    return tuple(c for c in table.c if c.name not in ("envelope", "predicate"))


def brief_select(*extra: Any) -> Any:
    """``SELECT`` of brief labels: the label's columns but the envelope and the document (its
    listed parts are the ``brief`` column), then ``extra`` columns (whose names must not be a
    column's)."""
    return select(*_columns(), *extra)


def _put(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = value


def brief_labels(rows: Sequence[Any]) -> list[Label]:
    """The labels of rows of :func:`brief_select`, their listed parts in ``predicate``.

    A row that is a plain ``dict`` (``registry.db.read_mappings`` on PostgreSQL: psycopg makes a
    new one per row) becomes the label's attributes as it is, its ``brief`` renamed
    ``predicate``: no copies of its 33 columns (they were two, 3 % of a label list's CPU). Its extra
    columns (the ``extra`` of :func:`brief_select`) stay readable in it. Other rows (SQLAlchemy's)
    are copied, their label columns only."""
    names = [c.name for c in _columns()]
    found: list[Any] = []
    for row in rows:
        if type(row) is dict:
            values = row
        else:
            mapping = row if isinstance(row, Mapping) else row._mapping
            values = {name: mapping[name] for name in names}
        values["predicate"] = values.pop("brief")
        label = object.__new__(BriefLabel)
        label.__dict__ = values
        found.append(label)
    return found
