"""The model page: a model's current labels with card, energy history, its figures across
revisions and in production (with drift), power timelines, verification and embed snippets; its
training runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse

from registry.api.deps import SessionDep, SettingsDep
from registry.errors import ProblemError
from registry.models import LabelKind, Tier
from registry.pages.charts import HistoryChart, TimelineChart, history_chart, timeline_chart
from registry.pages.common import (
    model_path,
    not_found,
    query_string,
    render,
    router,
    unit_name_for,
    unit_short_for,
    vendor_path,
)
from registry.pages.facts import (
    Bias,
    Flag,
    Node,
    ServingView,
    bias_view,
    flag_views,
    node_views,
    serving_view,
)
from registry.pages.rows import LabelRow, all_labels, label_row
from registry.pages.series_chart import TrackView, track_views
from registry.services import audit, projection, queries
from registry.services import series as series_service
from schemas import grid
from schemas.contract import load_methodology
from schemas.suites import bands_for_suite, grade_scale


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
    flags: list[Flag]
    """``measurement.flags``, each with what it means."""
    trials: int
    source: str
    tokens: Mapping[str, Any] | None = None
    """Suite 2 text tasks: input and output token totals, output tokens per second."""
    model_facts: Mapping[str, Any] | None = None
    """Suite 2: parameter count, dtype, Hub id and revision."""
    serving: ServingView | None = None
    """chat-serving: the engine, the served model and every concurrency level."""
    nodes: list[Node] = field(default_factory=list)
    """Multi-node runs: each node and its devices."""
    whatif: Mapping[str, Any] | None = None
    """The projection asked for with ``whatif_zone`` / ``whatif_pue`` (services.projection)."""
    bias: Bias | None = None
    """The meter bias bound and the figure the grade is given on."""
    accelerator_count: int = 0
    series: TrackView | None = None
    """Its hardware class across revisions and time, with production beside it (and drift)."""


def _tokens(results: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = ("input_tokens_total", "output_tokens_total", "output_tokens_per_s")
    found = {k: results[k] for k in keys if isinstance(results.get(k), int | float)}
    return found or None


def _model_facts(model: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(model.get("parameter_count"), int):
        return None
    return {
        "parameter_count": model["parameter_count"],
        "dtype": str(model.get("dtype", "")),
        "hub_id": str(model.get("hub_id", "")),
        "hub_revision": str(model.get("hub_revision", "")),
        "files": len(model.get("files") or []),
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def pinned_badge(vendor: str, model: str, task: str | None, phase: str | None) -> str:
    """The path of a model's badge pinned to a task and phase (``?task=...&phase=...``): it
    shows that label whatever the model publishes later, never a training figure in place of an
    inference one."""
    path = f"/badge/{quote(vendor, safe='')}/{quote(model, safe='')}.svg"
    return path + query_string(task=task, phase=phase)


def embed_snippets(
    base_url: str, vendor: str, model: str, task: str | None = None, phase: str | None = None
) -> list[dict[str, Any]]:
    """Copy-ready badge snippets (Markdown, HTML, reStructuredText) for a model's README, with
    the badge pinned to ``task`` and ``phase`` when given."""
    badge = f"{base_url}{pinned_badge(vendor, model, task, phase)}"
    page = f"{base_url}{model_path(vendor, model)}"
    alt = f"carbon label of {vendor}/{model}"
    if task and phase:
        alt += f" ({task}, {phase})"
    in_html = badge.replace("&", "&amp;")
    snippets = [
        ("markdown", "Markdown", f"[![{alt}]({badge})]({page})"),
        ("html", "HTML", f'<a href="{page}"><img src="{in_html}" alt="{alt}"></a>'),
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
    try:  # the series first: it finds the model (a not-found for an unknown one)
        found = series_service.model_series(session, vendor, model)
    except ProblemError as exc:
        if exc.kind != "not-found":
            raise
        return not_found(request, f"There is no model {vendor}/{model} in this registry.")
    whatif_zone, whatif_pue, whatif_profile, whatif_error = _whatif_query(request)
    # benchmark labels: production periods (one an hour) and training runs are shown apart
    rows = all_labels(
        session, queries.LabelFilters(model_id=found.model_id, kind=LabelKind.benchmark), cap=1000
    )
    views = track_views(found)
    all_rows = [label_row(label, v, m) for label, v, m in rows]
    sections: list[LabelSection] = []
    current = sorted(
        (r for r in rows if r[0].current),
        key=lambda r: (-len(r[0].suite), r[0].suite, r[0].task, r[0].phase, r[0].hardware_class),
    )
    auditors = audit.verifying_auditors(
        session, [label.id for label, _, _ in current if label.tier == Tier.verified]
    )
    # the card, timeline and verification read the stored labels (with their keys' status and
    # whether they were attested) in one statement, but not their envelopes: the page links to
    # them; their peer ranks in two
    stored = queries.labels_with_key(session, [brief.id for brief, _, _ in current])
    ranks = queries.peer_ranks(session, [label for label, _, _ in stored.values()])
    for brief, v, m in current:
        label, key_status, attested = stored[brief.id]
        detail = queries.label_detail(
            session,
            label,
            v,
            m,
            settings.public_url,
            key_status,
            attested,
            envelope=False,
            rank=ranks.get(label.id),
        )
        peers = [
            r
            for r in all_rows
            if (r.suite, r.task, r.phase, r.hardware_class)
            == (label.suite, label.task, label.phase, label.hardware_class)
        ]
        bands = bands_for_suite(
            label.suite, label.task, label.phase, label.hardware_class, label.size_class
        )
        unit = label.functional_unit
        predicate = label.predicate
        hardware = predicate.get("hardware", {})
        query = query_string(task=label.task, phase=label.phase, suite=label.suite)
        sections.append(
            LabelSection(
                row=label_row(
                    label,
                    v,
                    m,
                    detail["grade"]["percentile"],
                    auditors.get(label.id, ()),
                    peers=detail["grade"].get("peers"),
                ),
                detail=detail,
                history=history_chart(peers, bands, grade_scale(label.suite), unit_short_for(unit)),
                history_rows=sorted(peers, key=lambda r: (r.created_at, r.label_id)),
                timeline=timeline_chart(predicate),
                unit=unit_name_for(unit),
                card_src=f"/label/{quote(v, safe='')}/{quote(m, safe='')}.svg{query}",
                pinned_badge_src=f"/badge/label/{label.id}.svg",
                hardware_name=str(hardware.get("accelerator", {}).get("model_name", "")),
                cpu_name=str(hardware.get("cpu", {}).get("model_name", "")),
                carbon=predicate.get("carbon", {}),
                methodology_version=str(
                    predicate.get("measurement", {}).get("methodology_version", "")
                ),
                flags=flag_views(predicate.get("measurement", {}).get("flags", [])),
                trials=len(predicate.get("traces", {}).get("trials", [])),
                source=str(predicate.get("provenance", {}).get("source", "")),
                tokens=_tokens(predicate.get("results", {})),
                model_facts=_model_facts(predicate.get("model", {})),
                serving=serving_view(predicate),
                nodes=node_views(hardware),
                bias=bias_view(detail["grade"]),
                accelerator_count=_count(hardware.get("accelerator", {}).get("count")),
                whatif=None
                if whatif_error
                else _whatif(predicate, whatif_zone, whatif_pue, whatif_profile),
                series=views.pop(
                    (label.suite, label.task, label.phase, label.hardware_class), None
                ),
            )
        )
    vendor_slug, model_name = vendor, model
    # the README badge shows the label the page shows first, pinned to its task and phase
    pinned = (sections[0].row.task, sections[0].row.phase) if sections else (None, None)
    return render(
        request,
        "model.html",
        {
            "title": f"{vendor}/{model}",
            "vendor": vendor_slug,
            "model": model_name,
            "vendor_url": vendor_path(vendor_slug),
            "sections": sections,
            "history": sorted(all_rows, key=lambda r: (r.created_at, r.label_id), reverse=True),
            "lost_standing": [r for r in all_rows if r.lost_standing],
            "tolerance_relative": load_methodology()["audit"]["tolerance_relative"],
            "snippets": embed_snippets(settings.public_url, vendor_slug, model_name, *pinned),
            "pinned_to": pinned,
            "public_url": settings.public_url,
            "badge_src": pinned_badge(vendor_slug, model_name, *pinned),
            "json_href": f"/v1/models/{quote(vendor_slug, safe='')}/{quote(model_name, safe='')}",
            "whatif_zones": grid.zones(),
            "whatif_zone": whatif_zone or "",
            "whatif_pue": "" if whatif_pue is None else f"{whatif_pue:g}",
            "whatif_profile": request.query_params.get("whatif_profile", "")[:2000],
            "whatif_error": whatif_error,
            # production on a hardware class without a current benchmark label: no drift figure
            "production_only": [v for v in views.values() if v.production],
            "training_runs": [(g, run) for g in found.groups for run in g.training_runs],
            "series_href": f"/v1/models/{quote(vendor_slug, safe='')}/"
            f"{quote(model_name, safe='')}/series",
        },
    )


def _whatif_query(
    request: Request,
) -> tuple[str | None, float | None, list[float] | None, str | None]:
    """``whatif_zone``, ``whatif_pue`` and ``whatif_profile`` from the query (empty: the
    label's), or what is wrong with them (shown on the page: a projection is an aside, never a
    reason to fail the page)."""
    zone = request.query_params.get("whatif_zone", "").strip()[:64] or None
    text = request.query_params.get("whatif_pue", "").strip()[:16]
    try:
        pue = float(text) if text else None
    except ValueError:
        return zone, None, None, "the PUE must be a number between 1 and 5"
    try:  # the projection's own checks, once for every label of the page
        if pue is not None:
            projection.checked_pue(pue, "PUE")
        if zone is not None:
            projection.zone_intensity(zone, "zone")
        profile = projection.parse_profile(request.query_params.get("whatif_profile", "")[:2000])
    except ProblemError as exc:
        return None, None, None, str(exc.extensions["errors"][0]["message"])
    return zone, pue, profile, None


def _whatif(
    predicate: Mapping[str, Any],
    zone: str | None,
    pue: float | None,
    profile: list[float] | None,
) -> Mapping[str, Any] | None:
    if zone is None and pue is None and profile is None:
        return None
    return projection.project(predicate, zone, pue, profile)
