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
from registry.badges.quality import metric_name
from registry.errors import ProblemError
from registry.pages.charts import ParetoChart, ParetoInput, pareto_chart
from registry.pages.common import (
    functional_unit_of,
    model_path,
    not_found,
    quality_metric_of,
    query_string,
    render,
    router,
    size_class_options,
    suites_offering,
    unit_name_for,
    unit_short_for,
    vendor_path,
)
from registry.pages.leaderboard import LEADERBOARD_MAX_LABELS
from registry.pages.rows import (
    VENDOR_PAGE_LABELS,
    LabelRow,
    all_labels,
    label_row,
    row_sort_key,
    with_percentile,
)
from registry.services import queries
from schemas.contract import load_methodology
from schemas.suites import SUITE_1, suite_spec, suite_versions

if TYPE_CHECKING:
    from registry.services.ranking_rows import VendorRank


def _split_vendors(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        for part in value.split(","):
            slug = part.strip()
            if slug and slug not in seen:
                seen.append(slug)
    return seen


COMPARE_RANKING_ROWS = 20
"""Vendors of the group's ranking the page lists (the selected ones too, wherever they rank)."""


@dataclass
class CompareGroup:
    task: str
    phase: str
    hardware: str | None
    zone: str | None
    ranking: list[VendorRank]
    """The first ``COMPARE_RANKING_ROWS`` of the group's ranking and the selected vendors (at
    their ranks), in rank order."""
    selected: list[str]
    ranked: int = 0
    """Vendors the group ranks in all."""
    suite: str = SUITE_1
    requested_suite: str | None = None
    size_class: str | None = None
    hardware_by_default: bool = False
    """The hardware class was not asked for: the one with the most current measured peers."""

    @property
    def filters(self) -> dict[str, Any]:
        """The group's query parameters for the API (the suite only when asked for: the default
        is the same for the pages and the API)."""
        return {
            "task": self.task,
            "phase": self.phase,
            "suite": self.requested_suite,
            "size_class": self.size_class,
            "hardware": self.hardware,
            "zone": self.zone,
        }

    @property
    def where(self) -> dict[str, Any]:
        """The group as the services take it (``LabelFilters``, ``ranking_page``)."""
        return {
            "task": self.task,
            "phase": self.phase,
            "suite": self.suite,
            "size_class": self.size_class,
            "hardware_class": self.hardware,
            "zone": self.zone,
        }

    @property
    def page_filters(self) -> dict[str, Any]:
        """:attr:`filters` for the page's own links: every hardware class is ``all`` there (no
        hardware parameter means the default class)."""
        return self.filters | {"hardware": self.hardware or ALL_HARDWARE}


@dataclass
class CompareColumn:
    slug: str
    rank: VendorRank | None
    labels: list[LabelRow]
    url: str


ALL_HARDWARE = "all"
"""``hardware=all``: every hardware class (no ``hardware``: the default class, like with like)."""


def _compare_group(
    session: Session,
    task: str | None,
    phase: str | None,
    hardware: str | None,
    zone: str | None,
    vendors: list[str],
    suite: str | None = None,
    size_class: str | None = None,
) -> CompareGroup | str:
    """The ranking of a group and the selected vendors, or the reason it cannot be shown.
    Without a suite: the newest with current measured labels for the task and phase."""
    from registry.services.leaderboard import busiest_hardware_class
    from registry.services.ranking import default_suite, ranking_page

    requested = suite or None
    if requested is not None and requested not in suite_versions():
        return f"There is no suite {requested!r}."
    task = task or next(iter(load_methodology()["tasks"]))
    offering = suites_offering(task)
    if not offering or (requested is not None and requested not in offering):
        return f"There is no task {task!r} in this suite."
    # without a suite: the phases of the oldest suite that offers the task (as the leaderboard)
    phases = suite_spec(requested or offering[0])["tasks"][task]["phases"]
    phase = phase or phases[0]
    if phase not in phases:
        return f"Task {task!r} has no phase {phase!r}."
    chosen = requested or default_suite(session, task=task, phase=phase)
    if chosen not in offering:
        chosen = offering[-1]
    # the links name the suite when suite 1 (the API's default for a task) does not offer it
    requested = requested or (None if SUITE_1 in offering else chosen)
    size_class = size_class or None
    if size_class is not None and size_class not in dict(size_class_options(chosen, task)):
        return f"Suite {chosen} has no size class {size_class!r} for {task}."
    # On equal terms: one hardware class, by default the one with the most measured peers;
    # hardware=all (or the empty value of an older form) compares across classes.
    by_default = hardware is None
    if by_default:
        hardware = busiest_hardware_class(
            session, suite=chosen, task=task, phase=phase, size_class=size_class
        )
    elif hardware in (ALL_HARDWARE, ""):
        hardware = None
    where: dict[str, Any] = {
        "task": task,
        "phase": phase,
        "hardware_class": hardware or None,
        "zone": zone or None,
        "suite": chosen,
        "size_class": size_class,
    }
    selected = _split_vendors(vendors)
    top = ranking_page(session, **where, limit=COMPARE_RANKING_ROWS)
    chosen_ranks = (
        ranking_page(session, **where, limit=len(selected), vendors=selected).vendors
        if selected
        else []
    )
    shown = {r.vendor: r for r in [*top.vendors, *chosen_ranks]}
    ranking = sorted(shown.values(), key=lambda r: (r.rank, r.vendor))
    return CompareGroup(
        task=task,
        phase=phase,
        hardware=hardware or None,
        zone=zone or None,
        ranking=ranking,
        ranked=top.total,
        selected=selected,
        suite=chosen,
        requested_suite=requested,
        size_class=size_class,
        hardware_by_default=by_default and hardware is not None,
    )


@dataclass
class QualityView:
    """Energy against measured quality of a group's current measured labels (suite 2)."""

    metric: str | None
    """The metric the suite measures the task with; None: the task has no quality figure."""
    chart: ParetoChart | None
    without_quality: list[LabelRow]
    """Current measured labels of the group that have no quality figure (not on the chart)."""

    @property
    def metric_name(self) -> str:
        return metric_name(self.metric)


def _quality_view(session: Session, group: CompareGroup, unit: str) -> QualityView:
    metric = quality_metric_of(group.suite, group.task)
    if metric is None:
        return QualityView(metric=None, chart=None, without_quality=[])
    labels = all_labels(
        session,
        queries.LabelFilters(**group.where, current=True),
        cap=LEADERBOARD_MAX_LABELS,
    )
    # measured labels of the suite's workload: a shortened run is not compared (its peers, its
    # percentile and the ranking leave it out too)
    measured = [r for r in labels if r[0].measured]
    items = [
        ParetoInput(
            label_id=label.id,
            vendor=vendor,
            model=model,
            energy_wh=label.energy_per_unit_wh,
            quality=label.quality,
            hardware_class=label.hardware_class,
            size_class_label=label_row(label, vendor, model).size_class_label,
            url=model_path(vendor, model),
        )
        for label, vendor, model in measured
        if label.quality is not None and label.standard_workload
    ]
    items.sort(key=lambda i: (i.energy_wh, -i.quality, i.vendor, i.model))
    missing = [
        label_row(*r) for r in measured if r[0].quality is None or not r[0].standard_workload
    ]
    missing.sort(key=row_sort_key("model"))
    return QualityView(metric=metric, chart=pareto_chart(items, unit), without_quality=missing)


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
    suite: str | None = None,
    size_class: str | None = None,
) -> HTMLResponse:
    """Two or more vendors side by side in one peer group, with exports, and (suite 2) every
    model's energy against its measured quality, with the Pareto frontier."""
    group = _compare_group(session, task, phase, hardware, zone, vendors, suite, size_class)
    if isinstance(group, str):
        return not_found(request, group)
    by_slug = {r.vendor: r for r in group.ranking}
    ranked = tuple(slug for slug in group.selected if slug in by_slug)
    # the ranked vendors' current labels in the group (current: benchmark labels only, no
    # other kind is current) in one statement, their percentiles in two
    found = (
        with_percentile(
            session,
            all_labels(
                session,
                queries.LabelFilters(vendors=ranked, **group.where, current=True),
                cap=VENDOR_PAGE_LABELS * len(ranked),
            ),
        )
        if ranked
        else []
    )
    columns: list[CompareColumn] = []
    for slug in group.selected:
        rank = by_slug.get(slug)
        labels = [row for row in found if row.vendor == slug][:VENDOR_PAGE_LABELS]
        labels.sort(key=row_sort_key("grade"))
        columns.append(CompareColumn(slug=slug, rank=rank, labels=labels, url=vendor_path(slug)))
    # Best first; a chosen vendor without a label in the group goes last.
    columns.sort(key=lambda c: (c.rank is None, c.rank.rank if c.rank else 0))
    filters = group.filters
    selected_param = ",".join(group.selected) or None
    methodology = load_methodology()
    functional_unit = functional_unit_of(group.suite, group.task, group.phase)
    size_classes = size_class_options(group.suite, group.task)
    size_label = dict(size_classes).get(group.size_class or "", "")
    group_text = " · ".join(
        part
        for part in (
            f"suite {group.suite}",
            group.task,
            group.phase,
            size_label,
            group.hardware or "",
            f"zone {group.zone}" if group.zone else "",
        )
        if part
    )
    return render(
        request,
        "compare.html",
        {
            "title": "Compare vendors",
            "task": group.task,
            "phase": group.phase,
            "phases": suite_spec(group.suite)["tasks"][group.task]["phases"],
            "suite": group.suite,
            "suites": suites_offering(group.task),
            "size_class": group.size_class or "",
            "group_text": group_text,
            "size_classes": size_classes,
            "quality": _quality_view(session, group, unit_short_for(functional_unit)),
            "hardware": group.hardware or ALL_HARDWARE,
            "hardware_by_default": group.hardware_by_default,
            "zone": group.zone or "",
            "hardware_classes": list(methodology["hardware_classes"]),
            "ranking": group.ranking,
            "ranked": group.ranked,
            "selected": group.selected,
            "columns": columns,
            "unit": unit_name_for(functional_unit),
            "unit_short": unit_short_for(functional_unit),
            "api_csv_href": "/v1/vendors" + query_string(**filters, format="csv"),
            "api_json_href": "/v1/vendors" + query_string(**filters),
            "csv_href": "/compare.csv" + query_string(**group.page_filters, vendors=selected_param),
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
    suite: str | None = None,
    size_class: str | None = None,
) -> Response:
    """The compared vendors' rows as CSV (all vendors of the group when none is chosen)."""
    from registry.services.ranking_rows import FIELDS

    group = _compare_group(session, task, phase, hardware, zone, vendors, suite, size_class)
    if isinstance(group, str):
        raise ProblemError("not-found", group)
    rows = (
        [r for r in group.ranking if r.vendor in group.selected]
        if group.selected
        else _whole_ranking(session, group)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # the unit of score_wh beside it: Wh per 1,000 inferences, per 1,000 requests, per step
    unit = unit_short_for(functional_unit_of(group.suite, group.task, group.phase))
    header = ["suite", "task", "phase", "size_class", "hardware_class", "zone", *FIELDS]
    header.insert(header.index("score_wh") + 1, "score_unit")
    writer.writerow(header)
    for rank in rows:
        cells = [_csv_cell(getattr(rank, name)) for name in FIELDS]
        cells.insert(FIELDS.index("score_wh") + 1, unit)
        writer.writerow(
            [
                group.suite,
                group.task,
                group.phase,
                group.size_class or "",
                group.hardware or "",
                group.zone or "",
                *cells,
            ]
        )
    filename = f"compare-suite{group.suite}-{group.task}-{group.phase}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def _whole_ranking(session: Session, group: CompareGroup) -> list[VendorRank]:
    """Every vendor of the group's ranking, a page at a time."""
    from registry.services.ranking import ranking_page

    found: list[VendorRank] = []
    cursor: str | None = None
    while True:
        page = ranking_page(session, **group.where, limit=1000, cursor=cursor)
        found.extend(page.vendors)
        cursor = page.next_cursor
        if cursor is None:
            return found
