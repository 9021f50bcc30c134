"""The vendor page: a vendor's profile, trend, keys and models with their current grades, and
each task's chart of its models across revisions and time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse

from registry.api.deps import SessionDep
from registry.errors import ProblemError
from registry.models import KeyStatus, LabelKind, Standing
from registry.pages.common import model_path, not_found, query_string, render, router
from registry.pages.rows import VENDOR_PAGE_LABELS, LabelRow, all_labels, label_row, with_percentile
from registry.pages.vendor_chart import vendor_charts
from registry.services import audit, profiles, queries
from registry.services import trends as trend_service


@router.get("/vendors/{vendor}", response_class=HTMLResponse)
def vendor_page(request: Request, vendor: str, session: SessionDep) -> HTMLResponse:
    """A vendor's profile, keys and models with their current grades."""
    try:
        summary = profiles.vendor_summary(session, vendor)
    except ProblemError as exc:
        if exc.kind != "not-found":
            raise
        return not_found(request, f"There is no vendor {vendor} in this registry.")
    owner, model_names = summary.vendor, summary.model_names
    # benchmark labels: a deployed model's hourly production periods must not crowd them out;
    # the current ones and those that lost their standing (never current), and how many in all
    benchmark = queries.LabelFilters(vendor=owner.slug, kind=LabelKind.benchmark)
    shown = replace(benchmark, current=True)
    rows = all_labels(session, shown, cap=VENDOR_PAGE_LABELS)
    keys = profiles.vendor_keys(session, owner)
    # Only a key reported compromised takes labels' standing away (services/keys.py), and a
    # compromised key stays so: without one, no label of the vendor lost it (no read).
    if any(key["status"] == KeyStatus.compromised for key in keys):
        compromised = replace(benchmark, standing=Standing.key_compromised)
        rows += all_labels(session, compromised, cap=VENDOR_PAGE_LABELS)
    trend = trend_service.vendor_series(session, owner)
    current = with_percentile(session, (r for r in rows if r[0].current))
    auditors = audit.verifying_auditors(session, [r.label_id for r in current if r.verified])
    current = [
        replace(r, verified_by=tuple(auditors[r.label_id])) if r.label_id in auditors else r
        for r in current
    ]
    lost = sorted(
        (label_row(label, v, m) for label, v, m in rows if label.standing != Standing.ok),
        key=lambda r: (r.model, r.created_at),
    )
    by_model: dict[str, list[LabelRow]] = {}
    for name in model_names:
        by_model[name] = []
    for row in current:
        by_model.setdefault(row.model, []).append(row)
    models: list[dict[str, Any]] = []
    for name in sorted(by_model):
        labels: list[LabelRow] = sorted(
            by_model[name],
            key=lambda r: (-len(r.suite), r.suite, r.task, r.phase, r.hardware_class),
        )
        models.append(
            {
                "name": name,
                "url": model_path(owner.slug, name),
                "badge_src": f"/badge/{quote(owner.slug, safe='')}/{quote(name, safe='')}.svg",
                "labels": labels,
            }
        )
    tasks = sorted({(r.suite, r.task, r.phase) for r in current})
    return render(
        request,
        "vendor.html",
        {
            "title": owner.display_name,
            "vendor": owner.slug,
            "display_name": owner.display_name,
            "created_at": owner.created_at,
            "keys": keys,
            "models": models,
            "label_count": summary.benchmark_labels,
            "measured": sum(1 for r in current if r.measured),
            "verified": sum(1 for r in current if r.verified),
            "lost_standing": lost,
            "estimated": sum(1 for r in current if not r.measured),
            "json_href": f"/v1/vendors/{quote(owner.slug, safe='')}",
            "series_href": f"/v1/vendors/{quote(owner.slug, safe='')}/series",
            "trend": trend.trend,
            "trends": trend.trends,
            "series_charts": vendor_charts(trend),
            "series_truncated": trend.truncated,
            "series_limit": trend_service.MAX_VENDOR_LABELS,
            "compare_links": [
                {
                    "suite": suite,
                    "task": task,
                    "phase": phase,
                    "href": "/compare"
                    + query_string(task=task, phase=phase, suite=suite, vendors=owner.slug),
                }
                for suite, task, phase in tasks
            ],
        },
    )
