"""The leaderboard (``/``): current labels of one task, graded and ranked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

# The page size is the package's LEADERBOARD_PAGE_SIZE, read on every request (tests lower it).
import registry.pages as package
from registry.api.deps import SessionDep
from registry.badges.quality import metric_name
from registry.pages.common import (
    all_tasks,
    functional_unit_of,
    not_found,
    quality_metric_of,
    query_string,
    render,
    router,
    size_class_options,
    suites_offering,
    unit_name_for,
    unit_short_for,
)
from registry.pages.facts import standard_concurrency
from registry.pages.rows import ranked_row
from registry.services import leaderboard as board
from registry.services import queries
from registry.services.ranking import default_suite
from schemas.contract import load_methodology
from schemas.suites import SUITE_1, suite_spec, suite_versions

LEADERBOARD_MAX_LABELS = 5000
"""Labels read for one leaderboard (current ones are kept); filters narrow a larger group."""

SORT_KEYS = ("grade", "energy", "quality", "co2e", "model", "vendor", "date")
DEFAULT_SORT = "grade"


def _parse_sort(sort: str | None) -> tuple[str, bool]:
    """(key, descending); unknown keys fall back to the default."""
    text = (sort or DEFAULT_SORT).strip()
    descending = text.startswith("-")
    key = text.lstrip("-")
    if key not in SORT_KEYS:
        return DEFAULT_SORT, False
    return key, descending


@router.get("/", response_class=HTMLResponse)
def leaderboard(
    request: Request,
    session: SessionDep,
    task: str | None = None,
    phase: str | None = None,
    hardware: str | None = None,
    zone: str | None = None,
    sort: str | None = None,
    after: str | None = None,
    before: str | None = None,
    suite: str | None = None,
    size_class: str | None = None,
) -> HTMLResponse:
    """Current labels of one suite, task and phase (and size class), graded and ranked; filters
    and sort are query parameters. Without a suite: the newest with current measured labels for
    the task and phase, as the vendor ranking."""
    methodology = load_methodology()
    requested_suite = suite or None
    if requested_suite is not None and requested_suite not in suite_versions():
        return not_found(request, f"There is no suite {requested_suite!r}.")
    task = task or next(iter(methodology["tasks"]))
    offering = suites_offering(task)
    if not offering or (requested_suite is not None and requested_suite not in offering):
        return not_found(request, f"There is no task {task!r} in this suite.")
    # without a suite: the phases of the oldest suite that offers the task (suite 1's for its
    # tasks, as the vendor ranking; suite 2's for chat-serving)
    suite_tasks = suite_spec(requested_suite or offering[0])["tasks"]
    phases = list(suite_tasks[task]["phases"])
    phase = phase or phases[0]
    if phase not in phases:
        return not_found(request, f"Task {task!r} has no phase {phase!r}.")
    suite = requested_suite or default_suite(session, task=task, phase=phase)
    if suite not in offering:  # no label of the task in any suite yet: the newest offering it
        suite = offering[-1]
    # the links name the suite when one was asked for, or when suite 1 (the API's default for
    # checking a task) does not offer the task
    link_suite = requested_suite or (None if SUITE_1 in offering else suite)
    size_classes = size_class_options(suite, task)
    size_class = size_class or None
    if size_class is not None and size_class not in dict(size_classes):
        return not_found(request, f"Suite {suite} has no size class {size_class!r} for {task}.")
    sort_key, descending = _parse_sort(sort)

    group = board.Group(
        suite=suite,
        task=task,
        phase=phase,
        size_class=size_class,
        hardware_class=hardware or None,
        zone=zone or None,
    )
    counted = board.counts(session, group)
    hardware_options = sorted(set(counted.hardware_classes) | {hardware or ""})
    zone_options = sorted(set(counted.zones) | {zone or ""})
    page_size = package.LEADERBOARD_PAGE_SIZE
    found = board.page(
        session,
        group,
        sort_key=sort_key,
        descending=descending,
        limit=page_size,
        after=after,
        before=before,
        counted=counted,
    )
    ranks = queries.peer_ranks(session, [label for label, _, _ in found.rows])
    shown = [ranked_row(label, v, m, ranks.get(label.id)) for label, v, m in found.rows]
    total = found.total
    pages = max(1, math.ceil(total / page_size))
    page_number = min(found.offset // page_size + 1, pages)
    start = found.offset

    filters = {
        "task": task,
        "phase": phase,
        "suite": link_suite,
        "size_class": size_class,
        "hardware": hardware,
        "zone": zone,
    }
    current_sort = f"-{sort_key}" if descending else sort_key
    functional_unit = functional_unit_of(suite, task, phase)
    quality_spec = quality_metric_of(suite, task)
    columns = []
    for key, title, sub in (
        ("model", "Model", ""),
        ("vendor", "Vendor", ""),
        ("grade", "Grade", ""),
        ("energy", "Energy", unit_short_for(functional_unit)),
        ("quality", "Quality", metric_name(quality_spec) if quality_spec else ""),
        ("co2e", "CO₂e", "g"),
        ("date", "Date", ""),
    ):
        active = key == sort_key
        next_sort = key if (active and descending) or not active else f"-{key}"
        columns.append(
            {
                "key": key,
                "title": title,
                "sub": sub,
                "href": query_string(**filters, sort=next_sort),
                "aria_sort": ("descending" if descending else "ascending") if active else None,
            }
        )
    compare_vendors = sorted({r.vendor for r in shown})
    return render(
        request,
        "leaderboard.html",
        {
            "title": f"Leaderboard: {task}",
            "task": task,
            "phase": phase,
            "phases": phases,
            "suite": suite,
            "requested_suite": link_suite or "",
            "suites": offering,
            "per_token": functional_unit == "1k-requests",
            "standard_concurrency": standard_concurrency(),
            "size_class": size_class or "",
            "size_classes": size_classes,
            "quality_metric": quality_spec,
            "hardware": hardware or "",
            "zone": zone or "",
            "hardware_options": hardware_options,
            "zone_options": zone_options,
            "rows": shown,
            "offset": start,
            "total": total,
            "page": page_number,
            "pages": pages,
            "prev_href": (
                query_string(**filters, sort=current_sort, before=found.prev_cursor)
                if found.prev_cursor
                else None
            ),
            "next_href": (
                query_string(**filters, sort=current_sort, after=found.next_cursor)
                if found.next_cursor
                else None
            ),
            "columns": columns,
            "sort": current_sort,
            "unit": unit_name_for(functional_unit),
            "task_links": [
                _task_link(methodology, name, phase, requested_suite) for name in all_tasks()
            ],
            "compare_href": "/compare"
            + query_string(**filters, vendors=",".join(compare_vendors[:4]) or None),
            "csv_href": "/v1/vendors" + query_string(**filters, format="csv"),
        },
    )


def _task_link(
    methodology: Mapping[str, Any], task: str, phase: str, requested_suite: str | None
) -> dict[str, Any]:
    """A task tab: the same phase and suite where the task has them; a task that suite 1 does
    not offer names the suites that do (``suite 2``)."""
    offering = suites_offering(task)
    suite = requested_suite if requested_suite in offering else None
    return {
        "task": task,
        "href": query_string(task=task, phase=phase_for(methodology, task, phase), suite=suite),
        "note": "" if SUITE_1 in offering else "suite " + ", ".join(offering),
    }


def phase_for(methodology: Mapping[str, Any], task: str, phase: str) -> str:
    """``phase`` when the task has it, else the task's first phase (a task of suite 1, or of
    the oldest suite that offers it)."""
    spec = methodology["tasks"].get(task)
    if spec is None:
        offering = suites_offering(task)
        spec = suite_spec(offering[0])["tasks"][task] if offering else {"phases": [phase]}
    phases = spec["phases"]
    return phase if phase in phases else str(phases[0])
