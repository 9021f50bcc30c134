"""HTML pages: leaderboard, model, vendor, compare and methodology.

The only module that reads ``web/``: Jinja2 templates from ``web/templates`` (autoescaped; every
text from the database goes through the template engine, never into markup by hand) and the
assets the app serves from ``web/static``. A page route calls the same services as its JSON
twin; neither calls the other. Pages work without JavaScript: sorting and filtering are links
and GET forms, charts are inline SVG computed here; ``web/static/app.js`` only adds copy buttons.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import markupsafe
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from registry.api.deps import SessionDep, SettingsDep
from registry.errors import ProblemError
from registry.models import Label, Standing, Tier
from registry.services import audit, queries
from registry.services import vendors as vendor_service
from schemas.contract import load_methodology
from schemas.results import component_energy_j

if TYPE_CHECKING:
    from registry.services.ranking import VendorRank

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

LEADERBOARD_PAGE_SIZE = 50
LEADERBOARD_MAX_LABELS = 5000
"""Labels read for one leaderboard (current ones are kept); filters narrow a larger group."""
VENDOR_PAGE_LABELS = 1000
MAX_SERIES_POINTS = 1500
"""Power samples drawn per component and chart; longer series are thinned evenly."""

SORT_KEYS = ("grade", "energy", "co2e", "model", "vendor", "date")
DEFAULT_SORT = "grade"

router = APIRouter(include_in_schema=False)


# --------------------------------------------------------------------------- rendering


def format_number(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, thousands separated; an em dash for no value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def format_tick(value: float) -> str:
    """An axis tick: as short as it can be (``20``, ``2.5``, ``0.125``)."""
    return f"{value:,.6g}"


def format_date(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value[:10]
    return value.date().isoformat()


def format_percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}%"


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _printable(value: Any) -> Any:
    """Every ``{{ value }}`` of a template passes here before it is escaped: control characters
    (which HTML cannot carry) are dropped."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return _CONTROL_CHARACTERS.sub("", value)
    return value


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=True,
        finalize=_printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["date"] = format_date
    env.filters["pct"] = format_percent
    env.filters["path"] = lambda value: quote(str(value), safe="")
    return env


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the headers every page carries."""
    body = (
        _environment()
        .get_template(template)
        .render(
            {
                "request_path": request.url.path,
                "tasks": list(load_methodology()["tasks"]),
                **context,
            }
        )
    )
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": "Not found", "status": 404, "message": message},
        status_code=404,
    )


def _query(**params: Any) -> str:
    """``?a=1&b=2`` from the parameters that have a value."""
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    return "?" + urlencode(kept, doseq=True) if kept else ""


def _model_path(vendor: str, model: str) -> str:
    return f"/models/{quote(vendor, safe='')}/{quote(model, safe='')}"


def _vendor_path(vendor: str) -> str:
    return f"/vendors/{quote(vendor, safe='')}"


# --------------------------------------------------------------------------- label views


@dataclass(frozen=True)
class LabelRow:
    """What a table row shows of one label."""

    label_id: str
    vendor: str
    model: str
    revision: str
    task: str
    phase: str
    hardware_class: str
    zone: str
    measured: bool
    grade: str | None
    graded_under: str | None
    percentile: float | None
    energy_wh: float
    energy_ci95_low_wh: float | None
    energy_ci95_high_wh: float
    co2e_g: float
    created_at: datetime
    current: bool
    tier: str = Tier.self_reported
    """``self-reported`` or ``verified`` (an auditor's reproduced figures agree)."""
    standing: str = Standing.ok
    """``ok`` or ``key-compromised`` (logged after its key's reported compromise)."""
    verified_by: tuple[str, ...] = ()
    """Display names of the auditors whose figures agree (filled where a page shows them)."""

    @property
    def verified(self) -> bool:
        return self.tier == Tier.verified

    @property
    def lost_standing(self) -> bool:
        return self.standing != Standing.ok

    @property
    def model_url(self) -> str:
        return _model_path(self.vendor, self.model)

    @property
    def vendor_url(self) -> str:
        return _vendor_path(self.vendor)


def _ci95_low(label: Label) -> float | None:
    try:
        return float(label.predicate["results"]["energy_per_unit_wh"]["ci95_low"])
    except (KeyError, TypeError, ValueError):
        return None


def label_row(
    label: Label,
    vendor: str,
    model: str,
    percentile: float | None = None,
    verified_by: Sequence[str] = (),
) -> LabelRow:
    return LabelRow(
        label_id=label.id,
        vendor=vendor,
        model=model,
        revision=label.revision,
        task=label.task,
        phase=label.phase,
        hardware_class=label.hardware_class,
        zone=label.zone,
        measured=label.measured,
        grade=label.grade,
        graded_under=label.graded_under,
        percentile=percentile,
        energy_wh=label.energy_per_unit_wh,
        energy_ci95_low_wh=_ci95_low(label),
        energy_ci95_high_wh=label.energy_ci95_high_wh,
        co2e_g=label.co2e_per_unit_g,
        created_at=label.created_at,
        current=label.current,
        tier=label.tier,
        standing=label.standing,
        verified_by=tuple(verified_by),
    )


def _with_percentile(session: Session, rows: Iterable[tuple[Label, str, str]]) -> list[LabelRow]:
    return [
        label_row(label, vendor, model, queries.grade_view(session, label)["percentile"])
        for label, vendor, model in rows
    ]


def _all_labels(
    session: Session, filters: queries.LabelFilters, *, cap: int
) -> list[tuple[Label, str, str]]:
    """Labels matching ``filters`` (at most ``cap``), following the service's cursor."""
    found: list[tuple[Label, str, str]] = []
    cursor: str | None = None
    while len(found) < cap:
        page, cursor = queries.list_labels(
            session, filters=filters, sort="energy", limit=min(500, cap - len(found)), cursor=cursor
        )
        found.extend(page)
        if cursor is None:
            break
    return found


def _sort_key(name: str) -> Any:
    keys: dict[str, Any] = {
        "grade": lambda r: (r.grade is None, r.energy_ci95_high_wh, r.vendor, r.model),
        "energy": lambda r: (r.energy_wh, r.vendor, r.model),
        "co2e": lambda r: (r.co2e_g, r.vendor, r.model),
        "model": lambda r: (r.model.lower(), r.vendor, r.hardware_class),
        "vendor": lambda r: (r.vendor, r.model.lower(), r.hardware_class),
        "date": lambda r: (r.created_at, r.vendor, r.model),
    }
    return keys[name]


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


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float
    text: str


def nice_ticks(upper: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``upper``."""
    if upper <= 0 or not math.isfinite(upper):
        return [0.0, 1.0]
    raw = upper / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < upper - 1e-12 * upper:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


@dataclass
class HistoryPoint:
    x: float
    y: float
    y_low: float
    y_high: float
    text: str
    row: LabelRow


@dataclass
class HistoryChart:
    """Energy per functional unit of a model's labels in one peer group, oldest first."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: list[HistoryPoint]
    y_ticks: list[Tick]
    bands: list[Tick]
    unit: str

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def history_chart(
    rows: Sequence[LabelRow], bands: Sequence[float] | None, scale: Sequence[str], unit: str
) -> HistoryChart:
    width, height, left, right, top, bottom = 640, 240, 64, 36, 16, 44
    ordered = sorted(rows, key=lambda r: (r.created_at, r.label_id))
    highest = max((r.energy_ci95_high_wh for r in ordered), default=1.0)
    ticks = nice_ticks(highest * 1.1)
    y_max = ticks[-1]

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / y_max)

    span = width - left - right
    points = []
    for index, row in enumerate(ordered):
        x = left + span * ((index + 0.5) / len(ordered))
        low = row.energy_ci95_low_wh if row.energy_ci95_low_wh is not None else row.energy_wh
        points.append(
            HistoryPoint(
                x=x,
                y=y_of(row.energy_wh),
                y_low=y_of(low),
                y_high=y_of(row.energy_ci95_high_wh),
                text=row.revision,
                row=row,
            )
        )
    band_ticks = [
        Tick(value=b, pos=y_of(b), text=f"{scale[i]}/{scale[i + 1]}")
        for i, b in enumerate(bands or [])
        if b <= y_max and i + 1 < len(scale)
    ]
    return HistoryChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=points,
        y_ticks=[Tick(value=t, pos=y_of(t), text=format_tick(t)) for t in ticks],
        bands=band_ticks,
        unit=unit,
    )


@dataclass
class Segment:
    """A drawn piece of one component's power: a flat line (counter) or a polyline (samples)."""

    points: str
    flat: bool


@dataclass
class Series:
    name: str
    device: str
    css: str
    method: str
    idle_power_w: float | None
    idle_y: float | None = None
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Window:
    name: str
    x0: float
    x1: float
    duration_s: float
    energy_j: float
    mean_power_w: float
    units: float | None


@dataclass
class TimelineChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    windows: list[Window]
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    idle_power_w: float | None


def _thin(samples: Sequence[Sequence[float]], limit: int) -> Sequence[Sequence[float]]:
    if len(samples) <= limit:
        return samples
    step = len(samples) / limit
    kept = [samples[int(i * step)] for i in range(limit)]
    kept[-1] = samples[-1]
    return kept


def timeline_chart(predicate: Mapping[str, Any]) -> TimelineChart | None:
    """The measured power of every window (idle baseline, then each trial) of a label's traces.

    Counter readings give the window's mean power (a flat line); power samples are drawn as
    sampled. Each component's idle power is marked across the whole chart. None when the label
    has no usable traces.
    """
    try:
        traces = predicate["traces"]
        idle = traces["idle"]
        windows_raw: list[tuple[str, Mapping[str, Any]]] = [("idle", idle)] + [
            (f"trial {int(t.get('index', i)) + 1}", t) for i, t in enumerate(traces["trials"])
        ]
        origin = float(idle["t_start_s"])
        end = max(float(w["t_end_s"]) for _, w in windows_raw)
    except (KeyError, TypeError, ValueError):
        return None
    if end <= origin:
        return None
    width, height, left, right, top, bottom = 720, 260, 56, 16, 28, 40
    span = end - origin

    def x_of(t: float) -> float:
        return left + (width - left - right) * (t - origin) / span

    # Per window and component: (t0, t1, [(t, W)], mean power).
    drawn: list[tuple[str, Mapping[str, Any], list[tuple[float, float]], float]] = []
    windows: list[Window] = []
    peak = 0.0
    idle_power: dict[str, float] = {}
    for name, window in windows_raw:
        try:
            t0, t1 = float(window["t_start_s"]), float(window["t_end_s"])
            components = list(window["components"])
        except (KeyError, TypeError, ValueError):
            return None
        duration = t1 - t0
        total_j = 0.0
        for component in components:
            try:
                energy_j = component_energy_j(component, t0, t1)
            except (KeyError, TypeError, ValueError):
                return None
            total_j += energy_j
            mean_w = energy_j / duration if duration > 0 else 0.0
            if "samples" in component:
                points = [(float(t), float(p)) for t, p in component["samples"]]
            else:
                points = [(t0, mean_w), (t1, mean_w)]
            peak = max([peak, mean_w, *(p for _, p in points)])
            key = str(component.get("name", "?"))
            if name == "idle":
                idle_power[key] = idle_power.get(key, 0.0) + mean_w
            drawn.append((key, component, points, mean_w))
        windows.append(
            Window(
                name=name,
                x0=x_of(t0),
                x1=x_of(t1),
                duration_s=duration,
                energy_j=total_j,
                mean_power_w=total_j / duration if duration > 0 else 0.0,
                units=float(window["units"]) if "units" in window else None,
            )
        )
    y_ticks_values = nice_ticks(peak * 1.1 if peak > 0 else 1.0)
    y_max = y_ticks_values[-1]

    def y_of(watts: float) -> float:
        return top + (height - top - bottom) * (1 - watts / y_max)

    series: dict[str, Series] = {}
    for key, component, points, _ in drawn:
        if key not in series:
            baseline = idle_power.get(key)
            series[key] = Series(
                name=key,
                device=str(component.get("device", "")),
                css=f"series-{len(series) % 4}",
                method=str(component.get("method", "")),
                idle_power_w=baseline,
                idle_y=y_of(baseline) if baseline is not None else None,
            )
        thinned = _thin(points, MAX_SERIES_POINTS)
        series[key].segments.append(
            Segment(
                points=" ".join(f"{x_of(t):.1f},{y_of(p):.1f}" for t, p in thinned),
                flat="samples" not in component,
            )
        )
    x_values = nice_ticks(span, count=7)
    return TimelineChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        windows=windows,
        series=list(series.values()),
        x_ticks=[
            Tick(value=v, pos=x_of(origin + v), text=format_tick(v)) for v in x_values if v <= span
        ],
        y_ticks=[Tick(value=v, pos=y_of(v), text=format_tick(v)) for v in y_ticks_values],
        idle_power_w=sum(idle_power.values()) if idle_power else None,
    )


# --------------------------------------------------------------------------- leaderboard


def _unit(phase: str) -> str:
    return "Wh per 1,000 inferences" if phase == "inference" else "Wh per training step"


def _unit_short(phase: str) -> str:
    return "Wh/1k" if phase == "inference" else "Wh/step"


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

    group = _all_labels(
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
    rows.sort(key=_sort_key(sort_key), reverse=descending)
    pages = max(1, math.ceil(len(rows) / LEADERBOARD_PAGE_SIZE))
    page_number = min(_positive_int(page), pages)
    start = (page_number - 1) * LEADERBOARD_PAGE_SIZE
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
        for r in rows[start : start + LEADERBOARD_PAGE_SIZE]
    ]

    filters = {"task": task, "phase": phase, "hardware": hardware, "zone": zone}
    current_sort = f"-{sort_key}" if descending else sort_key
    columns = []
    for key, title in (
        ("model", "Model"),
        ("vendor", "Vendor"),
        ("grade", "Grade"),
        ("energy", f"Energy ({_unit_short(phase)})"),
        ("co2e", "CO₂e (g)"),
        ("date", "Date"),
    ):
        active = key == sort_key
        next_sort = key if (active and descending) or not active else f"-{key}"
        columns.append(
            {
                "key": key,
                "title": title,
                "href": _query(**filters, sort=next_sort),
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
                _query(**filters, sort=current_sort, page=page_number - 1)
                if page_number > 1
                else None
            ),
            "next_href": (
                _query(**filters, sort=current_sort, page=page_number + 1)
                if page_number < pages
                else None
            ),
            "columns": columns,
            "sort": current_sort,
            "unit": _unit(phase),
            "task_links": [
                {"task": name, "href": _query(task=name, phase=phase_for(methodology, name, phase))}
                for name in methodology["tasks"]
            ],
            "compare_href": "/compare"
            + _query(**filters, vendors=",".join(compare_vendors[:4]) or None),
            "csv_href": "/v1/vendors" + _query(**filters, format="csv"),
        },
    )


def phase_for(methodology: Mapping[str, Any], task: str, phase: str) -> str:
    phases = methodology["tasks"][task]["phases"]
    return phase if phase in phases else str(phases[0])


# --------------------------------------------------------------------------- model page


@dataclass
class LabelSection:
    row: LabelRow
    detail: dict[str, Any]
    history: HistoryChart
    history_rows: list[LabelRow]
    timeline: TimelineChart | None
    unit: str
    card_src: str
    pinned_badge_src: str
    hardware_name: str
    cpu_name: str
    carbon: Mapping[str, Any]
    methodology_version: str
    flags: list[str]
    trials: int
    source: str


def embed_snippets(base_url: str, vendor: str, model: str) -> list[dict[str, Any]]:
    """Copy-ready badge snippets (Markdown, HTML, reStructuredText) for a model's README."""
    badge = f"{base_url}/badge/{quote(vendor, safe='')}/{quote(model, safe='')}.svg"
    page = f"{base_url}{_model_path(vendor, model)}"
    alt = f"carbon label of {vendor}/{model}"
    snippets = [
        ("markdown", "Markdown", f"[![{alt}]({badge})]({page})"),
        ("html", "HTML", f'<a href="{page}"><img src="{badge}" alt="{alt}"></a>'),
        ("rst", "reStructuredText", f".. image:: {badge}\n   :target: {page}\n   :alt: {alt}"),
    ]
    return [
        {
            "id": key,
            "name": name,
            "text": text,
            "rows": sum(1 + len(line) // 110 for line in text.splitlines()),
        }
        for key, name, text in snippets
    ]


@router.get("/models/{vendor}/{model}", response_class=HTMLResponse)
def model_page(
    request: Request, vendor: str, model: str, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """A model's current labels: card, energy history, power timelines, verification, embeds."""
    try:
        view = queries.model_view(session, vendor, model, settings.public_url)
    except ProblemError as exc:
        if exc.kind != "not-found":
            raise
        return not_found(request, f"There is no model {vendor}/{model} in this registry.")
    methodology = load_methodology()
    grades = methodology["grades"]
    rows = _all_labels(
        session, queries.LabelFilters(vendor=vendor, model=f"{vendor}/{model}"), cap=1000
    )
    all_rows = [label_row(label, v, m) for label, v, m in rows]
    sections: list[LabelSection] = []
    current = sorted(
        (r for r in rows if r[0].current),
        key=lambda r: (r[0].task, r[0].phase, r[0].hardware_class),
    )
    auditors = audit.verifying_auditors(
        session, [label.id for label, _, _ in current if label.tier == Tier.verified]
    )
    for label, v, m in current:
        detail = queries.label_detail(session, label, v, m, settings.public_url)
        peers = [
            r
            for r in all_rows
            if (r.task, r.phase, r.hardware_class)
            == (label.task, label.phase, label.hardware_class)
        ]
        bands = (
            grades["bands_wh"]
            .get(label.task, {})
            .get(label.phase, {})
            .get(
                label.hardware_class,
                grades["bands_wh"].get(label.task, {}).get(label.phase, {}).get("default"),
            )
        )
        predicate = label.predicate
        hardware = predicate.get("hardware", {})
        query = _query(task=label.task, phase=label.phase)
        sections.append(
            LabelSection(
                row=label_row(
                    label, v, m, detail["grade"]["percentile"], auditors.get(label.id, ())
                ),
                detail=detail,
                history=history_chart(peers, bands, grades["scale"], _unit_short(label.phase)),
                history_rows=sorted(peers, key=lambda r: (r.created_at, r.label_id)),
                timeline=timeline_chart(predicate),
                unit=_unit(label.phase),
                card_src=f"/label/{quote(v, safe='')}/{quote(m, safe='')}.svg{query}",
                pinned_badge_src=f"/badge/label/{label.id}.svg",
                hardware_name=str(hardware.get("accelerator", {}).get("model_name", "")),
                cpu_name=str(hardware.get("cpu", {}).get("model_name", "")),
                carbon=predicate.get("carbon", {}),
                methodology_version=str(
                    predicate.get("measurement", {}).get("methodology_version", "")
                ),
                flags=[str(f) for f in predicate.get("measurement", {}).get("flags", [])],
                trials=len(predicate.get("traces", {}).get("trials", [])),
                source=str(predicate.get("provenance", {}).get("source", "")),
            )
        )
    vendor_slug, _, model_name = view["model"].partition("/")
    return render(
        request,
        "model.html",
        {
            "title": view["model"],
            "vendor": vendor_slug,
            "model": model_name,
            "vendor_url": _vendor_path(vendor_slug),
            "sections": sections,
            "history": sorted(all_rows, key=lambda r: (r.created_at, r.label_id), reverse=True),
            "lost_standing": [r for r in all_rows if r.lost_standing],
            "tolerance_relative": load_methodology()["audit"]["tolerance_relative"],
            "snippets": embed_snippets(settings.public_url, vendor_slug, model_name),
            "public_url": settings.public_url,
            "badge_src": f"/badge/{quote(vendor_slug, safe='')}/{quote(model_name, safe='')}.svg",
            "json_href": f"/v1/models/{quote(vendor_slug, safe='')}/{quote(model_name, safe='')}",
        },
    )


# --------------------------------------------------------------------------- vendor page


@router.get("/vendors/{vendor}", response_class=HTMLResponse)
def vendor_page(
    request: Request, vendor: str, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """A vendor's profile, keys and models with their current grades."""
    try:
        owner = vendor_service.get_vendor(session, vendor)
    except ProblemError as exc:
        if exc.kind != "not-found":
            raise
        return not_found(request, f"There is no vendor {vendor} in this registry.")
    profile = queries.vendor_profile(session, owner, settings.public_url, limit=1)
    rows = _all_labels(session, queries.LabelFilters(vendor=owner.slug), cap=VENDOR_PAGE_LABELS)
    current = _with_percentile(session, (r for r in rows if r[0].current))
    auditors = audit.verifying_auditors(session, [r.label_id for r in current if r.verified])
    current = [replace(r, verified_by=tuple(auditors.get(r.label_id, ()))) for r in current]
    lost = sorted(
        (label_row(label, v, m) for label, v, m in rows if label.standing != Standing.ok),
        key=lambda r: (r.model, r.created_at),
    )
    by_model: dict[str, list[LabelRow]] = {}
    for name in profile["models"]:
        by_model[name.partition("/")[2]] = []
    for row in current:
        by_model.setdefault(row.model, []).append(row)
    models: list[dict[str, Any]] = []
    for name in sorted(by_model):
        labels: list[LabelRow] = sorted(
            by_model[name], key=lambda r: (r.task, r.phase, r.hardware_class)
        )
        models.append(
            {
                "name": name,
                "url": _model_path(owner.slug, name),
                "badge_src": f"/badge/{quote(owner.slug, safe='')}/{quote(name, safe='')}.svg",
                "labels": labels,
            }
        )
    tasks = sorted({(r.task, r.phase) for r in current})
    return render(
        request,
        "vendor.html",
        {
            "title": owner.display_name,
            "vendor": owner.slug,
            "display_name": owner.display_name,
            "created_at": owner.created_at,
            "keys": profile["keys"],
            "models": models,
            "label_count": len(rows),
            "measured": sum(1 for r in current if r.measured),
            "verified": sum(1 for r in current if r.verified),
            "lost_standing": lost,
            "estimated": sum(1 for r in current if not r.measured),
            "json_href": f"/v1/vendors/{quote(owner.slug, safe='')}",
            "compare_links": [
                {
                    "task": task,
                    "phase": phase,
                    "href": "/compare" + _query(task=task, phase=phase, vendors=owner.slug),
                }
                for task, phase in tasks
            ],
        },
    )


# --------------------------------------------------------------------------- compare


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
            _with_percentile(
                session,
                (
                    r
                    for r in _all_labels(
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
        labels.sort(key=_sort_key("grade"))
        columns.append(CompareColumn(slug=slug, rank=rank, labels=labels, url=_vendor_path(slug)))
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
            "unit": _unit(group.phase),
            "unit_short": _unit_short(group.phase),
            "api_csv_href": "/v1/vendors" + _query(**filters, format="csv"),
            "api_json_href": "/v1/vendors" + _query(**filters),
            "csv_href": "/compare.csv" + _query(**filters, vendors=selected_param),
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


# --------------------------------------------------------------------------- methodology


@router.get("/methodology", response_class=HTMLResponse)
def methodology_page(request: Request) -> HTMLResponse:
    """Tasks, functional units, reference hardware and the grade bands of the methodology file."""
    methodology = load_methodology()
    grades = methodology["grades"]
    scale = list(grades["scale"])
    band_rows = []
    for task, phases in grades["bands_wh"].items():
        for phase, by_class in phases.items():
            for hardware_class, bands in by_class.items():
                cells = []
                for i, letter in enumerate(scale):
                    low = bands[i - 1] if i > 0 else None
                    high = bands[i] if i < len(bands) else None
                    cells.append({"grade": letter, "low": low, "high": high})
                band_rows.append(
                    {
                        "task": task,
                        "phase": phase,
                        "hardware_class": hardware_class,
                        "median": grades.get("medians_wh", {}).get(task, {}).get(phase),
                        "unit": _unit_short(phase),
                        "cells": cells,
                    }
                )
    return render(
        request,
        "methodology.html",
        {
            "title": "Methodology",
            "methodology": methodology,
            "grades": grades,
            "scale": scale,
            "band_rows": band_rows,
        },
    )
