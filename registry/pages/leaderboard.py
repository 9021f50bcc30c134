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
from registry.models import Label
from registry.pages.common import not_found, query_string, render, router, unit_name, unit_short
from registry.pages.rows import all_labels, label_row, row_sort_key
from registry.services import queries
from schemas.contract import load_methodology

LEADERBOARD_MAX_LABELS = 5000
"""Labels read for one leaderboard (current ones are kept); filters narrow a larger group."""

SORT_KEYS = ("grade", "energy", "co2e", "model", "vendor", "date")
DEFAULT_SORT = "grade"


def _parse_sort(sort: str | None) -> tuple[str, bool]:
    """(key, descending); unknown keys fall back to the default."""
    text = (sort or DEFAULT_SORT).strip()
    descending = text.startswith("-")
    key = text.lstrip("-")
    if key not in SORT_KEYS:
        return DEFAULT_SORT, False
    return key, descending


def _positive_int(text: str | None, default: int = 1) -> int:
    try:
        value = int(text or default)
    except ValueError:
        return default
    return max(1, value)


@router.get("/", response_class=HTMLResponse)
def leaderboard(
    request: Request,
    session: SessionDep,
    task: str | None = None,
    phase: str | None = None,
    hardware: str | None = None,
    zone: str | None = None,
    sort: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """Current labels of one task, graded and ranked; filters and sort are query parameters."""
    methodology = load_methodology()
    task = task or next(iter(methodology["tasks"]))
    if task not in methodology["tasks"]:
        return not_found(request, f"There is no task {task!r} in methodology v1.")
    phases = list(methodology["tasks"][task]["phases"])
    phase = phase or phases[0]
    if phase not in phases:
        return not_found(request, f"Task {task!r} has no phase {phase!r}.")
    sort_key, descending = _parse_sort(sort)

    group = all_labels(
        session,
        queries.LabelFilters(task=task, phase=phase, current=True),
        cap=LEADERBOARD_MAX_LABELS,
    )
    hardware_options = sorted({label.hardware_class for label, _, _ in group} | {hardware or ""})
    zone_options = sorted({label.zone for label, _, _ in group} | {zone or ""})
    selected = [
        (label, vendor, model)
        for label, vendor, model in group
        if (not hardware or label.hardware_class == hardware) and (not zone or label.zone == zone)
    ]
    rows = [label_row(label, vendor, model) for label, vendor, model in selected]
    rows.sort(key=row_sort_key(sort_key), reverse=descending)
    page_size = package.LEADERBOARD_PAGE_SIZE
    pages = max(1, math.ceil(len(rows) / page_size))
    page_number = min(_positive_int(page), pages)
    start = (page_number - 1) * page_size
    by_id = {label.id: (label, vendor, model) for label, vendor, model in selected}
    # Percentiles from the peers already loaded (all current labels of the task and phase): the
    # same figure as queries.peer_percentile, without two queries per row.
    peers: dict[str, list[float]] = {}
    for label, _, _ in group:
        if label.measured:
            peers.setdefault(label.hardware_class, []).append(label.energy_ci95_high_wh)

    def percentile(label: Label) -> float | None:
        if not label.measured:
            return None
        others = len(peers[label.hardware_class]) - 1
        if others <= 0:
            return None
        worse = sum(1 for v in peers[label.hardware_class] if v > label.energy_ci95_high_wh)
        return round(100.0 * worse / others, 1)

    shown = [
        label_row(*by_id[r.label_id], percentile(by_id[r.label_id][0]))
        for r in rows[start : start + page_size]
    ]

    filters = {"task": task, "phase": phase, "hardware": hardware, "zone": zone}
    current_sort = f"-{sort_key}" if descending else sort_key
    columns = []
    for key, title in (
        ("model", "Model"),
        ("vendor", "Vendor"),
        ("grade", "Grade"),
        ("energy", f"Energy ({unit_short(phase)})"),
        ("co2e", "CO₂e (g)"),
        ("date", "Date"),
    ):
        active = key == sort_key
        next_sort = key if (active and descending) or not active else f"-{key}"
        columns.append(
            {
                "key": key,
                "title": title,
                "href": query_string(**filters, sort=next_sort),
                "aria_sort": ("descending" if descending else "ascending") if active else None,
            }
        )
    compare_vendors = sorted({r.vendor for r in rows})
    return render(
        request,
        "leaderboard.html",
        {
            "title": f"Leaderboard: {task}",
            "task": task,
            "phase": phase,
            "phases": phases,
            "hardware": hardware or "",
            "zone": zone or "",
            "hardware_options": hardware_options,
            "zone_options": zone_options,
            "rows": shown,
            "offset": start,
            "total": len(rows),
            "page": page_number,
            "pages": pages,
            "prev_href": (
                query_string(**filters, sort=current_sort, page=page_number - 1)
                if page_number > 1
                else None
            ),
            "next_href": (
                query_string(**filters, sort=current_sort, page=page_number + 1)
                if page_number < pages
                else None
            ),
            "columns": columns,
            "sort": current_sort,
            "unit": unit_name(phase),
            "task_links": [
                {
                    "task": name,
                    "href": query_string(task=name, phase=phase_for(methodology, name, phase)),
                }
                for name in methodology["tasks"]
            ],
            "compare_href": "/compare"
            + query_string(**filters, vendors=",".join(compare_vendors[:4]) or None),
            "csv_href": "/v1/vendors" + query_string(**filters, format="csv"),
        },
    )


def phase_for(methodology: Mapping[str, Any], task: str, phase: str) -> str:
    phases = methodology["tasks"][task]["phases"]
    return phase if phase in phases else str(phases[0])
