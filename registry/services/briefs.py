"""Labels read for lists: every typed column, and of the stored JSON only the parts a list shows
(the quality statement, the CI's lower bound, the serving summary), never the envelope or the
whole document (which carries the traces: kilobytes to megabytes a label).

A brief label is a :class:`~registry.models.Label` loaded by the ORM with ``envelope`` deferred
(reading it raises) and ``predicate`` set, as a committed value, to a document holding just those
parts at their usual paths: the views that read lists (``queries.label_summary``,
``pages.rows.label_row``) take it as they take a stored label. It stays in the session's identity
map, so a full read of a label in a session that may hold it brief asks the ORM to populate the
existing object (``queries.get_label`` does). A label the session already holds in full is
returned as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select

from registry.models import Label

# (name of the selected column, path in the label document)
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p_quality", ("quality",)),
    ("p_ci95_low", ("results", "energy_per_unit_wh", "ci95_low")),
    ("p_results_serving", ("results", "serving")),
    ("p_workload_serving", ("benchmark", "workload", "serving")),
)


def brief_select(*extra: Any) -> Any:
    """``SELECT`` of brief labels: the label (envelope and document deferred), the document's
    listed parts, then ``extra`` columns."""
    parts = [col(Label.predicate)[path].label(name) for name, path in PARTS]
    envelope: Any = Label.envelope
    document: Any = Label.predicate
    return select(Label, *parts, *extra).options(defer(envelope, raiseload=True), defer(document))


def _put(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = value


def brief_labels(rows: Sequence[Any]) -> list[Label]:
    """The labels of rows of :func:`brief_select`, their listed parts in ``predicate``."""
    found: list[Label] = []
    for row in rows:
        label: Label = row[0]
        state = inspect(label)
        if "predicate" in state.unloaded:
            document: dict[str, Any] = {}
            for name, path in PARTS:
                value = row._mapping[name]
                if value is not None:
                    _put(document, path, value)
            set_committed_value(label, "predicate", document)
        found.append(label)
    return found
