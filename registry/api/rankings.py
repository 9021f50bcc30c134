"""``GET /v1/vendors``: the vendor ranking for a task and phase, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from registry.api.deps import SessionDep
from registry.api.routes import (
    MinQualityQuery,
    SizeClassQuery,
    check_suite_filters,
    invalid_query,
    problems,
)
from registry.services import projection
from registry.services.ranking import default_suite, ranking_page
from registry.services.ranking_rows import FIELDS, SCORE_DESCRIPTION, VendorRank
from schemas.contract import load_methodology
from schemas.suites import all_tasks, suite_spec, suite_versions, suites_offering

router = APIRouter(prefix="/v1", tags=["v1"])

CSV_MEDIA_TYPE = "text/csv"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class VendorRankOut(BaseModel):
    rank: int
    vendor: str
    display_name: str
    score_wh: float | None
    models: int
    labels: int
    measured: int
    estimated: int
    measured_share: float
    best_grade: str | None
    worst_grade: str | None
    median_quality: float | None
    projected_co2e_g: float | None = None
    """With ``project_zone``: the score as CO2e in that zone (a projection, not a label's)."""


class Projection(BaseModel):
    zone: str
    intensity_g_per_kwh: float
    intensity_source: str
    pue: float
    notice: str


class VendorRanking(BaseModel):
    suite: str
    task: str
    phase: Literal["inference", "training"]
    hardware_class: str | None
    zone: str | None
    size_class: str | None
    min_quality: float | None
    score: str
    total: int
    """Vendors the group ranks in all (every page)."""
    next_cursor: str | None
    """The ``cursor`` of the next page; null on the last."""
    vendors: list[VendorRankOut]
    projection: Projection | None = None
    """With ``project_zone``: how ``projected_co2e_g`` was computed."""


def _quality(accept: str, media_type: str) -> tuple[float, int]:
    """(q, specificity) of the best Accept entry matching ``media_type``; (0, -1) if none does."""
    kind = media_type.partition("/")[0]
    best = (0.0, -1)
    for entry in accept.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        name = name.lower()
        if name == media_type:
            specificity = 2
        elif name == f"{kind}/*":
            specificity = 1
        elif name == "*/*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if specificity > best[1]:
            best = (q, specificity)
    return best if best[0] > 0 else (0.0, -1)


def wants_csv(accept: str) -> bool:
    """True when the Accept header prefers text/csv to application/json."""
    return _quality(accept, CSV_MEDIA_TYPE) > _quality(accept, "application/json")


def neutralise(values: Iterable[Any]) -> list[Any]:
    """CSV cells: empty for None, and text that a spreadsheet would run as a formula quoted
    (a row at a time: a call per cell cost a sixth of the CSV answer). A positive number, which
    prints without a sign, goes to the writer as it is (it prints it as ``str`` does, in C)."""
    cells: list[Any] = []
    for value in values:
        kind = type(value)
        if value is None:
            cells.append("")
        elif (kind is int or kind is float) and value > 0:
            cells.append(value)
        else:
            text = value if kind is str else str(value)
            cells.append("'" + text if text.startswith(FORMULA_PREFIXES) else text)
    return cells


def to_csv(vendors: list[VendorRank], projection: dict[str, Any] | None = None) -> str:
    """The rows as CSV; with a projection, a last column ``projected_co2e_g``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes where needed
    writer.writerow([*FIELDS, *(["projected_co2e_g"] if projection else [])])
    for vendor in vendors:
        values: list[Any] = list(vendor.as_dict().values())  # in FIELDS order
        if projection:
            values.append(_projected(vendor, projection))
        writer.writerow(neutralise(values))
    return buffer.getvalue()


def _projection(zone: str | None, pue: float | None) -> dict[str, Any] | None:
    """How a ranking's scores become CO2e in the buyer's zone (``project_zone``): the zone's
    yearly intensity from the bundled table, times ``project_pue`` (default 1.0: the IT energy
    as measured, no facility overhead)."""
    if zone is None:
        if pue is not None:
            raise invalid_query("project_pue", "project_pue applies with project_zone only")
        return None
    shown, intensity, source = projection.zone_intensity(zone, "project_zone")
    return {
        "zone": shown,
        "intensity_g_per_kwh": intensity,
        "intensity_source": source,
        "pue": 1.0 if pue is None else projection.checked_pue(pue, "project_pue"),
        "notice": "a projection: each score (Wh) x PUE x the zone's intensity, as if every "
        "vendor ran there; not a label",
    }


def _projected(vendor: VendorRank, projection: dict[str, Any]) -> float | None:
    if vendor.score_wh is None:
        return None
    return vendor.score_wh / 1000.0 * projection["pue"] * projection["intensity_g_per_kwh"]


@router.get(
    "/vendors",
    response_model=VendorRanking,
    responses={
        200: {
            "description": "the ranking, best first; CSV with `Accept: text/csv` or `?format=csv`",
            "content": {"application/json": {}, CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **problems(400, 422),
    },
)
def vendor_ranking(
    request: Request,
    session: SessionDep,
    task: Annotated[
        str,
        Query(
            max_length=64,
            description="a task of the methodology",
            json_schema_extra={"enum": all_tasks()},
        ),
    ],
    phase: Literal["inference", "training"],
    hardware: Annotated[
        str | None,
        Query(
            max_length=64,
            description="reference hardware class",
            json_schema_extra={"enum": list(load_methodology()["hardware_classes"])},
        ),
    ] = None,
    zone: Annotated[str | None, Query(max_length=64, description="electricity zone")] = None,
    project_zone: Annotated[
        str | None,
        Query(
            max_length=51,
            pattern=r"^[A-Z]{2}(-[A-Za-z0-9_-]{1,48})?$",
            description="project every score to CO2e as if run in this zone (yearly intensity; "
            "adds projected_co2e_g; a projection, not a label)",
        ),
    ] = None,
    project_pue: Annotated[
        float | None,
        Query(ge=1.0, le=5.0, description="PUE for the projection, 1 to 5 (default 1.0)"),
    ] = None,
    suite: Annotated[
        str | None,
        Query(
            max_length=8,
            description="suite version (default: the newest with current measured labels for "
            "the task and phase; the answer's `suite` says which)",
            json_schema_extra={"enum": suite_versions()},
        ),
    ] = None,
    size_class: SizeClassQuery = None,
    min_quality: MinQualityQuery = None,
    output: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="overrides the Accept header"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="vendors per page (rank order)")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="the `next_cursor` of the previous page"),
    ] = None,
) -> Response:
    methodology = load_methodology()
    check_suite_filters(suite, size_class)
    if suite is not None:
        tasks = suite_spec(suite)["tasks"]
        if task not in tasks:
            raise invalid_query(
                "task", f"suite {suite} has no task {task!r}; one of {sorted(tasks)}"
            )
        if phase not in tasks[task]["phases"]:
            raise invalid_query("phase", f"task {task!r} has no {phase} phase")
    elif task not in all_tasks():
        raise invalid_query("task", f"unknown task; one of {all_tasks()}")
    elif not suites_offering(task, phase):
        raise invalid_query("phase", f"task {task!r} has no {phase} phase")
    if hardware is not None and hardware not in methodology["hardware_classes"]:
        raise invalid_query("hardware", "unknown hardware class")
    projection = _projection(project_zone, project_pue)
    if suite is None:
        suite = default_suite(session, task=task, phase=phase)
    page = ranking_page(
        session,
        task=task,
        phase=phase,
        hardware_class=hardware,
        zone=zone,
        suite=suite,
        size_class=size_class,
        min_quality=min_quality,
        limit=limit,
        cursor=cursor,
    )
    vendors = page.vendors
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Vary": "Accept",
        "X-Content-Type-Options": "nosniff",
        "X-Total-Count": str(page.total),
    }
    if page.next_cursor is not None:
        # RFC 8288: the next page, with the same filters and representation
        following = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'

    csv_out = output == "csv" or (output is None and wants_csv(request.headers.get("accept", "")))
    if csv_out:
        filename = f"carbonlabel-vendors-{task}-{phase}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return Response(
            to_csv(vendors, projection),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers=headers,
        )
    rows = [v.as_dict() for v in vendors]
    if projection is not None:
        for row, vendor in zip(rows, vendors, strict=True):
            row["projected_co2e_g"] = _projected(vendor, projection)
    body: dict[str, Any] = {
        "suite": suite,
        "task": task,
        "phase": phase,
        "hardware_class": hardware,
        "zone": zone,
        "size_class": size_class,
        "min_quality": min_quality,
        "score": SCORE_DESCRIPTION,
        "total": page.total,
        "next_cursor": page.next_cursor,
        "vendors": rows,
    }
    if projection is not None:
        body["projection"] = projection
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
