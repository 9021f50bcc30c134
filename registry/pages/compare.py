"""The compare page: two or more vendors side by side in one peer group, and its CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from registry.api.deps import SessionDep
from registry.errors import ProblemError
from registry.pages.common import (
    not_found,
    query_string,
    render,
    router,
    unit_name,
    unit_short,
    vendor_path,
)
from registry.pages.rows import (
    VENDOR_PAGE_LABELS,
    LabelRow,
    all_labels,
    row_sort_key,
    with_percentile,
)
from registry.services import queries
from schemas.contract import load_methodology

if TYPE_CHECKING:
    from registry.services.ranking import VendorRank


def _split_vendors(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        for part in value.split(","):
            slug = part.strip()
            if slug and slug not in seen:
                seen.append(slug)
    return seen


@dataclass
class CompareGroup:
    task: str
    phase: str
    hardware: str | None
    zone: str | None
    ranking: list[VendorRank]
    selected: list[str]


@dataclass
class CompareColumn:
    slug: str
    rank: VendorRank | None
    labels: list[LabelRow]
    url: str


def _compare_group(
    session: Session,
    task: str | None,
    phase: str | None,
    hardware: str | None,
    zone: str | None,
    vendors: list[str],
) -> CompareGroup | str:
    """The ranking of a group and the selected vendors, or the reason it cannot be shown."""
    from registry.services.ranking import rank_vendors

    methodology = load_methodology()
    task = task or next(iter(methodology["tasks"]))
    if task not in methodology["tasks"]:
        return f"There is no task {task!r} in methodology v1."
    phases = methodology["tasks"][task]["phases"]
    phase = phase or phases[0]
    if phase not in phases:
        return f"Task {task!r} has no phase {phase!r}."
    ranking = rank_vendors(
        session, task=task, phase=phase, hardware_class=hardware or None, zone=zone or None
    )
    return CompareGroup(
        task=task,
        phase=phase,
        hardware=hardware or None,
        zone=zone or None,
        ranking=ranking,
        selected=_split_vendors(vendors),
    )


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    session: SessionDep,
    task: str | None = None,
    phase: str | None = None,
    hardware: str | None = None,
    zone: str | None = None,
    vendors: Annotated[list[str], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
) -> HTMLResponse:
    """Two or more vendors side by side in one peer group, with exports."""
    group = _compare_group(session, task, phase, hardware, zone, vendors)
    if isinstance(group, str):
        return not_found(request, group)
    by_slug = {r.vendor: r for r in group.ranking}
    columns: list[CompareColumn] = []
    for slug in group.selected:
        rank = by_slug.get(slug)
        labels = (
            with_percentile(
                session,
                (
                    r
                    for r in all_labels(
                        session,
                        queries.LabelFilters(
                            vendor=slug,
                            task=group.task,
                            phase=group.phase,
                            hardware_class=group.hardware,
                            zone=group.zone,
                        ),
                        cap=VENDOR_PAGE_LABELS,
                    )
                    if r[0].current
                ),
            )
            if rank
            else []
        )
        labels.sort(key=row_sort_key("grade"))
        columns.append(CompareColumn(slug=slug, rank=rank, labels=labels, url=vendor_path(slug)))
    # Best first; a chosen vendor without a label in the group goes last.
    columns.sort(key=lambda c: (c.rank is None, c.rank.rank if c.rank else 0))
    filters = {
        "task": group.task,
        "phase": group.phase,
        "hardware": group.hardware,
        "zone": group.zone,
    }
    selected_param = ",".join(group.selected) or None
    methodology = load_methodology()
    return render(
        request,
        "compare.html",
        {
            "title": "Compare vendors",
            "task": group.task,
            "phase": group.phase,
            "phases": methodology["tasks"][group.task]["phases"],
            "hardware": group.hardware or "",
            "zone": group.zone or "",
            "hardware_classes": list(methodology["hardware_classes"]),
            "ranking": group.ranking,
            "selected": group.selected,
            "columns": columns,
            "unit": unit_name(group.phase),
            "unit_short": unit_short(group.phase),
            "api_csv_href": "/v1/vendors" + query_string(**filters, format="csv"),
            "api_json_href": "/v1/vendors" + query_string(**filters),
            "csv_href": "/compare.csv" + query_string(**filters, vendors=selected_param),
        },
    )


@router.get("/compare.csv")
def compare_csv(
    session: SessionDep,
    task: str | None = None,
    phase: str | None = None,
    hardware: str | None = None,
    zone: str | None = None,
    vendors: Annotated[list[str], Query()] = [],  # noqa: B006
) -> Response:
    """The compared vendors' rows as CSV (all vendors of the group when none is chosen)."""
    from registry.services.ranking import FIELDS

    group = _compare_group(session, task, phase, hardware, zone, vendors)
    if isinstance(group, str):
        raise ProblemError("not-found", group)
    rows = [r for r in group.ranking if not group.selected or r.vendor in group.selected]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["task", "phase", "hardware_class", "zone", *FIELDS])
    for rank in rows:
        writer.writerow(
            [
                group.task,
                group.phase,
                group.hardware or "",
                group.zone or "",
                *(_csv_cell(getattr(rank, name)) for name in FIELDS),
            ]
        )
    filename = f"compare-{group.task}-{group.phase}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
