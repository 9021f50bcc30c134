"""Labels read for lists: every typed column, and of the stored JSON only the parts a list shows
(the quality statement, the CI's lower bound, the serving summary), never the envelope or the
whole document (which carries the traces: kilobytes to megabytes a label).

A brief label is a transient :class:`~registry.models.Label` (never added to a session) whose
``predicate`` holds just those parts at their usual paths and whose ``envelope`` is empty, so the
views that read lists (``queries.label_summary``, ``pages.rows.label_row``) take it as they take a
stored label. Code that needs the envelope or the whole document reads the label by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from registry.models import Label

# (name of the selected column, path in the label document)
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("p_quality", ("quality",)),
    ("p_ci95_low", ("results", "energy_per_unit_wh", "ci95_low")),
    ("p_results_serving", ("results", "serving")),
    ("p_workload_serving", ("benchmark", "workload", "serving")),
)


@cache
def columns() -> tuple[Any, ...]:
    """What a brief label selects: the typed columns and the JSON parts."""
    table = Label.__table__  # type: ignore[attr-defined]
    typed = [c for c in table.c if c.name not in ("envelope", "predicate")]
    parts = [table.c.predicate[path].label(name) for name, path in PARTS]
    return (*typed, *parts)


def _put(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = value


def brief_label(row: Mapping[Any, Any]) -> Label:
    """A transient label from a row of :func:`columns` (extra keys are ignored)."""
    table = Label.__table__  # type: ignore[attr-defined]
    document: dict[str, Any] = {}
    for name, path in PARTS:
        value = row[name]
        if value is not None:
            _put(document, path, value)
    typed = {c.name: row[c.name] for c in table.c if c.name not in ("envelope", "predicate")}
    return Label(**typed, envelope=b"", predicate=document)
